"""POST /metrics: accepted input, responses and what gets stored."""

import math

import pytest

from m2pg_sys import (STATS, assert_created, its, metric, ts, unique_name, wait_in_all,
                      wait_until)

FULL = dict(count=5, mean=2.5, median=2.0, min=1.0, max=4.0, perc95=3.9, perc99=3.99, last=3.0)


def stored_everywhere(service, mid):
    """Wait until the row is in both databases; return the two stored rows."""
    wait_in_all(service.dbs, mid, timeout=5)
    return [db.row(mid) for db in service.dbs]


def test_single_metric_gets_201_with_a_uuid7_string(service):
    r = service.post(metric(unique_name("single"), **FULL))
    assert_created(r)


def test_single_metric_is_stored_with_its_values_in_both_databases(service):
    name = unique_name("stored")
    mid = assert_created(service.post(metric(name, bucket=1355202720, **FULL)))
    for row in stored_everywhere(service, mid):
        assert row["bucket"] == 1355202720.0
        assert row["name"] == name
        for stat in STATS:
            assert row[stat] == FULL[stat], (stat, row)


@pytest.mark.parametrize("content_type", [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    None,
], ids=["json", "form-urlencoded", "text-plain", "no-content-type"])
def test_body_is_parsed_as_json_whatever_the_content_type(service, content_type):
    name = unique_name("ctype")
    mid = assert_created(service.post(metric(name), content_type=content_type))
    assert stored_everywhere(service, mid)[0]["name"] == name


def test_batch_gets_an_array_of_uuids_in_request_order(service):
    names = [unique_name("batch%d" % i) for i in range(3)]
    ids = assert_created(service.post([metric(n, count=i) for i, n in enumerate(names)]), 3)
    for i, (mid, name) in enumerate(zip(ids, names)):
        for row in stored_everywhere(service, mid):
            assert row["name"] == name and row["count"] == i, row


def test_batch_of_10000_metrics_is_accepted_and_stored(service):
    name = unique_name("big")
    batch = [metric(name, bucket=1355202720 + i, count=i) for i in range(10000)]
    ids = assert_created(service.post(batch, timeout=60), 10000)
    assert len(set(ids)) == 10000
    for db in service.dbs:
        wait_until(lambda: db.count_rows("name = '%s'" % name) == 10000, 20,
                   message="10000 rows in %s" % db.name)


BUCKET_FORMS = [
    ("unix-integer", 1355202720, 1355202720.0),
    ("unix-fractional", 1355202720.5, 1355202720.5),
    ("rfc3339-z", "2012-12-11T05:19:00Z", ts("2012-12-11T05:19:00Z")),
    ("rfc3339-offset", "2012-12-11T06:19:00+01:00", ts("2012-12-11T06:19:00+01:00")),
    ("rfc3339-negative-offset", "2012-12-11T00:49:00-04:30", ts("2012-12-11T00:49:00-04:30")),
    ("rfc3339-fractional", "2012-12-11T05:19:00.250Z", ts("2012-12-11T05:19:00.250Z")),
    ("space-utc", "2012-12-11 05:19:00 UTC", ts("2012-12-11T05:19:00Z")),
    ("first-second-of-1970", "1970-01-01T00:00:00Z", 0.0),
    ("last-second-of-9999", "9999-12-31T23:59:59Z", ts("9999-12-31T23:59:59Z")),
]


@pytest.mark.parametrize("bucket,expected", [b[1:] for b in BUCKET_FORMS],
                         ids=[b[0] for b in BUCKET_FORMS])
def test_bucket_forms_are_stored_as_the_same_utc_instant(service, bucket, expected):
    mid = assert_created(service.post(metric(unique_name("bucket"), bucket=bucket)))
    for row in stored_everywhere(service, mid):
        if expected == int(expected):
            assert row["bucket"] == expected, (bucket, row["bucket"], expected)
        else:
            # Sub-second precision may or may not be kept, the second must be right.
            assert math.floor(row["bucket"]) == math.floor(expected), \
                (bucket, row["bucket"], expected)


def test_offset_and_utc_forms_of_one_instant_are_equal(service):
    forms = [1355203140, "2012-12-11T05:19:00Z", "2012-12-11T06:19:00+01:00",
             "2012-12-11 05:19:00 UTC"]
    assert its("2012-12-11T06:19:00+01:00") == 1355203140
    ids = assert_created(service.post([metric(unique_name("same"), bucket=f) for f in forms]),
                         len(forms))
    for mid in ids:
        wait_in_all(service.dbs, mid)
    buckets = {db.row(mid)["bucket"] for db in service.dbs for mid in ids}
    assert buckets == {1355203140.0}, buckets


NAMES = [
    ("255-ascii-bytes", "a" * 255, True),
    ("255-bytes-multibyte", "\u00e9" * 127 + "a", True),
    ("accented", "caf\u00e9.requests", True),
    ("accented-raw-utf8", "caf\u00e9.requests", False),
    ("astral-escaped-surrogates", "\U0001F4C8.rate", True),
    ("astral-raw-utf8", "\U0001F4C8.rate", False),
    ("quotes-and-backslash", "it's \"quoted\" \\ here", True),
    ("sql-injection", "x'); drop table metrics; --", True),
    ("spaces-and-punctuation", "my app/prod: p95 (ms)|x", True),
]


@pytest.mark.parametrize("name,ensure_ascii", [n[1:] for n in NAMES], ids=[n[0] for n in NAMES])
def test_valid_names_are_stored_exactly(service, name, ensure_ascii):
    mid = assert_created(service.post(metric(name), ensure_ascii=ensure_ascii))
    for row in stored_everywhere(service, mid):
        assert row["name"] == name


VALID_STATS = [
    ("only-count", {"count": 7}),
    ("only-last", {"last": -1.5}),
    ("count-zero", {"count": 0}),
    ("negative-values", {"mean": -3.5, "min": -10, "max": -1}),
    ("explicit-nulls", {"count": 2, "mean": None, "median": None, "last": None}),
    ("integer-count-and-extreme-magnitudes", {"count": 12, "max": 1e100, "min": 5e-300}),
    ("fractional-count", {"count": 2.5}),
]


@pytest.mark.parametrize("stats", [s[1] for s in VALID_STATS], ids=[s[0] for s in VALID_STATS])
def test_absent_or_null_statistics_are_stored_as_null(service, stats):
    mid = assert_created(service.post(metric(unique_name("stats"), **stats)))
    for row in stored_everywhere(service, mid):
        for stat in STATS:
            assert row[stat] == stats.get(stat), (stat, row)


def test_unknown_fields_are_ignored(service):
    payload = metric(unique_name("extra"), count=3)
    payload.update({"host": "web-1", "tags": {"a": [1, 2]}, "bucket_size": 60})
    mid = assert_created(service.post(payload))
    assert stored_everywhere(service, mid)[0]["count"] == 3
