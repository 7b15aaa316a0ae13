"""Durability, continued: which hints are kept when HINTS_MAX is reached, repair of rows by
the time they were written (late metrics with old buckets), and a name catalogue edited out
of band.

Each test breaks databases, so each gets fresh servers.  Waits poll with deadlines; the
bounds are generous (fault recovery, not benchmarks)."""

import re
import time

from m2pg_sys import (assert_created, assert_points, assert_read_ok, metric, post_until_landed,
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


def failed_writes(svc, db):
    return len([e for e in log_events(svc.stdout(), "write-failed") if e.get("db") == str(db)])


def dropped(svc, db, cls):
    return sum(int(e["metrics"]) for e in log_events(svc.stdout(), "hints-dropped")
               if e.get("db") == str(db) and e.get("class") == cls)


def wait_for_ids(db, ids, timeout):
    ids = {i.lower() for i in ids}
    wait_until(lambda: ids <= db.ids(), timeout, interval=0.1,
               message="%d ids to reach %s" % (len(ids), db.name))


# --------------------------------------------------------------------------
# hint priority


def test_hints_of_acknowledged_writes_are_kept_over_those_answered_503(fresh_pair,
                                                                       m2pg_factory):
    """HINTS_MAX=6 for B while B is down: 3 writes acknowledged by A, then 5 answered 503
    (A hung too), then 3 more acknowledged.  B's hints keep every acknowledged write: the
    503s beyond the room are dropped on arrival, and the acknowledged writes that come later
    push out the 503s already queued.  When B returns it gets exactly the 6 acknowledged."""
    a, b = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair, extra_env={"HINTS_MAX": "6"})
    name = unique_name("prio")
    base_failed = failed_writes(svc, 2)
    b.stop()

    acked = []
    for i in range(3):
        acked.append(assert_created(svc.post(metric(name, bucket=T + i))).lower())
    wait_until(lambda: failed_writes(svc, 2) == base_failed + 3, 10,
               message="B's failure of the 3 acknowledged writes")

    a.pause()
    refused = []
    for i in range(5):
        r = svc.post(metric(name, bucket=T + 100 + i, count=1), timeout=10)
        assert r.status == 503, "expected 503 with A hung and B down, got %r" % (r,)
        refused.append(i)
    wait_until(lambda: failed_writes(svc, 2) == base_failed + 8, 10,
               message="B's failure of the 5 writes answered 503")
    assert dropped(svc, 2, "unacked") == 2, svc.logs(60)
    assert dropped(svc, 2, "acked") == 0, svc.logs(60)

    a.resume()
    wait_until(lambda: svc.health().json.get("connected") == 1, 10,
               message="m2pg to reconnect to A")
    for i in range(3):
        acked.append(assert_created(svc.post(metric(name, bucket=T + 200 + i))).lower())
    wait_until(lambda: failed_writes(svc, 2) == base_failed + 11, 10,
               message="B's failure of the 3 later acknowledged writes")
    assert dropped(svc, 2, "unacked") == 5, svc.logs(60)
    assert dropped(svc, 2, "acked") == 0, svc.logs(60)

    b.start()
    wait_for_ids(b, acked, HANDOFF_BOUND)
    # The hints are delivered in one round, in order: nothing else of the name is coming.
    time.sleep(0.5)
    in_b = b.psql("select extract(epoch from bucket)::bigint from metrics where name = '%s' "
                  "order by 1" % name)
    assert [int(r[0]) for r in in_b] == [T, T + 1, T + 2, T + 200, T + 201, T + 202]
    # A has the 503s: they were not lost, only not handed to B (the client was told to retry).
    wait_until(lambda: a.count_rows("name = '%s'" % name) == 11, HANDOFF_BOUND,
               message="A to hold the acknowledged writes and its own hints of the 503s")
