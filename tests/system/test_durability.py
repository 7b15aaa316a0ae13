"""Durability: client-chosen ids, hinted handoff, spooling across restarts, repair, gc and
shutdown under load.

Each test that breaks or fills databases gets fresh servers.  Waits poll with deadlines;
the bounds are generous (fault recovery, not benchmarks)."""

import glob
import os
import re
import signal
import threading
import time

import pytest

from m2pg_sys import (assert_created, assert_error, assert_nothing_else_stored, assert_points,
                      assert_read_ok, metric, new_id, post_until_landed, run_cli, unique_name,
                      wait_in_all, wait_until)

WRITE_MS = 500
READ_MS = 1500
T = 1355202720
DAY = 86400

# Hints are retried with backoff up to 5 s, and only while a connection is up (reconnects
# within about 1 s): a database that returns has its hints within this bound.
HANDOFF_BOUND = 15


# --------------------------------------------------------------------------
# helpers


def start_service(m2pg_factory, dbs, extra_env=None):
    """m2pg on dbs, connected to every one, schema in place, a write seen in all.

    A database may take WRITE_PATIENCE_MS with an insert before its metrics become hints;
    here that is the write timeout, so a write a database missed is a hint soon after it
    was answered."""
    env = {"WRITE_PATIENCE_MS": str(WRITE_MS)}
    env.update(extra_env or {})
    svc = m2pg_factory(dbs, write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS,
                       extra_env=env)
    svc.dbs = dbs
    wait_until(lambda: svc.health().json.get("connected") == len(dbs), 10,
               message="m2pg to connect to every database")
    for db in dbs:
        db.wait_for_schema()
    post_until_landed(svc, dbs, timeout=10, prefix="warmup")
    return svc


def urls(dbs):
    return "|".join(db.url() for db in dbs)


LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in LOGFMT_PAIR.findall(line)}


def log_events(text, at):
    """The logfmt records of `text` with at=<at>, as dicts."""
    out = []
    for line in text.splitlines():
        rec = logfmt(line)
        if rec.get("at") == at:
            out.append(rec)
    return out


def run_maint(args, dbs, env=None, timeout=60):
    """Run `m2pg <args>` to completion against dbs; returns (rc, stdout, stderr)."""
    overrides = {"DATABASE_URLS": urls(dbs)}
    overrides.update(env or {})
    return run_cli(args, overrides, timeout=timeout)


def repair(dbs, env=None, args=()):
    """`m2pg repair`: asserts exit 0 and returns its summary (the last stdout line)."""
    rc, out, err = run_maint(["repair"] + list(args), dbs, env)
    assert rc == 0, "m2pg repair exited %d with every database up\n%s\n%s" % (rc, out, err)
    lines = out.strip().splitlines()
    assert lines, "m2pg repair printed nothing on stdout\n%s" % err
    summary = logfmt(lines[-1])
    assert summary.get("at") == "repair-done", \
        "last stdout line of m2pg repair is not at=repair-done: %r\n%s" % (lines[-1], out)
    for key in ["windows", "differing"] + ["copied_db%d" % (i + 1) for i in range(len(dbs))]:
        assert re.fullmatch(r"\d+", summary.get(key, "")), \
            "repair summary lacks a numeric %s: %r" % (key, lines[-1])
    summary["stdout"] = out
    return summary


def copied(summary, index):
    return int(summary["copied_db%d" % index])


def post_each(svc, metrics, must_be_in=None):
    """POST the metrics one at a time; each must be 201.  Returns the ids."""
    ids = []
    for m in metrics:
        mid = assert_created(svc.post(m, timeout=10))
        if must_be_in is not None:
            assert must_be_in.has_id(mid), "201 for %s but it is not in %s" % (
                mid, must_be_in.name)
        ids.append(mid.lower())
    return ids


def wait_for_ids(db, ids, timeout, what="acknowledged ids"):
    ids = {i.lower() for i in ids}
    missing = []

    def done():
        missing[:] = sorted(ids - db.ids())
        return not missing

    try:
        wait_until(done, timeout, interval=0.1, message="%s to reach %s" % (what, db.name))
    except AssertionError as exc:
        raise AssertionError("%s: %d of %d still missing, e.g. %s"
                             % (exc, len(missing), len(ids), missing[:3])) from None


def dropped_hints(svc, db):
    return sum(int(e.get("metrics", 0)) for e in log_events(svc.stdout(), "hints-dropped")
               if e.get("db") == str(db))


