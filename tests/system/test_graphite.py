"""Graphite's render API as Grafana's built-in Graphite data source (1.1) calls it: /metrics/find,
/render, /functions, /tags and /version.

A path is a metric's name and one of its statistics (`app.web.latency.mean`). One m2pg on a pair of
servers of this module's own, and one more on the same pair with API tokens; each data set lives
under a name prefix of its own. The last test stops a database."""

import math
import time
import urllib.parse
import uuid

import pytest

from m2pg_sys import STATS, assert_created, metric, read_series, unique_name, wait_until
from librato_sys import assert_accepted, assert_json_error, barrier, bearer, json_media, post_v1

FORM = "application/x-www-form-urlencoded"

D = 1780272000          # 2026-06-01T00:00:00Z, a Monday
DAY = "20260601"
PREV_DAY = "20260531"
MIN, HOUR, WEEK = 60, 3600, 604800

FUNCTIONS = ("alias", "aliasByNode", "aliasByMetric", "sumSeries", "averageSeries", "maxSeries",
             "minSeries", "scale", "offset", "summarize", "consolidateBy", "movingAverage",
             "derivative", "nonNegativeDerivative", "perSecond", "asPercent", "highestMax", "limit",
             "sortByMaxima")

RW, RO, WO = "gtRw-5Hk2aa", "gtRo-9Pw4bb", "gtWo-2Zn7cc"


@pytest.fixture(scope="module")
def gr(module_pair, module_m2pg_factory):
    svc = module_m2pg_factory(module_pair)
    for pg in module_pair:
        pg.wait_for_schema()
    svc.dbs = module_pair
    return svc


# ------------------------------------------------------------------------------ helpers

def encode(params):
    """A form from a dict or a list of pairs; a list value repeats its key (target)."""
    pairs = []
    for key, value in (params.items() if isinstance(params, dict) else params):
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            pairs.append((key, str(v)))
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="")


def call(svc, path, params=(), method="GET", headers=None):
    """GET with a query string, or POST with the same form as the body (as Grafana does)."""
    qs = encode(params)
    if method == "GET":
        return svc.request("GET", path + ("?" + qs if qs else ""), headers=headers)
    return svc.request(method, path, body=qs.encode(), content_type=FORM, headers=headers)


def assert_ok(resp, databases):
    assert resp.status == 200, "expected 200, got %r" % (resp,)
    assert json_media(resp), resp
    if databases is not None:
        assert resp.header("M2pg-Databases") == databases, \
            "M2pg-Databases %r, expected %r" % (resp.header("M2pg-Databases"), databases)


def parse_render(resp, databases="2/2"):
    """[(target, [(timestamp, value or None), ...]), ...] of a 200 answer."""
    assert_ok(resp, databases)
    body = resp.json
    assert isinstance(body, list), resp
    out = []
    for s in body:
        assert isinstance(s, dict) and isinstance(s.get("target"), str), s
        points = []
        for p in s.get("datapoints"):
            assert isinstance(p, list) and len(p) == 2, p
            v, t = p
            assert v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)), p
            assert isinstance(t, int) and not isinstance(t, bool), p
            points.append((t, v))
        out.append((s["target"], points))
    return out


def render(svc, params, method="GET", databases="2/2", headers=None):
    return parse_render(call(svc, "/render", params, method, headers), databases)


def one(series):
    assert len(series) == 1, "expected one series, got %r" % ([n for n, _ in series],)
    return series[0][1]


def grid(start, step, values):
    return [(start + i * step, v) for i, v in enumerate(values)]


def same(got, want):
    if want is None:
        return got is None
    return got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def assert_series(got, want, what=""):
    assert [t for t, _ in got] == [t for t, _ in want], \
        "%s timestamps %r, expected %r" % (what, [t for t, _ in got][:12], [t for t, _ in want][:12])
    bad = [(t, g, w) for (t, g), (_, w) in zip(got, want) if not same(g, w)]
    assert not bad, "%s (timestamp, got, expected): %r" % (what, bad[:10])


def assert_render(got, want):
    """got from render(); want: [(target, [values])] on the grid of each got series."""
    assert [n for n, _ in got] == [n for n, _ in want], \
        "targets %r, expected %r" % ([n for n, _ in got], [n for n, _ in want])
    for (name, points), (_, values) in zip(got, want):
        assert_series(points, grid(points[0][0], points[1][0] - points[0][0], values)
                      if len(points) > 1 else [(points[0][0], values[0])], name)


def nonnull(points):
    return [(t, v) for t, v in points if v is not None]


def write(svc, metrics):
    """Seed-API writes, in every database before this returns."""
    assert_created(svc.post(metrics), len(metrics))
    barrier(svc, svc.dbs)


def prefix(tag):
    """Two segments (`tag.<hex>`) no other test uses."""
    return unique_name("g" + tag)


def stats(count, mean, median, lo, hi, p95, p99, last):
    return dict(count=count, mean=mean, median=median, min=lo, max=hi, perc95=p95, perc99=p99,
                last=last)


def hhmm(t):
    return time.strftime("%H:%M_%Y%m%d", time.gmtime(t))


