"""API tokens (API_TOKENS): who may read and write, how clients present a token, and that no
token reaches m2pg's output.

One m2pg with tokens for the module, on the shared pair of servers."""

import base64

import pytest

from m2pg_sys import (encode_json, free_port, metric, query_string, run_cli, unique_name,
                      wait_until)
from librato_sys import (L2MET_BODY, assert_accepted, assert_json_error, barrier, basic, bearer,
                         count_prefix, json_media, post_v1, prefix)

BOTH = "tkBoth-7Qx9aa"
READ = "tkRead-3Jm2bb"
WRITE = "tkWrite-8Lp4cc"
L2MET = "secrettoken"
BAD = "tkNope-1Zz0dd"
API_TOKENS = "%s,%s:read,%s:write,%s:write" % (BOTH, READ, WRITE, L2MET)
SECRETS = (BOTH, READ, WRITE, L2MET, BAD)

TH = 1796223600
REALM = 'Basic realm="m2pg"'


@pytest.fixture(scope="module")
def svc(pg_pair, module_m2pg_factory):
    for pg in pg_pair:
        if pg.postmaster_pid() is None:
            pg.start()
        pg.resume()
        pg.truncate_metrics()
    # Debug logs: the most m2pg ever writes, none of which may carry a token.
    s = module_m2pg_factory(pg_pair, extra_env={"API_TOKENS": API_TOKENS, "LOG_LEVEL": "debug"})
    for pg in pg_pair:
        pg.wait_for_schema()
    s.dbs = pg_pair
    s.known = prefix("known") + "g"
    assert_accepted(post_v1(s, {"gauges": [{"name": s.known, "measure_time": TH, "value": 1}]},
                            headers=bearer(BOTH)), 1)
    return s


# ------------------------------------------------------------------ every route, every scope

def get_metrics(svc, headers):
    q = query_string({"name": "x", "from": TH - 60, "to": TH + 60})
    return svc.request("GET", "/metrics?" + q, headers=headers)


def head_metrics(svc, headers):
    return svc.request("HEAD", "/metrics", headers=headers)


def post_metrics(svc, headers):
    return svc.request("POST", "/metrics", body=encode_json(metric(unique_name("route"))),
                       content_type="application/json", headers=headers)


def get_v1_list(svc, headers):
    return svc.request("GET", "/v1/metrics", headers=headers)


def post_v1_metrics(svc, headers):
    return post_v1(svc, {"gauges": [{"name": unique_name("route"), "value": 1}]}, headers=headers)


def get_v1_name(svc, headers):
    q = query_string({"start_time": TH - 600, "end_time": TH + 600})
    return svc.request("GET", "/v1/metrics/%s?%s" % (svc.known, q), headers=headers)


def get_stats(svc, headers):
    return svc.request("GET", "/stats", headers=headers)


# (id, request, scope it needs, status when allowed)
ROUTES = [
    ("GET-metrics", get_metrics, "read", 200),
    ("HEAD-metrics", head_metrics, "read", 200),
    ("POST-metrics", post_metrics, "write", 201),
    ("GET-v1-metrics", get_v1_list, "read", 200),
    ("POST-v1-metrics", post_v1_metrics, "write", 200),
    ("GET-v1-metrics-NAME", get_v1_name, "read", 200),
    ("GET-stats", get_stats, "read", 200),
]

# (id, headers, scopes the credentials hold: None for no valid token)
CREDENTIALS = [
    ("no-header", {}, None),
    ("unknown-basic", basic(BAD), None),
    ("unknown-bearer", bearer(BAD), None),
    ("both-basic", basic(BOTH), {"read", "write"}),
    ("both-bearer", bearer(BOTH), {"read", "write"}),
    ("read-basic", basic(READ), {"read"}),
    ("read-bearer", bearer(READ), {"read"}),
    ("write-basic", basic(WRITE), {"write"}),
    ("write-bearer", bearer(WRITE), {"write"}),
]


def assert_unauthorized(resp, has_body=True):
    assert resp.status == 401, "expected 401, got %r" % (resp,)
    assert resp.header("WWW-Authenticate") == REALM, resp
    if has_body:
        assert_json_error(resp, 401)


