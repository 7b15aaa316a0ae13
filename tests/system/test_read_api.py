"""GET /metrics: query parameters, time windows and response format."""

import json
import socket
import time
import uuid

import pytest

from m2pg_sys import (STATS, assert_created, assert_error, assert_points, assert_read_ok, dechunk,
                      metric, raw_get, read_series, unique_name, wait_in_all, wait_until)

T = 1355202720  # 2012-12-11T05:12:00Z, on a minute boundary


def post_all(service, metrics):
    ids = assert_created(service.post(metrics), len(metrics))
    return ids


def test_posted_metric_reads_back_with_exact_values_and_is_counted_once(service):
    values = dict(count=3, mean=3.14, median=2.71, min=0.1, max=9.99, perc95=8.5,
                  perc99=9.75, last=-0.3)
    ids = post_all(service, [metric("exact.metric", bucket=T, **values)])
    # Once the row is in both databases, the read must de-duplicate it.
    wait_in_all(service.dbs, ids[0])
    series = read_series(service, name="exact.metric", **{"from": T - 60, "to": T + 60},
                         resolution="minute")
    assert list(series) == ["exact.metric"]
    for stat in STATS:
        assert_points(series["exact.metric"][stat], [(T, values[stat])], exact=True)


def test_no_match_is_an_empty_array_with_the_databases_header(service):
    r = service.get_metrics(name="nothing.matches.this", **{"from": T - 60, "to": T + 60})
    assert assert_read_ok(r) == {}
    assert r.json == []


REGEX_CASES = [
    ("unanchored-substring", "web", ["foo.web.requests"]),
    ("anchored-start", "^bar", ["bar.db.queries"]),
    ("anchored-end", "requests$", ["foo.web.requests", "my-app-dev.requests"]),
    ("alternation-with-group", "my-app-(prod|staging)", ["my-app-prod.hits", "my-app-staging.hits"]),
    ("character-class-and-escape", r"^my-app-[a-z]+\.hits$", ["my-app-prod.hits", "my-app-staging.hits"]),
    ("match-all", ".", ["bar.db.queries", "foo.web.requests", "my-app-dev.requests",
                        "my-app-prod.hits", "my-app-staging.hits"]),
]


@pytest.mark.parametrize("pattern,expected", [c[1:] for c in REGEX_CASES],
                         ids=[c[0] for c in REGEX_CASES])
def test_name_is_a_regular_expression_matched_unanchored(service, pattern, expected):
    names = ["foo.web.requests", "bar.db.queries", "my-app-prod.hits", "my-app-staging.hits",
             "my-app-dev.requests"]
    post_all(service, [metric(n, bucket=T) for n in names])
    series = read_series(service, name=pattern, **{"from": T, "to": T})
    assert list(series) == expected


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "[z-a]", "*"])
def test_invalid_regular_expression_is_400_not_a_database_failure(service, pattern):
    assert_error(service.get_metrics(name=pattern, **{"from": T, "to": T + 60}), 400)
    # The databases are fine and the service still answers reads.
    read_series(service, name="anything", **{"from": T, "to": T + 60})
    assert service.health().status == 200


BAD_QUERIES = [
    ("missing-name", {"from": T, "to": T + 60}),
    ("from-after-to", {"name": "x", "from": T + 61, "to": T + 60}),
    ("garbage-from", {"name": "x", "from": "yesterday", "to": T}),
    ("garbage-to", {"name": "x", "from": T, "to": "tomorrow"}),
    ("unknown-resolution", {"name": "x", "from": T, "to": T + 60, "resolution": "fortnight"}),
    ("resolution-with-multiplier", {"name": "x", "from": T, "to": T + 60, "resolution": "5m"}),
    ("unknown-statistic", {"name": "x", "from": T, "to": T + 60, "stats": "mean,p50"}),
    ("empty-statistic", {"name": "x", "from": T, "to": T + 60, "stats": "mean,,max"}),
]


@pytest.mark.parametrize("params", [q[1] for q in BAD_QUERIES], ids=[q[0] for q in BAD_QUERIES])
def test_bad_query_parameters_are_400(service, params):
    assert_error(service.get_metrics(**params), 400)


