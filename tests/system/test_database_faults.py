"""Database faults: stopped, hung, all down, restarted under load.

Each test gets fresh servers and small timeouts.  Times are asserted with
generous bounds: these are fault timeouts, not benchmarks."""

import threading
import time

import pytest

from m2pg_sys import (assert_created, assert_error, assert_points, assert_read_ok, metric,
                      post_until_landed, tail, wait_in_all, wait_until)

WRITE_MS = 500
READ_MS = 1500
T = 1355202720


def start_service(m2pg_factory, dbs):
    svc = m2pg_factory(dbs, write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS)
    svc.dbs = dbs
    # Both databases connected, schema in place and a write seen in both.
    post_until_landed(svc, dbs, timeout=10, prefix="warmup")
    return svc


def timed(fn):
    t0 = time.monotonic()
    result = fn()
    return result, time.monotonic() - t0


def write_quickly(svc, name, buckets, must_be_in):
    """POST one metric per bucket; each must be 201 within 2 s and already be
    stored in the database `must_be_in` (the one that is up)."""
    ids = []
    for b in buckets:
        r, elapsed = timed(lambda: svc.post(metric(name, bucket=b, count=1), timeout=10))
        mid = assert_created(r)
        assert elapsed < 2.0, "write took %.2fs" % elapsed
        assert must_be_in.has_id(mid), "201 for %s but the row is not in %s" % (
            mid, must_be_in.name)
        ids.append(mid)
    return ids


def read_timed(svc, name, frm, to):
    return timed(lambda: svc.get_metrics(name=name, resolution="second", timeout=15,
                                         **{"from": frm, "to": to}))