def duplicated_ids(db):
    return db.psql("select id::text, count(*) from metrics group by id having count(*) > 1")


def now():
    return int(time.time())


def row(mid, bucket, name, count=1):
    return {"id": mid, "bucket": bucket, "name": name, "count": count}


class Load:
    """Threads posting single metrics to one m2pg as fast as they can."""

    def __init__(self, svc, name, threads=4):
        self.svc = svc
        self.name = name
        self.results = []  # (status, id or body) or ("exception", repr)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(threads)]

    def _run(self, k):
        i = 0
        while not self.stop.is_set():
            try:
                r = self.svc.post(metric(self.name, bucket=T + k * 100000 + i, count=1),
                                  timeout=10)
                res = (r.status, r.json.lower() if r.status == 201 else r.body[:200])
            except OSError as exc:
                res = ("exception", repr(exc))
                time.sleep(0.01)
            with self.lock:
                self.results.append(res)
            i += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "writer threads still running"

    def count(self):
        with self.lock:
            return len(self.results)

    def acknowledged(self):
        with self.lock:
            return {v for s, v in self.results if s == 201}

    def statuses(self):
        with self.lock:
            return {s for s, _ in self.results if s != "exception"}


# --------------------------------------------------------------------------
# client-chosen ids


def test_metric_id_that_is_not_a_uuid_is_422_on_field_id(service):
    name = unique_name("badid")
    assert_error(service.post(dict(metric(name), id="not-a-uuid")), 422, field="id")
    assert_error(service.post([dict(metric(name), id=new_id()),
                               dict(metric(name), id="1234")]), 422, field="id", index=1)
    assert_nothing_else_stored(service, service.dbs)


