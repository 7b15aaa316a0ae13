#!/usr/bin/python3
"""`make bench-scale`: times one GET, again and again, over one keep-alive connection.

    scale_get.py HOST PORT PATH WARMUP RUNS BUDGET

The first answer (a warm-up) is checked: its status, M2pg-Databases header, how many names, how
many count points and their sum. Then WARMUP - 1 more warm-ups (none when the first took over a
second: the data is in memory by then) and RUNS timed GETs by curl, one after the other on one
connection, each timed from the request to the last byte of the body (curl's time_total); fewer
(but at least 5) when they pass BUDGET seconds. The same GETs are then timed by this script's own
client (http.client), as earlier runs were (py_p50_ms).
Prints one line:
  BENCH status=200 dbs=2/2 names=N points=N count_sum=X runs=N p50_ms=X p90_ms=X min_ms=X max_ms=X
        py_p50_ms=X
"""
import http.client
import json
import math
import statistics
import subprocess
import sys
import time


def get(conn, path):
    t0 = time.perf_counter()
    conn.request('GET', path)
    r = conn.getresponse()
    body = r.read()
    return time.perf_counter() - t0, r.status, r.getheader('M2pg-Databases', 'none'), body


def quantile(xs, q):
    """The median for q = 0.5 (the mean of the middle two of an even count), else the nearest rank."""
    if q == 0.5:
        return statistics.median(xs)
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def main():
    host, port, path, warm, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    budget = float(sys.argv[6])
    conn = http.client.HTTPConnection(host, port, timeout=120)
    first, status, dbs, body = get(conn, path)
    names = points = 0
    total = 0.0
    try:
        d = json.loads(body)
        names = len(d)
        points = sum(len(x.get('count', [])) for x in d)
        total = sum(p['value'] for x in d for p in x.get('count', []))
    except (ValueError, TypeError, KeyError, AttributeError):
        names = -1
    # Dropped before the timing: kept, the 270,000 objects of an answer of 100 names made each
    # GET of this client 45 ms slower (its garbage collector walks them), which runs before
    # this measured.
    d = body = None
    for _ in range(max(warm - 1, 0) if first < 1 else 0):
        get(conn, path)
    url = 'http://%s:%d%s' % (host, port, path)
    times, bad = [], 0
    while len(times) < runs:
        # GETs on one connection, in batches: all RUNS, or 5 at a time when they may pass BUDGET
        n = runs - len(times) if first * runs < budget else 5
        args = ['curl', '-s', '--max-time', '120', '-w', '%{http_code} %{time_total}\n']
        for _ in range(n):
            args += ['-o', '/dev/null', url]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()
        for code, t in zip(out[::2], out[1::2]):
            times.append(float(t) * 1000)
            bad += code != '200'
        if sum(times) > budget * 1000:
            break
    runs = len(times)
    py = []
    for _ in range(runs):
        py.append(get(conn, path)[0] * 1000)
        if len(py) >= 5 and sum(py) > budget * 1000:
            break
    print('BENCH status=%d dbs=%s names=%d points=%d count_sum=%.0f runs=%d not200=%d p50_ms=%.2f p90_ms=%.2f '
          'min_ms=%.2f max_ms=%.2f py_p50_ms=%.2f' % (status, dbs, names, points, total, runs, bad,
                                                      quantile(times, 0.5), quantile(times, 0.9), min(times),
                                                      max(times), quantile(py, 0.5)))


if __name__ == '__main__':
    main()
