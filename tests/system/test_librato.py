"""Librato's API: POST /v1/metrics as l2met sends it, GET /v1/metrics (the list of names) and
GET /v1/metrics/NAME (measurements by source).

One m2pg on a pair of servers of this module's own: the list's totals count every name in the
databases, and l2met's names are stored unprefixed."""

import math
import time
import urllib.parse

import pytest

from m2pg_sys import STATS, assert_points, read_series
from librato_sys import (L2MET_BODY, L2MET_NAMES, L2MET_TIME, assert_accepted, assert_json_error,
                         barrier, basic, count_prefix, db_rows, get_path, json_media, name_prefix_where,
                         post_v1, prefix)

T = 1796220540     # the minute l2met's measurements fall in
TH = 1796223600    # an hour boundary


@pytest.fixture(scope="module")
def lib(module_pair, module_m2pg_factory):
    svc = module_m2pg_factory(module_pair)
    for pg in module_pair:
        pg.wait_for_schema()
    svc.dbs = module_pair
    return svc


def wait_rows(svc, where, n):
    """Every database holds exactly n rows matching where (checked after a barrier)."""
    barrier(svc, svc.dbs)
    for db in svc.dbs:
        got = db.count_rows(where)
        assert got == n, "%s holds %d rows where %s, expected %d" % (db.name, got, where, n)


def stored(svc, where):
    """The rows matching where, identical in both databases."""
    barrier(svc, svc.dbs)
    first = db_rows(svc.dbs[0], where)
    for db in svc.dbs[1:]:
        assert db_rows(db, where) == first, "databases differ"
    return first


def by_name(rows):
    return {r["name"]: r for r in rows}


def value_row(v):
    return {s: (1.0 if s == "count" else float(v)) for s in STATS}


def assert_stats(row, expected):
    for stat in STATS:
        want = expected.get(stat)
        got = row[stat]
        if want is None:
            assert got is None, "%s: %s is %r, expected NULL" % (row["name"], stat, got)
        else:
            assert got is not None and math.isclose(got, want, rel_tol=1e-12), \
                "%s: %s is %r, expected %r" % (row["name"], stat, got, want)


# ------------------------------------------------------------------------------ l2met

L2MET_WHERE = "name in (%s)" % ", ".join("'%s'" % n for n in L2MET_NAMES)


@pytest.fixture(scope="module")
def l2met(lib):
    """l2met's body, posted once with l2met's credentials (ignored: no API_TOKENS here)."""
    r = post_v1(lib, L2MET_BODY, headers=basic("secrettoken"))
    return r


def test_l2met_body_is_answered_200_with_the_number_of_measurements(l2met):
    assert_accepted(l2met, 5)


def test_l2met_measurements_are_stored_in_both_databases_as_rows(lib, l2met):
    assert_accepted(l2met, 5)
    rows = by_name(stored(lib, L2MET_WHERE))
    assert sorted(rows) == sorted(L2MET_NAMES)
    for row in rows.values():
        assert row["bucket"] == float(L2MET_TIME), row
        assert row["source"] == "web.1", row
    # count + sum (+ min, max): mean = sum / count, the other statistics unknown
    assert_stats(rows["web.latency"], {"count": 5, "mean": 28, "min": 10, "max": 50})
    # a value: one observation, so every statistic is that value
    assert_stats(rows["web.latency.median"], value_row(30))
    assert_stats(rows["web.latency.perc95"], value_row(50))
    assert_stats(rows["web.latency.perc99"], value_row(50))
    assert_stats(rows["web.hits"], value_row(4))


def test_l2met_ids_are_name_based_version_8(lib, l2met):
    assert_accepted(l2met, 5)
    rows = stored(lib, L2MET_WHERE)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 5, ids
    for mid in ids:
        assert mid[14] == "8", "id %s is not version 8" % mid
        assert mid[19] in "89ab", "id %s is not an RFC 9562 variant" % mid


def test_l2met_retry_stores_one_row_per_measurement(lib, l2met):
    assert_accepted(l2met, 5)
    before = {r["name"]: r["id"] for r in stored(lib, L2MET_WHERE)}
    assert_accepted(post_v1(lib, L2MET_BODY, headers=basic("secrettoken")), 5)
    wait_rows(lib, L2MET_WHERE, 5)
    after = {r["name"]: r["id"] for r in stored(lib, L2MET_WHERE)}
    assert after == before