# ------------------------------------------------------------------------ /metrics/find

def find(svc, query, method="GET", databases="2/2", **extra):
    """[(id, leaf, expandable)] of a 200 answer, after checking every node's shape."""
    params = {"query": query}
    params.update(extra)
    r = call(svc, "/metrics/find", params, method)
    assert_ok(r, databases)
    assert isinstance(r.json, list), r
    out = []
    for node in r.json:
        assert set(node) >= {"text", "id", "leaf", "expandable", "allowChildren", "context"}, node
        assert node["text"] == node["id"].rsplit(".", 1)[-1], node
        assert node["leaf"] in (0, 1) and node["expandable"] in (0, 1), node
        assert node["leaf"] or node["expandable"], node
        assert node["allowChildren"] == node["expandable"], node
        assert node["context"] == {}, node
        out.append((node["id"], node["leaf"], node["expandable"]))
    ids = [i for i, _, _ in out]
    assert ids == sorted(ids, key=lambda s: s.encode()), "ids not sorted: %r" % ids
    assert len(set(ids)) == len(ids), "a path twice: %r" % ids
    return out


@pytest.fixture(scope="module")
def tree(gr):
    """A name that is a statistic's path too (l2met's web.latency.median), and branches."""
    p = prefix("find")
    names = ["web.latency", "web.latency.median", "web.hits", "db.hits", "dc.hits", "x.y.z"]
    write(gr, [metric("%s.%s" % (p, n), bucket=D + 60, count=1) for n in names])
    return p


def stat_leaves(path, branch=()):
    return [("%s.%s" % (path, s), 1, 1 if s in branch else 0) for s in sorted(STATS)]


def branches(p, *paths):
    return [("%s.%s" % (p, x), 0, 1) for x in paths]


FIND_CASES = [
    ("star-branches", "*", lambda p: branches(p, "db", "dc", "web", "x")),
    ("star-names-of-that-depth", "web.*", lambda p: branches(p, "web.hits", "web.latency")),
    ("statistics-one-also-a-name", "web.latency.*",
     lambda p: stat_leaves(p + ".web.latency", branch=("median",))),
    ("statistics-of-the-longer-name", "web.latency.median.*",
     lambda p: stat_leaves(p + ".web.latency.median")),
    ("question-mark", "d?.hits", lambda p: branches(p, "db.hits", "dc.hits")),
    ("range", "d[a-b].*", lambda p: branches(p, "db.hits")),
    ("negated-class", "d[!b].hits", lambda p: branches(p, "dc.hits")),
    ("alternatives", "{web,db}.hits", lambda p: branches(p, "db.hits", "web.hits")),
    ("star-then-segment", "*.hits", lambda p: branches(p, "db.hits", "dc.hits", "web.hits")),
    ("alternatives-of-statistics", "web.latency.{mean,max}",
     lambda p: [(p + ".web.latency.max", 1, 0), (p + ".web.latency.mean", 1, 0)]),
    ("star-in-a-statistic", "web.latency.m*",
     lambda p: [(p + ".web.latency." + s, 1, 1 if s == "median" else 0)
                for s in ("max", "mean", "median", "min")]),
    ("question-in-a-statistic", "web.hits.perc9?",
     lambda p: [(p + ".web.hits.perc95", 1, 0), (p + ".web.hits.perc99", 1, 0)]),
    ("class-in-a-statistic", "web.hits.[lm]a*",
     lambda p: [(p + ".web.hits.last", 1, 0), (p + ".web.hits.max", 1, 0)]),
    ("exact-leaf", "web.hits.count", lambda p: [(p + ".web.hits.count", 1, 0)]),
    ("exact-leaf-and-branch", "web.latency.median", lambda p: [(p + ".web.latency.median", 1, 1)]),
    ("exact-branch", "x.y", lambda p: branches(p, "x.y")),
    ("exact-name", "x.y.z", lambda p: branches(p, "x.y.z")),
    ("deep-statistics", "x.y.z.*", lambda p: stat_leaves(p + ".x.y.z")),
    ("nothing-under-a-statistic", "web.hits.count.*", lambda p: []),
    ("no-such-branch", "nope.*", lambda p: []),
]


@pytest.mark.parametrize("query,expected", [c[1:] for c in FIND_CASES],
                         ids=[c[0] for c in FIND_CASES])
def test_find_globs_per_segment(gr, tree, query, expected):
    assert find(gr, "%s.%s" % (tree, query)) == expected(tree)


def test_find_as_post_form_with_from_and_until_as_grafana_sends_it(gr, tree):
    got = find(gr, tree + ".web.*", method="POST", **{"from": "-6h", "until": "now"})
    assert got == branches(tree, "web.hits", "web.latency")
    assert find(gr, tree + ".web.*", **{"from": D, "until": D + 3600}) == got