def test_stats_narrows_the_answer_to_the_statistics_asked(service):
    """stats=perc95,count answers those keys only, in the usual order, with the same points."""
    ids = post_all(service, [metric("stats.narrow", bucket=T, count=4, mean=2.5, perc95=7, last=1),
                             metric("stats.narrow", bucket=T + 10, count=6, mean=5, perc95=9, last=2)])
    wait_in_all(service.dbs, ids[1])
    window = {"from": T - 60, "to": T + 60, "resolution": "minute"}
    r = service.get_metrics(name="^stats\\.narrow$", stats="perc95,count", **window)
    assert r.status == 200, r.body
    assert list(r.json[0]) == ["name", "count", "perc95"]
    assert r.json[0]["count"] == [{"bucket": T, "value": 10}]
    assert r.json[0]["perc95"] == [{"bucket": T, "value": 9}]
    whole = service.get_metrics(name="^stats\\.narrow$", **window)
    assert list(whole.json[0]) == ["name"] + list(STATS)
    assert whole.json[0]["perc95"] == r.json[0]["perc95"]
    # The same at hour resolution, where the databases aggregate.
    r = service.get_metrics(name="^stats\\.narrow$", stats="mean", **dict(window, resolution="hour"))
    assert list(r.json[0]) == ["name", "mean"]
    assert r.json[0]["mean"] == [{"bucket": T - T % 3600, "value": 4}]
    err = service.get_metrics(name="x", stats="median,nope", **window)
    assert_error(err, 400)
    assert err.json["field"] == "stats"


def test_from_and_to_are_inclusive(service):
    rows = [T - 1, T, T + 30, T + 60, T + 61]
    post_all(service, [metric("window", bucket=b, count=1) for b in rows])
    series = read_series(service, name="window", **{"from": T, "to": T + 60}, resolution="second")
    assert_points(series["window"]["count"], [(T, 1), (T + 30, 1), (T + 60, 1)])


def test_from_equal_to_to_selects_that_instant(service):
    post_all(service, [metric("instant", bucket=b, count=1) for b in (T - 1, T, T + 1)])
    series = read_series(service, name="instant", **{"from": T, "to": T}, resolution="second")
    assert_points(series["instant"]["count"], [(T, 1)])


TIME_FORMS = [
    ("unix-seconds", T, T + 60),
    ("unix-fractional", T - 0.5, T + 60.5),
    ("rfc3339-z", "2012-12-11T05:12:00Z", "2012-12-11T05:13:00Z"),
    ("rfc3339-offset", "2012-12-11T06:12:00+01:00", "2012-12-11T00:43:00-04:30"),
    ("rfc3339-fractional", "2012-12-11T05:11:59.500Z", "2012-12-11T05:13:00.500Z"),
    ("space-utc", "2012-12-11 05:12:00 UTC", "2012-12-11 05:13:00 UTC"),
]


@pytest.mark.parametrize("frm,to", [f[1:] for f in TIME_FORMS], ids=[f[0] for f in TIME_FORMS])
def test_from_and_to_accept_the_bucket_time_forms(service, frm, to):
    post_all(service, [metric("forms", bucket=b, count=1) for b in (T - 5, T, T + 60, T + 65)])
    series = read_series(service, name="forms", **{"from": frm, "to": to}, resolution="second")
    assert_points(series["forms"]["count"], [(T, 1), (T + 60, 1)])


def test_window_defaults_to_the_last_hour_until_now(service):
    now = int(time.time())
    post_all(service, [
        metric("recent", bucket=now - 7200, count=1),   # too old
        metric("recent", bucket=now - 1800, count=2),   # inside
        metric("recent", bucket=now - 5, count=4),      # inside
        metric("recent", bucket=now + 900, count=8),    # in the future: after `to`
    ])
    series = read_series(service, name="recent", resolution="second")
    assert_points(series["recent"]["count"], [(now - 1800, 2), (now - 5, 4)])


