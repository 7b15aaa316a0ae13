"""One copy failing costs nothing: database health drives the fan-out.

A database that is down is skipped at once by reads and writes; one that missed a
deadline (hung) is suspect and waited for only a short straggler window once the
others have answered.  Overloaded writes are refused before anything is stored, and
the two kinds of 503 say which is which.  Bounds on times are fault timeouts."""

import json
import threading
import time

from m2pg_sys import (assert_created, assert_points, assert_read_ok, dechunk, metric, post_until_landed,
                      raw_get, run_cli, unique_name, wait_until)

WRITE_MS = 500
READ_MS = 3000
T = 1355202720


def start(m2pg_factory, dbs, **env):
    extra = {"STRAGGLER_MS": "100"}
    extra.update(env)
    svc = m2pg_factory(dbs, write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS, extra_env=extra)
    svc.dbs = dbs
    post_until_landed(svc, dbs, timeout=15, prefix="warmup")
    return svc


def timed_read(svc, name):
    t0 = time.monotonic()
    r = svc.get_metrics(name=name, resolution="second", timeout=15, **{"from": T, "to": T + 60})
    return r, time.monotonic() - t0


def db_states(svc):
    return [d["state"] for d in svc.health().json["states"]]


def test_stopped_database_is_skipped_by_every_read(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair)
    name = unique_name("down")
    for i in range(3):
        assert_created(svc.post(metric(name, bucket=T + i, count=1)))
    db2.stop()
    wait_until(lambda: db_states(svc) == ["up", "down"], 10, message="/health to say db 2 is down")

    slow = []
    for _ in range(20):
        r, elapsed = timed_read(svc, "^%s$" % name)
        series = assert_read_ok(r, databases="1/2")
        assert_points(series[name]["count"], [(T + i, 1) for i in range(3)])
        if elapsed >= 0.25:
            slow.append(elapsed)
    assert not slow, "reads with a database down took %s s" % slow

    # Writes go on too, to the database that is up, well within the write timeout.
    t0 = time.monotonic()
    mid = assert_created(svc.post(metric(name, bucket=T + 10, count=1)))
    assert time.monotonic() - t0 < WRITE_MS / 1000
    assert db1.has_id(mid)

    db2.start()
    wait_until(lambda: db_states(svc) == ["up", "up"], 10, message="db 2 back up")
    # The write it missed reaches it as a hint.
    wait_until(lambda: db2.has_id(mid), 10, message="the missed write to reach db 2")


def test_hung_database_costs_one_timeout_then_a_straggler_window(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair)
    name = unique_name("hung")
    assert_created(svc.post(metric(name, bucket=T, count=2)))
    wait_until(lambda: db2.count_rows("name = '%s'" % name) == 1, 5, message="row in db 2")
    db2.pause()

    r, first = timed_read(svc, "^%s$" % name)
    series = assert_read_ok(r, databases="1/2")
    assert_points(series[name]["count"], [(T, 2)])
    assert first < READ_MS / 1000 + 1.5

    times = []
    for _ in range(10):
        r, elapsed = timed_read(svc, "^%s$" % name)
        series = assert_read_ok(r, databases="1/2")
        assert_points(series[name]["count"], [(T, 2)])
        times.append(elapsed)
    assert max(times) < 0.5, "reads after the first took %s s" % times
    assert db_states(svc)[1] in ("suspect", "down")

    # Writes stay within the write timeout meanwhile.
    for i in range(5):
        t0 = time.monotonic()
        mid = assert_created(svc.post(metric(name, bucket=T + 1 + i, count=1)))
        assert time.monotonic() - t0 < WRITE_MS / 1000 + 0.3
        assert db1.has_id(mid)

    db2.resume()
    wait_until(lambda: db_states(svc) == ["up", "up"] and
               timed_read(svc, "^%s$" % name)[0].header("M2pg-Databases") == "2/2", 20,
               interval=0.3, message="db 2 answering again")


def test_health_lists_each_database(service):
    states = service.health().json["states"]
    assert [s["db"] for s in states] == [1, 2]
    assert all(s["state"] == "up" for s in states)
    assert all(s["connections"] >= 1 for s in states)


