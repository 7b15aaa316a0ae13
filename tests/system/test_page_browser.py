"""The chart page in a real browser: Debian's headless chromium, driven over the DevTools
protocol (browser_sys), against the real binary and real PostgreSQL.

Three names with 240 minutes of known values each; the page is opened by its URL, as a shared
link would be. A screenshot is kept in build/artifacts/page.png."""

import datetime
import json
import os
import time
import urllib.parse
import uuid

import pytest

from browser_sys import Browser
from m2pg_sys import REPO_ROOT, assert_created, sql_literal, wait_until

TOKEN = "tkPageBrowser-2Wq8ff"
T0 = 1700000040  # a minute boundary
MINUTES = 240
SCREENSHOT = os.path.join(REPO_ROOT, "build", "artifacts", "page.png")


def mean_of(k, i):
    """The mean stored for name k at minute i."""
    return 100 * (k + 1) + i


@pytest.fixture(scope="module")
def seeded(module_pair, module_m2pg_factory):
    """An open m2pg and one with API tokens, on the same databases, with the names written."""
    open_svc = module_m2pg_factory(module_pair)
    token_svc = module_m2pg_factory(module_pair, extra_env={"API_TOKENS": TOKEN})
    prefix = "page%s" % uuid.uuid4().hex[:8]
    names = ["%s.%s" % (prefix, s) for s in ("alpha", "beta", "gamma")]
    batch = [{"bucket": T0 + 60 * i, "name": n, "count": k + 1, "mean": mean_of(k, i)}
             for k, n in enumerate(names) for i in range(MINUTES)]
    assert_created(open_svc.post(batch), len(batch))

    def all_readable():
        r = open_svc.request("GET", "/metrics?" + urllib.parse.urlencode(
            {"name": "^" + prefix, "from": T0, "to": T0 + 60 * MINUTES}))
        return (r.status == 200 and r.header("M2pg-Databases") == "2/2"
                and [len(o["mean"]) for o in r.json] == [MINUTES] * 3)
    wait_until(all_readable, 15, message="the seeded metrics to be readable")
    for db in module_pair:  # each holds all of them: one is stopped in a test below
        wait_until(lambda: db.count_rows("name like %s" % sql_literal(prefix + ".%")) == len(batch),
                   15, message="the seeded metrics in %s" % db.name)
    return {"open": open_svc, "token": token_svc, "prefix": prefix, "names": names,
            "dbs": module_pair}


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture
def tab(browser):
    t = browser.new_tab()
    yield t
    t.close()


def page_url(svc, **params):
    return "http://127.0.0.1:%d/?%s" % (svc.port, urllib.parse.urlencode(params))


def charts(tab):
    """What the page shows: per chart its statistic, series, points drawn and legend."""
    return tab.eval("""Array.from(document.querySelectorAll('#charts section.chart')).map(s => ({
        stat: s.dataset.stat, series: Number(s.dataset.series), points: Number(s.dataset.points),
        canvases: s.querySelectorAll('.plot canvas').length,
        time: (s.querySelector('.legend .legend-time') || {}).textContent || '',
        legend: Array.from(s.querySelectorAll('.legend li')).map(li => ({
            name: li.querySelector('.series-name').textContent,
            value: (li.querySelector('.series-value') || {}).textContent || null})),
    }))""")


def wait_settled(tab, timeout=10):
    """The page's state once its request is answered: ready, error or token."""
    return tab.wait_for("['ready', 'error', 'token'].includes(document.body.dataset.state) && "
                        "document.body.dataset.state", timeout, "the page to finish loading")


def alert_text(tab):
    return tab.eval("(() => { const a = document.getElementById('alert');"
                    " return a.hidden ? null : a.textContent; })()")


def query_of(tab):
    return dict(urllib.parse.parse_qsl(tab.eval("location.search")[1:]))


def plot_box(tab, stat):
    return tab.eval("""(() => { const r = document.querySelector(
        '#charts section[data-stat=%s] .plot').getBoundingClientRect();
        return {x: r.x, y: r.y, w: r.width, h: r.height}; })()""" % json.dumps(stat))


def network_only(errors, statuses):
    """Errors other than the browser's own line for a response with an expected status."""
    return [e for e in errors
            if not (e["source"] == "network" and any("status of %d" % s in e["text"] for s in statuses))]