def test_one_stopped_database_does_not_stop_writes_or_reads(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    db2.stop()

    write_quickly(svc, "stopped", [T, T + 1, T + 2, T + 3, T + 4], must_be_in=db1)

    r, elapsed = read_timed(svc, "^stopped$", T, T + 10)
    assert elapsed < READ_MS / 1000 + 1, "read took %.2fs" % elapsed
    series = assert_read_ok(r, databases="1/2")
    assert_points(series["stopped"]["count"], [(T + i, 1) for i in range(5)])
    wait_until(lambda: svc.health().json.get("connected") == 1, 5,
               message="/health to report 1 connected database")


def test_hung_database_does_not_hang_writes_or_reads(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    db2.pause()

    write_quickly(svc, "hung", [T, T + 1, T + 2], must_be_in=db1)

    r, elapsed = read_timed(svc, "^hung$", T, T + 10)
    assert elapsed < READ_MS / 1000 + 1, "read took %.2fs" % elapsed
    series = assert_read_ok(r, databases="1/2")
    assert_points(series["hung"]["count"], [(T, 1), (T + 1, 1), (T + 2, 1)])

    db2.resume()
    post_until_landed(svc, fresh_pair, timeout=10, prefix="after-resume")
    mid = assert_created(svc.post(metric("after.resume", count=1)))
    wait_in_all(fresh_pair, mid, timeout=5)
    wait_until(lambda: svc.get_metrics(name="^hung$", **{"from": T, "to": T + 10})
               .header("M2pg-Databases") == "2/2", 5,
               message="reads to be answered by both databases again")


def test_all_databases_down_is_503_then_recovers_when_one_returns(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    db1.stop()
    db2.stop()

    r, elapsed = timed(lambda: svc.post(metric("down", count=1), timeout=10))
    assert_error(r, 503)
    assert r.header("Retry-After"), "503 without Retry-After: %r" % (r,)
    assert elapsed < WRITE_MS / 1000 + 1, "failed write took %.2fs" % elapsed

    r, elapsed = read_timed(svc, "down", T, T + 10)
    assert_error(r, 503)
    assert r.header("Retry-After"), "503 without Retry-After: %r" % (r,)
    assert elapsed < READ_MS / 1000 + 1, "failed read took %.2fs" % elapsed

    assert svc.health().status == 200

    db1.start()
    deadline = time.monotonic() + 5
    while True:
        r = svc.post(metric("back", count=1), timeout=10)
        if r.status == 201 or time.monotonic() > deadline:
            break
        assert_error(r, 503)
        time.sleep(0.1)
    mid = assert_created(r)
    assert db1.has_id(mid)


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_database_restarted_under_load_loses_no_acknowledged_write(fresh_pair, m2pg_factory,
                                                                   how):
    """A database goes away under a stream of writes (pg_ctl stop -m fast, or SIGKILL of
    all its processes) and comes back: every 201 is stored somewhere."""
    db1, db2 = fresh_pair
    svc = start_service(m2pg_factory, fresh_pair)
    results = []
    restarted = threading.Event()

    def writer():
        i = 0
        # At least 300 posts, and keep going until the restart is over.
        while (i < 300 or not restarted.is_set()) and i < 5000:
            try:
                r = svc.post(metric("load", bucket=T + i, count=1), timeout=10)
                results.append((r.status, r.json if r.status == 201 else r.body[:200]))
            except OSError as exc:
                results.append(("exception", repr(exc)))
            i += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(results) >= 50, 30, message="50 posts")
        if how == "stopped":
            db2.stop()
        else:
            db2.kill9()
        n, down_until = len(results), time.monotonic() + 0.5
        wait_until(lambda: len(results) >= n + 50 and time.monotonic() > down_until, 30,
                   message="50 posts while the database is down")
        db2.start()
        n = len(results)
        wait_until(lambda: len(results) >= n + 20, 30, message="20 posts after the restart")
    finally:
        restarted.set()
        thread.join(120)
    assert not thread.is_alive(), "writer thread still running"

    failures = [r for r in results if r[0] != 201]
    assert not failures, "%d of %d writes failed, e.g. %r" % (
        len(failures), len(results), failures[:5])
    acknowledged = {mid.lower() for _, mid in results}
    stored = db1.ids("name = 'load'") | db2.ids("name = 'load'")
    missing = acknowledged - stored
    assert not missing, "%d acknowledged writes are in neither database, e.g. %s" % (
        len(missing), sorted(missing)[:5])

    post_until_landed(svc, [db2], timeout=10, prefix="after-restart")


def test_hung_database_at_start_does_not_block_startup(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    db2.pause()
    svc = m2pg_factory(fresh_pair, write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS)
    assert svc.health().json.get("databases") == 2

    write_quickly(svc, "hung.at.start", [T, T + 1], must_be_in=db1)
    r, elapsed = read_timed(svc, "^hung\\.at\\.start$", T, T + 10)
    assert elapsed < READ_MS / 1000 + 1, "read took %.2fs" % elapsed
    series = assert_read_ok(r, databases="1/2")
    assert_points(series["hung.at.start"]["count"], [(T, 1), (T + 1, 1)])

    db2.resume()
    post_until_landed(svc, fresh_pair, timeout=10, prefix="after-resume")


def test_a_unique_violation_on_new_ids_is_retried_with_on_conflict(fresh_pair, m2pg_factory):
    """m2pg inserts the rows of a write whose ids it just made without ON CONFLICT (no
    database can hold them yet). Should the database refuse one as a duplicate all the same,
    nothing of the statement was stored: it is sent again as a retry is, with ON CONFLICT DO
    NOTHING, and lands, with no failed insert and no hint. Here database 1 refuses the
    statement once, as a unique index would (a trigger raising unique_violation)."""
    svc = start_service(m2pg_factory, fresh_pair)
    db1 = fresh_pair[0]
    db1.psql("CREATE SEQUENCE refused_once; "
             "CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
             "IF NEW.name = 'dup.refused' AND nextval('refused_once') = 1 THEN "
             "RAISE unique_violation USING MESSAGE = 'refused once for the test'; END IF; "
             "RETURN NEW; END $f$; "
             "CREATE TRIGGER refuse_once BEFORE INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION refuse_once()")
    ids = assert_created(svc.post([metric("dup.refused", bucket=T + i, count=i + 1) for i in range(3)]), 3)
    for mid in ids:
        wait_in_all(fresh_pair, mid, timeout=5)
    # the first row refused (1), then the retry's three rows (2 to 4): one retry
    assert db1.scalar("SELECT nextval('refused_once')") == "5"
    logs = svc.stdout()
    assert "at=insert-retry db=1" in logs and "sqlstate=23505" in logs, tail(logs, 20)
    assert "at=insert-error db=1" not in logs, tail(logs, 20)
    assert "at=hints-delivered db=1" not in logs, tail(logs, 20)
    # A client's own ids are never sent without ON CONFLICT: the same write again stores
    # nothing twice, and is not a retry.
    svc.post([metric("dup.client", bucket=T, count=1, id="01890a5d-ac96-774b-bcce-b302099a8057")])
    svc.post([metric("dup.client", bucket=T, count=1, id="01890a5d-ac96-774b-bcce-b302099a8057")])
    for db in fresh_pair:
        wait_until(lambda: db.count_rows("name = 'dup.client'") == 1, 5)
    assert svc.stdout().count("at=insert-retry") == 1