def test_same_id_retried_in_parallel_through_two_processes_is_stored_once_per_database(
        fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    first = start_service(m2pg_factory, fresh_pair)
    second = start_service(m2pg_factory, fresh_pair)
    mid = new_id()
    name = unique_name("retry")
    payload = dict(metric(name, bucket=T, count=7, mean=1.5), id=mid)
    barrier = threading.Barrier(8)
    answers = []
    lock = threading.Lock()

    def retry(k):
        barrier.wait(10)
        for attempt in range(5):
            svc = (first, second)[(k + attempt) % 2]
            try:
                r = svc.post(payload, timeout=10)
                res = (r.status, r.json)
            except OSError as exc:
                res = ("exception", repr(exc))
            with lock:
                answers.append(res)

    threads = [threading.Thread(target=retry, args=(k,), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 40, answers
    wrong = [a for a in answers if a[0] != 201 or not isinstance(a[1], str)
             or a[1].lower() != mid]
    assert not wrong, "%d of 40 retries not answered 201 %r, e.g. %r" % (
        len(wrong), mid, wrong[:5])

    # Barrier: a later write through each process has reached both databases.
    for svc in (first, second):
        wait_in_all(fresh_pair, assert_created(svc.post(metric(unique_name("after")))),
                    timeout=5)
    for db in fresh_pair:
        assert db.count_rows("id = '%s'" % mid) == 1, \
            "%s holds %d rows with id %s" % (db.name, db.count_rows("id = '%s'" % mid), mid)
        stored = db.row(mid)
        assert (stored["name"], stored["bucket"], stored["count"], stored["mean"]) == \
            (name, float(T), 7.0, 1.5), stored
        assert not duplicated_ids(db)


# --------------------------------------------------------------------------
# hinted handoff


def test_writes_missed_by_a_stopped_database_reach_it_when_it_returns(fresh_pair,
                                                                      m2pg_factory):
    """Cassandra dtest form: A down, write, A up, (wait), B down, read everything from A."""
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    name = unique_name("handoff")
    n = 50
    a.stop()
    ids = post_each(svc, [metric(name, bucket=T + i, count=1) for i in range(n)], must_be_in=b)
    # A returns after every write's WRITE_PATIENCE_MS is over: all N can only reach it as hints.
    time.sleep(WRITE_MS / 1000 + 0.2)
    a.start()
    wait_for_ids(a, ids, HANDOFF_BOUND)
    b.stop()

    series = assert_read_ok(svc.get_metrics(name="^%s$" % re.escape(name), resolution="second",
                                            **{"from": T, "to": T + n - 1}),
                            databases="1/2")
    assert_points(series[name]["count"], [(T + i, 1) for i in range(n)])
    assert not duplicated_ids(a)


def test_writes_during_a_hang_longer_than_the_write_timeout_reach_it_once_each(fresh_pair,
                                                                               m2pg_factory):
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    name = unique_name("hang")
    b.pause()
    ids = []
    t0 = time.monotonic()
    for i in range(30):  # about 2 s of writes, four write timeouts
        ids += post_each(svc, [metric(name, bucket=T + i, count=1)], must_be_in=a)
        time.sleep(max(0.0, t0 + (i + 1) * 0.07 - time.monotonic()))
    assert time.monotonic() - t0 > 4 * WRITE_MS / 1000
    b.resume()

    wait_for_ids(b, ids, HANDOFF_BOUND)
    for db in fresh_pair:
        assert db.ids("name = '%s'" % name) == set(ids), db.name
        dups = duplicated_ids(db)
        assert not dups, "%s holds ids more than once: %r" % (db.name, dups[:5])


def test_hints_left_at_shutdown_are_spooled_and_delivered_after_restart(fresh_pair,
                                                                        m2pg_factory,
                                                                        tmp_path):
    a, b = fresh_pair
    spool = str(tmp_path / "spool")
    os.mkdir(spool)
    env = {"M2PG_SPOOL_DIR": spool}
    svc = start_service(m2pg_factory, fresh_pair, extra_env=env)
    name = unique_name("spool")
    n = 40
    b.stop()
    ids = post_each(svc, [metric(name, bucket=T + i, count=1) for i in range(n)], must_be_in=a)

    svc.stopped_by_us = True
    t0 = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    rc = svc.proc.wait(30)
    elapsed = time.monotonic() - t0
    assert rc == 0, "m2pg exited %d after SIGTERM\n%s" % (rc, svc.logs())
    assert elapsed < 25, "m2pg took %.1fs to exit after SIGTERM" % elapsed
    files = glob.glob(os.path.join(spool, "hints-*.jsonl"))
    assert files, "no hints-*.jsonl in the spool dir after SIGTERM: %r\n%s" % (
        os.listdir(spool), svc.logs())
    spooled = log_events(svc.stdout(), "hints-spooled")
    assert sum(int(e.get("metrics", 0)) for e in spooled if e.get("db") == "2") >= n, \
        "expected at=hints-spooled db=2 for %d metrics, got %r" % (n, spooled)

    b.start()
    assert not b.ids("name = '%s'" % name)
    again = m2pg_factory(fresh_pair, write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS,
                         extra_env=env)
    wait_for_ids(b, ids, HANDOFF_BOUND, what="spooled hints")
    loaded = log_events(again.stdout(), "hints-loaded")
    assert sum(int(e.get("metrics", 0)) for e in loaded if e.get("db") == "2") >= n, \
        "expected at=hints-loaded db=2 for %d metrics, got %r" % (n, loaded)
    assert not glob.glob(os.path.join(spool, "hints-*.jsonl")), \
        "spool files left after loading: %r" % os.listdir(spool)
    for db in fresh_pair:
        assert not duplicated_ids(db), db.name


# --------------------------------------------------------------------------
# repair


def test_repair_copies_what_a_database_missed_without_handoff(fresh_pair, m2pg_factory):
    a, b = fresh_pair[1], fresh_pair[0]  # A is db2
    svc = start_service(m2pg_factory, fresh_pair, extra_env={"HINTS_MAX": "0"})
    wait_until(lambda: a.ids() == b.ids(), 5, message="both databases to hold the warm-up")
    name = unique_name("repair")
    n = 50
    a.stop()
    ids = post_each(svc, [metric(name, bucket=T + i, count=1) for i in range(n)], must_be_in=b)
    # Each write A missed (once WRITE_PATIENCE_MS is over) is a hint, dropped at once.
    wait_until(lambda: dropped_hints(svc, db=2) == n, 5,
               message="at=hints-dropped db=2 to account for all %d metrics" % n)
    a.start()
    wait_until(lambda: svc.health().json.get("connected") == 2, 10,
               message="m2pg to reconnect to A")
    assert not a.ids("name = '%s'" % name), "rows reached A although HINTS_MAX=0"
    assert b.ids() - a.ids() == set(ids)

    first = repair(fresh_pair)
    assert copied(first, 2) == n, first["stdout"]
    assert copied(first, 1) == 0, first["stdout"]
    assert a.ids("name = '%s'" % name) == set(ids)
    assert a.ids() == b.ids()

    b.stop()
    series = assert_read_ok(svc.get_metrics(name="^%s$" % re.escape(name), resolution="second",
                                            **{"from": T, "to": T + n - 1}),
                            databases="1/2")
    assert_points(series[name]["count"], [(T + i, 1) for i in range(n)])
    b.start()

    second = repair(fresh_pair)
    assert (copied(second, 1), copied(second, 2)) == (0, 0), second["stdout"]
    for db in fresh_pair:
        assert not duplicated_ids(db), db.name


# --------------------------------------------------------------------------
# gc


def test_gc_deletes_expired_rows_from_reachable_databases_and_later_from_the_one_down(
        fresh_pair, m2pg_factory):
    a, b = fresh_pair
    svc = m2pg_factory(fresh_pair)
    for db in fresh_pair:
        db.wait_for_schema()
    assert not svc.terminate()

    name = unique_name("gc")
    t = now()
    old = [new_id() for _ in range(5)]
    new = [new_id() for _ in range(5)]
    rows = ([row(i, t - 3 * DAY + k, name) for k, i in enumerate(old)]
            + [row(i, t - k, name) for k, i in enumerate(new)])
    for db in fresh_pair:
        db.insert(rows)
    env = {"RETENTION": "1d", "REPAIR_LOOKBACK": "0s"}

    b.stop()
    rc, out, err = run_maint(["gc", "--once"], fresh_pair, env)
    assert rc == 0, (rc, out, err)
    assert a.ids() == set(new), "A after gc: %r" % (a.ids(),)
    gcs = {e["db"]: int(e["deleted"]) for e in log_events(out, "gc")}
    assert gcs == {"1": 5}, "at=gc lines: %r\n%s" % (gcs, out)

    b.start()
    assert b.ids() == set(old) | set(new), "B was down during gc but lost rows"
    rc, out, err = run_maint(["gc", "--once"], fresh_pair, env)
    assert rc == 0, (rc, out, err)
    assert b.ids() == set(new), "B after the second gc: %r" % (b.ids(),)
    assert a.ids() == set(new)
    gcs = {e["db"]: int(e["deleted"]) for e in log_events(out, "gc")}
    assert gcs == {"1": 0, "2": 5}, "at=gc lines: %r\n%s" % (gcs, out)


def test_repair_does_not_copy_rows_older_than_retention(fresh_pair, m2pg_factory):
    a, b = fresh_pair
    m2pg_factory(fresh_pair)
    for db in fresh_pair:
        db.wait_for_schema()
    name = unique_name("expired")
    t = now()
    expired, recent = new_id(), new_id()
    b.insert([row(expired, t - 2 * DAY, name)])

    summary = repair(fresh_pair, {"RETENTION": "1d"})
    assert copied(summary, 1) == 0, summary["stdout"]
    assert not a.has_id(expired)

    # The same run copies a row that is within retention, but still not the expired one.
    b.insert([row(recent, t - 60, name)])
    summary = repair(fresh_pair, {"RETENTION": "1d"})
    assert copied(summary, 1) == 1, summary["stdout"]
    assert a.ids() == {recent.lower()}
    assert b.ids() == {expired.lower(), recent.lower()}


def test_repair_rounds_to_whole_hours_but_not_back_past_retention(fresh_pair):
    """Repair compares whole rolled-up hours by their rollups, rounding its range out to
    them, except the hour holding RETENTION's cutoff: of its missing rows, only those after
    the cutoff are copied."""
    a, b = fresh_pair
    rc, out, err = run_maint(["migrate"], fresh_pair)
    assert rc == 0, out + err
    hour = (now() - 3 * 3600) // 3600 * 3600
    name = unique_name("cutoff")
    before, after = new_id(), new_id()
    for db in fresh_pair:
        db.insert([row(before, hour + 600, name), row(after, hour + 3000, name)])
    gc = ["gc", "--once"]
    rc, out, err = run_maint(gc, fresh_pair, {"REPAIR_LOOKBACK": "0s"})
    assert rc == 0, out + err
    a.psql("DELETE FROM metrics WHERE name = '%s'" % name)
    rc, out, err = run_maint(gc, fresh_pair, {"REPAIR_LOOKBACK": "0s"})
    assert rc == 0, out + err

    cutoff = hour + 1800  # mid-hour; the seconds repair takes to start move it a little later
    summary = repair(fresh_pair, {"RETENTION": "%ds" % (now() - cutoff)})
    assert copied(summary, 1) == 1, summary["stdout"]
    assert a.ids("name = '%s'" % name) == {after.lower()}


# --------------------------------------------------------------------------
# stopping the process under load


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_under_load_exits_0_with_every_acknowledged_write_in_both_databases(
        fresh_pair, m2pg_factory, sig):
    svc = start_service(m2pg_factory, fresh_pair)
    name = unique_name("stop")
    with Load(svc, name) as load:
        wait_until(lambda: load.count() >= 200, 30, message="200 posts")
        svc.stopped_by_us = True
        t0 = time.monotonic()
        svc.proc.send_signal(sig)
        rc = svc.proc.wait(30)
        elapsed = time.monotonic() - t0
    assert rc == 0, "m2pg exited %d after %s\n%s" % (rc, sig.name, svc.logs())
    assert elapsed < 25, "m2pg took %.1fs to exit after %s" % (elapsed, sig.name)
    assert load.statuses() <= {201, 503}, load.statuses()

    acknowledged = load.acknowledged()
    assert len(acknowledged) >= 200
    for db in fresh_pair:
        missing = acknowledged - db.ids("name = '%s'" % name)
        assert not missing, ("%d of %d acknowledged writes are not in %s after a graceful "
                             "exit, e.g. %s" % (len(missing), len(acknowledged), db.name,
                                                sorted(missing)[:5]))
        assert not duplicated_ids(db), db.name


def test_kill9_under_load_loses_no_acknowledged_write(fresh_pair, m2pg_factory):
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    name = unique_name("kill9")
    with Load(svc, name) as load:
        wait_until(lambda: load.count() >= 200, 30, message="200 posts")
        svc.stopped_by_us = True
        svc.proc.kill()
        svc.proc.wait(10)
    acknowledged = load.acknowledged()
    assert len(acknowledged) >= 200
    stored = a.ids("name = '%s'" % name) | b.ids("name = '%s'" % name)
    missing = acknowledged - stored
    assert not missing, "%d of %d acknowledged writes are in neither database, e.g. %s" % (
        len(missing), len(acknowledged), sorted(missing)[:5])


def test_shutdown_with_a_read_stuck_on_a_hung_database_exits_0(pg_factory, m2pg_factory):
    # Three databases: db2 hangs, db1 and db3 disagree on a group, so the read waits in its
    # aggregate phase and would go on to fetch rows. SIGTERM: the grace period
    # (SHUTDOWN_GRACE_MS) runs out with the read in flight; ending it then must not touch the
    # freed HTTP layer.
    grace_s = 3
    dbs = [pg_factory("db1"), pg_factory("db2"), pg_factory("db3")]
    svc = m2pg_factory(dbs, write_timeout_ms=WRITE_MS, read_timeout_ms=60000,
                       extra_env={"WRITE_PATIENCE_MS": str(WRITE_MS),
                                  "SHUTDOWN_GRACE_MS": str(grace_s * 1000)})
    wait_until(lambda: svc.health().json.get("connected") == 3, 10,
               message="m2pg to connect to every database")
    for db in dbs:
        db.wait_for_schema()
    name = unique_name("stuck")
    shared = {"id": new_id(), "bucket": T, "name": name, "count": 1}
    dbs[0].insert([shared])
    dbs[2].insert([shared, {"id": new_id(), "bucket": T + 1, "name": name, "count": 2}])
    answers = []

    def read():
        try:
            answers.append(svc.get_metrics(timeout=60, name=name, resolution="hour",
                                           **{"from": T, "to": T + 60}).status)
        except OSError as e:  # the loop ended before the answer could be written
            answers.append(type(e).__name__)

    dbs[1].pause()
    try:
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(1)
        svc.stopped_by_us = True
        t0 = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        rc = svc.proc.wait(40)
        elapsed = time.monotonic() - t0
    finally:
        dbs[1].resume()
    assert rc == 0, "m2pg exited %d\n%s" % (rc, svc.logs())
    assert grace_s - 0.5 < elapsed < grace_s + 10, "m2pg took %.1fs to exit" % elapsed
    reader.join(10)
    assert answers and answers[0] != 200, answers  # it never had all it needed to answer