def test_charts_legend_and_values_from_the_url(seeded, tab):
    svc = seeded["open"]
    to = T0 + 60 * (MINUTES - 1)
    tab.navigate(page_url(svc, name="^%s\\." % seeded["prefix"], **{"from": T0, "to": to},
                          stats="mean,count"))
    assert wait_settled(tab) == "ready", alert_text(tab)
    got = charts(tab)
    assert [c["stat"] for c in got] == ["count", "mean"], got
    for c in got:
        assert c["canvases"] > 0, c
        assert c["series"] == 3 and c["points"] == 3 * MINUTES, c
        assert [e["name"] for e in c["legend"]] == seeded["names"], c["legend"]
    assert tab.eval("document.getElementById('status').dataset.resolution") == "minute"
    assert alert_text(tab) is None
    # The form shows the query of the URL.
    assert tab.eval("document.getElementById('name').value") == "^%s\\." % seeded["prefix"]
    assert tab.eval("document.getElementById('range').value") == "absolute"
    assert tab.eval("Date.parse(document.getElementById('from').value + 'Z') / 1000") == T0
    assert tab.eval("Date.parse(document.getElementById('to').value + 'Z') / 1000") == to
    assert tab.eval("[...document.querySelectorAll('#stats input:checked')].map(b => b.value)"
                    ) == ["count", "mean"]

    # Pointing at the mean chart shows each name's value at that minute in the legend.
    box = plot_box(tab, "mean")
    tab.mouse("mouseMoved", box["x"] + box["w"] * 0.5, box["y"] + box["h"] * 0.5)
    mean = tab.wait_for("""(() => { const s = document.querySelector('section[data-stat=mean]');
        return s.querySelector('.series-value') && s.querySelector('.legend-time').textContent; })()""",
                        5, "values in the legend")
    at = datetime.datetime.strptime(mean, "%Y-%m-%d %H:%M:%S UTC").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    i = (int(at) - T0) // 60
    assert 0 < i < MINUTES - 1 and (int(at) - T0) % 60 == 0, mean
    legend = next(c for c in charts(tab) if c["stat"] == "mean")["legend"]
    assert [float(e["value"]) for e in legend] == [mean_of(k, i) for k in range(3)], (mean, legend)

    print("screenshot: %s" % tab.screenshot(SCREENSHOT))
    assert os.path.getsize(SCREENSHOT) > 10000
    assert tab.errors() == [], tab.errors()


def test_zoom_updates_the_url_and_back_restores(seeded, tab):
    svc = seeded["open"]
    to = T0 + 60 * (MINUTES - 1)
    first = page_url(svc, name="^%s\\." % seeded["prefix"], **{"from": T0, "to": to}, stats="mean")
    tab.navigate(first)
    assert wait_settled(tab) == "ready", alert_text(tab)
    box = plot_box(tab, "mean")
    # Zoom to about a twentieth of the range: the page asks again at the finer resolution.
    tab.drag(box["x"] + box["w"] * 0.40, box["y"] + box["h"] * 0.5, box["x"] + box["w"] * 0.45)
    tab.wait_for("location.search.includes('from=%d') === false && "
                 "document.body.dataset.state === 'ready'" % T0, 10, "the zoomed view")
    q = query_of(tab)
    zfrom, zto = int(q["from"]), int(q["to"])
    assert T0 < zfrom < zto < to and zto - zfrom < 1400, q
    assert q["stats"] == "mean" and q["name"] == "^%s\\." % seeded["prefix"], q
    assert tab.eval("document.getElementById('status').dataset.resolution") == "second"
    minutes = len([i for i in range(MINUTES) if zfrom <= T0 + 60 * i <= zto])
    (c,) = charts(tab)
    assert c["points"] == 3 * minutes and minutes > 5, (c, minutes)

    # Back: the first view, from the URL.
    tab.eval("history.back()")
    tab.wait_for("document.getElementById('status').dataset.resolution === 'minute' && "
                 "document.body.dataset.state === 'ready'", 10, "the first view again")
    assert tab.eval("location.href") == first
    assert charts(tab)[0]["points"] == 3 * MINUTES

    # Forward, then a double-click: back to the view before the zoom, as a new entry.
    tab.eval("history.forward()")
    tab.wait_for("location.search.includes('from=%d') && document.body.dataset.state === 'ready'"
                 % zfrom, 10, "the zoomed view again")
    box = plot_box(tab, "mean")
    tab.drag(box["x"] + box["w"] * 0.2, box["y"] + box["h"] * 0.5, box["x"] + box["w"] * 0.6)
    tab.wait_for("!location.search.includes('from=%d') && document.body.dataset.state === 'ready'"
                 % zfrom, 10, "a second zoom")
    x, y = box["x"] + box["w"] * 0.5, box["y"] + box["h"] * 0.5
    tab.mouse("mousePressed", x, y, "left", 1)
    tab.mouse("mouseReleased", x, y, "left", 1)
    tab.mouse("mousePressed", x, y, "left", 2)
    tab.mouse("mouseReleased", x, y, "left", 2)
    tab.wait_for("document.getElementById('status').dataset.resolution === 'minute' && "
                 "document.body.dataset.state === 'ready'", 10, "the view before zooming")
    assert query_of(tab) == query_of_url(first)
    assert tab.errors() == [], tab.errors()


