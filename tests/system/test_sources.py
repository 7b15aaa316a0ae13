"""Sources: the optional "source" of a metric on POST /metrics, and GET /metrics?source=REGEX.

One m2pg for the module on the shared pair of servers; every test writes names of its own."""

import urllib.parse

import pytest

from m2pg_sys import (STATS, assert_created, assert_error, assert_points, assert_read_ok,
                      encode_json, metric, read_series, sql_literal)
from librato_sys import barrier, count_prefix, db_rows, name_prefix_where, prefix

T = 1355202720  # 2012-12-11T05:12:00Z, on a minute boundary
WINDOW = {"from": T - 60, "to": T + 120}


@pytest.fixture(scope="module")
def svc(pg_pair, module_m2pg_factory):
    for pg in pg_pair:
        if pg.postmaster_pid() is None:
            pg.start()
        pg.resume()
        pg.truncate_metrics()
    s = module_m2pg_factory(pg_pair)
    for pg in pg_pair:
        pg.wait_for_schema()
    s.dbs = pg_pair
    return s


def post_raw(svc, body):
    return svc.request("POST", "/metrics", body=body, content_type="application/json")


def stored(svc, where):
    barrier(svc, svc.dbs)
    first = db_rows(svc.dbs[0], where)
    assert db_rows(svc.dbs[1], where) == first, "databases differ"
    return first


# ----------------------------------------------------------------------------- write

def test_source_is_stored_and_its_absence_is_null(svc):
    p = prefix("w")
    ids = assert_created(svc.post([metric(p + "a", count=1, source="web.1"),
                                   metric(p + "b", count=2)]), 2)
    rows = {r["name"]: r for r in stored(svc, name_prefix_where(p))}
    assert rows[p + "a"]["source"] == "web.1"
    assert rows[p + "a"]["id"] == ids[0]
    assert rows[p + "b"]["source"] is None
    assert rows[p + "b"]["id"] == ids[1]


ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:-_"


@pytest.mark.parametrize("source", ["a", ALLOWED, (ALLOWED * 4)[:255]],
                         ids=["one-char", "every-allowed-char", "255-chars"])
def test_valid_sources_are_stored_as_given(svc, source):
    p = prefix("ok")
    mid = assert_created(svc.post(metric(p + "m", count=1, source=source)))
    (row,) = stored(svc, name_prefix_where(p))
    assert (row["id"], row["source"]) == (mid, source)


INVALID_SOURCES = [
    ("empty", ""),
    ("space", "web 1"),
    ("slash", "web/1"),
    ("non-ascii", "caf\u00e9"),
    ("256-chars", "s" * 256),
    ("number", 5),
    ("true", True),
    ("array", ["web.1"]),
    ("object", {"s": "web.1"}),
]


@pytest.mark.parametrize("source", [c[1] for c in INVALID_SOURCES],
                         ids=[c[0] for c in INVALID_SOURCES])
def test_invalid_source_is_422_naming_the_field_and_nothing_is_stored(svc, source):
    p = prefix("bad")
    body = encode_json(metric(p + "m", count=1, source=source), ensure_ascii=False)
    assert_error(post_raw(svc, body), 422, field="source")
    barrier(svc, svc.dbs)
    for db in svc.dbs:
        assert count_prefix(db, p) == 0


def test_batch_with_one_invalid_source_is_422_with_its_index_and_stores_nothing(svc):
    p = prefix("batch")
    batch = [metric(p + "a", count=1, source="web.1"), metric(p + "b", count=1, source="web 2"),
             metric(p + "c")]
    assert_error(svc.post(batch), 422, field="source", index=1)
    barrier(svc, svc.dbs)
    for db in svc.dbs:
        assert count_prefix(db, p) == 0


# ------------------------------------------------------------------------------ read

# (source, count): distinct powers of two, so a summed count tells which rows were rolled up
ROWS = [("web.1", 1), ("web.2", 2), ("db.1", 4), (None, 8)]


@pytest.fixture(scope="module")
def sourced(svc):
    """Two names, each with a row of every source of ROWS in minute T."""
    p = prefix("r")
    names = [p + "one", p + "two"]
    batch = []
    for n in names:
        for i, (source, count) in enumerate(ROWS):
            m = metric(n, bucket=T + i, count=count, mean=count * 10, min=count, max=count * 100)
            if source is not None:
                m["source"] = source
            batch.append(m)
    assert_created(svc.post(batch), len(batch))
    barrier(svc, svc.dbs)
    return names


def counts(series, name):
    return series[name]["count"]


