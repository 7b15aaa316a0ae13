"""POST /metrics: rejected input is answered with a JSON error, never stored,
and the service keeps serving."""

import json

import pytest

from m2pg_sys import assert_error, assert_nothing_else_stored, encode_json, metric, unique_name


def post_raw(service, body):
    return service.request("POST", "/metrics", body=body, content_type="application/json")


def with_field(field, value):
    obj = metric(unique_name("invalid"), count=1)
    obj[field] = value
    return obj


def without_field(field, **stats):
    obj = metric(unique_name("invalid"), **(stats or {"count": 1}))
    del obj[field]
    return obj


# ---------------------------------------------------------------- malformed JSON

MALFORMED = [
    ("empty-body", b""),
    ("open-brace", b"{"),
    ("not-json", b"not json"),
    ("truncated-object", b'{"bucket":1355202720,"name":"x","count":1'),
    ("truncated-array", b'[{"bucket":1355202720,"name":"x","count":1},'),
    ("trailing-comma", b'{"bucket":1355202720,"name":"x","count":1,}'),
    ("nan-literal", b'{"bucket":1355202720,"name":"x","count":NaN}'),
    ("single-quotes", b"{'bucket':1355202720,'name':'x','count':1}"),
    ("trailing-garbage", b'{"bucket":1355202720,"name":"x","count":1} xyz'),
    ("two-documents", b'{"bucket":1355202720,"name":"x","count":1}{"bucket":1355202720,"name":"y","count":1}'),
    ("raw-control-char-in-string", b'{"bucket":1355202720,"name":"a\x01b","count":1}'),
]