def test_write_refused_when_every_database_is_down_stores_nothing(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair, HINTS_MAX="1000")
    db1.stop()
    db2.stop()
    wait_until(lambda: db_states(svc) == ["down", "down"], 10, message="both down")
    name = unique_name("refused")
    t0 = time.monotonic()
    r = svc.post(metric(name, bucket=T, count=1))
    assert time.monotonic() - t0 < 0.3, "a write to no database must be refused at once"
    assert r.status == 503
    assert r.json["stored"] is False
    assert r.header("Retry-After")
    db1.start()
    db2.start()
    post_until_landed(svc, [db1, db2], timeout=15, prefix="back")
    time.sleep(1)
    assert db1.count_rows("name = '%s'" % name) == 0
    assert db2.count_rows("name = '%s'" % name) == 0


def test_write_timed_out_on_a_hung_database_says_stored_unknown(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = m2pg_factory([db1], write_timeout_ms=WRITE_MS, read_timeout_ms=READ_MS)
    post_until_landed(svc, [db1], timeout=15, prefix="warmup")
    db1.pause()
    try:
        r = svc.post(metric(unique_name("unknown"), bucket=T, count=1), timeout=10)
        assert r.status == 503
        assert r.json["stored"] == "unknown"
    finally:
        db1.resume()


def test_acknowledged_batches_keep_up_under_overload(fresh_pair, m2pg_factory):
    """Many clients posting large batches: every 503 says stored false or unknown,
    and what was refused is not stored later behind the client's back."""
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair, WRITE_TIMEOUT_MS="300")
    prefix = unique_name("load")
    results = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 6

    def client(k):
        i = 0
        while time.monotonic() < stop_at:
            batch = [metric("%s.%d" % (prefix, k), bucket=T + i * 1000 + j, count=1)
                     for j in range(1000)]
            try:
                r = svc.post(batch, timeout=10)
            except OSError:
                continue
            with lock:
                results.append((r.status, r.json if r.status == 503 else None,
                                "%s.%d" % (prefix, k), i))
            i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results, "no request completed"
    statuses = {s for s, _, _, _ in results}
    assert statuses <= {201, 503}, statuses
    for status, body, name, i in results:
        if status == 503:
            assert body["stored"] in (False, "unknown"), body
    # Refused batches (stored: false) are in no database, now or after the hints drain.
    time.sleep(2)
    refused = [(name, i) for status, body, name, i in results
               if status == 503 and body["stored"] is False]
    if refused:
        ranges = ", ".join("('%s', to_timestamp(%d), to_timestamp(%d))" % (
            name, T + i * 1000, T + i * 1000 + 999) for name, i in refused)
        where = ("(name, bucket) in (select m.name, m.bucket from metrics m join (values %s) "
                 "as r(name, lo, hi) on m.name = r.name and m.bucket between r.lo and r.hi)"
                 % ranges)
        assert db1.count_rows(where) == 0 and db2.count_rows(where) == 0, \
            "%d refused batches, some stored" % len(refused)
    # Acknowledged batches are in both databases once the hints drained.
    acked = [(n, i) for s, _, n, i in results if s == 201]
    assert acked, "no batch was acknowledged under load"
    for name, i in acked[:20]:
        where = "name = '%s' and bucket between to_timestamp(%d) and to_timestamp(%d)" % (
            name, T + i * 1000, T + i * 1000 + 999)
        wait_until(lambda: db1.count_rows(where) == 1000 and db2.count_rows(where) == 1000, 20,
                   message="acknowledged batch in both databases")


def test_one_connection_is_refused_as_configuration():
    code, _, err = run_cli(["web"], env_overrides={"DB_CONNECTIONS": "1",
                                                   "DATABASE_URLS": "postgres://127.0.0.1:1/x"})
    assert code == 2
    assert "DB_CONNECTIONS" in err


def test_tiny_values_cannot_break_aggregate_reads(service):
    """A product of two tiny values underflows in PostgreSQL (an error): m2pg refuses such
    counts and means, and answers reads over rows loaded without it from rows."""
    name = unique_name("tiny")
    r = service.post({"bucket": T, "name": name, "count": 1e-200, "mean": 1e-200})
    assert r.status == 422 and r.json["field"] == "count"
    # min, max and the percentiles are never multiplied: tiny ones are fine.
    assert_created(service.post({"bucket": T, "name": name, "count": 1, "min": 5e-300}))
    for db in service.dbs:
        db.insert([{"id": "0190a5d0-0000-7000-8000-000000000001", "bucket": T + 60, "name": name,
                    "count": 1e-200, "mean": 1e-200}])
    r = service.get_metrics(name="^%s$" % name, resolution="hour",
                            **{"from": T - 3600, "to": T + 3600})
    series = assert_read_ok(r)
    hour = T - T % 3600
    assert_points(series[name]["count"], [(hour, 1 + 1e-200)])
    assert_points(series[name]["min"], [(hour, 5e-300)])