def test_l2met_latency_reads_back_through_get_metrics(lib, l2met):
    assert_accepted(l2met, 5)
    series = read_series(lib, name=r"^web\.latency$", **{"from": 1796220000, "to": 1796221000})
    assert list(series) == ["web.latency"]
    s = series["web.latency"]
    assert_points(s["count"], [(T, 5)])
    assert_points(s["mean"], [(T, 28)])
    assert_points(s["min"], [(T, 10)])
    assert_points(s["max"], [(T, 50)])
    for stat in ("median", "perc95", "perc99", "last"):
        assert s[stat] == [], (stat, s[stat])


def test_l2met_latency_reads_back_through_the_librato_api(lib, l2met):
    assert_accepted(l2met, 5)
    r = get_path(lib, "/v1/metrics/web.latency",
                 {"start_time": 1796220000, "end_time": 1796221000})
    assert r.status == 200, r
    assert json_media(r), r
    body = r.json
    assert body["name"] == "web.latency"
    assert "display_name" in body, body
    assert body["type"] == "gauge"
    assert body["attributes"] == {}
    assert body["resolution"] == 60
    assert body["measurements"] == {"web.1": [{"measure_time": T, "value": 28, "count": 5,
                                               "sum": 140, "min": 10, "max": 50}]}, body
    q = body["query"]
    assert q["start_time"] == 1796220000, q
    assert isinstance(q["end_time"], int), q
    assert q["resolution"] == 60, q
    assert q["databases"] == "2/2", q


def test_l2met_percentile_gauge_reads_50(lib, l2met):
    assert_accepted(l2met, 5)
    r = get_path(lib, "/v1/metrics/web.latency.perc95",
                 {"start_time": 1796220000, "end_time": 1796221000})
    assert r.status == 200, r
    assert r.json["measurements"] == {"web.1": [{"measure_time": T, "value": 50, "count": 1,
                                                 "sum": 50, "min": 50, "max": 50}]}, r.json


# ------------------------------------------------------------------------- write forms

def test_count_and_sum_gauge_without_min_max_leaves_them_unknown(lib):
    p = prefix("cs")
    body = {"gauges": [{"name": p + "g", "measure_time": TH, "count": 4, "sum": 10,
                        "sum_squares": 30, "period": 60, "attributes": {"display_units_long": "ms"}}]}
    assert_accepted(post_v1(lib, body), 1)
    (row,) = stored(lib, name_prefix_where(p))
    assert row["bucket"] == float(TH)
    assert row["source"] is None
    assert_stats(row, {"count": 4, "mean": 2.5})


def test_counters_are_stored_like_a_value(lib):
    p = prefix("ctr")
    body = {"counters": [{"name": p + "c", "measure_time": TH, "value": 42, "source": "web.1"}],
            "gauges": [{"name": p + "g", "measure_time": TH, "value": -1.5}]}
    assert_accepted(post_v1(lib, body), 2)
    rows = by_name(stored(lib, name_prefix_where(p)))
    assert_stats(rows[p + "c"], value_row(42))
    assert rows[p + "c"]["source"] == "web.1"
    assert_stats(rows[p + "g"], value_row(-1.5))


def test_hash_form_keyed_by_name(lib):
    p = prefix("hash")
    body = {"measure_time": TH,
            "gauges": {p + "a": {"value": 3}, p + "b": {"count": 2, "sum": 9, "min": 4, "max": 5,
                                                       "source": "s.1"}},
            "counters": {p + "c": {"value": 7, "measure_time": TH + 60}}}
    assert_accepted(post_v1(lib, body), 3)
    rows = by_name(stored(lib, name_prefix_where(p)))
    assert sorted(rows) == [p + "a", p + "b", p + "c"]
    assert_stats(rows[p + "a"], value_row(3))
    assert_stats(rows[p + "b"], {"count": 2, "mean": 4.5, "min": 4, "max": 5})
    assert rows[p + "b"]["source"] == "s.1"
    assert_stats(rows[p + "c"], value_row(7))
    assert [rows[n]["bucket"] for n in (p + "a", p + "b", p + "c")] == [TH, TH, TH + 60]