def query_of_url(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def test_api_error_is_shown_in_the_alert(seeded, tab):
    svc = seeded["open"]
    tab.navigate(page_url(svc, name="%s.(alpha" % seeded["prefix"], **{"from": T0, "to": T0 + 600}))
    assert wait_settled(tab) == "error"
    text = alert_text(tab)
    assert text and "(field: name)" in text, text
    assert tab.eval("getComputedStyle(document.getElementById('alert')).display") != "none"
    assert charts(tab) == []
    # The browser notes the 400 itself; nothing else may be in the console.
    assert network_only(tab.errors(), [400]) == [], tab.errors()


def test_no_match_says_so_without_charts(seeded, tab):
    tab.navigate(page_url(seeded["open"], name="^%s\\.none$" % seeded["prefix"],
                          **{"from": T0, "to": T0 + 600}))
    assert wait_settled(tab) == "ready"
    assert charts(tab) == []
    assert tab.eval("document.getElementById('status').textContent").startswith("No name matches")
    assert alert_text(tab) is None
    assert tab.errors() == [], tab.errors()


def test_token_is_asked_for_in_the_page_and_sent(seeded, tab):
    svc = seeded["token"]
    tab.navigate(page_url(svc, name="^%s\\.alpha$" % seeded["prefix"],
                          **{"from": T0, "to": T0 + 60 * (MINUTES - 1)}, stats="mean"))
    assert wait_settled(tab) == "token"
    assert "API token" in alert_text(tab)
    assert tab.eval("document.getElementById('token-form').hidden") is False
    assert tab.eval("document.activeElement.id") == "token"
    tab.type_text(TOKEN)
    tab.key("Enter", "Enter", 13)
    assert wait_settled(tab) == "ready", alert_text(tab)
    (c,) = charts(tab)
    assert c["points"] == MINUTES and [e["name"] for e in c["legend"]] == seeded["names"][:1]
    assert tab.eval("document.getElementById('token-form').hidden") is True
    assert tab.eval("sessionStorage.getItem('m2pg-token')") == TOKEN
    # A reload keeps the token for this tab.
    tab.navigate(tab.eval("location.href"))
    assert wait_settled(tab) == "ready"
    assert network_only(tab.errors(), [401]) == [], tab.errors()


def test_partial_results_are_announced(seeded, tab):
    """A database down: the page still draws what the other answered, and says so."""
    db2 = seeded["dbs"][1]
    db2.stop()
    try:
        tab.navigate(page_url(seeded["open"], name="^%s\\." % seeded["prefix"],
                              **{"from": T0, "to": T0 + 60 * (MINUTES - 1)}, stats="mean"))
        assert wait_settled(tab, 20) == "ready", alert_text(tab)
        assert alert_text(tab) == "partial results: 1/2 databases"
        assert charts(tab)[0]["points"] == 3 * MINUTES
        assert tab.errors() == [], tab.errors()
    finally:
        db2.start()


def test_fifty_names_of_a_day_draw_fast(seeded, tab):
    """50 names x 1,440 minutes in one chart: built and drawn well under a second."""
    svc = seeded["open"]
    prefix = "big%s" % uuid.uuid4().hex[:8]
    t1 = T0 + 86400 * 10
    rows = [{"bucket": t1 + 60 * i, "name": "%s.n%02d" % (prefix, k), "mean": k + (i % 60) / 60}
            for k in range(50) for i in range(1440)]
    started = time.monotonic()
    for at in range(0, len(rows), 10000):
        # Seven full batches back to back can outrun what the databases commit in time: m2pg
        # then refuses one with 503 "stored": false, and a client sends it again.
        deadline = time.monotonic() + 60
        while True:
            r = svc.post(rows[at:at + 10000], timeout=30)
            if r.status != 503 or r.json.get("stored") is not False or time.monotonic() > deadline:
                break
            time.sleep(float(r.header("Retry-After") or 1))
        assert_created(r, len(rows[at:at + 10000]))
    print("seeded %d metrics in %.1f s" % (len(rows), time.monotonic() - started))
    url = page_url(svc, name="^%s\\." % prefix, **{"from": t1, "to": t1 + 60 * 1439}, stats="mean")

    def complete():
        r = svc.request("GET", "/metrics?" + urllib.parse.urlencode(
            {"name": "^" + prefix, "from": t1, "to": t1 + 86400}), timeout=30)
        return r.status == 200 and r.header("M2pg-Databases") == "2/2" and \
            sum(len(o["mean"]) for o in r.json) == len(rows)
    wait_until(complete, 30, message="the 72,000 metrics to be readable from both databases")
    started = time.monotonic()
    tab.navigate(url)
    assert wait_settled(tab, 20) == "ready", alert_text(tab)
    elapsed = time.monotonic() - started
    (c,) = charts(tab)
    assert c["series"] == 50 and c["points"] == len(rows), c
    draw_ms = float(tab.eval("document.getElementById('status').dataset.drawMs"))
    print("50 x 1440: drawn in %.0f ms; page loaded, asked and drawn in %.0f ms" % (draw_ms, elapsed * 1000))
    assert draw_ms < 500, draw_ms
    assert tab.errors() == [], tab.errors()
