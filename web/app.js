// The chart page: the query lives in the URL (/?name=&source=&from=&to=&resolution=&stats=),
// each query is one GET /metrics, and each chosen statistic is one dygraph whose series are the
// matching names. Data for a chart is built once, as rows [Date, v1..vN] with nulls where a
// name has no point; nothing is done per point in the DOM.
'use strict';

(function () {
  const STATS = ['count', 'mean', 'median', 'min', 'max', 'perc95', 'perc99', 'last'];
  const DEFAULT_STATS = ['mean', 'perc95', 'count'];
  const DEFAULT_FROM = '-1h';
  // The finest resolution that keeps a series under MAX_POINTS points over the range.
  const RESOLUTIONS = [['second', 1], ['minute', 60], ['hour', 3600], ['day', 86400],
    ['week', 604800], ['month', 2629746], ['year', 31556952]];
  const MAX_POINTS = 1500;
  const REFRESH_MS = 30000;
  const TOKEN_KEY = 'm2pg-token';
  const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

  const $ = (id) => document.getElementById(id);
  const form = $('query');
  const inputs = {
    name: $('name'), source: $('source'), range: $('range'), from: $('from'), to: $('to'),
    resolution: $('resolution'), refresh: $('refresh'),
  };
  const statBoxes = Array.from(document.querySelectorAll('#stats input[type=checkbox]'));
  const alertBox = $('alert');
  const statusLine = $('status');
  const chartsBox = $('charts');
  const tokenForm = $('token-form');
  const tokenInput = $('token');

  let current = null;  // the query shown: {name, source, from, to, resolution, stats}
  let loaded = null;   // the last answer: {key, series, from, to, resolution, partial}
  let charts = [];     // the dygraphs on the page
  let inflight = null; // AbortController of the request under way
  // The query before the first zoom, where a double-click returns. Kept in history.state too,
  // so that back, forward and reload keep it.
  let zoomBase = null;
  let refreshTimer = null;

  // ---------------------------------------------------------------- the query and the URL

  function queryFromURL() {
    const q = new URLSearchParams(location.search);
    const stats = (q.get('stats') || '').split(',').filter((s) => STATS.includes(s));
    return {
      name: q.get('name') || '',
      source: q.get('source') || '',
      from: q.get('from') || DEFAULT_FROM,
      to: q.get('to') || '',
      resolution: q.get('resolution') || 'auto',
      stats: stats.length ? stats : DEFAULT_STATS.slice(),
    };
  }

  function urlOf(query) {
    const q = new URLSearchParams();
    q.set('name', query.name);
    if (query.source) q.set('source', query.source);
    q.set('from', query.from);
    if (query.to) q.set('to', query.to);
    if (query.resolution !== 'auto') q.set('resolution', query.resolution);
    q.set('stats', query.stats.join(','));
    return '/?' + q.toString();
  }

  // Unix seconds, or null. Accepts Unix seconds, "now" and relative times such as -6h.
  function parseTime(text, now) {
    if (text === '' || text === 'now') return now;
    let m = /^-(\d+(?:\.\d+)?)([smhdw])$/.exec(text);
    if (m) return now - Number(m[1]) * UNIT_SECONDS[m[2]];
    m = /^\d+(?:\.\d+)?$/.exec(text);
    return m ? Number(text) : null;
  }

  function autoResolution(seconds) {
    for (const [name, step] of RESOLUTIONS) {
      if (seconds / step + 1 <= MAX_POINTS) return name;
    }
    return 'year';
  }

  // datetime-local inputs hold UTC wall time.
  function toLocalInput(seconds) {
    return new Date(Math.round(seconds) * 1000).toISOString().slice(0, 19);
  }

  function fromLocalInput(value) {
    const ms = Date.parse(value + 'Z');
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  }

  function formatTime(ms) {
    return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  }

  function formatValue(v) {
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e9 || a < 1e-4) ? v.toExponential(4) : String(Number(v.toPrecision(7)));
  }

  function fillForm(query) {
    inputs.name.value = query.name;
    inputs.source.value = query.source;
    const preset = query.to === '' && inputs.range.querySelector(`option[value="${CSS.escape(query.from)}"]`);
    inputs.range.value = preset ? query.from : 'absolute';
    const now = Date.now() / 1000;
    const from = parseTime(query.from, now);
    const to = parseTime(query.to, now);
    inputs.from.value = from === null ? '' : toLocalInput(from);
    inputs.to.value = to === null ? '' : toLocalInput(to);
    inputs.resolution.value = query.resolution;
    if (inputs.resolution.value !== query.resolution) inputs.resolution.value = 'auto';
    for (const box of statBoxes) box.checked = query.stats.includes(box.value);
  }

  function readForm() {
    const query = {
      name: inputs.name.value.trim(),
      source: inputs.source.value.trim(),
      from: inputs.range.value,
      to: '',
      resolution: inputs.resolution.value,
      stats: statBoxes.filter((b) => b.checked).map((b) => b.value),
    };
    if (inputs.range.value === 'absolute') {
      const from = fromLocalInput(inputs.from.value);
      const to = fromLocalInput(inputs.to.value);
      query.from = from === null ? current.from : String(from);
      query.to = to === null ? '' : String(to);
    }
    return query;
  }

  // Shows query, with a new history entry unless it is the one in the address bar already.
  // base: the view a double-click returns to (zoomed views only).
  function go(query, base) {
    zoomBase = base || null;
    const url = urlOf(query);
    if (url !== location.pathname + location.search) {
      history.pushState({ zoomBase }, '', url);
    } else {
      history.replaceState({ zoomBase }, '', url);
    }
    show(query);
  }

  function showFromHistory() {
    zoomBase = (history.state && history.state.zoomBase) || null;
    show(queryFromURL());
  }

  // Queries that differ only in their statistics share one answer (it holds them all).
  function keyOf(query) {
    return JSON.stringify([query.name, query.source, query.from, query.to, query.resolution, query.stats]);
  }

  function show(query) {
    current = query;
    fillForm(query);
    if (loaded && loaded.key === keyOf(query)) {
      render();
    } else {
      load();
    }
  }

  // ---------------------------------------------------------------- asking m2pg

  function setState(state) {
    document.body.dataset.state = state;
    document.body.setAttribute('aria-busy', state === 'loading' ? 'true' : 'false');
  }

  function showAlert(text) {
    alertBox.textContent = text;
    alertBox.hidden = !text;
  }

  // A refresh that fails keeps the charts of its query under the alert; a new query's do not.
  function fail(text) {
    if (!loaded || loaded.key !== keyOf(current)) {
      loaded = null;
      clearCharts();
      statusLine.textContent = '';
    }
    showAlert(text);
    setState('error');
  }

  function errorText(status, body, headers) {
    const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${status}`;
    const field = body && body.field ? ` (field: ${body.field})` : '';
    if (status === 503) {
      const retry = headers.get('Retry-After');
      return `m2pg is unavailable: ${msg}` + (retry ? ` (retry after ${retry} s)` : '');
    }
    return `${msg}${field}`;
  }

  async function load() {
    const query = current;
    if (inflight) inflight.abort();
    inflight = null;
    if (!query.name) {
      loaded = null;
      clearCharts();
      showAlert('');
      statusLine.textContent = 'Enter a regular expression for the names to chart.';
      setState('idle');
      return;
    }
    const now = Date.now() / 1000;
    const from = parseTime(query.from, now);
    const to = parseTime(query.to, now);
    if (from === null || to === null) {
      fail(`${from === null ? 'from' : 'to'}: expected Unix seconds or a relative time such as -6h`);
      return;
    }
    if (from > to) {
      fail('from is after to');
      return;
    }
    const resolution = query.resolution === 'auto' ? autoResolution(to - from) : query.resolution;
    const params = new URLSearchParams({
      name: query.name, from: String(Math.floor(from)), to: String(Math.ceil(to)), resolution,
    });
    if (query.source) params.set('source', query.source);
    // Only the statistics charted: the answer for one is an eighth of the answer for all.
    if (query.stats.length) params.set('stats', query.stats.join(','));
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;

    const controller = new AbortController();
    inflight = controller;
    setState('loading');
    if (!loaded || loaded.key !== keyOf(query)) statusLine.textContent = 'Loading…';
    const started = performance.now();
    let resp;
    let body = null;
    try {
      // credentials 'omit': the browser's own Basic-auth dialog must never appear on a 401.
      resp = await fetch('/metrics?' + params.toString(),
        { credentials: 'omit', cache: 'no-store', headers, signal: controller.signal });
      const text = await resp.text();
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = null;
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      inflight = null;
      // A streamed answer is cut short when the databases fail mid-way.
      fail(resp ? 'the answer from m2pg was cut short; try again' : `m2pg did not answer: ${e.message}`);
      return;
    }
    if (controller.signal.aborted) return;
    inflight = null;
    if (resp.status === 401 || resp.status === 403) {
      askToken(errorText(resp.status, body, resp.headers));
      return;
    }
    if (!resp.ok) {
      fail(errorText(resp.status, body, resp.headers));
      return;
    }
    if (!Array.isArray(body)) {
      fail('the answer from m2pg was cut short or not JSON; try again');
      return;
    }
    tokenForm.hidden = true;
    const dbs = resp.headers.get('M2pg-Databases') || '';
    const m = /^(\d+)\/(\d+)$/.exec(dbs);
    loaded = {
      key: keyOf(query), series: body, from, to, resolution, fetchMs: performance.now() - started,
      partial: m && Number(m[1]) < Number(m[2]) ? `partial results: ${dbs} databases` : '',
    };
    render();
  }

  function askToken(message) {
    clearCharts();
    loaded = null;
    showAlert(message);
    statusLine.textContent = '';
    tokenForm.hidden = false;
    tokenInput.value = '';
    tokenInput.focus();
    setState('token');
  }

  // ---------------------------------------------------------------- charts

  // Rows [Date, v1..vN] over the union of the names' buckets, nulls where a name has none.
  function buildRows(series, stat) {
    const n = series.length;
    const byBucket = new Map();
    for (let i = 0; i < n; i++) {
      const points = series[i][stat] || [];
      for (let j = 0; j < points.length; j++) {
        const p = points[j];
        let row = byBucket.get(p.bucket);
        if (row === undefined) {
          row = new Array(n + 1).fill(null);
          row[0] = p.bucket;
          byBucket.set(p.bucket, row);
        }
        row[i + 1] = p.value;
      }
    }
    const rows = Array.from(byBucket.values());
    rows.sort((a, b) => a[0] - b[0]);
    for (const row of rows) row[0] = new Date(row[0] * 1000);
    return rows;
  }

  // The legend as HTML text (names always, values while a time is selected), escaped by
  // textContent: names are whatever clients wrote.
  function legendFormatter(data) {
    const frag = document.createDocumentFragment();
    const head = document.createElement('p');
    head.className = 'legend-time';
    head.textContent = data.x === undefined ? 'Point at the chart for values; drag to zoom, double-click to reset.'
      : formatTime(data.x) + ' UTC';
    const list = document.createElement('ul');
    for (const s of data.series) {
      const item = document.createElement('li');
      if (s.isHighlighted) item.className = 'highlight';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.backgroundColor = s.color;
      const name = document.createElement('span');
      name.className = 'series-name';
      name.textContent = s.label;
      item.append(swatch, name);
      if (data.x !== undefined && typeof s.y === 'number' && !Number.isNaN(s.y)) {
        const value = document.createElement('span');
        value.className = 'series-value';
        value.textContent = formatValue(s.y);
        item.append(': ', value);
      }
      list.append(item);
    }
    frag.append(head, list);
    return frag;
  }

  function onZoom(minMs, maxMs) {
    const from = Math.floor(minMs / 1000);
    const to = Math.ceil(maxMs / 1000);
    // A vertical zoom calls back with the x range unchanged: it stays within the chart.
    if (!loaded || to <= from || (from <= Math.floor(loaded.from) && to >= Math.ceil(loaded.to))) return;
    go(Object.assign({}, current, { from: String(from), to: String(to) }), zoomBase || current);
  }

  function onDoubleClick(event, g, context) {
    if (context.cancelNextDblclick) {
      context.cancelNextDblclick = false;
      return;
    }
    if (zoomBase) {
      go(zoomBase, null);
    } else {
      render(); // undoes a vertical zoom
    }
  }

  function clearCharts() {
    for (const g of charts) g.destroy();
    charts = [];
    chartsBox.replaceChildren();
  }

  function render() {
    clearCharts();
    const started = performance.now();
    const { series, from, to, resolution } = loaded;
    const names = series.map((s) => s.name);
    const stats = STATS.filter((s) => current.stats.includes(s));
    showAlert(loaded.partial);
    statusLine.dataset.resolution = resolution;
    if (!series.length) {
      statusLine.textContent = `No name matches ${current.name}` +
        (current.source ? ` from a source matching ${current.source}` : '') +
        ` between ${formatTime(from * 1000)} and ${formatTime(to * 1000)} UTC.`;
      setState('ready');
      return;
    }
    const interactionModel = Object.assign({}, Dygraph.defaultInteractionModel, { dblclick: onDoubleClick });
    for (const stat of stats) {
      const section = document.createElement('section');
      section.className = 'chart';
      section.dataset.stat = stat;
      const title = document.createElement('h2');
      title.id = 'chart-' + stat;
      title.textContent = stat;
      section.setAttribute('aria-labelledby', title.id);
      section.append(title);
      chartsBox.append(section);
      const rows = buildRows(series, stat);
      if (!rows.length) {
        const p = document.createElement('p');
        p.className = 'empty';
        p.textContent = `No ${stat} values in this range.`;
        section.append(p);
        section.dataset.series = '0';
        section.dataset.points = '0';
        continue;
      }
      const plot = document.createElement('div');
      plot.className = 'plot';
      plot.setAttribute('role', 'img');
      plot.setAttribute('aria-label', `${stat} of ${names.length} names; values are in the legend below`);
      const legend = document.createElement('div');
      legend.className = 'legend';
      section.append(plot, legend);
      charts.push(new Dygraph(plot, rows, {
        labels: ['time'].concat(names),
        labelsDiv: legend,
        legend: 'always',
        legendFormatter,
        labelsUTC: true,
        dateWindow: to > from ? [from * 1000, to * 1000] : [from * 1000 - 30000, to * 1000 + 30000],
        interactionModel,
        zoomCallback: onZoom,
        strokeWidth: 1.25,
        highlightCircleSize: 3,
        axes: { y: { axisLabelWidth: 64 } },
        drawCallback: (g, initial) => {
          if (initial) countDrawn(section, g);
        },
      }));
    }
    const buckets = series.reduce((n, s) => Math.max(n, ...stats.map((st) => (s[st] || []).length)), 0);
    const drawMs = performance.now() - started;
    statusLine.dataset.drawMs = drawMs.toFixed(1);
    statusLine.textContent = `${names.length} name${names.length === 1 ? '' : 's'}, up to ${buckets} ${resolution}` +
      ` buckets each, ${formatTime(from * 1000)} to ${formatTime(to * 1000)} UTC` +
      ` (answer in ${Math.round(loaded.fetchMs)} ms, drawn in ${Math.round(drawMs)} ms)`;
    if (!stats.length) statusLine.textContent += '. Choose a statistic to chart.';
    setState('ready');
  }

  // What the chart holds once drawn, for people and tests alike: its series and the values
  // (non-null cells) dygraphs has.
  function countDrawn(section, g) {
    let points = 0;
    const rows = g.numRows();
    const cols = g.numColumns();
    for (let r = 0; r < rows; r++) {
      for (let c = 1; c < cols; c++) {
        if (g.getValue(r, c) !== null) points++;
      }
    }
    section.dataset.series = String(cols - 1);
    section.dataset.points = String(points);
  }

  // ---------------------------------------------------------------- wiring

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(readForm(), null);
  });
  // Choices apply at once; text waits for Enter or Show.
  for (const el of [inputs.range, inputs.resolution].concat(statBoxes)) {
    el.addEventListener('change', () => {
      if (inputs.name.value.trim()) form.requestSubmit();
    });
  }
  for (const el of [inputs.from, inputs.to]) {
    el.addEventListener('change', () => {
      inputs.range.value = 'absolute';
      if (inputs.name.value.trim() && fromLocalInput(inputs.from.value) !== null) form.requestSubmit();
    });
  }
  inputs.refresh.addEventListener('change', () => {
    clearInterval(refreshTimer);
    refreshTimer = null;
    if (inputs.refresh.checked) {
      refreshTimer = setInterval(() => {
        if (!document.hidden && current && current.name && !inflight) load();
      }, REFRESH_MS);
    }
  });
  tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    tokenForm.hidden = true;
    showAlert('');
    loaded = null;
    show(current);
  });
  window.addEventListener('popstate', showFromHistory);
  showFromHistory();
})();
