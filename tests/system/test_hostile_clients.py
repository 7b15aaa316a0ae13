"""Hostile clients are contained: a connection flood, slow headers, unfinished bodies,
smuggled requests, HEAD, and bodies at and past the limit."""

import http.client
import json
import os
import resource
import select
import socket
import time

import pytest

from m2pg_sys import (MIB, assert_created, assert_error, metric, unique_name, wait_until)

T = 1355202720
HZ = os.sysconf("SC_CLK_TCK")


def connect(port, timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def read_response(s, timeout=10):
    s.settimeout(timeout)
    resp = http.client.HTTPResponse(s, method="HEAD" if getattr(s, "_head", False) else None)
    resp.begin()
    body = resp.read()
    return resp.status, resp.msg, body


def health_on(port, timeout=3):
    s = connect(port, timeout=timeout)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(s, timeout)
        return status, json.loads(body)
    finally:
        s.close()


def sanitized(svc):
    """AddressSanitizer keeps freed memory in quarantine: RSS says nothing then."""
    with open(svc.binary, "rb") as f:
        return b"__asan_init" in f.read()


def log_bytes(svc):
    return os.path.getsize(svc.stdout_path) + os.path.getsize(svc.stderr_path)


def test_flood_past_max_clients_pauses_accepting_without_spinning(pg_pair, m2pg_factory):
    svc = m2pg_factory(pg_pair, extra_env={"MAX_CLIENTS": "50"})
    flood = []
    try:
        for _ in range(50):
            flood.append(connect(svc.port))
        # The cap is reached: more connections wait in the kernel's queue, unanswered.
        extra = [connect(svc.port) for _ in range(30)]
        flood += extra
        with pytest.raises(OSError):
            health_on(svc.port, timeout=1.0)
        cpu0, log0 = cpu_seconds(svc.proc.pid), log_bytes(svc)
        time.sleep(3)
        cpu = cpu_seconds(svc.proc.pid) - cpu0
        assert cpu < 0.5, "%.2f s of CPU in 3 s while paused at the cap" % cpu
        assert log_bytes(svc) - log0 < 4096
        # Some flood connections go: the queue is served, and /health answers.
        for s in flood[:50]:
            s.close()
        del flood[:50]
        status, body = health_on(svc.port, timeout=5)
        assert status == 200 and body["status"] == "ok"
    finally:
        for s in flood:
            s.close()
    # Every slot came back: the cap is reached again exactly, not earlier, several times.
    for _ in range(3):
        wait_until(lambda: health_on(svc.port)[0] == 200, 5, message="health after the flood")
        conns = [connect(svc.port) for _ in range(49)]
        try:
            assert health_on(svc.port, timeout=3)[0] == 200  # the 50th slot
        finally:
            for s in conns:
                s.close()
    assert "at=client-cap" in svc.stdout()


def test_out_of_descriptors_backs_off_instead_of_spinning(pg_pair, m2pg_factory):
    # A cap above what the process may open: accept() itself fails with EMFILE.
    svc = m2pg_factory(pg_pair, extra_env={"MAX_CLIENTS": "100000", "DB_CONNECTIONS": "2"})
    # Database connections set up first, so that the descriptors counted below are all of them.
    wait_until(lambda: all(s["connections"] == 2 for s in svc.health().json["states"]), 10,
               message="every database connection to be set up")
    soft, hard = resource.prlimit(svc.proc.pid, resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/%d/fd" % svc.proc.pid))
    resource.prlimit(svc.proc.pid, resource.RLIMIT_NOFILE, (open_now + 20, hard))
    flood = []
    try:
        for _ in range(60):
            flood.append(connect(svc.port))
        time.sleep(0.5)
        cpu0, log0 = cpu_seconds(svc.proc.pid), log_bytes(svc)
        time.sleep(3)
        cpu = cpu_seconds(svc.proc.pid) - cpu0
        assert cpu < 0.5, "%.2f s of CPU in 3 s at the descriptor limit" % cpu
        grown = log_bytes(svc) - log0
        assert grown < 4096, "the log grew %d bytes in 3 s" % grown
        assert "at=accept-error" in svc.stdout()
        for s in flood[:50]:
            s.close()
        del flood[:50]
        wait_until(lambda: health_on(svc.port)[0] == 200, 10, message="health after EMFILE")
    finally:
        for s in flood:
            s.close()
        resource.prlimit(svc.proc.pid, resource.RLIMIT_NOFILE, (soft, hard))


def test_slow_header_bytes_are_cut_off_at_the_request_deadline(pg_pair, m2pg_factory):
    svc = m2pg_factory(pg_pair, extra_env={"REQUEST_TIMEOUT_MS": "1500"})
    s = connect(svc.port, timeout=10)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
    t0 = time.monotonic()
    got = b""
    try:
        for i in range(len(head)):
            s.sendall(head[i:i + 1])  # a byte every 100 ms: each resets an idle timer
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                got = s.recv(4096)
                break
            assert time.monotonic() - t0 < 8, "still open after 8 s"
    except (BrokenPipeError, ConnectionResetError):
        pass
    elapsed = time.monotonic() - t0
    s.close()
    assert 1.2 < elapsed < 4.0, "cut off after %.2f s" % elapsed
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert b'"error"' in got
    # An idle keep-alive connection is not subject to it.
    s = connect(svc.port, timeout=10)
    try:
        time.sleep(2.5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
    finally:
        s.close()


def test_unfinished_bodies_past_body_memory_max_are_refused(pg_pair, m2pg_factory):
    cap = 16 * MIB
    svc = m2pg_factory(pg_pair, extra_env={"BODY_MEMORY_MAX": str(cap)})
    rss0 = rss_bytes(svc.proc.pid)
    body = b"[" + b" " * (MIB - 1)
    head = (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MIB + 1))
    conns, refused = [], 0
    try:
        for _ in range(60):  # 60 MiB declared and nearly all sent, against a 16 MiB cap
            s = connect(svc.port, timeout=10)
            conns.append(s)
            try:
                s.sendall(head + body)
            except (BrokenPipeError, ConnectionResetError):
                pass
        pending, deadline = list(conns), time.monotonic() + 15
        while refused < 40 and pending and time.monotonic() < deadline:
            for s in select.select(pending, [], [], 0.5)[0]:
                pending.remove(s)
                data = s.recv(4096)
                if data.startswith(b"HTTP/1.1 503 "):
                    assert b"Retry-After: 1" in data
                    refused += 1
        assert refused >= 40, "only %d of 60 refused" % refused
        peak = rss_bytes(svc.proc.pid) - rss0
        assert sanitized(svc) or peak < cap + 24 * MIB, "RSS grew %d MiB" % (peak // MIB)
        status, _ = health_on(svc.port)
        assert status == 200
    finally:
        for s in conns:
            s.close()
    # Once they are gone the memory goes back.
    wait_until(lambda: sanitized(svc) or rss_bytes(svc.proc.pid) - rss0 < 8 * MIB, 10,
               message="RSS back near its start (now +%d MiB)"
               % ((rss_bytes(svc.proc.pid) - rss0) // MIB))
    # And new bodies are taken again.
    assert_created(svc.post(metric(unique_name("after"), count=1)))


@pytest.mark.parametrize("framing", [
    b"Content-Length: %(n)d\r\nContent-Length: %(m)d\r\n",
    b"Content-Length: %(n)d\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
], ids=["two-lengths", "length-and-chunked", "unknown-coding"])
def test_ambiguous_framing_is_400_and_nothing_of_it_stored(service, framing):
    hidden = unique_name("smuggled")
    first = json.dumps(metric(unique_name("front"), bucket=T, count=1)).encode()
    second = json.dumps(metric(hidden, bucket=T, count=1)).encode()
    smuggled = (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                % len(second)) + second
    if b"chunked" in framing:
        # A valid chunked body, so that the HTTP layer hands the request over.
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(first), first) + smuggled
    else:
        payload = first + smuggled
    head = (b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
            + framing % {b"n": len(first), b"m": len(payload)} + b"\r\n")
    s = connect(service.port, timeout=10)
    try:
        s.sendall(head + payload)
        status, headers, body = read_response(s)
        assert status == 400
        if b"Content-Length" not in framing or b"chunked" not in framing:
            # (Content-Length with chunked is refused by libevent itself, in HTML.)
            assert "error" in json.loads(body)
        assert headers.get("Connection", "").lower() == "close"
        s.settimeout(5)
        rest = s.recv(65536)
        assert rest == b"", "a second answer followed: %r" % rest[:200]
    finally:
        s.close()
    # The front metric (maybe) and the smuggled one: neither is stored anywhere.
    assert_created(service.post(metric(unique_name("sentinel"), count=1)))
    time.sleep(0.3)
    for db in service.dbs:
        assert db.count_rows("name = '%s'" % hidden) == 0
        assert db.count_rows("name like 'front%'") == 0


def test_head_on_a_kept_alive_connection_then_get(service):
    s = connect(service.port, timeout=10)
    try:
        for path, allow in ((b"/health", None), (b"/metrics", None), (b"/nowhere", None)):
            s.sendall(b"HEAD " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = http.client.HTTPResponse(s, method="HEAD")
            resp.begin()
            assert resp.read() == b""
            if path == b"/health":
                assert resp.status == 200
                length = int(resp.getheader("Content-Length"))
            elif path == b"/metrics":
                assert resp.status == 200
                assert resp.getheader("Content-Type").startswith("application/json")
            else:
                assert resp.status == 404
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = http.client.HTTPResponse(s)
        resp.begin()
        body = resp.read()
        assert resp.status == 200 and json.loads(body)["status"] == "ok"
        assert len(body) == length  # HEAD told the length a GET gets
        # Other methods: 405 with Allow and a body of the stated length.
        s.sendall(b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = http.client.HTTPResponse(s)
        resp.begin()
        body = resp.read()
        assert resp.status == 405
        assert resp.getheader("Allow") == "GET, HEAD, POST"
        assert len(body) == int(resp.getheader("Content-Length"))
        assert "error" in json.loads(body)
    finally:
        s.close()


def longest_batch(prefix):
    """10,000 metrics with every field at its longest: the documented batch limit."""
    items = []
    salt = int.from_bytes(os.urandom(2), "big") & 0xfff
    ms = int(time.time() * 1000)
    for i in range(10000):
        name = ("%s.%05d." % (prefix, i)).ljust(255, "x")
        m = {"bucket": "2012-12-11T05:12:00.123456789+01:00", "name": name,
             "id": "%08x-%04x-7%03x-b%03x-%012x" % (ms >> 16, ms & 0xffff, salt, salt, i + 1)}
        for stat in ("count", "mean", "median", "min", "max", "perc95", "perc99", "last"):
            m[stat] = 1.2345678901234567e+99
        items.append(m)
    return json.dumps(items, indent=1).encode()


def test_a_full_batch_with_every_statistic_fits(pg_pair, m2pg_factory):
    # Committing 10,000 long rows takes longer than the default write timeout on a shared
    # machine; this is about the body limit, not the databases' speed.
    service = m2pg_factory(pg_pair, write_timeout_ms=30000)
    service.dbs = pg_pair
    prefix = unique_name("full")
    body = longest_batch(prefix)
    assert 6 * MIB < len(body) < 8 * MIB, len(body)
    r = service.request("POST", "/metrics", body=body, content_type="application/json", timeout=60)
    ids = assert_created(r, n=10000)
    assert len(ids) == 10000
    wait_until(lambda: service.dbs[0].count_rows("name like '%s.%%'" % prefix) == 10000, 30,
               message="the whole batch in the first database")


@pytest.mark.parametrize("size", [8 * MIB + 100 * 1024, 20 * MIB], ids=["8MiB+100KiB", "20MiB"])
def test_over_limit_body_sent_in_one_go_gets_its_json_413(service, size):
    body = b"[" + b" " * (size - 2) + b"]"
    head = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    s = connect(service.port, timeout=20)
    try:
        try:
            s.sendall(head + body)  # without looking for an early answer
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            status, headers, data = read_response(s, timeout=10)
        except ConnectionResetError:
            pytest.fail("reset before the 413 could be read")
        assert status == 413
        assert headers.get("Content-Type").startswith("application/json")
        assert "error" in json.loads(data)
    finally:
        s.close()
    assert health_on(service.port)[0] == 200