@pytest.mark.parametrize("form", ["array", "hash"])
def test_measure_time_defaults_to_now(lib, form):
    p = prefix("now")
    if form == "array":
        body = {"gauges": [{"name": p + "g", "value": 1}]}
    else:
        body = {"gauges": {p + "g": {"value": 1}}}
    before = time.time()
    assert_accepted(post_v1(lib, body), 1)
    after = time.time()
    (row,) = stored(lib, name_prefix_where(p))
    assert before - 1 <= row["bucket"] <= after + 1, (before, row["bucket"], after)


def test_top_level_measure_time_and_source_are_defaults_each_measurement_may_override(lib):
    p = prefix("top")
    body = {"measure_time": TH, "source": "top.src",
            "gauges": [{"name": p + "a", "value": 1},
                       {"name": p + "b", "value": 2, "source": "own.src", "measure_time": TH + 60}],
            "counters": [{"name": p + "c", "value": 3}]}
    assert_accepted(post_v1(lib, body), 3)
    rows = by_name(stored(lib, name_prefix_where(p)))
    assert (rows[p + "a"]["bucket"], rows[p + "a"]["source"]) == (TH, "top.src")
    assert (rows[p + "b"]["bucket"], rows[p + "b"]["source"]) == (TH + 60, "own.src")
    assert (rows[p + "c"]["bucket"], rows[p + "c"]["source"]) == (TH, "top.src")


def test_id_derives_from_name_source_and_time(lib):
    p = prefix("id")
    n = p + "g"
    body = {"gauges": [{"name": n, "measure_time": TH, "value": 1},
                       {"name": n, "measure_time": TH, "value": 1, "source": "a"},
                       {"name": n, "measure_time": TH, "value": 1, "source": "b"},
                       {"name": n, "measure_time": TH + 1, "value": 1, "source": "a"}]}
    assert_accepted(post_v1(lib, body), 4)
    rows = stored(lib, name_prefix_where(p))
    assert len(rows) == 4 and len({r["id"] for r in rows}) == 4, rows
    # The same measurements again, one at a time and in another order: still four rows.
    for g in reversed(body["gauges"]):
        assert_accepted(post_v1(lib, {"gauges": [g]}), 1)
    wait_rows(lib, name_prefix_where(p), 4)
    assert {r["id"] for r in stored(lib, name_prefix_where(p))} == {r["id"] for r in rows}


@pytest.mark.parametrize("encode", [True, False], ids=["percent-encoded", "raw-brackets"])
def test_legacy_form_encoded_body(lib, encode):
    p = prefix("form")
    pairs = [("gauges[0][name]", p + "v"), ("gauges[0][value]", "3.5"),
             ("gauges[0][source]", "web.2"),
             ("gauges[1][name]", p + "cs"), ("gauges[1][count]", "2"), ("gauges[1][sum]", "5"),
             ("measure_time", str(TH))]
    if encode:
        body = urllib.parse.urlencode(pairs)
        assert "%5B" in body
    else:
        body = "&".join("%s=%s" % kv for kv in pairs)
    r = post_v1(lib, body.encode(), content_type="application/x-www-form-urlencoded")
    assert_accepted(r, 2)
    rows = by_name(stored(lib, name_prefix_where(p)))
    assert_stats(rows[p + "v"], value_row(3.5))
    assert rows[p + "v"]["source"] == "web.2"
    assert rows[p + "v"]["bucket"] == TH
    assert_stats(rows[p + "cs"], {"count": 2, "mean": 2.5})
    assert rows[p + "cs"]["source"] is None


ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:-_"


def test_names_and_sources_take_every_allowed_character_up_to_255(lib):
    p = prefix("chars")
    long_name = (p + ALLOWED * 4)[:255]
    long_source = (ALLOWED * 4)[:255]
    body = {"gauges": [{"name": long_name, "measure_time": TH, "value": 1, "source": long_source},
                       {"name": p + ALLOWED, "measure_time": TH, "value": 2, "source": ALLOWED}]}
    assert_accepted(post_v1(lib, body), 2)
    rows = by_name(stored(lib, name_prefix_where(p)))
    assert rows[long_name]["source"] == long_source
    assert rows[p + ALLOWED]["source"] == ALLOWED