def test_from_defaults_to_one_hour_before_to(service):
    to = T + 7200
    post_all(service, [metric("default.from", bucket=b, count=1)
                       for b in (to - 3601, to - 3600, to - 10, to, to + 1)])
    series = read_series(service, name="default.from", to=to, resolution="second")
    assert_points(series["default.from"]["count"], [(to - 3600, 1), (to - 10, 1), (to, 1)])


def test_to_defaults_to_now(service):
    now = int(time.time())
    post_all(service, [metric("default.to", bucket=b, count=1)
                       for b in (now - 300, now - 100, now + 900)])
    series = read_series(service, name="default.to", **{"from": now - 200}, resolution="second")
    assert_points(series["default.to"]["count"], [(now - 100, 1)])


def test_an_error_of_one_database_counts_it_out_instead_of_failing_the_read(service):
    # Only an invalid regex is the client's fault; a database that cannot answer (here its
    # catalogue is gone) is left out, and the others still answer.
    name = unique_name("oneout")
    assert_created(service.post(metric(name, bucket=1355202720, count=3)))
    db1, db2 = service.dbs
    wait_until(lambda: db1.count_rows("name = '%s'" % name) == 1
               and db2.count_rows("name = '%s'" % name) == 1, 5, message="the row in both")
    db2.psql("ALTER TABLE metric_names RENAME TO metric_names_away")
    try:
        r = service.get_metrics(name="^%s$" % name, resolution="hour",
                                **{"from": 1355202720, "to": 1355202780})
        assert r.status == 200, r
        assert r.headers.get("M2pg-Databases") == "1/2"
        assert r.json[0]["count"] == [{"bucket": 1355202000, "value": 3}]
    finally:
        db2.psql("ALTER TABLE metric_names_away RENAME TO metric_names")


def test_a_large_answer_is_the_same_in_chunks_and_in_one_piece(service):
    # About 600 KB of JSON over 40 names: HTTP/1.1 gets it in chunks (of whole names),
    # HTTP/1.0 (no chunks) in one piece.
    prefix = unique_name("big")
    rows = [{"id": str(uuid.uuid4()), "bucket": T + 60 * i, "name": "%s.%02d" % (prefix, k),
             "count": i, "mean": i + 0.5, "median": 1, "min": 0, "max": i, "perc95": 2,
             "perc99": 3, "last": 0.25} for k in range(40) for i in range(50)]
    insert_in_parts(service.dbs, rows)
    query = "/metrics?name=%s&from=%d&to=%d&resolution=second" % (prefix, T, T + 60 * 50)
    chunked = raw_get(service.port, query, "HTTP/1.1")
    whole = raw_get(service.port, query, "HTTP/1.0")
    assert b"transfer-encoding: chunked" in chunked[0].lower()
    assert b"transfer-encoding" not in whole[0].lower()
    assert dechunk(chunked[1]) == whole[1]
    answer = json.loads(whole[1])
    assert [a["name"] for a in answer] == ["%s.%02d" % (prefix, k) for k in range(40)]
    assert all(len(a[s]) == 50 for a in answer for s in STATS)
    assert answer[39]["count"][49] == {"bucket": T + 60 * 49, "value": 49}


def test_a_client_gone_in_the_middle_of_a_large_answer_harms_no_one(service):
    name = unique_name("gone")
    rows = [{"id": str(uuid.uuid4()), "bucket": T + 60 * i, "name": "%s.%02d" % (name, k),
             "count": 1, "mean": 0.5} for k in range(30) for i in range(100)]
    insert_in_parts(service.dbs, rows)
    query = "/metrics?name=%s&from=%d&to=%d&resolution=minute" % (name, T, T + 60 * 100)
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", service.port), timeout=5)
        s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % query).encode())
        s.recv(1024)
        s.close()
    r = service.get_metrics(name=name, resolution="minute", **{"from": T, "to": T + 60 * 100})
    assert r.status == 200 and len(r.json) == 30
    assert all(len(a["count"]) == 100 for a in r.json)


def insert_in_parts(dbs, rows, part=400):
    for db in dbs:
        for i in range(0, len(rows), part):
            db.insert(rows[i:i + part])