@pytest.mark.parametrize("body", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_json_is_400_and_nothing_is_stored(service, body):
    assert_error(post_raw(service, body), 400)
    assert_nothing_else_stored(service, service.dbs)


def test_invalid_utf8_in_the_body_is_rejected_and_nothing_is_stored(service):
    # Not UTF-8, so not JSON (RFC 8259); a 422 for the name is acceptable too.
    r = post_raw(service, b'{"bucket":1355202720,"name":"a\xff\xfeb","count":1}')
    assert r.status in (400, 422), r
    assert_error(r, r.status)
    assert_nothing_else_stored(service, service.dbs)


# ------------------------------------------------- valid JSON, not a metric body

NOT_A_METRIC = [
    ("number", b"42"),
    ("string", b'"hello"'),
    ("null", b"null"),
    ("true", b"true"),
    ("array-of-number", b"[1]"),
    ("array-of-array", b"[[]]"),
    ("empty-object", b"{}"),
    ("empty-array", b"[]"),
]


@pytest.mark.parametrize("body", [m[1] for m in NOT_A_METRIC], ids=[m[0] for m in NOT_A_METRIC])
def test_valid_json_that_is_not_a_metric_is_422(service, body):
    assert_error(post_raw(service, body), 422)
    assert_nothing_else_stored(service, service.dbs)


def test_batch_of_10001_metrics_is_422_and_nothing_is_stored(service):
    name = unique_name("toobig")
    batch = [metric(name, bucket=1355202720 + i) for i in range(10001)]
    assert_error(service.post(batch, timeout=60), 422)
    assert_nothing_else_stored(service, service.dbs)


# ------------------------------------------------------------------- bucket

INVALID_BUCKETS = [
    ("missing", None, True),
    ("null", None, False),
    ("true", True, False),
    ("object", {"s": 1355202720}, False),
    ("array", [1355202720], False),
    ("before-1970-string", "1969-12-31T23:59:59Z", False),
    ("before-1970-number", -1, False),
    ("year-10000-string", "10000-01-01T00:00:00Z", False),
    ("year-10000-number", 253402300800, False),
    ("garbage-string", "yesterday", False),
    ("empty-string", "", False),
    ("month-13", "2012-13-01T00:00:00Z", False),
    ("hour-25", "2012-12-11T25:00:00Z", False),
    ("february-30", "2012-02-30T00:00:00Z", False),
    ("trailing-garbage", "2012-12-11T05:19:00Zjunk", False),
]


@pytest.mark.parametrize("value,remove", [b[1:] for b in INVALID_BUCKETS],
                         ids=[b[0] for b in INVALID_BUCKETS])
def test_invalid_bucket_is_422_naming_the_field(service, value, remove):
    if remove:
        body = encode_json(without_field("bucket"))
    else:
        body = encode_json(with_field("bucket", value))
    assert_error(post_raw(service, body), 422, field="bucket")
    assert_nothing_else_stored(service, service.dbs)


# --------------------------------------------------------------------- name

INVALID_NAMES = [
    ("missing", None, True, True),
    ("null", None, False, True),
    ("number", 123, False, True),
    ("empty", "", False, True),
    ("256-ascii-bytes", "a" * 256, False, True),
    ("256-bytes-multibyte", "\u00e9" * 128, False, True),
    ("nul", "a\u0000b", False, True),
    ("unit-separator", "a\u001fb", False, True),
    ("newline", "a\nb", False, True),
    ("tab", "a\tb", False, True),
    ("del-escaped", "a\u007fb", False, True),
    ("del-raw", "a\u007fb", False, False),
    ("c1-nel-escaped", "a\u0085b", False, True),
    ("c1-nel-raw", "a\u0085b", False, False),
    ("c1-last-raw", "a\u009fb", False, False),
]


@pytest.mark.parametrize("value,remove,ensure_ascii", [n[1:] for n in INVALID_NAMES],
                         ids=[n[0] for n in INVALID_NAMES])
def test_invalid_name_is_422_naming_the_field(service, value, remove, ensure_ascii):
    obj = without_field("name") if remove else with_field("name", value)
    assert_error(post_raw(service, encode_json(obj, ensure_ascii)), 422, field="name")
    assert_nothing_else_stored(service, service.dbs)


# --------------------------------------------------------------- statistics

INVALID_STATS = [
    ("no-statistic", {}, None),
    ("all-statistics-null", {s: None for s in
                             ("count", "mean", "median", "min", "max", "perc95", "perc99",
                              "last")}, None),
    ("negative-count", {"count": -1}, "count"),
    ("count-as-string", {"count": "5"}, "count"),
    ("mean-as-string", {"count": 1, "mean": "2.5"}, "mean"),
    ("last-as-bool", {"last": True}, "last"),
    ("max-as-array", {"max": [1]}, "max"),
    ("median-as-object", {"median": {"v": 1}}, "median"),
    # beyond 1e100 a count-weighted sum could overflow a double in an aggregate read
    ("mean-above-1e100", {"count": 1, "mean": 1e101}, "mean"),
    ("min-below-minus-1e100", {"min": -2e100}, "min"),
]


@pytest.mark.parametrize("stats,field", [s[1:] for s in INVALID_STATS],
                         ids=[s[0] for s in INVALID_STATS])
def test_invalid_statistics_are_422(service, stats, field):
    obj = {"bucket": 1355202720, "name": unique_name("invalid")}
    obj.update(stats)
    assert_error(post_raw(service, json.dumps(obj).encode()), 422, field=field)
    assert_nothing_else_stored(service, service.dbs)


@pytest.mark.parametrize("field,literal", [("bucket", b"1e999"), ("mean", b"1e999"),
                                           ("min", b"-1e999")])
def test_numbers_beyond_double_range_are_rejected_and_not_stored(service, field, literal):
    # Not finite once parsed.  RFC 8259 lets a parser limit the range of numbers, so
    # both "malformed" (400) and "invalid metric" (422) are acceptable answers.
    obj = metric(unique_name("overflow"), count=1)
    obj[field] = 12345
    body = json.dumps(obj).encode().replace(b"12345", literal)
    r = post_raw(service, body)
    assert r.status in (400, 422), r
    assert_error(r, r.status)
    assert_nothing_else_stored(service, service.dbs)


# ------------------------------------------------------------------- batches

@pytest.mark.parametrize("bad_index", [0, 1, 2])
def test_batch_with_one_invalid_element_is_422_with_its_index_and_stores_nothing(
        service, bad_index):
    batch = [metric(unique_name("batch"), count=1) for _ in range(3)]
    batch[bad_index]["count"] = -1
    assert_error(service.post(batch), 422, field="count", index=bad_index)
    assert_nothing_else_stored(service, service.dbs)


def test_batch_element_that_is_not_an_object_is_422_with_its_index(service):
    batch = [metric(unique_name("batch")), "oops", metric(unique_name("batch"))]
    assert_error(service.post(batch), 422, index=1)
    assert_nothing_else_stored(service, service.dbs)