# ------------------------------------------------------------------- rejected writes

def ok(p, i=0):
    return {"name": "%sok%d" % (p, i), "measure_time": TH, "value": 1}


def with_(p, **fields):
    g = ok(p, 9)
    for k, v in fields.items():
        if v is None:
            g.pop(k, None)
        else:
            g[k] = v
    return g


# (id, body builder given the prefix, exact field or None, field prefix or None)
INVALID = [
    ("third-name-has-a-space", lambda p: {"gauges": [ok(p, 0), ok(p, 1), with_(p, name=p + "a b")]},
     "gauges[2].name", None),
    ("name-256-chars", lambda p: {"gauges": [with_(p, name=(p + "x" * 256)[:256]), ok(p)]},
     "gauges[0].name", None),
    ("name-empty", lambda p: {"gauges": [ok(p), with_(p, name="")]}, "gauges[1].name", None),
    ("name-missing", lambda p: {"gauges": [ok(p), with_(p, name=None)]}, "gauges[1].name", None),
    ("name-number", lambda p: {"gauges": [ok(p), with_(p, name=12)]}, "gauges[1].name", None),
    ("name-slash", lambda p: {"gauges": [ok(p), with_(p, name=p + "a/b")]}, "gauges[1].name", None),
    ("name-non-ascii", lambda p: {"gauges": [ok(p), with_(p, name=p + "caf\u00e9")]},
     "gauges[1].name", None),
    ("source-space", lambda p: {"gauges": [ok(p), with_(p, source="web 1")]},
     "gauges[1].source", None),
    ("source-256-chars", lambda p: {"gauges": [ok(p), with_(p, source="s" * 256)]},
     "gauges[1].source", None),
    ("source-empty", lambda p: {"gauges": [ok(p), with_(p, source="")]}, "gauges[1].source", None),
    ("value-string", lambda p: {"gauges": [ok(p), with_(p, value="abc")]}, "gauges[1].value", None),
    ("value-object", lambda p: {"gauges": [ok(p), with_(p, value={"v": 1})]},
     "gauges[1].value", None),
    ("no-value-no-count", lambda p: {"gauges": [ok(p), with_(p, value=None)]}, None, "gauges[1]"),
    ("count-without-sum", lambda p: {"gauges": [ok(p), with_(p, value=None, count=3)]},
     None, "gauges[1]"),
    ("sum-not-a-number", lambda p: {"gauges": [ok(p), with_(p, value=None, count=3, sum="x")]},
     "gauges[1].sum", None),
    ("measure-time-garbage", lambda p: {"gauges": [ok(p), with_(p, measure_time="yesterday")]},
     "gauges[1].measure_time", None),
    ("top-measure-time-garbage", lambda p: {"measure_time": "abc", "gauges": [ok(p)]},
     "measure_time", None),
    ("top-source-invalid", lambda p: {"source": "bad source", "gauges": [ok(p)]}, "source", None),
    ("second-counter-name", lambda p: {"gauges": [ok(p)],
                                       "counters": [ok(p, 1), with_(p, name=p + "a b")]},
     "counters[1].name", None),
    ("hash-value-invalid", lambda p: {"gauges": {p + "ok": {"value": 1}, p + "h": {"value": "abc"}}},
     "gauges.{p}h.value", None),
    ("gauges-not-a-list", lambda p: {"gauges": 5, "counters": [ok(p)]}, "gauges", None),
]