def test_without_source_every_source_of_a_name_rolls_up_together(svc, sourced):
    one = sourced[0]
    r = svc.get_metrics(name="^" + one + "$", **WINDOW)
    series = assert_read_ok(r)
    # The answer has the shape it had before sources: a name and the statistics, nothing else.
    assert len(r.json) == 1 and set(r.json[0]) == {"name"} | set(STATS), r.json
    assert_points(counts(series, one), [(T, 15)])
    # count-weighted mean of 10, 20, 40, 80 with counts 1, 2, 4, 8
    assert_points(series[one]["mean"], [(T, (1 * 10 + 2 * 20 + 4 * 40 + 8 * 80) / 15)])
    assert_points(series[one]["min"], [(T, 1)])
    assert_points(series[one]["max"], [(T, 800)])


@pytest.mark.parametrize("pattern,count", [
    ("web", 1 + 2),
    (r"^web\.1$", 1),
    ("1", 1 + 4),
    (".", 1 + 2 + 4),
    ("^(web|db)", 1 + 2 + 4),
    (r"b\.2", 2),
], ids=["unanchored-substring", "anchored-exact", "unanchored-suffix", "any-source-not-null",
        "alternation", "escaped-dot"])
def test_source_regex_selects_the_rows_it_matches(svc, sourced, pattern, count):
    one, two = sourced
    series = read_series(svc, name="^" + one + "$", source=pattern, **WINDOW)
    assert list(series) == [one]
    assert_points(counts(series, one), [(T, count)])


@pytest.mark.parametrize("resolution", ["second", "hour", "day", "month"])
def test_source_regex_applies_at_every_resolution(svc, sourced, resolution):
    """Hour and coarser are aggregated by the databases, finer ones merged from rows."""
    one = sourced[0]
    series = read_series(svc, name="^" + one + "$", source=r"^(web\.2|db\.1)$",
                         resolution=resolution, **WINDOW)
    points = counts(series, one)
    assert sum(v for _, v in points) == 2 + 4, points
    assert min(v for _, v in series[one]["min"]) == 2, series[one]["min"]
    assert max(v for _, v in series[one]["max"]) == 400, series[one]["max"]


def test_source_regex_and_name_regex_both_apply(svc, sourced):
    one, two = sourced
    prefix_ = one[:-len("one")]
    series = read_series(svc, name="^" + prefix_, source=r"^db\.", **WINDOW)
    assert list(series) == [one, two]
    assert_points(counts(series, one), [(T, 4)])
    assert_points(counts(series, two), [(T, 4)])
    # Only the matching rows are rolled up, so the statistics are those of db.1 alone.
    assert_points(series[one]["mean"], [(T, 40)])
    assert_points(series[one]["max"], [(T, 400)])


def test_source_regex_matching_nothing_is_an_empty_answer(svc, sourced):
    r = svc.get_metrics(name="^" + sourced[0] + "$", source="nosuchsource", **WINDOW)
    assert assert_read_ok(r) == {}
    assert r.json == []


def test_rows_with_a_source_are_read_once_whatever_the_databases_hold(svc, sourced):
    one = sourced[0]
    where = "name = %s" % sql_literal(one)
    for db in svc.dbs:
        assert db.count_rows(where) == len(ROWS)
    series = read_series(svc, name="^" + one + "$", source="web", resolution="second", **WINDOW)
    assert_points(counts(series, one), [(T, 1), (T + 1, 2)])


def q(value):
    return urllib.parse.quote(value, safe="")


BAD_SOURCE_QUERIES = [
    ("open-paren", "source=" + q("(")),
    ("reversed-range", "source=" + q("[z-a]")),
    ("bad-bound", "source=" + q("a{2,1}")),
    ("nested-quantifier", "source=" + q("(a+)+")),
    ("back-reference", "source=" + q(r"(a)\1")),
    ("invalid-utf8", "source=%ff"),
    ("given-twice", "source=a&source=b"),
]


@pytest.mark.parametrize("query", [c[1] for c in BAD_SOURCE_QUERIES],
                         ids=[c[0] for c in BAD_SOURCE_QUERIES])
def test_invalid_source_regex_is_400_naming_the_field(svc, query):
    r = svc.request("GET", "/metrics?name=x&from=%d&to=%d&%s" % (T, T + 60, query))
    assert_error(r, 400, field="source")
    svc.assert_alive()
    # The databases are fine: the next read is answered.
    read_series(svc, name="x", source="y", **{"from": T, "to": T + 60})


def test_seed_read_is_unchanged_for_metrics_without_sources(svc):
    p = prefix("plain")
    assert_created(svc.post([metric(p + "m", bucket=T, count=3, mean=2),
                             metric(p + "m", bucket=T + 1, count=1, mean=6)]), 2)
    series = read_series(svc, name="^" + p, **WINDOW)
    assert_points(series[p + "m"]["count"], [(T, 4)])
    assert_points(series[p + "m"]["mean"], [(T, 3)])
    # A source regex never matches a row without a source.
    series = read_series(svc, name="^" + p, source=".*", **WINDOW)
    assert series == {}

