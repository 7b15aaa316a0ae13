"""Durability, continued: which hints are kept when HINTS_MAX is reached, repair of rows by
the time they were written (late metrics with old buckets), and a name catalogue edited out
of band.

Each test breaks databases, so each gets fresh servers.  Waits poll with deadlines; the
bounds are generous (fault recovery, not benchmarks)."""

import re
import time

import pytest

from m2pg_sys import (assert_created, assert_points, assert_read_ok, metric, new_id, post_until_landed,
                      run_cli, unique_name, wait_until)

WRITE_MS = 500
PATIENCE_MS = 1500  # a database's failure of a write is known well after its 503
READ_MS = 1500
T = 1355202720
HANDOFF_BOUND = 15
YEAR = 365 * 86400


LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in LOGFMT_PAIR.findall(line)}


def log_events(text, at):
    return [r for r in map(logfmt, text.splitlines()) if r.get("at") == at]


def start_service(m2pg_factory, dbs, extra_env=None):
    env = {"WRITE_PATIENCE_MS": str(PATIENCE_MS)}
    env.update(extra_env or {})
    svc = m2pg_factory(dbs, write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS, extra_env=env)
    wait_until(lambda: svc.health().json.get("connected") == len(dbs), 10,
               message="m2pg to connect to every database")
    for db in dbs:
        db.wait_for_schema()
    post_until_landed(svc, dbs, timeout=10, prefix="warmup")
    return svc


def run_maint(args, dbs, env=None, timeout=60):
    overrides = {"DATABASE_URLS": "|".join(db.url() for db in dbs)}
    overrides.update(env or {})
    return run_cli(args, overrides, timeout=timeout)


def dropped(svc, db, cls):
    return sum(int(e["metrics"]) for e in log_events(svc.stdout(), "hints-dropped")
               if e.get("db") == str(db) and e.get("class") == cls)


def wait_for_ids(db, ids, timeout):
    ids = {i.lower() for i in ids}
    wait_until(lambda: ids <= db.ids(), timeout, interval=0.1,
               message="%d ids to reach %s" % (len(ids), db.name))


# --------------------------------------------------------------------------
# hint priority


def hints_of(svc, db):
    return svc.health().json["states"][db - 1]["hints"]


def test_hints_of_acknowledged_writes_are_kept_over_those_answered_503(fresh_pair,
                                                                       m2pg_factory):
    """HINTS_MAX=6 for B while B is down: 3 writes acknowledged by A, then 5 answered 503
    (A hung: "stored": "unknown") that A commits once it resumes, then 3 more acknowledged.
    B's hints keep every acknowledged write: the 503s beyond the room are dropped on arrival,
    and the acknowledged writes that come later push out the 503s already queued.  When B
    returns it gets exactly the 6 acknowledged."""
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair,
                        extra_env={"HINTS_MAX": "6", "WRITE_PATIENCE_MS": "60000"})
    name = unique_name("prio")
    b.stop()
    wait_until(lambda: svc.health().json["states"][1]["state"] == "down", 10,
               message="B to be down")

    acked = []
    for i in range(3):
        acked.append(assert_created(svc.post(metric(name, bucket=T + i))).lower())
    wait_until(lambda: hints_of(svc, 2) == 3, 10, message="3 hints for B")

    a.pause()
    try:
        for i in range(5):
            r = svc.post(metric(name, bucket=T + 100 + i, count=1), timeout=10)
            assert r.status == 503 and r.json["stored"] == "unknown", r
    finally:
        a.resume()
    # A commits them after all: B is handed them, as hints of writes answered 503.
    wait_until(lambda: a.count_rows("name = '%s'" % name) == 8, HANDOFF_BOUND,
               message="A to commit the writes answered 503")
    wait_until(lambda: dropped(svc, 2, "unacked") == 2, 10, message="2 unacked hints dropped")
    assert hints_of(svc, 2) == 6
    assert dropped(svc, 2, "acked") == 0, svc.logs(60)

    for i in range(3):
        acked.append(assert_created(svc.post(metric(name, bucket=T + 200 + i))).lower())
    wait_until(lambda: dropped(svc, 2, "unacked") == 5, 10, message="5 unacked hints dropped")
    assert dropped(svc, 2, "acked") == 0, svc.logs(60)

    b.start()
    wait_for_ids(b, acked, HANDOFF_BOUND)
    # The hints are delivered in one round, in order: nothing else of the name is coming.
    time.sleep(0.5)
    in_b = b.psql("select extract(epoch from bucket)::bigint from metrics where name = '%s' "
                  "order by 1" % name)
    assert [int(r[0]) for r in in_b] == [T, T + 1, T + 2, T + 200, T + 201, T + 202]
    assert a.count_rows("name = '%s'" % name) == 11