def test_find_text_is_the_last_segment(gr, tree):
    r = call(gr, "/metrics/find", {"query": tree + ".web.latency.{median,count}"})
    assert_ok(r, "2/2")
    assert [(n["text"], n["leaf"], n["expandable"], n["allowChildren"]) for n in r.json] == \
        [("count", 1, 0, 0), ("median", 1, 1, 1)], r.json


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_find_without_query_is_400_naming_it(gr, method):
    assert_json_error(call(gr, "/metrics/find", {"from": "-6h"}, method), 400, field="query")
    assert_json_error(call(gr, "/metrics/find", {"query": ""}, method), 400, field="query")


@pytest.mark.parametrize("query", ["{web,db.hits", "d[ab.hits"],
                         ids=["unclosed-brace", "unclosed-bracket"])
def test_find_invalid_glob_is_400(gr, tree, query):
    assert_json_error(call(gr, "/metrics/find", {"query": "%s.%s" % (tree, query)}), 400)
    gr.assert_alive()


# ---------------------------------------------------------------- rollups by the step

# (seconds after 10:00 on D, statistics): two rows in the 10:00 minute, others alone in theirs.
ROLLUP_ROWS = [
    (5, stats(2, 10, 9, 4, 20, 18, 19, 11)),
    (40, stats(3, 20, 19, 6, 30, 28, 29, 21)),
    (7 * 60, stats(5, 4, 3, 1, 8, 7, 7.5, 2)),
    (90 * 60, stats(1, 100, 100, 100, 100, 100, 100, 100)),
    (4 * 3600 - 1, stats(4, 50, 40, 30, 70, 60, 65, 33)),
]
T10 = D + 10 * 3600


def rollup(rows):
    """m2pg's rollup of rows (the statistics of one bucket)."""
    n = sum(r["count"] for r in rows)
    latest = max(rows, key=lambda r: r["t"])
    return {"count": n,
            "mean": sum(r["count"] * r["mean"] for r in rows) / n,
            "median": sum(r["count"] * r["median"] for r in rows) / n,
            "min": min(r["min"] for r in rows),
            "max": max(r["max"] for r in rows),
            "perc95": max(r["perc95"] for r in rows),
            "perc99": max(r["perc99"] for r in rows),
            "last": latest["last"]}