@pytest.mark.parametrize("build,field,field_prefix", [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_measurement_is_400_naming_the_field_and_nothing_is_stored(
        lib, build, field, field_prefix):
    p = prefix("bad")
    if field is not None:
        field = field.replace("{p}", p)
    assert_json_error(post_v1(lib, build(p)), 400, field=field, field_prefix=field_prefix)
    barrier(lib, lib.dbs)
    for db in lib.dbs:
        assert count_prefix(db, p) == 0, "%s stored part of a refused request" % db.name


def test_invalid_form_encoded_measurement_is_400_and_nothing_is_stored(lib):
    p = prefix("formbad")
    body = urllib.parse.urlencode([("gauges[0][name]", p + "ok"), ("gauges[0][value]", "1"),
                                   ("gauges[1][name]", p + "a b"), ("gauges[1][value]", "1"),
                                   ("measure_time", str(TH))])
    r = post_v1(lib, body.encode(), content_type="application/x-www-form-urlencoded")
    assert_json_error(r, 400, field="gauges[1].name")
    barrier(lib, lib.dbs)
    for db in lib.dbs:
        assert count_prefix(db, p) == 0


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b'{"gauges":[{"name":"x","value":1}]'],
                         ids=["empty", "open-brace", "not-json", "truncated"])
def test_malformed_json_is_400(lib, body):
    assert_json_error(post_v1(lib, body), 400)
    lib.assert_alive()


# ------------------------------------------------------------------- the list of names

def list_names(svc, **params):
    r = get_path(svc, "/v1/metrics", params)
    assert r.status == 200, r
    assert json_media(r), r
    body = r.json
    for m in body["metrics"]:
        assert m["type"] == "gauge", m
        assert "display_name" in m, m
    return body["query"], [m["name"] for m in body["metrics"]]


@pytest.fixture(scope="module")
def listed(lib):
    """Five names whose bytewise order differs from a case-insensitive or locale order."""
    p = prefix("list")
    names = [p + s for s in ("a", "B", "_z", "9", "-")]
    assert_accepted(post_v1(lib, {"gauges": [{"name": n, "measure_time": TH, "value": 1}
                                             for n in names]}), 5)
    barrier(lib, lib.dbs)
    return p, sorted(names, key=lambda s: s.encode())


def test_list_matches_a_substring_and_sorts_bytewise(lib, listed):
    p, names = listed
    assert [n[len(p):] for n in names] == ["-", "9", "B", "_z", "a"]
    q, got = list_names(lib, name=p)
    assert got == names
    assert q["found"] == 5 and q["offset"] == 0, q


def test_list_pages_with_offset_and_length(lib, listed):
    p, names = listed
    q, got = list_names(lib, name=p, offset=1, length=2)
    assert got == names[1:3]
    assert (q["offset"], q["length"], q["found"]) == (1, 2, 5), q
    q, got = list_names(lib, name=p, offset=4, length=2)
    assert got == names[4:]
    q, got = list_names(lib, name=p, offset=5)
    assert got == [] and q["found"] == 5, q


def test_list_name_is_a_substring_not_a_regex(lib):
    p = prefix("sub")
    assert_accepted(post_v1(lib, {"gauges": [{"name": p + "x.y", "value": 1},
                                             {"name": p + "xzy", "value": 1}]}), 2)
    barrier(lib, lib.dbs)
    assert list_names(lib, name=p + "x.y")[1] == [p + "x.y"]
    assert list_names(lib, name=p + "x")[1] == [p + "x.y", p + "xzy"]


def test_list_total_counts_every_name(lib, listed):
    barrier(lib, lib.dbs)
    distinct = int(lib.dbs[0].scalar("select count(distinct name) from metrics"))
    q, _ = list_names(lib, name=listed[0])
    assert q["total"] == distinct, (q, distinct)
    q, got = list_names(lib)
    assert q["found"] == q["total"] == distinct, (q, distinct)
    assert len(got) == min(100, distinct)


def test_list_length_defaults_to_100(lib):
    p = prefix("many")
    names = sorted(p + "%03d" % i for i in range(105))
    assert_accepted(post_v1(lib, {"gauges": [{"name": n, "value": 1} for n in names]}), 105)
    barrier(lib, lib.dbs)
    q, got = list_names(lib, name=p)
    assert got == names[:100]
    assert q["found"] == 105 and q["length"] == 100, q
    q, got = list_names(lib, name=p, offset=100, length=100)
    assert got == names[100:]


