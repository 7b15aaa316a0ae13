"""Downsampled rollups: the hour and day rollups gc keeps in each database (metrics_hour,
metrics_day), and the reads at an hour and coarser that use them.

The reference answer of every read is the same read from a second m2pg started with
READ_AGGREGATE=0 on the same databases, which merges every row itself and never looks at a
rollup. Timestamps are relative to now: gc rolls up the hours that ended more than five minutes
ago, so "a day ago" is a closed hour and the current hour is open.

One pair of servers, with one data set rolled up by gc, serves most tests; each test writes
names of its own, so none depends on another's outcome. The tests that need a first gc, or
delete rows, get servers of their own."""

import calendar
import datetime
import math
import random
import re
import subprocess
import threading
import time

import pytest

from test_partitions import events as logfmt_events, run_maint as maint
from m2pg_sys import (PG_BIN, STATS, assert_created, assert_read_ok, close, new_id,
                      sql_literal, sql_number, unique_name, wait_until)

HOUR = 3600
DAY = 86400
WRITE_MS = 500
# Hints are retried with backoff up to 5 s while a connection is up: a database that returns
# has its hints within this bound.
HANDOFF_BOUND = 15


# --------------------------------------------------------------------------
# time


def hour_of(t):
    return int(t) // HOUR * HOUR


def day_of(t):
    return int(t) // DAY * DAY


def group_of(t, resolution):
    """Start of the UTC bucket of `resolution` holding Unix time t."""
    t = math.floor(t)
    if resolution == "hour":
        return hour_of(t)
    if resolution == "day":
        return day_of(t)
    if resolution == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        d = t // DAY
        return (d - (d + 3) % 7) * DAY
    if resolution == "month":
        dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        return calendar.timegm((dt.year, dt.month, 1, 0, 0, 0))
    raise ValueError(resolution)


def pg_time(t):
    """A timestamptz literal of Unix time t."""
    return "to_timestamp(%r)" % float(t)


# --------------------------------------------------------------------------
# data


def make_rows(rng, name, sources, t0, t1, step, sparse=False, no_count=0.0, zero_count=0.0):
    """Rows of one name between t0 and t1 (Unix seconds), about one per `step` seconds per
    source, every source at the same minutes (ties for `last`); statistics random, some null.

    Means and medians are positive so that the weighted sums never cancel and compare to
    1e-9; the extremes take any sign (they compare exactly)."""
    rows = []
    t = t0 + rng.randrange(step)
    while t <= t1:
        for source in sources:
            r = {"id": new_id(), "name": name, "bucket": t,
                 "count": float(rng.randint(1, 20)),
                 "mean": round(rng.uniform(0.5, 900.0), 3),
                 "median": round(rng.uniform(0.5, 900.0), 3),
                 "min": round(rng.uniform(-50.0, 10.0), 3),
                 "max": round(rng.uniform(10.0, 5000.0), 3),
                 "perc95": round(rng.uniform(10.0, 4000.0), 3),
                 "perc99": round(rng.uniform(10.0, 4500.0), 3),
                 "last": round(rng.uniform(-100.0, 100.0), 3)}
            x = rng.random()
            if x < no_count:
                r["count"] = None
            elif x < no_count + zero_count:
                r["count"] = 0.0
            if sparse:
                for stat in STATS[1:]:
                    if rng.random() < 0.3:
                        r[stat] = None
            if source is not None:
                r["source"] = source
            rows.append(r)
        t += rng.randint(step // 2, step * 3 // 2)
    return rows


def as_metric(r):
    """The POST /metrics object of a row (m2pg chooses the id); null statistics are sent as
    null or left out, in turn."""
    m = {"name": r["name"], "bucket": r["bucket"]}
    for k, stat in enumerate(STATS):
        if r.get(stat) is not None:
            m[stat] = r[stat]
        elif k % 2:
            m[stat] = None
    if r.get("source") is not None:
        m["source"] = r["source"]
    return m


def name_where(prefix):
    return "name LIKE %s" % sql_literal(prefix + "%")


def post_rows(svc, dbs, rows, prefix):
    """POST the rows through m2pg and wait until every database holds them all."""
    for k in range(0, len(rows), 1000):
        chunk = rows[k:k + 1000]
        assert_created(svc.post([as_metric(r) for r in chunk], timeout=30), len(chunk))
    wait_in_every(dbs, prefix, len(rows))


def wait_in_every(dbs, prefix, n, timeout=10):
    for db in dbs:
        wait_until(lambda: db.count_rows(name_where(prefix)) >= n, timeout,
                   message="%d rows of %s in %s" % (n, prefix, db.name))
        assert db.count_rows(name_where(prefix)) == n, db.name


def sql_values(rows):
    return ", ".join("(%s, %s, %s, %s, %s)" % (
        sql_literal(r["id"]), pg_time(r["bucket"]), sql_literal(r["name"]),
        ", ".join(sql_number(r.get(s)) for s in STATS),
        "NULL" if r.get("source") is None else sql_literal(r["source"])) for r in rows)


def sql_insert(db, rows):
    """INSERT rows into metrics by hand (as an operator would), their names into the catalogue."""
    names = ", ".join("(%s)" % sql_literal(n) for n in sorted({r["name"] for r in rows}))
    for k in range(0, len(rows), 300):  # one psql argument is at most 128 KiB
        db.psql("begin; insert into metrics (id, bucket, name, %s, source) values %s; "
                "insert into metric_names (name) values %s on conflict do nothing; commit;"
                % (", ".join(STATS), sql_values(rows[k:k + 300]), names))


def sql_copy(db, rows):
    """COPY rows into metrics with psql, leaving the catalogue alone (gc fills it)."""
    def text(v):
        return "\\N" if v is None else repr(float(v))

    lines = []
    for r in rows:
        when = datetime.datetime.fromtimestamp(r["bucket"], datetime.timezone.utc)
        lines.append("\t".join([r["id"], when.isoformat(), r["name"]]
                               + [text(r.get(s)) for s in STATS]
                               + [r.get("source") or "\\N"]))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    cmd = [PG_BIN + "/psql", "-X", "-q", "-h", db.dir, "-p", str(db.port), "-U", "postgres",
           "-d", "postgres", "-v", "ON_ERROR_STOP=1",
           "-c", "copy metrics (id, bucket, name, %s, source) from stdin" % ", ".join(STATS)]
    res = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=30)
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace")