def expected_by_step(step, start, n):
    rows = [dict(s, t=T10 + dt) for dt, s in ROLLUP_ROWS]
    buckets = {}
    for r in rows:
        buckets.setdefault(r["t"] - r["t"] % step, []).append(r)
    out = {}
    for stat in STATS:
        values = [None] * n
        for b, rs in buckets.items():
            values[(b - start) // step] = rollup(rs)[stat]
        out[stat] = grid(start, step, values)
    return out


@pytest.fixture(scope="module")
def rolled(gr):
    name = prefix("roll") + ".svc.lat"
    write(gr, [metric(name, bucket=T10 + dt, **s) for dt, s in ROLLUP_ROWS])
    return name


def render_day(gr, name, max_points, method="GET"):
    # Graphite's points start with the first bucket after from: a minute before midnight makes
    # the first point midnight whatever the step.
    params = {"target": name + ".*", "from": "23:59_" + PREV_DAY, "until": "23:59_" + DAY,
              "format": "json"}
    if max_points is not None:
        params["maxDataPoints"] = max_points
    got = render(gr, params, method)
    # (the order of the series is test_render_statistic_globs's business)
    assert sorted(n for n, _ in got) == sorted(name + "." + s for s in STATS), got
    return {n.rsplit(".", 1)[1]: pts for n, pts in got}


@pytest.mark.parametrize("max_points,step,n", [
    (None, MIN, 1440),
    (1440, MIN, 1440),
    (1439, HOUR, 24),
    (100, HOUR, 24),
    (24, HOUR, 24),
    (23, 86400, 1),
], ids=["default-10000", "1440-minutes", "1439-hours", "100-hours", "24-hours", "23-a-day"])
def test_max_data_points_picks_the_finest_step_and_each_statistic_rolls_up_its_way(
        gr, rolled, max_points, step, n):
    got = render_day(gr, rolled, max_points)
    want = expected_by_step(step, D, n)
    for stat in STATS:
        assert_series(got[stat], want[stat], "%s at %ds" % (stat, step))


def test_hourly_points_equal_get_metrics_at_hour(gr, rolled):
    got = render_day(gr, rolled, 100, method="POST")
    series = read_series(gr, name="^%s$" % rolled.replace(".", r"\."), resolution="hour",
                         **{"from": D, "to": D + 86399})[rolled]
    for stat in STATS:
        assert nonnull(got[stat]) and nonnull(got[stat]) == [tuple(p) for p in series[stat]], stat


def test_minute_points_equal_get_metrics_at_minute(gr, rolled):
    got = render_day(gr, rolled, 1440)
    series = read_series(gr, name="^%s$" % rolled.replace(".", r"\."), resolution="minute",
                         **{"from": D, "to": D + 86399})[rolled]
    for stat in STATS:
        assert nonnull(got[stat]) == [tuple(p) for p in series[stat]], stat


# ------------------------------------------------------------------------- time forms

def test_absolute_time_forms_agree(gr, rolled):
    target = rolled + ".count"
    # Points start with the first minute after from, as Graphite's do: 09:59 makes it 10:00.
    forms = [
        {"from": "09:59_" + DAY, "until": "14:00_" + DAY},
        {"from": T10 - 60, "until": T10 + 4 * 3600},
        {"from": "09:59_" + DAY, "until": T10 + 4 * 3600},
    ]
    want = [(T10, 5), (T10 + 7 * 60, 5), (T10 + 90 * 60, 1), (T10 + 4 * 3600 - 60, 4)]
    for f in forms:
        points = one(render(gr, dict(f, target=target, maxDataPoints=1000)))
        assert points[0][0] == T10 and points[-1][0] == T10 + 4 * 3600, f
        assert [t for t, _ in points] == list(range(T10, T10 + 4 * 3600 + 1, 60)), f
        assert nonnull(points) == want, f


def test_yyyymmdd_is_midnight_and_an_until_on_a_step_is_its_last_point(gr, rolled):
    """From midnight: the first point is the hour after it (Graphite's points start after from)."""
    points = one(render(gr, {"target": rolled + ".max", "from": DAY, "until": "20260602",
                             "maxDataPoints": 30}))
    assert [t for t, _ in points] == list(range(D + 3600, D + 86400 + 1, 3600))
    assert nonnull(points) == [(T10, 30), (T10 + 3600, 100), (T10 + 3 * 3600, 70)]


def test_from_inside_a_step_starts_at_the_next_step(gr, rolled):
    """As Graphite does: the bucket from falls in is not a point (it would hold only part of
    the range), the bucket until falls in is."""
    points = one(render(gr, {"target": rolled + ".count", "from": T10 + 30,
                             "until": T10 + 8 * 60 + 10}))
    assert_series(points, grid(T10 + 60, 60, [None, None, None, None, None, None, 5, None]))


@pytest.fixture(scope="module")
def recent(gr):
    """Counts 7 three hours ago, 3 twenty minutes ago and 11 eight days ago."""
    name = prefix("rel") + ".hits"
    now = int(time.time())
    write(gr, [metric(name, bucket=now - 3 * 3600, count=7),
               metric(name, bucket=now - 20 * 60, count=3),
               metric(name, bucket=now - 8 * 86400, count=11)])
    return name, now


@pytest.mark.parametrize("frm,span,step,want", [
    ("-6h", 6 * 3600, MIN, [7, 3]),
    ("-30min", 30 * 60, MIN, [3]),
    ("-7d", 7 * 86400, HOUR, [7, 3]),
], ids=["6h-minutes", "30min-minutes", "7d-hours-beyond-10000-minutes"])
def test_relative_from_until_now(gr, recent, frm, span, step, want):
    name, written = recent
    for method, until in (("GET", "now"), ("POST", None)):
        params = {"target": name + ".count", "from": frm}
        if until:
            params["until"] = until
        before = int(time.time())
        points = one(render(gr, params, method))
        after = int(time.time())
        grids = [[t for t in range((now - span) - (now - span) % step + step, now + 1, step)]
                 for now in range(before, after + 1)]
        assert [t for t, _ in points] in grids, \
            "%s: %d points from %r to %r" % (frm, len(points), points[0][0], points[-1][0])
        assert [v for _, v in nonnull(points)] == want, (frm, method, nonnull(points))
        for t, _ in nonnull(points):
            assert t % step == 0


@pytest.mark.parametrize("max_points,step", [(1440, MIN), (1439, HOUR)])
def test_last_24_hours_is_1440_minutes(gr, recent, max_points, step):
    """-24h to now: from the minute after the one -24h falls in to the one now falls in, 1,440
    of them, as Graphite lays them out (Grafana's last 24 hours at 1,440 points is by minute)."""
    name, _ = recent
    before = int(time.time())
    points = one(render(gr, {"target": name + ".count", "from": "-24h", "until": "now",
                             "maxDataPoints": max_points}))
    after = int(time.time())
    grids = [list(range(now - 86400 - (now - 86400) % step + step, now + 1, step))
             for now in range(before, after + 1)]
    assert [t for t, _ in points] in grids, (len(points), points[0], points[-1])
    assert [v for _, v in nonnull(points)] == [7, 3]


# --------------------------------------------------------------------- globs in targets

@pytest.fixture(scope="module")
def globbed(gr):
    p = prefix("glob")
    rows = []
    for seg, v in (("a", 1), ("b", 2), ("c", 4), ("ab", 8)):
        rows.append(metric("%s.%s.x" % (p, seg), bucket=D + 3600,
                           **stats(v, v + 0.5, v + 0.25, v - 0.5, 10 * v, 9 * v, 9.5 * v, v)))
    write(gr, rows)
    return p


GLOB_TARGETS = [
    ("question-mark", "?.x.count", ["a", "b", "c"]),
    ("class", "[ab].x.count", ["a", "b"]),
    ("range", "[a-b].x.count", ["a", "b"]),
    ("negated-class", "[!a].x.count", ["b", "c"]),
    ("alternatives", "{a,ab}.x.count", ["a", "ab"]),
    ("star", "*.x.count", ["a", "ab", "b", "c"]),
    ("star-suffix", "a*.x.count", ["a", "ab"]),
]


@pytest.mark.parametrize("target,segs", [c[1:] for c in GLOB_TARGETS], ids=[c[0] for c in GLOB_TARGETS])
def test_render_target_globs_names(gr, globbed, target, segs):
    got = render(gr, {"target": "%s.%s" % (globbed, target), "from": D + 3600, "until": D + 3630})
    value = {"a": 1, "b": 2, "c": 4, "ab": 8}
    assert got == [("%s.%s.x.count" % (globbed, s), [(D + 3600, value[s])]) for s in segs]


# Graphite answers the series of one path in the order of their names, as find lists them.
@pytest.mark.parametrize("stat_glob,want", [
    ("{count,max}", [("count", 2), ("max", 20)]),
    ("m*", [("max", 20), ("mean", 2.5), ("median", 2.25), ("min", 1.5)]),
    ("perc9?", [("perc95", 18), ("perc99", 19)]),
    ("[lc]*", [("count", 2), ("last", 2)]),
], ids=["alternatives", "star", "question-mark", "class"])
def test_render_statistic_globs(gr, globbed, stat_glob, want):
    got = render(gr, {"target": "%s.b.x.%s" % (globbed, stat_glob), "from": D + 3600,
                      "until": D + 3630})
    assert got == [("%s.b.x.%s" % (globbed, s), [(D + 3600, v)]) for s, v in want]


def test_several_targets_answer_in_request_order_and_empty_ones_are_ignored(gr, globbed):
    window = {"from": D + 3600, "until": D + 3630}
    targets = ["", globbed + ".c.x.max", "", globbed + ".a.x.count"]
    for method in ("GET", "POST"):
        got = render(gr, dict(window, target=targets), method)
        assert got == [(globbed + ".c.x.max", [(D + 3600, 40)]),
                       (globbed + ".a.x.count", [(D + 3600, 1)])], method


@pytest.mark.parametrize("params", [{}, {"target": ""}, {"target": ["", ""]}],
                         ids=["no-target", "one-empty", "two-empty"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_target_is_an_empty_array(gr, params, method):
    r = call(gr, "/render", dict(params, **{"from": "-1h"}), method)
    assert r.status == 200, r
    assert json_media(r), r
    assert r.json == [], r


def test_unencoded_target_in_a_query_string(gr, globbed):
    path = "/render?target=sumSeries(%s.*.x.count)&from=%d&until=%d" % (globbed, D + 3600, D + 3630)
    got = parse_render(gr.request("GET", path))
    assert got == [("sumSeries(%s.*.x.count)" % globbed, [(D + 3600, 15)])]


def test_a_name_that_is_also_a_statistic_path_as_l2met_posts(gr):
    """l2met posts web.latency (count, sum, min, max) and web.latency.median: the path
    web.latency.median is both the median of web.latency and a name of its own."""
    p = prefix("l2met")
    t = D + 7200
    body = {"gauges": [{"name": p + ".web.latency", "measure_time": t, "count": 5, "sum": 140,
                        "min": 10, "max": 50, "source": "web.1"},
                       {"name": p + ".web.latency.median", "measure_time": t, "value": 30,
                        "source": "web.1"}]}
    assert_accepted(post_v1(gr, body), 2)
    barrier(gr, gr.dbs)
    window = {"from": t, "until": t + 30}
    assert sorted(render(gr, dict(window, target=p + ".web.latency.{mean,max}"))) == \
        [(p + ".web.latency.max", [(t, 50)]), (p + ".web.latency.mean", [(t, 28)])]
    assert render(gr, dict(window, target=p + ".web.latency.median.mean")) == \
        [(p + ".web.latency.median.mean", [(t, 30)])]
    assert find(gr, p + ".web.latency.me*") == [(p + ".web.latency.mean", 1, 0),
                                                (p + ".web.latency.median", 1, 1)]


# --------------------------------------------------------------------------- functions

T12 = D + 12 * 3600     # on a minute, and on two
A = [1, 3, None, 6, 10, 15]
AMAX = [5, 7, None, 9, 11, 20]
B = [2, 2, 2, None, 2, 2]
C = [10, 1, 5, 5, None, 2]
CTR = [60, 180, 360, None, 420, 480]


@pytest.fixture(scope="module")
def fns(gr):
    """Counts a minute apart from 12:00 on D: P.h.a, P.h.b, P.h.c, and a counter P.k.d."""
    p = prefix("fn")
    rows = []
    for name, counts, maxes in (("h.a", A, AMAX), ("h.b", B, B), ("h.c", C, C), ("k.d", CTR, CTR)):
        for i, (c, m) in enumerate(zip(counts, maxes)):
            if c is not None:
                rows.append(metric("%s.%s" % (p, name), bucket=T12 + 60 * i + 15, count=c, max=m))
    write(gr, rows)
    return p


def fn_render(gr, p, target):
    """The six minutes from 12:00 (from a second before, so 12:00 is the first point; until
    inside the last one)."""
    return render(gr, {"target": target.replace("P.", p + "."), "from": T12 - 1, "until": T12 + 330})


def pct(xs, totals):
    return [None if x is None else 100.0 * x / t for x, t in zip(xs, totals)]


TOTAL = [13, 6, 7, 11, 12, 19]

FUNCTION_CASES = [
    ("alias", "alias(P.h.a.count,'foo')", [("foo", A)]),
    ("alias-double-quotes", 'alias(P.h.a.count,"foo bar")', [("foo bar", A)]),
    ("aliasByNode", "aliasByNode(P.h.*.count,2,3)", [("h.a", A), ("h.b", B), ("h.c", C)]),
    ("aliasByMetric", "aliasByMetric(P.h.a.{count,max})", [("count", A), ("max", AMAX)]),
    ("sumSeries", "sumSeries(P.h.*.count)", [("sumSeries(P.h.*.count)", TOTAL)]),
    ("sumSeries-two-lists", "sumSeries(P.h.a.count,P.h.b.count)",
     [("sumSeries(P.h.a.count,P.h.b.count)", [3, 5, 2, 6, 12, 17])]),
    ("sumSeries-of-nothing", "sumSeries(P.none.*.count)", []),
    ("averageSeries", "averageSeries(P.h.*.count)",
     [("averageSeries(P.h.*.count)", [13 / 3, 2, 3.5, 5.5, 6, 19 / 3])]),
    ("maxSeries", "maxSeries(P.h.*.count)", [("maxSeries(P.h.*.count)", [10, 3, 5, 6, 10, 15])]),
    ("minSeries", "minSeries(P.h.*.count)", [("minSeries(P.h.*.count)", [1, 1, 2, 5, 2, 2])]),
    ("scale", "scale(P.h.a.count,0.5)", [("scale(P.h.a.count,0.5)", [0.5, 1.5, None, 3, 5, 7.5])]),
    ("offset", "offset(P.h.b.count,-1.5)",
     [("offset(P.h.b.count,-1.5)", [0.5, 0.5, 0.5, None, 0.5, 0.5])]),
    ("consolidateBy", "consolidateBy(P.h.a.count,'max')", [('consolidateBy(P.h.a.count,"max")', A)]),
    # the window ends at each point, that point included (graphite-web's fix of its issue 2632)
    ("movingAverage", "movingAverage(P.h.a.count,2)",
     [("movingAverage(P.h.a.count,2)", [1, 2, 3, 6, 8, 12.5])]),
    ("derivative", "derivative(P.h.a.count)", [("derivative(P.h.a.count)", [None, 2, None, None, 4, 5])]),
    ("nonNegativeDerivative", "nonNegativeDerivative(P.h.c.count)",
     [("nonNegativeDerivative(P.h.c.count)", [None, None, 4, 0, None, None])]),
    ("perSecond", "perSecond(P.k.d.count)", [("perSecond(P.k.d.count)", [None, 2, 3, None, None, 1])]),
    ("asPercent", "asPercent(P.h.*.count)",
     [("asPercent(P.h.%s.count,sumSeries(P.h.*.count))" % s, pct(xs, TOTAL))
      for s, xs in (("a", A), ("b", B), ("c", C))]),
    ("highestMax", "highestMax(P.h.*.count,2)", [("P.h.a.count", A), ("P.h.c.count", C)]),
    ("limit", "limit(P.h.*.count,2)", [("P.h.a.count", A), ("P.h.b.count", B)]),
    ("sortByMaxima", "sortByMaxima(P.h.*.count)",
     [("P.h.a.count", A), ("P.h.c.count", C), ("P.h.b.count", B)]),
    ("nested", "alias(scale(sumSeries(P.h.*.count),2),'total')",
     [("total", [26, 12, 14, 22, 24, 38])]),
    ("nested-list-functions", "aliasByNode(highestMax(offset(P.h.*.count,1),1),3)", [("a", [
        2, 4, None, 7, 11, 16])]),
]


@pytest.mark.parametrize("target,want", [c[1:] for c in FUNCTION_CASES],
                         ids=[c[0] for c in FUNCTION_CASES])
def test_function(gr, fns, target, want):
    got = fn_render(gr, fns, target)
    want = [(n.replace("P.", fns + "."), vs) for n, vs in want]
    assert_render(got, want)
    for _, points in got:
        assert [t for t, _ in points] == [T12 + 60 * i for i in range(6)]


@pytest.mark.parametrize("func,values", [(None, [4, 6, 25]), ("max", [3, 6, 15])],
                         ids=["default-sum", "max"])
def test_summarize_into_two_minute_buckets(gr, fns, func, values):
    target = "summarize(P.h.a.count,'2min'%s)" % (",'%s'" % func if func else "")
    ((name, points),) = fn_render(gr, fns, target)
    assert name == 'summarize(%s.h.a.count, "2min", "%s")' % (fns, func or "sum")
    # Graphite ends the series at the bucket after until's: trailing buckets are null.
    assert_series(points[:3], grid(T12, 120, values))
    assert all(v is None for _, v in points[3:]), points


# ------------------------------------------------------------- weekly and consolidation

W0 = 1756684800         # 2025-09-01T00:00:00Z
WEEKS = 30


@pytest.fixture(scope="module")
def weekly(gr):
    """One row a week, in the middle of each (whichever day weeks start on), count = max = i + 1."""
    name = prefix("week") + ".w"
    write(gr, [metric(name, bucket=W0 + i * WEEK + 3 * 86400 + 43200, count=i + 1, max=i + 1)
               for i in range(WEEKS)])
    return name


def weekly_window(target, max_points):
    return {"target": target, "from": W0 - 1, "until": W0 + WEEKS * WEEK - 1,
            "maxDataPoints": max_points}


def test_long_ranges_step_by_week(gr, weekly):
    points = one(render(gr, weekly_window(weekly + ".count", 40)))
    steps = {b[0] - a[0] for a, b in zip(points, points[1:])}
    assert steps == {WEEK}, steps
    assert points[0][0] % 86400 == 0 and W0 - WEEK < points[0][0] <= W0, points[0]
    assert [v for _, v in nonnull(points)] == list(range(1, WEEKS + 1))


@pytest.mark.parametrize("target,func", [
    ("%s.count", "average"),
    ("consolidateBy(%s.count,'sum')", "sum"),
    ("consolidateBy(%s.max,'max')", "max"),
    ("consolidateBy(%s.count,'min')", "min"),
], ids=["average-by-default", "sum", "max", "min"])
def test_beyond_weeks_points_merge_by_the_consolidation_function(gr, weekly, target, func):
    weeks = one(render(gr, weekly_window(weekly + ".count", 40)))
    max_points = 4
    merged = one(render(gr, weekly_window(target % weekly, max_points)))
    assert 2 <= len(merged) <= max_points, merged
    step = merged[1][0] - merged[0][0]
    assert step % WEEK == 0 and step > WEEK, merged
    agg = {"average": lambda xs: sum(xs) / len(xs), "sum": sum, "max": max, "min": min}[func]
    for t, v in merged:
        inside = [x for wt, x in weeks if t <= wt < t + step and x is not None]
        assert same(v, agg(inside) if inside else None), (t, v, inside)


# ------------------------------------------------------------------------------ errors

BAD_RENDERS = [
    ("from-garbage", {"from": "yesterdayish"}, "from"),
    ("until-garbage", {"until": "12:99_20260601"}, "until"),
    ("from-bad-hour", {"from": "25:00_20260601"}, "from"),
    ("max-points-garbage", {"maxDataPoints": "lots"}, "maxDataPoints"),
    ("max-points-zero", {"maxDataPoints": "0"}, "maxDataPoints"),
    ("max-points-negative", {"maxDataPoints": "-5"}, "maxDataPoints"),
    ("format-csv", {"format": "csv"}, "format"),
]


@pytest.mark.parametrize("params,field", [c[1:] for c in BAD_RENDERS], ids=[c[0] for c in BAD_RENDERS])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_render_parameter_is_400_naming_it(gr, params, field, method):
    r = call(gr, "/render", dict({"target": "gx.y.count", "from": "-1h"}, **params), method)
    assert_json_error(r, 400, field=field)


def test_a_render_past_its_point_bound_is_400_and_m2pg_stays_small(gr, rolled):
    """Every statistic of a name hourly since 1970 is 8 x 500,000 points: more than a render
    holds (2 million). Refused with a 400 saying why, before the memory is taken; and
    functions that multiply series are bounded the same way."""
    big = {"target": rolled + ".*", "from": "19700101", "maxDataPoints": 1000000}
    body = assert_json_error(call(gr, "/render", big), 400)
    assert "more than 2000000 points" in body["error"], body
    many = {"target": ["scale(%s.count,%d)" % (rolled, i) for i in range(8)], "from": "19700101",
            "maxDataPoints": 1000000}
    body = assert_json_error(call(gr, "/render", many), 400)
    assert "more than 2000000 points" in body["error"], body
    rss_kb = int(open("/proc/%d/status" % gr.proc.pid).read().split("VmHWM:")[1].split()[0])
    assert rss_kb < 200 * 1024, rss_kb
    gr.assert_alive()


def test_unknown_function_is_400_naming_the_supported_ones(gr):
    body = assert_json_error(call(gr, "/render", {"target": "foo(gx.y.count)", "from": "-1h"}), 400)
    msg = body["error"]
    assert "unknown function foo" in msg and "supported:" in msg, msg
    listed = {f.strip() for f in msg.split("supported:", 1)[1].split(",")}
    assert set(FUNCTIONS) <= listed, set(FUNCTIONS) - listed


@pytest.mark.parametrize("target", [
    "sumSeries(gx.*.count",
    "sumSeries(gx.*.count))",
    "scale(gx.y.count,2",
    "alias(gx.y.count,'x)",
    "scale(gx.y.count)",
    "scale(gx.y.count,abc)",
    "summarize(gx.y.count,'fortnightly')",
    "()",
], ids=["unclosed", "extra-paren", "unclosed-after-args", "unclosed-quote", "missing-argument",
        "number-expected", "bad-interval", "no-name"])
def test_malformed_target_is_400(gr, target):
    r = call(gr, "/render", {"target": target, "from": "-1h"})
    assert_json_error(r, 400)
    r = call(gr, "/render", {"target": ["gx.y.count", target], "from": "-1h"}, "POST")
    assert_json_error(r, 400)


# ------------------------------------------------------------------ what Grafana asks too

def test_functions_describes_each_function(gr):
    r = gr.request("GET", "/functions")
    assert r.status == 200 and json_media(r), r
    body = r.json
    assert isinstance(body, dict), r
    missing = set(FUNCTIONS) - set(body)
    assert not missing, missing
    for name, desc in body.items():
        assert desc["name"] == name, desc
        assert isinstance(desc["description"], str) and desc["description"], desc
        assert isinstance(desc["group"], str) and desc["group"], desc
        assert isinstance(desc["params"], list) and desc["params"], desc
        for param in desc["params"]:
            assert isinstance(param.get("name"), str) and isinstance(param.get("type"), str), \
                (name, param)
    assert body["sumSeries"]["group"] == "Combine"
    assert body["alias"]["params"][0]["type"] == "seriesList"


@pytest.mark.parametrize("path", ["/tags/autoComplete/tags", "/tags/autoComplete/values?tag=x"])
def test_tags_are_none(gr, path):
    r = gr.request("GET", path)
    assert r.status == 200 and json_media(r), r
    assert r.json == [], r


def test_version(gr):
    r = gr.request("GET", "/version")
    assert r.status == 200, r
    assert r.body.strip() == b"1.1.10", r


# ----------------------------------------------------------------- tokens

@pytest.fixture(scope="module")
def locked(module_pair, module_m2pg_factory, gr):
    return module_m2pg_factory(module_pair, extra_env={
        "API_TOKENS": "%s,%s:read,%s:write" % (RW, RO, WO)})


TOKEN_ROUTES = [
    ("GET-render", "/render", "GET", {"target": "gx.y.count", "from": "-1h"}),
    ("POST-render", "/render", "POST", {"target": "gx.y.count", "from": "-1h"}),
    ("GET-find", "/metrics/find", "GET", {"query": "gx.*"}),
    ("POST-find", "/metrics/find", "POST", {"query": "gx.*"}),
    ("functions", "/functions", "GET", {}),
    ("version", "/version", "GET", {}),
    ("tags", "/tags/autoComplete/tags", "GET", {}),
    ("tag-values", "/tags/autoComplete/values", "GET", {"tag": "x"}),
]


@pytest.mark.parametrize("path,method,params", [r[1:] for r in TOKEN_ROUTES],
                         ids=[r[0] for r in TOKEN_ROUTES])
def test_graphite_routes_take_a_read_token_even_as_post(locked, path, method, params):
    for token, status in ((None, 401), ("nope-0Xx0", 401), (WO, 403), (RO, 200), (RW, 200)):
        headers = bearer(token) if token else None
        r = call(locked, path, params, method, headers)
        assert r.status == status, "token %r: expected %d, got %r" % (token, status, r)
        if status != 200:
            assert_json_error(r, status)


# --------------------------------------------------------- every database, de-duplicated

def test_rows_of_every_database_are_read_once_and_a_stopped_one_is_left_out(gr):
    """The same row (same id) in both databases counts once; a row only one database holds is
    read too; with that database stopped the answer is partial, and says so."""
    db1, db2 = gr.dbs
    name = prefix("dup") + ".x"
    t = D + 5 * 3600
    both = {"id": str(uuid.uuid4()), "bucket": t, "name": name,
            **stats(5, 2, 2, 1, 3, 3, 3, 2)}
    only2 = {"id": str(uuid.uuid4()), "bucket": t + 60, "name": name,
             **stats(7, 4, 4, 4, 4, 4, 4, 4)}
    db1.insert([both])
    db2.insert([both, only2])
    params = {"target": name + ".{count,max}", "from": t - 1, "until": t + 90}
    assert render(gr, params) == [(name + ".count", [(t, 5), (t + 60, 7)]),
                                  (name + ".max", [(t, 3), (t + 60, 4)])]
    hourly = dict(params, **{"until": t + 3599, "maxDataPoints": 10})
    assert render(gr, hourly) == [(name + ".count", [(t, 12)]), (name + ".max", [(t, 4)])]
    assert find(gr, name.rsplit(".", 1)[0] + ".*") == [(name, 0, 1)]

    db2.stop()
    try:
        wait_until(lambda: gr.health().json["states"][1]["state"] == "down", 10,
                   message="/health to say database 2 is down")
        assert render(gr, params, databases="1/2") == [(name + ".count", [(t, 5), (t + 60, None)]),
                                                       (name + ".max", [(t, 3), (t + 60, None)])]
        assert render(gr, params, method="POST", databases="1/2")[0][1][0] == (t, 5)
        assert find(gr, name.rsplit(".", 1)[0] + ".*", databases="1/2") == [(name, 0, 1)]
        assert find(gr, name.rsplit(".", 1)[0] + ".*", method="POST", databases="1/2") == \
            [(name, 0, 1)]
    finally:
        db2.start()