# --------------------------------------------------------------------------
# repair by the time rows were written


def write_late_metrics(svc, a, b, name, n):
    """n metrics with buckets a year old, written through m2pg while B is down and
    HINTS_MAX=0: only A has them, and B gets no hint."""
    b.stop()
    old = int(time.time()) - YEAR
    ids = [assert_created(svc.post(metric(name, bucket=old + i))).lower() for i in range(n)]
    wait_until(lambda: dropped(svc, 2, "acked") >= n, 10,
               message="B's hints of the writes dropped (HINTS_MAX=0)")
    b.start()
    wait_until(lambda: svc.health().json.get("connected") == 2, 10,
               message="m2pg to reconnect to B")
    assert a.ids("name = '%s'" % name) == set(ids)
    assert not b.ids("name = '%s'" % name), "rows reached B although HINTS_MAX=0"
    return old, ids


def test_gc_repairs_a_late_metric_with_an_old_bucket_by_its_write_time(fresh_pair,
                                                                      m2pg_factory):
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair, extra_env={"HINTS_MAX": "0"})
    name = unique_name("late")
    old, ids = write_late_metrics(svc, a, b, name, 3)
    # A client's own id that is not a UUIDv7 says nothing of when it was written: only a
    # repair by bucket range finds it.
    v4 = "3f1e4c2a-9b7d-4e21-8c3a-5d6f7a8b9c0d"
    b.stop()
    r = svc.post(dict(metric(name, bucket=old + 10), id=v4))
    assert r.status == 201, r
    wait_until(lambda: dropped(svc, 2, "acked") >= 4, 10,
               message="B's hint of the v4 write dropped (HINTS_MAX=0)")
    b.start()
    wait_until(lambda: svc.health().json.get("connected") == 2, 10,
               message="m2pg to reconnect to B")

    rc, out, err = run_maint(["gc", "--once"], fresh_pair,
                             env={"REPAIR_LOOKBACK": "1h", "RETENTION": "800d"})
    assert rc == 0, out + err
    assert b.ids("name = '%s'" % name) == set(ids), out
    copies = log_events(out, "repair-window-differs")
    assert copies and all(c["by"] == "written" for c in copies), out
    assert not b.has_id(v4), "a non-v7 id a year old was copied by a 1h look back"

    rc, out, err = run_maint(["repair", "--from", str(old), "--to", str(old + 60)], fresh_pair)
    assert rc == 0, out + err
    assert b.has_id(v4), out

    # Nothing left to copy: a second cycle finds every window the same.
    rc, out, err = run_maint(["gc", "--once"], fresh_pair,
                             env={"REPAIR_LOOKBACK": "1h", "RETENTION": "800d"})
    assert rc == 0, out + err
    done = log_events(out, "repair-done")[-1]
    assert (done["differing"], done["copied_db1"], done["copied_db2"]) == ("0", "0", "0"), out

    series = assert_read_ok(svc.get_metrics(name="^%s$" % re.escape(name), resolution="second",
                                            **{"from": old, "to": old + 10}))
    assert_points(series[name]["count"], [(old + i, 1) for i in (0, 1, 2, 10)])


def test_repair_written_since_copies_late_metrics_and_rejects_a_bad_duration(fresh_pair,
                                                                           m2pg_factory):
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair, extra_env={"HINTS_MAX": "0"})
    name = unique_name("since")
    _, ids = write_late_metrics(svc, a, b, name, 2)

    rc, out, err = run_maint(["repair", "--written-since", "bogus"], fresh_pair)
    assert rc == 2 and "--written-since" in err, (rc, out, err)
    assert not b.ids("name = '%s'" % name)

    rc, out, err = run_maint(["repair", "--written-since", "10m"], fresh_pair)
    assert rc == 0, out + err
    assert b.ids("name = '%s'" % name) == set(ids), out
    done = log_events(out, "repair-done")[-1]
    assert done["copied_db2"] == "2" and done["copied_db1"] == "0", out
    starts = log_events(out, "repair-start")
    assert [s["by"] for s in starts] == ["written"], out


# --------------------------------------------------------------------------
# the name catalogue edited out of band


def read_buckets(svc, name, lo, hi):
    series = assert_read_ok(svc.get_metrics(name="^%s$" % re.escape(name), resolution="second",
                                            **{"from": lo, "to": hi}))
    return [b for b, _ in series.get(name, {}).get("count", [])]


def post_rows(svc, name, buckets):
    for t in buckets:
        assert_created(svc.post(metric(name, bucket=t)))


