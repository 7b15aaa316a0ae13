"""GET /metrics rollups: merging across databases, de-duplication, the
statistics' combination rules and the bucket of each resolution.

Rows are written straight into the databases with psql where that makes the
point (a row in only one database, the same id in both)."""

import pytest

from m2pg_sys import (STATS, assert_created, assert_points, its, metric, new_id, read_series,
                      ts)

T = 1355202720  # 2012-12-11T05:12:00Z, on a minute boundary


def row(name, bucket, **stats):
    r = {"id": new_id(), "name": name, "bucket": bucket}
    r.update(stats)
    return r


def put(service, db1=(), db2=(), both=()):
    """Insert rows into database 1 only, database 2 only, or both (same id)."""
    first, second = service.dbs
    if list(db1) + list(both):
        first.insert(list(db1) + list(both))
    if list(db2) + list(both):
        second.insert(list(db2) + list(both))


def read(service, name, frm, to, resolution="minute"):
    return read_series(service, name=name, resolution=resolution, **{"from": frm, "to": to})


def full(count, mean, median, mn, mx, p95, p99, last):
    return dict(count=count, mean=mean, median=median, min=mn, max=mx, perc95=p95, perc99=p99,
                last=last)


def test_minute_rollup_combines_rows_across_databases(service):
    r1 = row("cpu", T + 5, **full(2, 10, 9, 1, 20, 18, 19.5, 7))
    r2 = row("cpu", T + 20, **full(3, 20, 21, 0.5, 30, 25, 29, 8))
    r3 = row("cpu", T + 50, **full(5, 4, 3, 2, 10, 9, 9.9, 1))  # latest row of the minute
    nxt = row("cpu", T + 60, **full(1, 100, 100, 100, 100, 100, 100, 100))
    other = row("cpu.idle", T + 10, **full(1000, 1, 1, -5, 1000, 1000, 1000, 1000))
    put(service, db2=[r3], both=[r1], db1=[r2, nxt, other])

    series = read(service, "^cpu$", T, T + 119)
    assert list(series) == ["cpu"]
    s = series["cpu"]
    assert_points(s["count"], [(T, 10), (T + 60, 1)])
    assert_points(s["mean"], [(T, (2 * 10 + 3 * 20 + 5 * 4) / 10), (T + 60, 100)])
    assert_points(s["median"], [(T, (2 * 9 + 3 * 21 + 5 * 3) / 10), (T + 60, 100)])
    assert_points(s["min"], [(T, 0.5), (T + 60, 100)])
    assert_points(s["max"], [(T, 30), (T + 60, 100)])
    assert_points(s["perc95"], [(T, 25), (T + 60, 100)])
    assert_points(s["perc99"], [(T, 29), (T + 60, 100)])
    assert_points(s["last"], [(T, 1), (T + 60, 100)])


def test_rows_found_in_only_one_database_are_all_returned(service):
    put(service, db1=[row("merge", T, count=1)], db2=[row("merge", T + 60, count=2)])
    series = read(service, "merge", T, T + 60)
    assert_points(series["merge"]["count"], [(T, 1), (T + 60, 2)])


def test_a_row_in_both_databases_is_counted_once_but_equal_rows_with_other_ids_are_not(service):
    same = row("dedup", T + 1, count=4, mean=2)
    twin = dict(same, id=new_id())  # same content, different id: a different metric
    put(service, both=[same], db2=[twin])
    series = read(service, "dedup", T, T + 59)
    assert_points(series["dedup"]["count"], [(T, 8)])
    assert_points(series["dedup"]["mean"], [(T, 2)])


def test_one_row_bucket_returns_its_values_exactly(service):
    values = full(3, 0.1, 3.14, 1e-7, 123456.789, 2.718281828459045, 99.99, -0.3)
    put(service, db1=[row("one.row", T + 7, **values)])
    series = read(service, "one.row", T, T + 59)
    for stat in STATS:
        assert_points(series["one.row"][stat], [(T, values[stat])], exact=True)