@pytest.mark.parametrize("params,field", [
    ({"offset": -1}, "offset"),
    ({"offset": "abc"}, "offset"),
    ({"length": -1}, "length"),
    ({"length": "abc"}, "length"),
    ({"length": 101}, "length"),
], ids=["offset-negative", "offset-garbage", "length-negative", "length-garbage", "length-101"])
def test_list_bad_offset_or_length_is_400(lib, params, field):
    assert_json_error(get_path(lib, "/v1/metrics", params), 400, field=field)


# ----------------------------------------------------------------- measurements by source

# (source or None, measure_time offset from TH, measurement)
SOURCED = [
    ("web.1", 5, {"value": 10}),
    ("web.1", 65, {"count": 2, "sum": 30, "min": 5, "max": 25}),
    ("web.2", 10, {"value": 40}),
    (None, 15, {"value": 100}),
    ("xweb.3", 20, {"value": 1000}),
    ("web_1", 25, {"value": 3}),
]


def point(t, count, total, lo, hi):
    return {"measure_time": t, "value": total / count, "count": count, "sum": total,
            "min": lo, "max": hi}


def single(t, v):
    return point(t, 1, v, v, v)


@pytest.fixture(scope="module")
def sourced(lib):
    name = prefix("src") + "lat"
    gauges = []
    for source, dt, m in SOURCED:
        g = dict(m, name=name, measure_time=TH + dt)
        if source is not None:
            g["source"] = source
        gauges.append(g)
    assert_accepted(post_v1(lib, {"gauges": gauges}), len(gauges))
    barrier(lib, lib.dbs)
    return name


def measurements(svc, name, **params):
    params.setdefault("start_time", TH - 600)
    params.setdefault("end_time", TH + 600)
    r = get_path(svc, "/v1/metrics/" + name, params)
    assert r.status == 200, r
    assert r.json["name"] == name and r.json["type"] == "gauge", r.json
    assert r.json["query"]["databases"] == "2/2", r.json
    return r.json


def assert_measurements(got, expected):
    assert sorted(got) == sorted(expected), (got, expected)
    for key, points in expected.items():
        g = got[key]
        assert [p["measure_time"] for p in g] == [p["measure_time"] for p in points], (key, g)
        for gp, ep in zip(g, points):
            assert sorted(gp) == sorted(ep), (key, gp)
            for field, want in ep.items():
                assert math.isclose(gp[field], want, rel_tol=1e-9), (key, field, gp, ep)


def test_each_source_has_its_own_series_and_no_source_is_unassigned(lib, sourced):
    body = measurements(lib, sourced)
    assert body["resolution"] == 60
    assert_measurements(body["measurements"], {
        "web.1": [single(TH, 10), point(TH + 60, 2, 30, 5, 25)],
        "web.2": [single(TH, 40)],
        "unassigned": [single(TH, 100)],
        "xweb.3": [single(TH, 1000)],
        "web_1": [single(TH, 3)],
    })


def test_summarize_sources_rolls_every_source_up_under_all(lib, sourced):
    body = measurements(lib, sourced, summarize_sources="true")
    assert_measurements(body["measurements"], {
        "all": [point(TH, 5, 10 + 40 + 100 + 1000 + 3, 3, 1000), point(TH + 60, 2, 30, 5, 25)],
    })


@pytest.mark.parametrize("resolution", [3600, 86400])
def test_coarser_resolution_rolls_up_count_weighted(lib, sourced, resolution):
    start = TH - TH % resolution
    body = measurements(lib, sourced, resolution=resolution, source="web.1")
    assert body["resolution"] == resolution and body["query"]["resolution"] == resolution, body
    assert_measurements(body["measurements"], {"web.1": [point(start, 3, 40, 5, 25)]})


@pytest.mark.parametrize("resolution", [3600, 86400])
def test_coarser_resolution_keeps_each_source_apart(lib, sourced, resolution):
    start = TH - TH % resolution
    body = measurements(lib, sourced, resolution=resolution)
    assert_measurements(body["measurements"], {
        "web.1": [point(start, 3, 40, 5, 25)],
        "web.2": [single(start, 40)],
        "unassigned": [single(start, 100)],
        "xweb.3": [single(start, 1000)],
        "web_1": [single(start, 3)],
    })