def expected_counts(rows, resolution, frm, to, source=None):
    """{bucket: sum of count} of the rows in [frm, to] (a source regex like reads take)."""
    out = {}
    for r in rows:
        if not frm <= r["bucket"] <= to or r.get("count") is None:
            continue
        if source is not None and (r.get("source") is None or not re.search(source, r["source"])):
            continue
        g = group_of(r["bucket"], resolution)
        out[g] = out.get(g, 0.0) + r["count"]
    return sorted(out.items())


# --------------------------------------------------------------------------
# databases


def rollup_rows(db, prefix, table="metrics_hour"):
    """The rollups of the names under prefix: {(name, source, bucket, n, h1, h2)}."""
    rows = db.psql("select name, source, extract(epoch from bucket)::bigint, n, h1, h2 from %s "
                   "where %s" % (table, name_where(prefix)))
    return {(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5]) for r in rows}


def dirty_hours(db):
    return {int(float(r[0])) for r in db.psql(
        "select extract(epoch from bucket) from rollup_dirty")}


def watermark(db):
    v = db.scalar("select extract(epoch from watermark) from rollup_state")
    return float(v)


def assert_rollups_agree(dbs, prefix):
    """Both databases hold the same hour rollups of the names under prefix; returns them."""
    first = rollup_rows(dbs[0], prefix)
    second = rollup_rows(dbs[1], prefix)
    assert first, "no hour rollups of %s in %s" % (prefix, dbs[0].name)
    assert first == second, "metrics_hour differs:\nonly in db1 %r\nonly in db2 %r" % (
        sorted(first - second)[:5], sorted(second - first)[:5])
    return first


def hour_rollup(db, name, source, hour):
    """(n, count_sum) of one rollup row, None when there is none."""
    src = "source IS NULL" if source is None else "source = %s" % sql_literal(source)
    rows = db.psql("select n, count_sum from metrics_hour where name = %s and %s and bucket = %s"
                   % (sql_literal(name), src, pg_time(hour)))
    return (int(rows[0][0]), float(rows[0][1])) if rows else None


# --------------------------------------------------------------------------
# processes


def gc_once(dbs, env=None):
    """`m2pg gc --once` (without its repair, which tests run on purpose); returns its log.

    Every rollup it logs must have computed what it claimed."""
    e = {"REPAIR_LOOKBACK": "0s"}
    e.update(env or {})
    rc, out, err = maint(["gc", "--once"], dbs, e)
    log = out + err
    assert rc == 0, "m2pg gc --once exited %d\n%s" % (rc, log)
    for ev in logfmt_events(log, "rollup"):
        assert ev["failed"] == "0" and ev["rolled_up"] == ev["claimed"], \
            "a rollup did not compute what it claimed: %r\n%s" % (ev, log)
    assert not logfmt_events(log, "rollup-wait-timeout"), log
    return log


def start(factory, dbs, extra_env=None, write_timeout_ms=None):
    svc = factory(dbs, write_timeout_ms=write_timeout_ms, extra_env=extra_env)
    svc.dbs = dbs
    wait_connected(svc)
    for db in dbs:
        db.wait_for_schema()
    return svc


def readers(factory, dbs):
    """m2pg reading through the rollups, and a reference reading every row."""
    return start(factory, dbs), start(factory, dbs, {"READ_AGGREGATE": "0"})


def wait_connected(svc):
    wait_until(lambda: svc.health().json.get("connected") == len(svc.dbs), 15,
               message="m2pg on port %d to connect to every database" % svc.port)


# --------------------------------------------------------------------------
# comparing reads


def read_pair(agg, ref, **params):
    """The same GET /metrics from the rollup-reading m2pg and the row-merging reference; both
    answered by both databases. Returns (series, mismatches) where series is agg's answer."""
    a = assert_read_ok(agg.get_metrics(**params), "2/2")
    r = assert_read_ok(ref.get_metrics(**params), "2/2")
    return a, diff_series(a, r)


def diff_series(got, want, label="reference"):
    """What differs between two answers, in words; [] when they are equal (values to 1e-9)."""
    problems = []
    if list(got) != list(want):
        return ["names %r, %s %r" % (list(got), label, list(want))]
    for name in got:
        for stat in STATS:
            g, w = got[name][stat], want[name][stat]
            if [b for b, _ in g] != [b for b, _ in w]:
                problems.append("%s %s buckets %r, %s %r" % (
                    name, stat, [b for b, _ in g], label, [b for b, _ in w]))
                continue
            for (b, x), (_, y) in zip(g, w):
                if not close(x, y):
                    problems.append("%s %s bucket %d: %r, %s %r" % (name, stat, b, x, label, y))
    return problems


def assert_same_reads(agg, ref, cases):
    """Each case a dict of GET /metrics parameters; every answer equal to the reference."""
    failures = []
    answers = []
    for params in cases:
        series, problems = read_pair(agg, ref, **params)
        answers.append(series)
        if problems:
            failures.append("%r:\n  %s" % (params, "\n  ".join(problems[:6])))
    assert not failures, "%d of %d reads differ from READ_AGGREGATE=0:\n%s" % (
        len(failures), len(cases), "\n".join(failures))
    return answers


def window(name_regex, frm, to, resolution, source=None):
    p = {"name": name_regex, "from": int(frm), "to": int(to), "resolution": resolution}
    if source is not None:
        p["source"] = source
    return p


def counts(series, name):
    return [(b, v) for b, v in series.get(name, {}).get("count", [])]


# --------------------------------------------------------------------------
# the shared servers and data set


class World:
    pass


@pytest.fixture(scope="module")
def world(module_pair, module_m2pg_factory):
    """Two servers, m2pg (aggregate reads; writes a database misses become hints after
    WRITE_MS) and the reference m2pg (READ_AGGREGATE=0); three days of rows of four names
    posted up to now; gc --once."""
    w = World()
    w.dbs = module_pair
    w.agg = start(module_m2pg_factory, w.dbs, {"WRITE_PATIENCE_MS": str(WRITE_MS)},
                  write_timeout_ms=WRITE_MS)
    w.ref = start(module_m2pg_factory, w.dbs, {"READ_AGGREGATE": "0"})
    w.now = int(time.time())
    w.prefix = unique_name("ds") + "."
    rng = random.Random(20240601)
    t0 = w.now - 3 * DAY
    w.names = [w.prefix + s for s in ("a", "b", "c", "d")]
    a, b, c, d = w.names
    w.rows = (make_rows(rng, a, ["web.1", "web.2", None], t0, w.now, 600)
              + make_rows(rng, b, [None], t0, w.now, 420, no_count=0.1, zero_count=0.05)
              + make_rows(rng, c, ["db.1"], t0, w.now, 1500, sparse=True)
              + make_rows(rng, d, ["web.3"], w.now - 2 * HOUR, w.now, 300)
              + make_rows(rng, d, ["web.3"], t0 + 5 * HOUR, t0 + 9 * HOUR, 300))
    post_rows(w.agg, w.dbs, w.rows, w.prefix)
    w.gc_log = gc_once(w.dbs)
    return w