def test_stats_in_prometheus_text(service):
    name = unique_name("stats")
    assert_created(service.post([metric(name, bucket=T + i, count=1) for i in range(3)]), n=3)
    service.get_metrics(name="^%s$" % name, **{"from": T, "to": T + 10})
    # A 201 waits for the first database only: the other's insert counter comes when it commits.
    wait_until(lambda: all('m2pg_rows_inserted_total{db="%d"}' % i in
                           service.request("GET", "/stats").body.decode() for i in (1, 2)), 10,
               message="both databases to commit the batch")
    r = service.request("GET", "/stats")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain")
    text = r.body.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    assert values['m2pg_requests_total{route="write",status="201"}'] >= 1
    assert values['m2pg_requests_total{route="read",status="200"}'] >= 1
    assert values["m2pg_metrics_accepted_total"] >= 3
    assert values['m2pg_request_seconds_count{route="write"}'] >= 1
    assert values['m2pg_request_seconds_bucket{route="write",le="+Inf"}'] == \
        values['m2pg_request_seconds_count{route="write"}']
    assert values['m2pg_database_state{db="1",state="up"}'] == 1
    assert values['m2pg_database_state{db="2",state="down"}'] == 0
    assert values['m2pg_rows_inserted_total{db="1"}'] >= 3
    assert values['m2pg_database_connections{db="2"}'] >= 1
    assert "m2pg_writes_refused_total" in values and "m2pg_reads_refused_total" in values
    assert 'm2pg_hints{db="1"}' in values


def test_reads_past_the_concurrency_cap_are_refused(fresh_pair, m2pg_factory):
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair, READ_CONCURRENCY="2")
    name = unique_name("cap")
    assert_created(svc.post(metric(name, bucket=T, count=1)))
    db1.pause()
    db2.pause()
    try:
        results = []

        def get():
            results.append(svc.get_metrics(name="^%s$" % name, timeout=15,
                                           **{"from": T, "to": T + 10}).status)

        threads = [threading.Thread(target=get) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        r = svc.get_metrics(name="^%s$" % name, **{"from": T, "to": T + 10})
        assert r.status == 503 and r.header("Retry-After")
    finally:
        db1.resume()
        db2.resume()
    for t in threads:
        t.join()


def test_hung_database_does_not_hold_a_large_streamed_read(fresh_pair, m2pg_factory):
    """More rows than a stream buffers: the database that answers pauses while the merge waits
    for the hung one's first row, which only the straggler window ends."""
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair)
    name = unique_name("bigwait")
    rows = [{"id": "0190a5d0-0000-7000-8000-%012x" % i, "bucket": T + 60 * i, "name": name,
             "count": 1, "mean": i} for i in range(2000)]
    for db in fresh_pair:
        for k in range(0, len(rows), 500):
            db.insert(rows[k:k + 500])
    db2.pause()
    try:
        def read():
            t0 = time.monotonic()
            r = svc.get_metrics(name="^%s$" % name, resolution="minute", timeout=15,
                                **{"from": T, "to": T + 60 * 2000})
            return r, time.monotonic() - t0

        r, first = read()  # waits out the read timeout: db 2 becomes suspect
        assert_read_ok(r, databases="1/2")
        times = []
        for _ in range(5):
            r, elapsed = read()
            series = assert_read_ok(r, databases="1/2")
            assert len(series[name]["count"]) == 2000
            times.append(elapsed)
        assert max(times) < 0.5 + 0.5, "large reads with a hung database took %s s" % times
    finally:
        db2.resume()