def test_statistic_null_in_all_rows_of_a_bucket_has_no_point(service):
    put(service, db1=[
        row("sparse", T + 1, count=1, min=None, last=4),
        row("sparse", T + 2, count=2, min=3, last=6),
        row("sparse", T + 61, count=1, median=7, perc95=None),
    ], db2=[row("sparse", T + 62, count=1, last=None)])
    s = read(service, "sparse", T, T + 119)["sparse"]
    assert_points(s["count"], [(T, 3), (T + 60, 2)])
    assert_points(s["median"], [(T + 60, 7)])
    assert_points(s["min"], [(T, 3)])
    for stat in ("mean", "max", "perc95", "perc99"):
        assert s[stat] == [], (stat, s[stat])
    assert_points(s["last"], [(T, 6)])


def test_names_are_sorted_and_buckets_ascend(service):
    put(service,
        db1=[row("sort.c", T + 120, count=1), row("sort.a", T + 60, count=2)],
        db2=[row("sort.b", T + 120, count=3), row("sort.a", T, count=4),
             row("sort.c", T, count=5), row("sort.a", T + 120, count=6)])
    series = read(service, "^sort\\.", T, T + 179)
    assert list(series) == ["sort.a", "sort.b", "sort.c"]
    assert_points(series["sort.a"]["count"], [(T, 4), (T + 60, 2), (T + 120, 6)])
    assert_points(series["sort.b"]["count"], [(T + 120, 3)])
    assert_points(series["sort.c"]["count"], [(T, 5), (T + 120, 1)])


# Each case: aliases, and rows as (timestamp, start of its bucket) in time order.
RESOLUTIONS = {
    "second": (["second", "s"], [
        ("2012-12-12T13:45:29.900", "2012-12-12T13:45:29"),
        ("2012-12-12T13:45:30", "2012-12-12T13:45:30"),
        ("2012-12-12T13:45:30.999", "2012-12-12T13:45:30"),
        ("2012-12-12T13:45:31", "2012-12-12T13:45:31"),
    ]),
    "minute": (["minute", "m", "min"], [
        ("2012-12-12T13:44:59", "2012-12-12T13:44:00"),
        ("2012-12-12T13:45:00", "2012-12-12T13:45:00"),
        ("2012-12-12T13:45:59.500", "2012-12-12T13:45:00"),
        ("2012-12-12T13:46:00", "2012-12-12T13:46:00"),
    ]),
    "hour": (["hour", "h"], [
        ("2012-12-12T12:59:59", "2012-12-12T12:00:00"),
        ("2012-12-12T13:00:00", "2012-12-12T13:00:00"),
        ("2012-12-12T13:59:59", "2012-12-12T13:00:00"),
        ("2012-12-12T14:00:00", "2012-12-12T14:00:00"),
    ]),
    "day": (["day", "d"], [
        ("2012-12-11T23:59:59", "2012-12-11T00:00:00"),
        ("2012-12-12T00:00:00", "2012-12-12T00:00:00"),
        ("2012-12-12T23:59:59", "2012-12-12T00:00:00"),
        ("2012-12-13T00:00:00", "2012-12-13T00:00:00"),
    ]),
    # 2012-12-10 is a Monday, 2012-12-12 a Wednesday, 2012-12-16 a Sunday.
    "week": (["week", "w"], [
        ("2012-12-09T23:59:59", "2012-12-03T00:00:00"),
        ("2012-12-10T00:00:00", "2012-12-10T00:00:00"),
        ("2012-12-12T13:45:00", "2012-12-10T00:00:00"),
        ("2012-12-16T23:59:59", "2012-12-10T00:00:00"),
        ("2012-12-17T00:00:00", "2012-12-17T00:00:00"),
    ]),
    "month": (["month", "mo"], [
        ("2012-02-29T12:00:00", "2012-02-01T00:00:00"),
        ("2012-11-30T23:59:59", "2012-11-01T00:00:00"),
        ("2012-12-01T00:00:00", "2012-12-01T00:00:00"),
        ("2012-12-31T23:59:59", "2012-12-01T00:00:00"),
        ("2013-01-01T00:00:00", "2013-01-01T00:00:00"),
    ]),
    "year": (["year", "y"], [
        ("2011-12-31T23:59:59", "2011-01-01T00:00:00"),
        ("2012-01-01T00:00:00", "2012-01-01T00:00:00"),
        ("2012-12-31T23:59:59", "2012-01-01T00:00:00"),
        ("2013-01-01T00:00:00", "2013-01-01T00:00:00"),
    ]),
}


