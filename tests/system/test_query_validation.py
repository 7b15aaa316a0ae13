"""GET /metrics: query parameters are checked strictly, and costly regexes refused, before any
database is asked."""

import time
import urllib.parse

import pytest

from m2pg_sys import assert_created, assert_error, metric, read_series, wait_until

T = 1355202720  # 2012-12-11T05:12:00Z

READ_TIMEOUT_MS = 4000


def q(value):
    return urllib.parse.quote(value, safe="")


# (id, raw query string, field named in the 400, a substring of the message)
BAD_QUERIES = [
    ("invalid-utf8", "name=%ff", "name", "UTF-8"),
    ("surrogate", "name=%ED%A0%80", "name", "UTF-8"),
    ("overlong", "name=%C0%AF", "name", "UTF-8"),
    ("truncated-utf8", "name=caf%C3", "name", "UTF-8"),
    ("nul", "name=a%00b", "name", "NUL"),
    ("nul-in-time", "name=x&to=1355202720%00", "to", "NUL"),
    ("lone-percent", "name=%", "name", "percent-encoding"),
    ("short-percent", "name=a%4", "name", "percent-encoding"),
    ("non-hex-percent", "name=%zz", "name", "percent-encoding"),
    ("duplicate-name", "name=a&name=b", "name", "more than once"),
    ("duplicate-from", "name=a&from=1&from=2", "from", "more than once"),
    ("back-reference", "name=" + q(r"^((a+)\2)+$"), "name", "back-reference"),
    ("simple-back-reference", "name=" + q(r"(a)\1"), "name", "back-reference"),
    ("nested-quantifier", "name=" + q("(a+)+"), "name", "nested quantifiers"),
    ("lookahead", "name=" + q("foo(?=bar)"), "name", "lookahead"),
    ("embedded-option", "name=" + q("(?i)foo"), "name", "embedded options"),
    ("director", "name=" + q("***=foo"), "name", "directors"),
    ("big-bound", "name=" + q("a{1,1000}"), "name", "255"),
    ("too-many-copies", "name=" + q("[a-z]{0,255}[a-z]{0,255}"), "name", "at most 255 atoms"),
    ("too-many-quantifiers", "name=" + q(".*" * 17), "name", "at most 16 quantifiers"),
    ("unbalanced", "name=" + q("my-app-(prod"), "name", "unbalanced"),
]


@pytest.fixture
def slow_read_service(pg_pair, m2pg_factory):
    for pg in pg_pair:
        if pg.postmaster_pid() is None:
            pg.start()
        pg.resume()
        pg.truncate_metrics()
    svc = m2pg_factory(pg_pair, read_timeout_ms=READ_TIMEOUT_MS, extra_env={"DB_CONNECTIONS": "2"})
    svc.dbs = pg_pair
    # Every connection set up first: a database paused while m2pg still connects to it is
    # down once the attempts time out, and a read would not wait for it.
    wait_until(lambda: all(s["connections"] == 2 for s in svc.health().json["states"]), 10,
               message="every connection to be set up")
    return svc


def get(svc, query, timeout=15):
    return svc.request("GET", "/metrics?" + query, timeout=timeout)


@pytest.mark.parametrize("query,field,message", [c[1:] for c in BAD_QUERIES],
                         ids=[c[0] for c in BAD_QUERIES])
def test_bad_parameter_is_400_naming_the_field(service, query, field, message):
    body = assert_error(get(service, query), 400, field=field)
    assert message in body["error"], body
    service.assert_alive()


def test_bad_parameters_are_refused_without_asking_a_database(slow_read_service):
    """With both databases hung, a read that reached one would wait READ_TIMEOUT_MS; a refused
    one comes back at once."""
    svc = slow_read_service
    for pg in svc.dbs:
        pg.pause()
    try:
        for case_id, query, field, _ in BAD_QUERIES:
            t0 = time.monotonic()
            r = get(svc, query)
            elapsed = time.monotonic() - t0
            assert_error(r, 400, field=field)
            assert elapsed < READ_TIMEOUT_MS / 2000, "%s took %.2f s" % (case_id, elapsed)
        # The control: an acceptable read does go to the hung databases and waits for them.
        t0 = time.monotonic()
        r = get(svc, "name=" + q("my-app-(prod|staging)"))
        elapsed = time.monotonic() - t0
        assert r.status == 503, r
        assert elapsed >= READ_TIMEOUT_MS / 1000 * 0.75, "control read took only %.2f s" % elapsed
    finally:
        for pg in svc.dbs:
            pg.resume()
    svc.assert_alive()


def test_accepted_regexes_still_match(service):
    names = ["foo.web.requests", "foo.web.errors", "foo.web.latency", "my-app-prod.hits",
             "my-app-staging.hits", "my-app-dev.hits", "caf\u00e9.hits", "a b.hits", "a+b.hits"]
    assert_created(service.post([metric(n, bucket=T, count=1) for n in names]), len(names))
    window = {"from": T, "to": T}
    cases = [
        (r"^foo\.web\.(requests|errors)$", ["foo.web.errors", "foo.web.requests"]),
        ("my-app-(prod|staging)", ["my-app-prod.hits", "my-app-staging.hits"]),
        ("^my-app-[a-z]{3,7}\\.hits$", ["my-app-dev.hits", "my-app-prod.hits", "my-app-staging.hits"]),
        ("(?:prod|dev)+\\.hits", ["my-app-dev.hits", "my-app-prod.hits"]),
        ("^caf\u00e9", ["caf\u00e9.hits"]),  # multi-byte UTF-8, percent-encoded by the client
        (r"^a\+b", ["a+b.hits"]),
    ]
    for pattern, expected in cases:
        series = read_series(service, name=pattern, **window)
        assert sorted(series) == expected, pattern


def test_plus_is_a_space_and_percent_2b_a_plus(service):
    assert_created(service.post([metric("a b.hits", bucket=T, count=1),
                                 metric("a+b.hits", bucket=T, count=1)]), 2)
    r = get(service, f"name=%5Ea+b&from={T}&to={T}")
    assert r.status == 200, r
    assert [o["name"] for o in r.json] == ["a b.hits"]
    r = get(service, f"name=%5Ea%5C%2Bb&from={T}&to={T}")
    assert r.status == 200, r
    assert [o["name"] for o in r.json] == ["a+b.hits"]


def test_unknown_parameters_are_ignored(service):
    assert_created(service.post([metric("ignored.params", bucket=T, count=1)]), 1)
    r = get(service, f"_=1&_=2&name=ignored%5C.params&from={T}&to={T}&cachebuster=x")
    assert r.status == 200, r
    assert [o["name"] for o in r.json] == ["ignored.params"]


def test_syntax_errors_past_the_check_are_still_400_from_the_database(service):
    # An unknown character class passes the cost check; PostgreSQL refuses it (SQLSTATE 2201B).
    body = assert_error(get(service, "name=" + q("[[:nope:]]")), 400, field="name")
    assert body["error"]
