"""Helpers for the tests of Librato's API (/v1/metrics), sources and API tokens.

Standard library only, like m2pg_sys."""

import base64
import json
import time

from m2pg_sys import (STATS, assert_created, encode_json, metric, query_string, sql_literal,
                      unique_name, wait_in_all, wait_until)

# The body l2met's Librato outlet sends, byte for byte.
L2MET_BODY = (
    b'{"gauges":[{"name":"web.latency","measure_time":1796220544,"count":5,"sum":140,"max":50,'
    b'"min":10,"source":"web.1","attributes":{"display_min":0,"display_units_long":"ms"}},'
    b'{"name":"web.latency.median","measure_time":1796220544,"value":30,"source":"web.1",'
    b'"attributes":{"display_min":0,"display_units_long":"ms"}},'
    b'{"name":"web.latency.perc95","measure_time":1796220544,"value":50,"source":"web.1",'
    b'"attributes":{"display_min":0,"display_units_long":"ms"}},'
    b'{"name":"web.latency.perc99","measure_time":1796220544,"value":50,"source":"web.1",'
    b'"attributes":{"display_min":0,"display_units_long":"ms"}},'
    b'{"name":"web.hits","measure_time":1796220544,"value":4,"source":"web.1",'
    b'"attributes":{"display_min":0,"display_units_long":""}}]}')
L2MET_NAMES = ("web.latency", "web.latency.median", "web.latency.perc95", "web.latency.perc99",
               "web.hits")
L2MET_TIME = 1796220544


def basic(token, user="me@example.com"):
    raw = ("%s:%s" % (user, token)).encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def bearer(token):
    return {"Authorization": "Bearer " + token}


def post_v1(svc, payload, content_type="application/json", headers=None, timeout=10):
    """POST /v1/metrics; payload is bytes/str (sent as is) or an object (sent as JSON)."""
    if not isinstance(payload, (bytes, str)):
        payload = encode_json(payload)
    return svc.request("POST", "/v1/metrics", body=payload, content_type=content_type,
                       headers=headers, timeout=timeout)


def get_path(svc, path, params=None, headers=None, timeout=15):
    if params:
        path += "?" + query_string(params)
    return svc.request("GET", path, headers=headers, timeout=timeout)


def json_media(resp):
    ct = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
    return ct == "application/json"


def assert_accepted(resp, n):
    """200 with {"measurements": n}."""
    assert resp.status == 200, "expected 200, got %r" % (resp,)
    assert json_media(resp), resp
    assert resp.json == {"measurements": n}, resp
    return resp.json


def assert_json_error(resp, status, field=None, field_prefix=None):
    assert resp.status == status, "expected %d, got %r" % (status, resp)
    assert json_media(resp), "error is not JSON: %r" % (resp,)
    body = resp.json
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], \
        "error body lacks an 'error' message: %r" % (resp,)
    if field is not None:
        assert body.get("field") == field, "expected field %r in %r" % (field, body)
    if field_prefix is not None:
        got = body.get("field")
        assert isinstance(got, str) and got.startswith(field_prefix), \
            "expected a field starting with %r in %r" % (field_prefix, body)
    return body


def barrier(svc, dbs, headers=None):
    """Wait until everything written before this call is in every database.

    Each database commits the writes in the order they arrived, so once a fresh sentinel is
    in all of them, so is whatever came earlier (and whatever was refused never will be)."""
    r = svc.request("POST", "/metrics", body=encode_json(metric(unique_name("sentinel"))),
                    content_type="application/json", headers=headers)
    mid = assert_created(r)
    wait_in_all(dbs, mid, timeout=10)
    # A write one database failed (an insert racing the partitions made at start) reaches it
    # as a hint, out of order: wait for the hints too.
    wait_until(lambda: all(st["hints"] == 0 and st["queued"] == 0
                           for st in svc.request("GET", "/health", headers=headers).json["states"]),
               10, message="every database's hints to be delivered")
    return mid


ROW_COLUMNS = ("id", "name", "source", "bucket") + STATS


def db_rows(db, where="true"):
    """Stored rows as dicts (bucket as Unix seconds, statistics as floats or None)."""
    sql = ("select id::text, name, source, extract(epoch from bucket)::float8, %s "
           "from metrics where %s order by name, source nulls first, bucket"
           % (", ".join(STATS), where))
    out = []
    for r in db.psql(sql):
        row = dict(zip(ROW_COLUMNS, r))
        for key in ("bucket",) + STATS:
            row[key] = None if row[key] is None else float(row[key])
        out.append(row)
    return out


def name_prefix_where(prefix):
    return "starts_with(name, %s)" % sql_literal(prefix)


def count_prefix(db, prefix):
    return db.count_rows(name_prefix_where(prefix))


def prefix(tag):
    """A name prefix no other test uses; Librato names allow A-Za-z0-9.:-_ only."""
    return unique_name(tag) + "."


def now():
    return int(time.time())


def as_json(obj):
    return json.dumps(obj, sort_keys=True)