@pytest.mark.parametrize("unit", list(RESOLUTIONS))
def test_resolution_rolls_rows_into_utc_bucket_starts(service, unit):
    aliases, cases = RESOLUTIONS[unit]
    rows = []
    for i, (when, _) in enumerate(cases):
        # count 2**i identifies the rows of a bucket; last = -i catches a max(last).
        rows.append(row("res." + unit, ts(when), count=2 ** i, min=i, max=i, last=-i))
    put(service, db1=rows[0::2], db2=rows[1::2])

    expected = {}
    for i, (_, start) in enumerate(cases):
        b = its(start)
        c, mn, mx, last = expected.get(b, (0, i, i, -i))
        expected[b] = (c + 2 ** i, min(mn, i), max(mx, i), -i)
    buckets = sorted(expected)
    frm, to = ts(cases[0][0]), ts(cases[-1][0])

    for alias in aliases:
        series = read(service, "res." + unit, frm, to, resolution=alias)
        assert list(series) == ["res." + unit], alias
        s = series["res." + unit]
        for k, stat in enumerate(("count", "min", "max", "last")):
            assert_points(s[stat], [(b, expected[b][k]) for b in buckets])


def test_posted_buckets_with_offsets_roll_up_by_utc_day(service):
    # 23:30+01:00 on the 11th is 22:30Z on the 11th; 00:30+01:00 on the 12th is 23:30Z
    # on the 11th; 00:30Z on the 12th is the next UTC day.
    assert_created(service.post([
        metric("utc.day", bucket="2012-12-11T23:30:00+01:00", count=1),
        metric("utc.day", bucket="2012-12-12T00:30:00+01:00", count=2),
        metric("utc.day", bucket="2012-12-12T00:30:00Z", count=4),
    ]), 3)
    series = read(service, "utc.day", "2012-12-11T00:00:00Z", "2012-12-12T23:59:59Z",
                  resolution="day")
    assert_points(series["utc.day"]["count"],
                  [(its("2012-12-11T00:00:00"), 3), (its("2012-12-12T00:00:00"), 4)])


def test_buckets_are_utc_whatever_the_server_and_database_time_zones(pg_factory, m2pg_factory):
    dbs = []
    for name in ("db1", "db2"):
        pg = pg_factory(name, start=False)
        pg.configure("timezone = 'Pacific/Chatham'\nlog_timezone = 'Pacific/Chatham'")
        pg.start()
        dbs.append(pg)
    svc = m2pg_factory(dbs, extra_env={"TZ": "Pacific/Chatham"})
    ids = assert_created(svc.post([
        metric("tz", bucket="2012-12-11 05:19:00 UTC", count=1),
        metric("tz", bucket="2012-12-11T23:30:00Z", count=2),
        metric("tz", bucket=its("2012-12-12T00:15:00"), count=4),
    ]), 3)
    for db in dbs:
        db.wait_for_schema()
    stored = None
    for db in dbs:
        if db.has_id(ids[0]):
            stored = db.row(ids[0])["bucket"]
    assert stored == its("2012-12-11T05:19:00"), stored
    svc.dbs = dbs
    series = read(svc, "^tz$", "2012-12-11T00:00:00Z", "2012-12-12T23:59:59Z", resolution="day")
    assert_points(series["tz"]["count"],
                  [(its("2012-12-11T00:00:00"), 3), (its("2012-12-12T00:00:00"), 4)])
    series = read(svc, "^tz$", "2012-12-11T00:00:00Z", "2012-12-12T23:59:59Z", resolution="hour")
    assert [b for b, _ in series["tz"]["count"]] == [
        its("2012-12-11T05:00:00"), its("2012-12-11T23:00:00"), its("2012-12-12T00:00:00")]
