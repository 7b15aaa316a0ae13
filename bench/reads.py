"""Concurrent large reads for bench/run.sh (python3, standard library only).

    reads.py URL PID POINTS LIMIT_S PATH...

GETs every PATH (a /metrics?... query) at the same time, one process each, and streams each
answer through a counter instead of holding it: per statistic, the points ("bucket" keys)
between that statistic's key and the next. Meanwhile the main process GETs URL/health every
50 ms on a new connection and samples VmRSS and VmHWM of process PID from /proc. Everything is
bounded: a read still running LIMIT_S seconds after the start is stopped and reported as such.

Prints one line per read and then a summary, for the bench to pick with `field`:
    READ i status=200 names=1 points=count:300000,mean:300000,... bytes=N seconds=S ok=1
    BENCH ok=N reads=N wall_s=S health_n=N health_failed=N health_max_ms=X health_p50_ms=X
          rss_before_mb=X hwm_before_mb=X hwm_after_mb=X rss_max_mb=X rss_after_mb=X
ok=1 means status 200, one name and exactly POINTS points for each of the eight statistics.
"""
import http.client
import multiprocessing
import sys
import time
import urllib.parse

STATS = ("count", "mean", "median", "min", "max", "perc95", "perc99", "last")
BUCKET = b'"bucket"'
KEY_END = b'": ['  # only a statistic's key is followed by an array
NAME = b'"name": '
CHUNK = 1 << 18
CARRY = 16  # bytes kept from the previous chunk: longer than any pattern looked for
PROBE_S = 0.05
AFTER_S = 2.0  # sampling goes on this long after the last read, to see memory given back


def read_one(args):
    """One GET, streamed: returns (status, names, {stat: points}, bytes, seconds, error)."""
    base, path, limit = args
    u = urllib.parse.urlsplit(base)
    t0 = time.monotonic()
    points = {s: 0 for s in STATS}
    names, nbytes, cur, err = 0, 0, None, ""
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=limit)
        conn.request("GET", path)
        resp = conn.getresponse()
        status = resp.status
        if status != 200:
            err = resp.read(300).decode("utf-8", "replace").replace("\n", " ")
            return status, 0, points, 0, time.monotonic() - t0, err
        carry = b""
        while True:
            chunk = resp.read(CHUNK)
            if not chunk:
                break
            nbytes += len(chunk)
            buf = carry + chunk
            # Count what ends in the new chunk: a pattern that straddled the previous boundary
            # starts at most len(pattern) - 1 bytes before it; one wholly in the carry does not.
            names += buf.count(NAME, max(0, len(carry) - len(NAME) + 1))
            pos = max(0, len(carry) - len(BUCKET) + 1)
            while True:
                k = buf.find(KEY_END, max(pos, len(carry) - len(KEY_END) + 1))
                end = k if k >= 0 else len(buf)
                n = buf.count(BUCKET, pos, end)
                if n:
                    if cur is None:
                        raise ValueError("a bucket before any statistic")
                    points[cur] += n
                if k < 0:
                    break
                q = buf.rfind(b'"', 0, k)
                cur = buf[q + 1:k].decode("ascii", "replace")
                if cur not in points:
                    raise ValueError("unexpected key %r" % cur)
                pos = k + len(KEY_END)
            carry = buf[-CARRY:]
        return status, names, points, nbytes, time.monotonic() - t0, err
    except Exception as e:  # reported, not raised: the bench goes on
        return -1, names, points, nbytes, time.monotonic() - t0, "%s: %s" % (type(e).__name__, e)


def proc_mb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def probe(host, port):
    """One GET /health on a new connection: (ok, ms)."""
    t0 = time.monotonic()
    ok = False
    try:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
        ok = r.status == 200
        conn.close()
    except Exception:
        pass
    return ok, (time.monotonic() - t0) * 1000


def main():
    base, pid, want, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    paths = sys.argv[5:]
    u = urllib.parse.urlsplit(base)
    rss_before, hwm_before = proc_mb(pid, "VmRSS"), proc_mb(pid, "VmHWM")
    rss_max = rss_before
    lat, failed = [], 0
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(len(paths))
    t0 = time.monotonic()
    jobs = [pool.apply_async(read_one, ((base, p, limit),)) for p in paths]
    done_at, tick = None, t0
    while True:
        ok, ms = probe(u.hostname, u.port)
        lat.append(ms)
        if ms >= 200 or not ok:  # when it happened, for the raw output
            print("SLOW health probe at %.2f s: %.1f ms%s" % (time.monotonic() - t0 - ms / 1000, ms,
                                                           "" if ok else ", not 200"), flush=True)
        failed += not ok
        rss_max = max(rss_max, proc_mb(pid, "VmRSS"))
        now = time.monotonic()
        if done_at is None and all(j.ready() for j in jobs):
            done_at = now
        if done_at is not None and now - done_at >= AFTER_S:
            break
        if now - t0 > limit + 5:  # a read that does not end: stop waiting for it
            break
        tick += PROBE_S
        time.sleep(max(0.0, tick - time.monotonic()))
    results = []
    for i, j in enumerate(jobs):
        if j.ready():
            results.append(j.get())
        else:
            results.append((0, 0, {s: 0 for s in STATS}, 0, limit, "no answer within %g s" % limit))
    pool.terminate()
    pool.join()
    nok = 0
    for i, (status, names, points, nbytes, secs, err) in enumerate(results):
        ok = status == 200 and names == 1 and all(points[s] == want for s in STATS)
        nok += ok
        print("READ %d status=%d names=%d points=%s bytes=%d seconds=%.2f ok=%d%s" % (
            i + 1, status, names, ",".join("%s:%d" % (s, points[s]) for s in STATS), nbytes, secs,
            ok, (" error=" + err[:200]) if err else ""))
    wall = (done_at if done_at is not None else time.monotonic()) - t0
    lat_sorted = sorted(lat)
    print("BENCH ok=%d reads=%d wall_s=%.2f health_n=%d health_failed=%d health_max_ms=%.1f "
          "health_p50_ms=%.1f rss_before_mb=%.1f hwm_before_mb=%.1f hwm_after_mb=%.1f "
          "rss_max_mb=%.1f rss_after_mb=%.1f" % (
              nok, len(paths), wall, len(lat), failed, max(lat), lat_sorted[len(lat) // 2],
              rss_before, hwm_before, proc_mb(pid, "VmHWM"), rss_max, proc_mb(pid, "VmRSS")))


if __name__ == "__main__":
    main()
