"""Checks one answer of the render phase: 100 series of 1,440 means each, summing to the rows'.
usage: render_check.py ANSWER.json get|render EXPECTED_SUM; prints OK or UNEXPECTED and why."""
import json
import sys

path, kind, want = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    d = json.load(open(path))
    if kind == "get":
        pts = [[p["value"] for p in x["mean"]] for x in d]
    else:
        pts = [[p[0] for p in x["datapoints"]] for x in d]
    n = {len(p) for p in pts}
    total = sum(v for p in pts for v in p if v is not None)
    ok = len(pts) == 100 and n == {1440} and abs(total - want) <= 1e-6 * abs(want)
    print("%s: %d series x %s points, sum %.3f" % ("OK" if ok else "UNEXPECTED", len(pts),
                                                   ",".join(map(str, sorted(n))), total))
except Exception as e:  # the answer is reported, not raised: the bench goes on
    print("UNEXPECTED: unreadable: %s" % type(e).__name__)