def test_hung_database_loses_no_values_of_its_slice(fresh_pair, m2pg_factory):
    """At an hour or a day each database sends the values of its own slice of the range, and
    every database the digests compared. A database that hangs with its slice unsent costs the
    read the aggregate phase's timeout, then the others send every value: none is missing."""
    db1, db2 = fresh_pair
    svc = start(m2pg_factory, fresh_pair)
    name = unique_name("slices")
    t0 = (T // 3600) * 3600
    rows = [{"id": "0190a5d1-0000-7000-8000-%012x" % i, "bucket": t0 + 600 * i, "name": name,
             "count": 1 + i, "mean": i} for i in range(6 * 24)]
    for db in fresh_pair:
        db.insert(rows)
    counts, sums = {}, {}
    for r in rows:
        h = r["bucket"] // 3600 * 3600
        counts[h] = counts.get(h, 0) + r["count"]
        sums[h] = sums.get(h, 0) + r["count"] * r["mean"]
    expected = sorted(counts.items())
    means = [(h, sums[h] / c) for h, c in expected]  # weighted by count

    def read():
        t = time.monotonic()
        r = svc.get_metrics(name="^%s$" % name, resolution="hour", timeout=15,
                            **{"from": t0, "to": t0 + 24 * 3600 - 1})
        return r, time.monotonic() - t

    r, _ = read()
    series = assert_read_ok(r)
    assert_points(series[name]["count"], expected)
    assert_points(series[name]["mean"], means)
    assert "read-values-missing" not in svc.stdout(), "both slices came, yet the read asked again"

    db2.pause()
    try:
        r, first = read()  # db 2 was up: it had a slice, which only the timeout ends
        series = assert_read_ok(r, databases="1/2")
        assert_points(series[name]["count"], expected)
        assert_points(series[name]["mean"], means)
        assert first < READ_MS / 1000 + 1.5
        assert "at=read-values-missing fallback=whole" in svc.stdout()
        times = []
        for _ in range(5):  # suspect now: it sends digests only, and is not waited for
            r, elapsed = read()
            assert_points(assert_read_ok(r, databases="1/2")[name]["count"], expected)
            times.append(elapsed)
        assert max(times) < 0.5, "reads with a hung database took %s s" % times
    finally:
        db2.resume()


def test_health_and_writes_are_answered_while_large_reads_stream(fresh_pair, m2pg_factory):
    """Two reads of 200,000 minute rows each, from databases and a client that all keep up:
    the read's merge and its databases' connections wake each other, and the worker's loop must
    still poll its other sockets between them. Before it did, /health waited for seconds."""
    svc = start(m2pg_factory, fresh_pair)
    prefix = unique_name("stream")
    points = 200000
    for db in fresh_pair:  # the same ids in both: each row is read twice and counted once
        db.psql("INSERT INTO metrics (id, bucket, name, count, mean) SELECT md5(n || '-' || i)::uuid, "
                "to_timestamp(%d + 60 * i), '%s.' || n, 1, i FROM generate_series(1, 2) n, "
                "generate_series(0, %d) i; INSERT INTO metric_names VALUES ('%s.1'), ('%s.2'); "
                "ANALYZE metrics" % (T, prefix, points - 1, prefix, prefix), timeout=120)
    answers = {}

    def read(n):  # the client keeps up: it reads the answer as fast as it comes
        path = "/metrics?name=%%5E%s%%5C.%d%%24&from=%d&to=%d&resolution=minute&stats=count" % (
            prefix, n, T, T + 60 * (points - 1))
        answers[n] = raw_get(svc.port, path, timeout=60)

    readers = [threading.Thread(target=read, args=(n,)) for n in (1, 2)]
    for t in readers:
        t.start()
    probes, written = [], False
    while any(t.is_alive() for t in readers):
        t0 = time.monotonic()
        assert svc.health(timeout=10).status == 200
        probes.append(time.monotonic() - t0)
        if not written and len(probes) == 5:  # within the write timeout, or it is a 503
            assert_created(svc.post(metric(prefix + ".written", bucket=T)))
            written = True
        time.sleep(0.05)
    for t in readers:
        t.join()
    for n in (1, 2):
        head, body = answers[n]
        assert head.startswith(b"HTTP/1.1 200"), head
        answer = json.loads(dechunk(body))
        assert [a["name"] for a in answer] == ["%s.%d" % (prefix, n)]
        count = answer[0]["count"]
        assert len(count) == points and all(p["value"] == 1 for p in count)
        assert [p["bucket"] for p in count[:2]] == [T, T + 60] and count[-1]["bucket"] == T + 60 * (points - 1)
    assert len(probes) >= 5, "the reads ended before the probes began: %d probes" % len(probes)
    assert written, "the reads ended before a write was sent"
    assert max(probes) < 1.0, "/health waited %.2f s while the reads streamed" % max(probes)