@pytest.mark.parametrize("edit", ["DELETE FROM metric_names", "TRUNCATE metric_names"])
def test_rows_stay_readable_after_the_catalogue_is_emptied(service, edit):
    """Emptied in both databases: names that still have rows come back at once; a name whose
    rows were deleted too, and that m2pg remembers as catalogued, is added again by its next
    write."""
    a = unique_name("a")
    gone = unique_name("gone")
    post_rows(service, a, [T, T + 1, T + 2])
    post_rows(service, gone, [T])
    for db in service.dbs:
        wait_until(lambda: db.count_rows("name in ('%s', '%s')" % (a, gone)) == 4, 5,
                   message="the rows to reach %s" % db.name)
    assert read_buckets(service, a, T, T + 10) == [T, T + 1, T + 2]

    for db in service.dbs:
        db.psql("DELETE FROM metrics WHERE name = '%s'; %s" % (gone, edit))
    assert read_buckets(service, a, T, T + 10) == [T, T + 1, T + 2]
    assert read_buckets(service, gone, T, T + 10) == []

    post_rows(service, a, [T + 3, T + 4])
    post_rows(service, gone, [T + 5])
    for db in service.dbs:
        wait_until(lambda: db.count_rows("name in ('%s', '%s')" % (a, gone)) == 6, 5,
                   message="the new rows to reach %s" % db.name)
    assert read_buckets(service, a, T, T + 10) == [T, T + 1, T + 2, T + 3, T + 4]
    assert read_buckets(service, gone, T, T + 10) == [T + 5]
    for db in service.dbs:
        assert db.scalar("select count(*) from metric_names where name in ('%s', '%s')"
                         % (a, gone)) == "2", db.name


def test_gc_puts_back_names_that_have_rows_but_no_catalogue_entry(service):
    """With triggers off (a restore, a replica session) nothing tells m2pg: gc does."""
    a = unique_name("fill")
    post_rows(service, a, [T, T + 1])
    for db in service.dbs:
        wait_until(lambda: db.count_rows("name = '%s'" % a) == 2, 5,
                   message="the rows to reach %s" % db.name)
        db.psql("SET session_replication_role = replica; "
                "DELETE FROM metric_names WHERE name = '%s'" % a)
    assert read_buckets(service, a, T, T + 10) == []

    rc, out, err = run_maint(["gc", "--once"], service.dbs, env={"REPAIR_LOOKBACK": "0s"})
    assert rc == 0, out + err
    fills = log_events(out, "names-fill")
    assert sorted((f["db"], f["added"]) for f in fills) == [("1", "1"), ("2", "1")], out
    assert read_buckets(service, a, T, T + 10) == [T, T + 1]


def test_gc_scans_only_the_partitions_written_since_their_last_fill(service):
    """The fill goes by the server's counters of each partition: with nothing written, a gc
    scans no partition; a row loaded by SQL with triggers off has its own partition scanned,
    and only that one; once a day, or after an edit of the catalogue, every partition is."""
    def fills():
        rc, out, err = run_maint(["gc", "--once"], service.dbs, env={"REPAIR_LOOKBACK": "0s"})
        assert rc == 0, out + err
        got = {f["db"]: f for f in log_events(out, "names-fill")}
        assert sorted(got) == ["1", "2"], out
        return got

    def parts(db):
        return db.scalar("select count(*) from pg_inherits where inhparent = 'metrics'::regclass")

    # the counters may count the writes of the test before only after a fill has read them
    wait_until(lambda: all(f["scanned"] == "0" for f in fills().values()), 20,
               message="a gc with nothing written since the one before to scan no partition")

    # The server counts a session's writes when it goes idle, and gc reads the counts: each
    # edit here has them counted before its psql returns (pg_stat_force_next_flush).
    a = unique_name("loaded")
    for db in service.dbs:
        db.psql("SET session_replication_role = replica; INSERT INTO metrics (id, bucket, name, count) "
                "VALUES ('%s', to_timestamp(%d), '%s', 1); SELECT pg_stat_force_next_flush()" % (new_id(), T, a))
    for i, f in sorted(fills().items()):
        assert (f["added"], f["scanned"], f["partitions"]) == ("1", "1", parts(service.dbs[int(i) - 1])), f
    assert read_buckets(service, a, T, T + 10) == [T]
    assert all(f["scanned"] == "0" for f in fills().values())

    service.dbs[0].psql("UPDATE metric_names_filled SET at = at - interval '25 hours' "
                        "WHERE rel = 'metric_names'::regclass")
    service.dbs[1].psql("SET session_replication_role = replica; DELETE FROM metric_names WHERE name = '%s'; "
                        "SELECT pg_stat_force_next_flush()" % a)
    for i, f in sorted(fills().items()):
        assert (f["added"], f["scanned"]) == ("0" if i == "1" else "1", parts(service.dbs[int(i) - 1])), f
    assert read_buckets(service, a, T, T + 10) == [T]