@pytest.mark.parametrize("request_fn,scope,ok_status", [r[1:] for r in ROUTES],
                         ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("headers,scopes", [c[1:] for c in CREDENTIALS],
                         ids=[c[0] for c in CREDENTIALS])
def test_each_route_takes_the_tokens_of_its_scope(svc, request_fn, scope, ok_status, headers,
                                                  scopes):
    r = request_fn(svc, headers)
    has_body = request_fn is not head_metrics
    if scopes is None:
        assert_unauthorized(r, has_body)
    elif scope in scopes:
        assert r.status == ok_status, "expected %d, got %r" % (ok_status, r)
        if has_body:
            assert json_media(r) or request_fn is get_stats, r
    else:
        assert r.status == 403, "expected 403, got %r" % (r,)
        if has_body:
            assert_json_error(r, 403)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_health_is_open_without_a_token(svc, method):
    r = svc.request(method, "/health")
    assert r.status == 200, r


# ----------------------------------------------------------------- how a token is presented

def basic_raw(text):
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


ACCEPTED = [
    ("basic-email-user", basic(READ)),
    ("basic-empty-user", basic(READ, user="")),
    ("basic-other-user", basic(READ, user="anyone")),
    ("bearer", bearer(READ)),
    ("basic-scheme-lowercase", {"Authorization": "basic " + basic(READ)["Authorization"][6:]}),
    ("bearer-scheme-lowercase", {"Authorization": "bearer " + READ}),
]

REFUSED = [
    ("empty-header", {"Authorization": ""}),
    ("token-as-user-empty-password", basic_raw(READ + ":")),
    ("basic-without-colon", basic_raw(READ)),
    ("basic-not-base64", {"Authorization": "Basic !!!not-base64!!!"}),
    ("basic-empty", {"Authorization": "Basic "}),
    ("bearer-empty", {"Authorization": "Bearer "}),
    ("prefix-of-a-token", bearer(READ[:-1])),
    ("token-with-one-more-byte", bearer(READ + "x")),
    ("token-in-another-case", bearer(READ.upper())),
    ("basic-prefix-of-a-token", basic(READ[:-1])),
    ("token-scheme", {"Authorization": "Token " + READ}),
    ("bare-token", {"Authorization": READ}),
]


@pytest.mark.parametrize("headers", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted_ways_to_present_a_token(svc, headers):
    r = get_metrics(svc, headers)
    assert r.status == 200, r


@pytest.mark.parametrize("headers", [c[1] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_ways_to_present_a_token_are_401(svc, headers):
    assert_unauthorized(get_metrics(svc, headers))


def test_l2met_with_its_credentials_writes(svc):
    assert_accepted(post_v1(svc, L2MET_BODY, headers=basic(L2MET)), 5)
    assert_unauthorized(post_v1(svc, L2MET_BODY, headers=basic("wrongtoken")))


# ---------------------------------------------------------------- refused writes store nothing

@pytest.mark.parametrize("headers,status", [
    ({}, 401),
    (basic(BAD), 401),
    (basic(READ), 403),
    (bearer(READ), 403),
], ids=["no-header", "unknown", "read-basic", "read-bearer"])
def test_refused_writes_store_nothing(svc, headers, status):
    p = prefix("refused")
    r1 = svc.request("POST", "/metrics", body=encode_json([metric(p + "seed")]),
                     content_type="application/json", headers=headers)
    r2 = post_v1(svc, {"gauges": [{"name": p + "librato", "value": 1}]}, headers=headers)
    for r in (r1, r2):
        assert r.status == status, r
        assert_json_error(r, status)
    barrier(svc, svc.dbs, headers=basic(BOTH))
    for db in svc.dbs:
        assert count_prefix(db, p) == 0, "%s stored a refused write" % db.name


def test_write_token_writes_are_stored(svc):
    p = prefix("allowed")
    assert post_metrics_named(svc, p + "seed", bearer(WRITE)).status == 201
    assert_accepted(post_v1(svc, {"gauges": [{"name": p + "librato", "value": 1}]},
                            headers=basic(WRITE)), 1)
    barrier(svc, svc.dbs, headers=basic(BOTH))
    for db in svc.dbs:
        assert count_prefix(db, p) == 2, db.name


def post_metrics_named(svc, name, headers):
    return svc.request("POST", "/metrics", body=encode_json(metric(name)),
                       content_type="application/json", headers=headers)


# ------------------------------------------------------------------------------- the logs

def test_no_token_reaches_the_logs(svc):
    leak = "tkLeak-4Vw7ee"
    for token in SECRETS + (leak,):
        for headers in (basic(token), bearer(token), basic(token, user=token),
                        {"Authorization": token}):
            get_metrics(svc, headers)
            post_v1_metrics(svc, headers)
            get_v1_name(svc, headers)
    barrier(svc, svc.dbs, headers=basic(BOTH))
    logs = svc.stdout() + svc.stderr()
    assert logs.strip(), "m2pg wrote nothing at all at LOG_LEVEL=debug"
    for token in SECRETS + (leak,):
        assert token not in logs, "token %r found in m2pg's output" % token
        for user in ("me@example.com", "", token):
            encoded = basic(token, user=user)["Authorization"][6:]
            assert encoded not in logs, "Basic credentials of %r found in m2pg's output" % token
    assert "at=api-tokens-unset" not in logs


# ----------------------------------------------------------------------- configuration

def test_unset_api_tokens_leaves_every_route_open_and_warns_once(pg_pair, m2pg_factory):
    s = m2pg_factory(pg_pair, extra_env={"API_TOKENS": None})
    s.dbs = pg_pair
    s.known = prefix("open") + "g"
    assert_accepted(post_v1(s, {"gauges": [{"name": s.known, "measure_time": TH, "value": 1}]}), 1)
    for _, request_fn, _, ok_status in ROUTES:
        r = request_fn(s, {})
        assert r.status == ok_status, (request_fn.__name__, r)
    lines = wait_until(lambda: [ln for ln in (s.stdout() + s.stderr()).splitlines()
                                if "at=api-tokens-unset" in ln], 5,
                       message="the api-tokens-unset warning")
    assert len(lines) == 1, lines


def valid_env():
    return {"PORT": str(free_port()),
            "DATABASE_URLS": "postgresql://postgres@127.0.0.1:%d/postgres" % free_port()}


SECRET = "goodtokenQ1x"


@pytest.mark.parametrize("spec", [
    "a,,b",
    SECRET + ",,other",
    SECRET + ",",
    SECRET + ":admin",
    SECRET + "," + SECRET,
    SECRET + ":read:write",
    ":read",
], ids=["empty-entry", "empty-entry-after-a-token", "trailing-comma", "unknown-scope",
        "duplicate", "two-scopes", "scope-without-token"])
def test_invalid_api_tokens_stops_web_at_start_naming_the_variable(spec):
    env = valid_env()
    env["API_TOKENS"] = spec
    rc, out, err = run_cli(["web"], env, timeout=10)
    assert rc != 0, (rc, out, err)
    assert "API_TOKENS" in out + err, (out, err)
    assert SECRET not in out + err, "the token is in the message: %r" % (out + err,)