def own_rows(world, tag, hours_ago, per_hour=6, sources=("web.1", None)):
    """Rows of a name of the test's own, spread over the hours `hours_ago` (closed ones)."""
    prefix = unique_name(tag) + "."
    name = prefix + "x"
    rng = random.Random(tag)
    rows = []
    for h in hours_ago:
        start_ = hour_of(world.now) - h * HOUR
        rows += make_rows(rng, name, list(sources), start_, start_ + HOUR - 1, HOUR // per_hour)
    return prefix, name, rows


# --------------------------------------------------------------------------
# 1. rolled-up reads equal row reads


def test_reads_at_hour_and_coarser_through_rollups_equal_the_row_merge(world):
    w = world
    for db in w.dbs:
        hours = rollup_rows(db, w.prefix)
        days = rollup_rows(db, w.prefix, "metrics_day")
        assert len(hours) > 150 and len(days) >= 6, (db.name, len(hours), len(days))
        assert dirty_hours(db) == set(), "rollup_dirty after gc in %s: %r" % (
            db.name, sorted(dirty_hours(db)))
        # The rollup of a whole past day and hours of today serve the read; the open hour,
        # and the partial hours at the edges, are read as rows.
        plan = db.psql("select kind from m2pg_rollup_plan(%s, %s, true)"
                       % (pg_time(day_of(w.now) - 3 * DAY + 1800), pg_time(w.now)))
        assert {k for (k,) in plan} == {"d", "h", "r"}, (db.name, plan)

    regex = "^" + re.escape(w.prefix)
    n = w.now
    ranges = [
        ("aligned days, the open hour, the future", day_of(n) - 3 * DAY, n + HOUR),
        ("aligned hours", hour_of(n) - 40 * HOUR, hour_of(n) - 2 * HOUR - 1),
        ("unaligned", n - 2 * DAY - 1234, n - 5 * HOUR - 77),
        ("unaligned to now", n - 26 * HOUR + 617, n),
        ("the last two hours", hour_of(n) - HOUR - 10, n),
        ("inside one hour", hour_of(n) - 30 * HOUR + 600, hour_of(n) - 30 * HOUR + 2400),
    ]
    cases = []
    for _, frm, to in ranges:
        for resolution in ("hour", "day", "week", "month"):
            for source in (None, "web", r"^db\.1$"):
                cases.append(window(regex, frm, to, resolution, source))
    answers = assert_same_reads(w.agg, w.ref, cases)

    # Not trivially equal: the whole range holds every name, with the counts of the rows.
    frm, to = ranges[0][1], ranges[0][2]
    for resolution, answer in zip(("hour", "day", "week", "month"), answers[0::3]):
        assert list(answer) == w.names, resolution
        for name in w.names:
            mine = [r for r in w.rows if r["name"] == name]
            assert counts(answer, name) == expected_counts(mine, resolution, frm, to), \
                (name, resolution)
    by_source = answers[1]  # aligned days, hour, source "web"
    assert sorted(by_source) == [w.names[0], w.names[3]], list(by_source)
    mine = [r for r in w.rows if r["name"] == w.names[0]]
    assert counts(by_source, w.names[0]) == expected_counts(mine, "hour", frm, to, "web")


def test_librato_reads_per_source_at_an_hour_and_coarser_equal_the_row_merge(world):
    w = world
    failures = []
    checked = 0
    for name in w.names:
        for resolution in (3600, 86400, 604800):
            for frm, to in ((w.now - 3 * DAY, w.now), (w.now - 50 * HOUR + 999, w.now - 3 * HOUR)):
                path = "/v1/metrics/%s?start_time=%d&end_time=%d&resolution=%d" % (
                    name, frm, to, resolution)
                a, r = w.agg.request("GET", path), w.ref.request("GET", path)
                assert a.status == 200 and r.status == 200, (a, r)
                assert a.json["query"]["databases"] == "2/2", a.json["query"]
                got, want = a.json["measurements"], r.json["measurements"]
                if sorted(got) != sorted(want):
                    failures.append("%s: sources %r, reference %r"
                                    % (path, sorted(got), sorted(want)))
                    continue
                for source in want:
                    g, x = got[source], want[source]
                    checked += len(x)
                    if [p["measure_time"] for p in g] != [p["measure_time"] for p in x]:
                        failures.append("%s %s: times differ" % (path, source))
                        continue
                    for p, q in zip(g, x):
                        for key in q:
                            if not isinstance(q[key], (int, float)):
                                continue
                            v = p.get(key)
                            if not isinstance(v, (int, float)) or not close(v, q[key]):
                                failures.append("%s %s %d %s: %r, reference %r" % (
                                    path, source, q["measure_time"], key, v, q[key]))
    assert not failures, "\n".join(failures[:20])
    assert checked > 200, checked


def test_a_read_with_more_rollup_parts_than_read_max_rows_but_fewer_groups_is_answered(
        world, module_m2pg_factory):
    """At an hour or a day m2pg asks each database for the parts of its groups (a rollup row,
    or the rows of an hour not rolled up) and adds them up itself. READ_MAX_ROWS bounds groups,
    as documented: a read with more parts than that but fewer groups is answered (m2pg asks for
    the groups' sums instead), and one with more groups is still refused."""
    w = world
    a = w.names[0]  # three sources: a day holds three day rollup rows, today an hour's three
    limited = start(module_m2pg_factory, w.dbs, {"READ_MAX_ROWS": "8"})
    frm, to = day_of(w.now) - 3 * DAY, w.now
    for db in w.dbs:
        parts = db.psql("select count(*) from m2pg_rollup_plan(%s, %s, true) p join metrics_day d "
                        "on d.name = %s and d.bucket >= p.a and d.bucket < p.b and p.kind = 'd'"
                        % (pg_time(frm), pg_time(to), sql_literal(a)))[0][0]
        parts_h = db.psql("select count(*) from m2pg_rollup_plan(%s, %s, true) p join metrics_hour h "
                          "on h.name = %s and h.bucket >= p.a and h.bucket < p.b and p.kind = 'h'"
                          % (pg_time(frm), pg_time(to), sql_literal(a)))[0][0]
        assert int(parts) + int(parts_h) > 8, (db.name, parts, parts_h)
    params = window("^" + re.escape(a) + "$", frm, to, "day")
    got = assert_read_ok(limited.get_metrics(**params), "2/2")
    want = assert_read_ok(w.ref.get_metrics(**params), "2/2")
    # Four days, or three when the world was made just before a UTC midnight: its rows then
    # start after the first day of the range.
    days = {day_of(r["bucket"]) for r in w.rows if r["name"] == a and frm <= r["bucket"] <= to}
    assert len(days) >= 3 and len(want[a]["count"]) == len(days), want[a]["count"]
    assert diff_series(got, want) == []
    r = limited.get_metrics(**window("^" + re.escape(a) + "$", frm, to, "hour"))
    assert r.status == 422, (r.status, r.body)
    assert "more than 8 rows" in r.json["error"], r.json


# --------------------------------------------------------------------------
# 2. a late write


def test_a_late_write_marks_its_hour_dirty_is_read_at_once_and_rolled_up_by_the_next_gc(world):
    w = world
    prefix, name, rows = own_rows(world, "late", [25, 24, 23])
    post_rows(w.agg, w.dbs, rows, prefix)
    gc_once(w.dbs)
    late_hour = hour_of(w.now) - 24 * HOUR
    before = [hour_rollup(db, name, "web.1", late_hour) for db in w.dbs]
    assert before[0] is not None and before[0] == before[1], before

    late = {"id": None, "name": name, "bucket": late_hour + 7 * 60 + 30, "count": 7.0,
            "mean": 123.25, "max": 99999.5, "last": -4.5, "source": "web.1"}
    assert_created(w.agg.post(as_metric(late)))
    wait_in_every(w.dbs, prefix, len(rows) + 1)
    for db in w.dbs:
        assert late_hour in dirty_hours(db), "the late write's hour is not dirty in %s: %r" % (
            db.name, sorted(dirty_hours(db)))

    regex = "^" + re.escape(name) + "$"
    frm, to = late_hour - 2 * HOUR, late_hour + 2 * HOUR - 1
    cases = [window(regex, frm, to, "hour"), window(regex, frm, to, "day"),
             window(regex, frm, to, "hour", "web"), window(regex, late_hour - 999, w.now, "week")]
    first = assert_same_reads(w.agg, w.ref, cases)[0]
    everything = rows + [late]
    assert counts(first, name) == expected_counts(everything, "hour", frm, to)
    assert (late_hour, 99999.5) in first[name]["max"], first[name]["max"]

    log = gc_once(w.dbs)
    claimed = {e["db"]: int(e["claimed"]) for e in logfmt_events(log, "rollup")}
    assert set(claimed) == {"1", "2"} and min(claimed.values()) >= 1, log
    for db in w.dbs:
        assert dirty_hours(db) == set(), (db.name, sorted(dirty_hours(db)))
        n, count_sum = hour_rollup(db, name, "web.1", late_hour)
        assert (n, count_sum) == (before[0][0] + 1, before[0][1] + 7), (db.name, n, count_sum)
    assert_same_reads(w.agg, w.ref, cases)


# --------------------------------------------------------------------------
# 3. hinted handoff


def test_writes_handed_off_to_a_database_that_was_down_are_rolled_up_there_too(world):
    w = world
    prefix, name, rows = own_rows(world, "hint", [31, 30, 29])
    post_rows(w.agg, w.dbs, rows, prefix)
    gc_once(w.dbs)
    first, second = w.dbs
    hours = [hour_of(w.now) - 30 * HOUR, hour_of(w.now) - 29 * HOUR]
    late = [{"name": name, "bucket": h + 600 + k * 60, "count": 3.0 + k, "mean": 10.0 * (k + 1),
             "min": -7.0 - k, "source": "web.1" if k % 2 else None}
            for h in hours for k in range(3)]

    second.stop()
    try:
        for m in late:
            assert_created(w.agg.post(as_metric(m), timeout=10))
        assert first.count_rows(name_where(prefix)) == len(rows) + len(late)
        time.sleep(WRITE_MS / 1000 + 0.3)  # every write is now a hint
    finally:
        second.start()
    wait_until(lambda: second.count_rows(name_where(prefix)) == len(rows) + len(late),
               HANDOFF_BOUND, interval=0.1, message="the hints to reach %s" % second.name)
    for db in w.dbs:
        assert set(hours) <= dirty_hours(db), (db.name, sorted(dirty_hours(db)))
    for svc in (w.agg, w.ref):
        wait_connected(svc)

    gc_once(w.dbs)
    for db in w.dbs:
        assert dirty_hours(db) == set(), (db.name, sorted(dirty_hours(db)))
    rolled = assert_rollups_agree(w.dbs, prefix)
    in_hours = sum(n for (_, _, b, n, _, _) in rolled if b in hours)
    everything = rows + late
    assert in_hours == len([r for r in everything if hour_of(r["bucket"]) in hours])

    regex = "^" + re.escape(name) + "$"
    frm, to = hours[0] - HOUR, hours[-1] + 2 * HOUR - 1
    answers = assert_same_reads(w.agg, w.ref, [
        window(regex, frm, to, "hour"), window(regex, frm, to, "day"),
        window(regex, frm + 321, to - 321, "hour", "web")])
    assert counts(answers[0], name) == expected_counts(everything, "hour", frm, to)


# --------------------------------------------------------------------------
# 4. repair


def repair(dbs, args):
    rc, out, err = maint(["repair"] + list(args), dbs)
    assert rc == 0, "m2pg repair exited %d\n%s\n%s" % (rc, out, err)
    done = logfmt_events(out, "repair-done")
    assert done, out + err
    return done[-1]


def test_rows_copied_by_repair_are_rolled_up_in_the_database_that_missed_them(world):
    w = world
    prefix, name, rows = own_rows(world, "repair", [21, 20, 19, 18])
    post_rows(w.agg, w.dbs, rows, prefix)
    gc_once(w.dbs)
    first, second = w.dbs
    hours = [hour_of(w.now) - 20 * HOUR, hour_of(w.now) - 19 * HOUR]
    missed = [{"id": new_id(), "name": name, "bucket": h + 97 + k * 331, "count": 5.0,
               "mean": 2.5 + k, "median": 1.0, "max": 777.0 + k, "last": float(k),
               "source": ["web.1", "web.2", None][k % 3]}
              for h in hours for k in range(4)]
    sql_insert(first, missed)
    assert set(hours) <= dirty_hours(first), sorted(dirty_hours(first))
    assert not set(hours) & dirty_hours(second), sorted(dirty_hours(second))

    regex = "^" + re.escape(name) + "$"
    frm, to = hours[0] - 2 * HOUR, hours[-1] + 2 * HOUR - 1
    cases = [window(regex, frm, to, "hour"), window(regex, frm, to, "day"),
             window(regex, frm, to, "hour", r"^web\.2$"), window(regex, frm - 555, to, "month")]
    everything = rows + missed
    answer = assert_same_reads(w.agg, w.ref, cases)[0]
    assert counts(answer, name) == expected_counts(everything, "hour", frm, to)

    summary = repair(w.dbs, ["--from", str(hours[0] - HOUR), "--to", str(hours[-1] + 2 * HOUR)])
    assert summary["copied_db2"] == str(len(missed)) and summary["copied_db1"] == "0", summary
    assert set(hours) <= dirty_hours(second), sorted(dirty_hours(second))

    gc_once(w.dbs)
    for db in w.dbs:
        assert dirty_hours(db) == set(), (db.name, sorted(dirty_hours(db)))
    rolled = assert_rollups_agree(w.dbs, prefix)
    assert sum(n for (_, _, b, n, _, _) in rolled if b in hours) == \
        len([r for r in everything if hour_of(r["bucket"]) in hours])
    answer = assert_same_reads(w.agg, w.ref, cases)[0]
    assert counts(answer, name) == expected_counts(everything, "hour", frm, to)


# --------------------------------------------------------------------------
# 5. databases whose rollups differ


def test_a_database_missing_a_rollup_row_is_outvoted_by_the_rows(world, m2pg_factory):
    w = world
    prefix, name, rows = own_rows(world, "skew", [15, 14, 13, 12], sources=("web.1", "web.2"))
    post_rows(w.agg, w.dbs, rows, prefix)
    gc_once(w.dbs)
    first, second = w.dbs
    gone = hour_of(w.now) - 14 * HOUR
    removed = second.psql("delete from metrics_hour where name = %s and source = 'web.1' and "
                          "bucket = %s returning n" % (sql_literal(name), pg_time(gone)))
    assert len(removed) == 1 and int(removed[0][0]) > 0, removed
    assert hour_rollup(first, name, "web.1", gone) is not None
    assert not dirty_hours(second) and watermark(second) > gone + HOUR

    regex = "^" + re.escape(name) + "$"
    frm, to = gone - 2 * HOUR, gone + 3 * HOUR - 1
    truth = expected_counts(rows, "hour", frm, to)
    # The premise: read from database 2 alone, its rollups lack the rows of web.1 in that hour.
    alone = m2pg_factory([second])
    alone_series = assert_read_ok(alone.get_metrics(**window(regex, frm, to, "hour")), "1/1")
    assert counts(alone_series, name) != truth, counts(alone_series, name)

    cases = [window(regex, frm, to, "hour"), window(regex, frm, to, "hour", r"web\.1"),
             window(regex, frm + 1800, to, "day"), window(regex, frm, to, "week"),
             window(regex, gone, gone + HOUR - 1, "hour")]
    answers = assert_same_reads(w.agg, w.ref, cases)
    assert counts(answers[0], name) == truth
    assert counts(answers[1], name) == expected_counts(rows, "hour", frm, to, r"web\.1")


def test_a_day_one_database_lacks_a_row_of_is_caught_by_its_day_digest(world):
    """At an hour, a database sends the day's digest for whole days outside its slice of the
    range; a day whose digests differ has every database asked again for every hour, and the
    hour that differs is read as rows."""
    w = world
    today = day_of(w.now)
    first_h = (hour_of(w.now) - today) // HOUR + 1
    prefix, name, rows = own_rows(world, "dayskew", range(first_h, first_h + 72), per_hour=2)
    post_rows(w.agg, w.dbs, rows, prefix)
    gc_once(w.dbs)
    first, second = w.dbs
    # The first database sends this day's hours and their values, the second the day's digest;
    # the first lacks a row. Judged by the day's digest alone, its hours would be the answer.
    mid = today - 2 * DAY
    gone = first.psql("delete from metrics where id = (select id from metrics where name = %s and "
                       "bucket >= %s order by bucket limit 1) returning extract(epoch from bucket)"
                       % (sql_literal(name), pg_time(mid + 5 * HOUR)))
    assert len(gone) == 1, gone
    gc_once(w.dbs)
    assert not dirty_hours(first)
    day_n = "select sum(n) from metrics_day where name = %s and bucket = %s" % (sql_literal(name), pg_time(mid))
    assert int(second.scalar(day_n)) == int(first.scalar(day_n)) + 1

    regex = "^" + re.escape(name) + "$"
    frm, to = today - 2 * DAY, today - 1  # the world's earliest day is rows, not rollups
    before = w.agg.stdout().count("at=read-values-missing fallback=whole")
    answers = assert_same_reads(w.agg, w.ref, [window(regex, frm, to, "hour")])
    assert counts(answers[0], name) == expected_counts(rows, "hour", frm, to)
    assert w.agg.stdout().count("at=read-values-missing fallback=whole") > before


# --------------------------------------------------------------------------
# hand edits: DELETE and UPDATE through metrics


def test_rows_deleted_or_updated_by_hand_in_closed_hours_are_rolled_up_again(world):
    w = world
    prefix, name, rows = own_rows(world, "edit", [11, 10, 9])
    post_rows(w.agg, w.dbs, rows, prefix)
    gc_once(w.dbs)
    h_del, h_upd = hour_of(w.now) - 11 * HOUR, hour_of(w.now) - 9 * HOUR
    victim = [r for r in rows if hour_of(r["bucket"]) == h_del and r["count"]][0]
    changed = [r for r in rows if hour_of(r["bucket"]) == h_upd and r["count"]][0]
    where_victim = "name = %s and bucket = %s and source %s" % (
        sql_literal(name), pg_time(victim["bucket"]),
        "IS NULL" if victim.get("source") is None else "= " + sql_literal(victim["source"]))
    where_changed = "name = %s and bucket = %s and source %s" % (
        sql_literal(name), pg_time(changed["bucket"]),
        "IS NULL" if changed.get("source") is None else "= " + sql_literal(changed["source"]))
    for db in w.dbs:
        db.psql("delete from metrics where " + where_victim)
        db.psql("update metrics set count = count + 1000 where " + where_changed)
        assert {h_del, h_upd} <= dirty_hours(db), (db.name, sorted(dirty_hours(db)))
    now_rows = [r for r in rows if r is not victim]
    now_rows = [dict(r, count=r["count"] + 1000) if r is changed else r for r in now_rows]

    regex = "^" + re.escape(name) + "$"
    frm, to = h_del - HOUR, h_upd + 2 * HOUR - 1
    cases = [window(regex, frm, to, "hour"), window(regex, frm, to, "day"),
             window(regex, frm + 99, to, "hour", "web")]
    answer = assert_same_reads(w.agg, w.ref, cases)[0]
    assert counts(answer, name) == expected_counts(now_rows, "hour", frm, to)

    gc_once(w.dbs)
    for db in w.dbs:
        assert dirty_hours(db) == set(), (db.name, sorted(dirty_hours(db)))
    assert_rollups_agree(w.dbs, prefix)
    answer = assert_same_reads(w.agg, w.ref, cases)[0]
    assert counts(answer, name) == expected_counts(now_rows, "hour", frm, to)


def test_an_update_that_moves_a_row_into_a_closed_hour_is_read_there(world):
    """An UPDATE of bucket lands a row in an hour before the watermark: that hour's rollup no
    longer holds all its rows."""
    w = world
    prefix, name, rows = own_rows(world, "move", [8, 7])
    open_row = {"id": None, "name": name, "bucket": w.now - 20, "count": 1000.0, "mean": 1.0,
                "source": "web.1"}
    post_rows(w.agg, w.dbs, rows + [open_row], prefix)
    gc_once(w.dbs)
    target = hour_of(w.now) - 8 * HOUR
    for db in w.dbs:
        n = db.psql("update metrics set bucket = %s where name = %s and count = 1000 returning id"
                    % (pg_time(target + 300), sql_literal(name)))
        assert len(n) == 1, n
    moved = rows + [dict(open_row, bucket=target + 300)]
    dirty = {db.name: sorted(dirty_hours(db)) for db in w.dbs}

    regex = "^" + re.escape(name) + "$"
    frm, to = target - HOUR, target + 3 * HOUR - 1
    cases = [window(regex, frm, to, "hour"), window(regex, frm, to, "day")]
    try:
        answer = assert_same_reads(w.agg, w.ref, cases)[0]
        assert counts(answer, name) == expected_counts(moved, "hour", frm, to)
    except AssertionError as exc:
        raise AssertionError("%s\nrollup_dirty after the UPDATE: %r" % (exc, dirty)) from None
    gc_once(w.dbs)
    answer = assert_same_reads(w.agg, w.ref, cases)[0]
    assert counts(answer, name) == expected_counts(moved, "hour", frm, to)


# --------------------------------------------------------------------------
# 8. what gc logs


def test_gc_logs_the_hours_it_claimed_and_rolled_up_per_database(world):
    w = world
    gc_once(w.dbs)  # whatever another test left dirty is rolled up first
    prefix, name, rows = own_rows(world, "log", [50, 49, 40], per_hour=3)
    before = [watermark(db) for db in w.dbs]
    post_rows(w.agg, w.dbs, rows, prefix)
    hours = {hour_of(w.now) - h * HOUR for h in (50, 49, 40)}
    for db in w.dbs:
        assert dirty_hours(db) == hours, (db.name, sorted(dirty_hours(db)))

    log = gc_once(w.dbs)
    events = logfmt_events(log, "rollup")
    assert sorted(e["db"] for e in events) == ["1", "2"], log
    for e, db, wm in zip(sorted(events, key=lambda e: e["db"]), w.dbs, before):
        newly_closed = int(watermark(db) - wm) // HOUR  # an hour that ended since the last gc
        assert int(e["claimed"]) == len(hours) + newly_closed, (e, newly_closed)
        assert int(e["rolled_up"]) == int(e["claimed"]) and e["failed"] == "0", e
        assert re.fullmatch(r"\d+", e.get("measure#m2pg.rollup.ms", "")), e

    # Nothing to do: nothing claimed, nothing said (unless an hour ended meanwhile).
    before = [watermark(db) for db in w.dbs]
    log = gc_once(w.dbs)
    if [watermark(db) for db in w.dbs] == before:
        assert not logfmt_events(log, "rollup"), log


# --------------------------------------------------------------------------
# 6. rows loaded by SQL before the first gc


def test_rows_loaded_by_sql_before_the_first_gc_are_all_rolled_up(fresh_pair, m2pg_factory):
    dbs = fresh_pair
    agg, ref = readers(m2pg_factory, dbs)
    now = int(time.time())
    prefix = unique_name("sql") + "."
    rng = random.Random(6)
    inserted = (make_rows(rng, prefix + "a", ["web.1", None], now - 3 * DAY, now - 30, 900)
                + make_rows(rng, prefix + "a", ["web.1"], now - 10 * DAY, now - 9 * DAY, 3600))
    copied = (make_rows(rng, prefix + "b", [None, "db.1"], now - 2 * DAY, now, 1300, sparse=True)
              + make_rows(rng, prefix + "b", [None], now - 12 * DAY - 1800, now - 12 * DAY, 600))
    for r in copied[::3]:
        r["bucket"] += 0.25  # COPY takes what an INSERT by m2pg never makes
    for db in dbs:
        assert watermark(db) == -math.inf, "a gc ran before the test's"
        sql_insert(db, inserted)
        sql_copy(db, copied)
    everything = inserted + copied

    log = gc_once(dbs)
    for db in dbs:
        wm = watermark(db)
        old = {hour_of(r["bucket"]) for r in everything if r["bucket"] < wm - 168 * HOUR}
        ev = [e for e in logfmt_events(log, "rollup") if e["db"] == str(dbs.index(db) + 1)]
        assert len(ev) == 1 and int(ev[0]["claimed"]) == 168 + len(old), (ev, len(old), log)
        assert dirty_hours(db) == set(), (db.name, sorted(dirty_hours(db)))
        rolled = {b for (_, _, b, _, _, _) in rollup_rows(db, prefix)}
        assert old <= rolled, sorted(old - rolled)
        assert rollup_rows(db, prefix, "metrics_day")
    assert_rollups_agree(dbs, prefix)

    regex = "^" + re.escape(prefix)
    frm, to = now - 13 * DAY, now + 60
    cases = [window(regex, frm, to, res, source) for res in ("hour", "day", "week", "month")
             for source in (None, "1")]
    cases += [window(regex, now - 10 * DAY + 777, now - 2 * HOUR - 5, "hour"),
              window(regex, now - 12 * DAY - 2000, now - 12 * DAY + 100, "day")]
    answers = assert_same_reads(agg, ref, cases)
    for k, res in enumerate(("hour", "day", "week", "month")):
        for name in (prefix + "a", prefix + "b"):
            mine = [r for r in everything if r["name"] == name]
            assert counts(answers[2 * k], name) == expected_counts(mine, res, frm, to), (name, res)


# --------------------------------------------------------------------------
# 7. RETENTION and ROLLUP_RETENTION


def test_rollups_outlive_retention_and_go_with_rollup_retention(fresh_pair, m2pg_factory):
    dbs = fresh_pair
    agg, ref = readers(m2pg_factory, dbs)
    now = int(time.time())
    prefix = unique_name("ret") + "."
    name = prefix + "x"
    rng = random.Random(7)
    # None near RETENTION's cutoff, none on an hour (the ranges below end there).
    rows = [r for r in make_rows(rng, name, ["web.1", None], now - 5 * DAY, now - 60, 900)
            if abs(r["bucket"] - (now - 2 * DAY)) > 600 and r["bucket"] % HOUR]
    for db in dbs:
        sql_insert(db, rows)
    gc_once(dbs)
    regex = "^" + re.escape(name) + "$"
    day = day_of(now - 4 * DAY)
    hours = hour_of(now - 3 * DAY) - 6 * HOUR, hour_of(now - 3 * DAY)
    # The ranges of old data a user reads: `to` is inclusive, so a bucket's last second or
    # the next bucket's start.
    reads = {"a day to its last second": ("day", day, day + DAY - 1),
             "a day to the next midnight": ("day", day, day + DAY),
             "six hours to their last second": ("hour", hours[0], hours[1] - 1),
             "six hours to the next hour": ("hour", hours[0], hours[1])}
    before = dict(zip(reads, assert_same_reads(
        agg, ref, [window(regex, a, b, res) for res, a, b in reads.values()])))
    for what, (res, a, b) in reads.items():
        assert counts(before[what], name) == expected_counts(rows, res, a, b) != [], what

    gc_once(dbs, {"RETENTION": "2d"})
    for db in dbs:
        assert db.count_rows("bucket < %s" % pg_time(now - 2 * DAY)) == 0, db.name
        assert db.count_rows("bucket > %s" % pg_time(now - 2 * DAY)) > 0, db.name
    problems = []
    for what, (res, a, b) in reads.items():
        # The rows are gone: only the rollups can answer.
        assert assert_read_ok(ref.get_metrics(**window(regex, a, b, res)), "2/2") == {}, what
        got = assert_read_ok(agg.get_metrics(**window(regex, a, b, res)), "2/2")
        diff = diff_series(got, before[what], "before RETENTION")
        if diff:
            problems.append("%s (from=%d to=%d resolution=%s), its rows gone by RETENTION:\n  %s"
                            % (what, a, b, res, "\n  ".join(diff[:6])))
    recent = [window(regex, hour_of(now - 2 * DAY) + 2 * HOUR, now + 60, res)
              for res in ("hour", "day", "week")]
    assert_same_reads(agg, ref, recent)

    log = gc_once(dbs, {"RETENTION": "2d", "ROLLUP_RETENTION": "2d"})
    expired = logfmt_events(log, "rollup-expire")
    assert sorted(e["db"] for e in expired) == ["1", "2"], log
    cut = day_of(now - 2 * DAY)
    for e, db in zip(sorted(expired, key=lambda e: e["db"]), dbs):
        assert int(e["removed"]) > 0, e
        logged = calendar.timegm(time.strptime(e["cutoff"][:10], "%Y-%m-%d"))
        assert logged == cut or (logged == cut + DAY and day_of(time.time()) > day_of(now)), e
        if not re.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d.*", e["cutoff"]):
            problems.append("at=rollup-expire is not logfmt: cutoff=%r read from the line %r"
                            % (e["cutoff"], [line for line in log.splitlines()
                                             if "at=rollup-expire db=%s " % e["db"] in line]))
        for table in ("metrics_hour", "metrics_day"):
            assert db.scalar("select count(*) from %s where bucket < %s"
                             % (table, pg_time(cut))) == "0", (db.name, table)
            assert int(db.scalar("select count(*) from %s where bucket >= %s"
                                 % (table, pg_time(cut)))) > 0, (db.name, table)
    for what, (res, a, b) in reads.items():
        assert assert_read_ok(agg.get_metrics(**window(regex, a, b, res)), "2/2") == {}, what
    assert_same_reads(agg, ref, recent)
    assert not problems, "\n".join(problems)


def test_rollups_that_differ_past_retention_are_answered_by_the_fuller_database(fresh_pair, m2pg_factory):
    """Rows that one database missed and repair never copied, then RETENTION: the rows the
    agreement check would fall back to are gone, so the rollups holding more rows answer."""
    dbs = fresh_pair
    svc = start(m2pg_factory, dbs, {"RETENTION": "2d"})
    now = int(time.time())
    name = unique_name("fuller") + ".x"
    rng = random.Random(9)
    rows = [r for r in make_rows(rng, name, [None], now - 4 * DAY, now - 60, 600)
            if abs(r["bucket"] - (now - 2 * DAY)) > 1200]
    hour = hour_of(now - 3 * DAY)
    missed = make_rows(rng, name, [None], hour + 60, hour + 3000, 400)
    for db in dbs:
        sql_insert(db, rows)
    sql_insert(dbs[0], missed)
    gc_once(dbs)
    gc_once(dbs, {"RETENTION": "2d"})
    for db in dbs:
        assert db.count_rows("bucket < %s" % pg_time(now - 2 * DAY)) == 0, db.name
    frm, to = hour - 3 * HOUR, hour + 3 * HOUR - 1
    got = assert_read_ok(svc.get_metrics(**window("^" + re.escape(name) + "$", frm, to, "hour")), "2/2")
    want = expected_counts(rows + missed, "hour", frm, to)
    assert len(missed) >= 4 and counts(got, name) == want, (counts(got, name), want)


def test_migrate_packs_the_values_of_rollups_made_before_and_reads_stay_the_same(fresh_pair, m2pg_factory):
    """Rollups made before their values were packed in one column (vals) get it from migrate,
    computed for every row they hold, and reads at an hour and a day, which send that column,
    answer as the rows do: NULL statistics, rows without a count, several sources; and once
    RETENTION has taken the rows, from the packed values alone."""
    dbs = fresh_pair
    agg, ref = readers(m2pg_factory, dbs)
    now = int(time.time())
    name = unique_name("packed") + ".x"
    rows = make_rows(random.Random(17), name, [None, "web.1", "web.2"], now - 3 * DAY, now - 60, 300,
                     sparse=True, no_count=0.2, zero_count=0.1)
    for db in dbs:
        sql_insert(db, rows)
    gc_once(dbs)
    # The rollups as the version before packed values left them; the first database is a
    # version older still, without the catalogue's index in byte order.
    for db in dbs:
        db.psql("alter table metrics_hour drop column vals; alter table metrics_day drop column vals")
    dbs[0].psql("drop index metric_names_bytewise")
    held = [(int(db.scalar("select count(*) from metrics_hour")), int(db.scalar("select count(*) from metrics_day")))
            for db in dbs]
    assert all(h > 0 and d > 0 for h, d in held), held
    rc, out, err = maint(["migrate"], dbs)
    assert rc == 0, out + err
    packed = ["packed the values of the rollups in one column for reads (%d hour and %d day rollups rewritten)" % hd
              for hd in held]
    assert [e["did"] for e in logfmt_events(out, "migrate")] == [
        "added the index of metric_names in byte order; " + packed[0], packed[1]], out
    rc, out, err = maint(["migrate"], dbs)
    assert [e["did"] for e in logfmt_events(out, "migrate")] == ["nothing: already partitioned"] * 2, out
    for db in dbs:
        for table in ("metrics_hour", "metrics_day"):
            assert db.scalar("select count(*) from %s where vals is null" % table) == "0", (db.name, table)

    regex = "^" + re.escape(name) + "$"
    frm, to = day_of(now) - 2 * DAY, hour_of(now) - 1
    cases = [window(regex, frm, to, "hour"), window(regex, frm, to, "day"),
             window(regex, frm + 1800, to, "hour", r"web\.2"), window(regex, frm, to, "week")]
    answers = assert_same_reads(agg, ref, cases)
    assert counts(answers[0], name) == expected_counts(rows, "hour", frm, to)
    assert counts(answers[2], name) == expected_counts(rows, "hour", frm + 1800, to, r"web\.2")

    # Hours whose rows RETENTION removes: a part that could not be read would have no rows to
    # fall back to, and its points would be missing.
    old = [window(regex, hour_of(now - 3 * DAY) + 2 * HOUR, hour_of(now - 2 * DAY) - HOUR - 1, res)
           for res in ("hour", "day")]
    old.append(dict(old[0], source=r"web\.1"))
    before = assert_same_reads(agg, ref, old)
    gc_once(dbs, {"RETENTION": "2d"})
    for params, want in zip(old, before):
        assert counts(want, name), params
        assert assert_read_ok(ref.get_metrics(**params), "2/2") == {}, params
        got = assert_read_ok(agg.get_metrics(**params), "2/2")
        assert diff_series(got, want, "before RETENTION") == [], params


def test_a_read_open_while_migrate_packs_the_rollups_and_migrate_both_finish(fresh_pair):
    """Migrate rewrites both rollup tables; a read that has taken metrics_day when it starts and
    takes metrics_hour after (as a read's statement does) finishes, and so does migrate: the
    migration waits for the read before it takes either table, so neither waits on the other."""
    dbs = fresh_pair
    rc, out, err = maint(["migrate"], dbs)
    assert rc == 0, out + err
    db = dbs[0]
    db.psql("alter table metrics_hour drop column vals; alter table metrics_day drop column vals")
    reader = subprocess.Popen([PG_BIN + "/psql", "-X", "-q", "-A", "-t", "-h", db.dir, "-p", str(db.port),
                               "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader.stdin.write("begin;\nselect count(*) from metrics_day;\n")
        reader.stdin.flush()
        wait_until(lambda: db.scalar("select count(*) from pg_locks where relation = to_regclass('metrics_day') "
                                     "and mode = 'AccessShareLock' and granted") == "1", 10,
                   message="the reader to hold metrics_day")
        done = []
        migrate = threading.Thread(target=lambda: done.append(maint(["migrate"], dbs)))
        migrate.start()
        wait_until(lambda: db.scalar("select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                                     "and query like '%m2pg%'") == "1", 15, message="migrate to wait for the reader")
        out, err = reader.communicate("select count(*) from metrics_hour;\ncommit;\n", timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    migrate.join(60)
    assert done, "migrate did not end"
    rc, out, err = done[0]
    assert rc == 0, out + err
    assert db.scalar("select count(*) from pg_attribute where attname = 'vals' and attrelid in "
                     "('metrics_hour'::regclass, 'metrics_day'::regclass)") == "2"


def test_values_in_a_format_this_m2pg_does_not_read_are_answered_from_rows(fresh_pair, m2pg_factory):
    """A database whose rollups pack their values in another format (a later m2pg's, in a
    deployment where both run) sends parts this m2pg cannot read: their groups are read as
    rows, never guessed at."""
    dbs = fresh_pair
    agg, ref = readers(m2pg_factory, dbs)
    now = int(time.time())
    name = unique_name("format") + ".x"
    rows = make_rows(random.Random(23), name, [None, "web.1"], now - 3 * DAY, now - 60, 300, sparse=True)
    for db in dbs:
        sql_insert(db, rows)
    gc_once(dbs)
    # The same layout with another format byte and count_sum doubled: read as if it were
    # this m2pg's format, the counts would come out twice as large.
    for table in ("metrics_hour", "metrics_day"):
        expr = dbs[1].scalar("select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a "
                             "on a.attrelid = d.adrelid and a.attnum = d.adnum "
                             "where d.adrelid = '%s'::regclass and a.attname = 'vals'" % table)
        assert expr.count("int8send(h2)) || '\\x01'::bytea)") == 1 and expr.count("float8send(count_sum)") == 1, expr
        other = expr.replace("int8send(h2)) || '\\x01'::bytea)", "int8send(h2)) || '\\x02'::bytea)").replace(
            "float8send(count_sum)", "float8send(count_sum * 2)")
        dbs[1].psql("alter table %s drop column vals; alter table %s add column vals bytea generated always as "
                    "(%s) stored" % (table, table, other))
    regex = "^" + re.escape(name) + "$"
    frm, to = day_of(now) - 2 * DAY, day_of(now) - 1
    # Each database sends the values of half the range (two whole days: one each); the
    # second's day is read as rows.
    answers = assert_same_reads(agg, ref, [window(regex, frm, to, "hour"), window(regex, frm, to, "day")])
    assert counts(answers[0], name) == expected_counts(rows, "hour", frm, to)
    assert counts(answers[1], name) == expected_counts(rows, "day", frm, to)