@pytest.mark.parametrize("resolution", [1, 3600])
def test_summarize_sources_at_other_resolutions(lib, sourced, resolution):
    body = measurements(lib, sourced, resolution=resolution, summarize_sources="true")
    if resolution == 1:
        expected = [single(TH + dt, m["value"]) if "value" in m else point(TH + dt, 2, 30, 5, 25)
                    for _, dt, m in sorted(SOURCED, key=lambda s: s[1])]
    else:
        expected = [point(TH, 7, 1183, 3, 1000)]
    assert_measurements(body["measurements"], {"all": expected})


def test_week_resolution_is_accepted(lib, sourced):
    body = measurements(lib, sourced, resolution=604800, summarize_sources="true")
    assert body["resolution"] == 604800, body
    (p,) = body["measurements"]["all"]
    # Whether weeks start on Monday or on the epoch's Thursday, a week starts at midnight and
    # every row here falls in one week.
    assert p["measure_time"] % 86400 == 0 and 0 <= TH - p["measure_time"] < 604800, p
    assert (p["count"], p["sum"], p["min"], p["max"]) == (7, 1183, 3, 1000), p


@pytest.mark.parametrize("pattern,keys", [
    ("web.1", ["web.1"]),
    ("web.*", ["web.1", "web.2"]),
    ("*web*", ["web.1", "web.2", "web_1", "xweb.3"]),
    ("*.3", ["xweb.3"]),
    ("*", ["web.1", "web.2", "web_1", "xweb.3"]),
    ("web", []),
    ("eb.1", []),
], ids=["exact", "prefix-star", "stars-both-ends", "suffix", "star", "anchored-end",
        "anchored-start"])
def test_source_is_an_anchored_pattern_with_star_wildcards(lib, sourced, pattern, keys):
    body = measurements(lib, sourced, source=pattern)
    assert sorted(body["measurements"]) == keys, body["measurements"]


def test_duration_instead_of_start_time_reads_until_now(lib):
    name = prefix("dur") + "g"
    t = int(time.time()) - 120
    assert_accepted(post_v1(lib, {"gauges": [{"name": name, "measure_time": t, "value": 6}]}), 1)
    r = get_path(lib, "/v1/metrics/" + name, {"duration": 3600})
    assert r.status == 200, r
    assert r.json["measurements"] == {"unassigned": [single(t - t % 60, 6)]}, r.json


def test_unknown_name_is_404(lib):
    r = get_path(lib, "/v1/metrics/" + prefix("nope") + "x", {"start_time": TH})
    assert_json_error(r, 404)


BAD_READS = [
    ("no-start-time-nor-duration", {}, "start_time"),
    ("start-time-garbage", {"start_time": "abc"}, "start_time"),
    ("end-time-garbage", {"start_time": TH, "end_time": "abc"}, "end_time"),
    ("duration-garbage", {"duration": "abc"}, "duration"),
    ("duration-negative", {"duration": -5}, "duration"),
    ("resolution-300", {"start_time": TH, "resolution": 300}, "resolution"),
    ("resolution-garbage", {"start_time": TH, "resolution": "minute"}, "resolution"),
    ("summarize-garbage", {"start_time": TH, "summarize_sources": "maybe"}, "summarize_sources"),
    ("start-after-end", {"start_time": TH + 600, "end_time": TH}, None),
    ("source-not-a-pattern", {"start_time": TH, "source": "web.(1)|x"}, "source"),
]


@pytest.mark.parametrize("params,field", [c[1:] for c in BAD_READS], ids=[c[0] for c in BAD_READS])
def test_bad_read_parameters_are_400_naming_the_field(lib, sourced, params, field):
    body = assert_json_error(get_path(lib, "/v1/metrics/" + sourced, params), 400, field=field)
    assert body.get("field"), body


def test_librato_sources_filter_the_seed_read(lib, sourced):
    window = {"from": TH - 600, "to": TH + 600}
    series = read_series(lib, name=sourced, **window)
    assert_points(series[sourced]["count"], [(TH, 5), (TH + 60, 2)])
    series = read_series(lib, name=sourced, source=r"^web\.", **window)
    assert_points(series[sourced]["count"], [(TH, 2), (TH + 60, 2)])
