// The dashboard: the ranking, live from /{keys}/top/live (Server-Sent Events); the chosen key's
// minute series from /{keys}/{key}/metrics, drawn with uPlot; the pipeline's health from
// /status, every two seconds. No framework: a few functions over the DOM.
"use strict";

const state = {
  status: null,
  by: null,
  minutes: 10,
  source: null,
  chosen: null,
  chart: null,
  records: null, // [records, time] of the last /status, for the rate
};

const $ = (selector) => document.querySelector(selector);
const integer = new Intl.NumberFormat("en-US");

function formatValue(value, scale) {
  if (value === null || value === undefined) return "—";
  if (scale > 0) {
    return Number(value).toLocaleString("en-US", { minimumFractionDigits: scale, maximumFractionDigits: scale });
  }
  return integer.format(value);
}

function column(name) {
  return state.status.columns.find((c) => c.name === name);
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

async function json(path) {
  const response = await fetch(path);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${path} answered ${response.status}`);
  }
  return response.json();
}

function setRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const [text, className] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (className) td.className = className;
      tr.append(td);
    }
    return tr;
  }));
}

// The ranking.

function connect() {
  if (state.source) state.source.close();
  const params = new URLSearchParams({ by: state.by, minutes: String(state.minutes), n: "20" });
  const source = new EventSource(`/${state.status.keys}/top/live?${params}`);
  source.addEventListener("top", (event) => {
    const data = JSON.parse(event.data);
    renderTop(data.top);
    renderFreshness(data.freshness);
    $("#top-note").textContent = "";
    refreshChart();
  });
  source.addEventListener("unavailable", (event) => {
    $("#top-note").textContent = `The database does not answer (${JSON.parse(event.data).error}); waiting for it.`;
  });
  source.onerror = () => {
    $("#top-note").textContent = "The connection to the server was lost; reconnecting…";
  };
  state.source = source;
}

function renderTop(top) {
  const key = state.status.key;
  const scale = column(top.by).scale;
  $("#value-head").textContent = top.by;
  const tbody = $("#top tbody");
  setRows(tbody, top.rows.map((row, i) => [[String(i + 1)], [row[key]], [formatValue(row[top.by], scale), "number"]]));
  top.rows.forEach((row, i) => {
    const tr = tbody.children[i];
    tr.dataset.key = row[key];
    tr.dataset.value = row[top.by] === null ? "" : String(row[top.by]);
    tr.classList.toggle("chosen", row[key] === state.chosen);
    tr.addEventListener("click", () => choose(row[key]));
  });
  if (state.chosen === null && top.rows.length > 0) choose(top.rows[0][key]);
}

function choose(key) {
  state.chosen = key;
  $("#chosen").textContent = key;
  for (const tr of $("#top tbody").children) tr.classList.toggle("chosen", tr.dataset.key === key);
  refreshChart();
}

// The chosen key's series.

function chartColumns() {
  return state.status.columns.filter((c) => c.ranked);
}

const COLORS = ["#3259d6", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#c92a2a", "#5c940d", "#862e9c"];

async function refreshChart() {
  const key = state.chosen;
  if (key === null) return;
  const to = new Date();
  const from = new Date(to.getTime() - 3600 * 1000);
  const params = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  let answer;
  try {
    answer = await json(`/${state.status.keys}/${encodeURIComponent(key)}/metrics?${params}`);
  } catch (error) {
    $("#top-note").textContent = `The series cannot be read: ${error.message}`;
    return;
  }
  if (key !== state.chosen) return;
  const columns = chartColumns();
  const data = [answer.rows.map((row) => Date.parse(row.window_start) / 1000)];
  for (const c of columns) data.push(answer.rows.map((row) => row[c.name]));
  if (state.chart === null) {
    state.chart = new uPlot(chartOptions(columns), data, $("#chart"));
  } else {
    state.chart.setData(data);
  }
}

function chartOptions(columns) {
  const decimals = columns.some((c) => c.scale > 0);
  const series = [{}];
  columns.forEach((c, i) => series.push({
    label: c.name,
    stroke: COLORS[i % COLORS.length],
    width: 1.5,
    scale: c.scale > 0 ? "amount" : "count",
    value: (u, v) => formatValue(v, c.scale),
  }));
  const axes = [{}, { scale: "count", label: "count" }];
  if (decimals) axes.push({ scale: "amount", label: "amount", side: 1, grid: { show: false } });
  return { width: chartWidth(), height: chartHeight(), series, axes, scales: { x: { time: true } } };
}

function chartWidth() {
  return Math.max(240, $("#chart").clientWidth);
}

function chartHeight() {
  return window.innerWidth < 800 ? 240 : 300;
}

// The pipeline's health.

async function refreshStatus() {
  let status;
  try {
    status = await json("/status");
  } catch (error) {
    $("#freshness").textContent = `status unavailable: ${error.message}`;
    $("#freshness").className = "badge stale";
    return;
  }
  renderFreshness(status.freshness);
  const figures = [];
  const pipeline = status.pipeline;
  if (pipeline) {
    const now = Date.now();
    let rate = "—";
    if (state.records !== null && now > state.records[1]) {
      rate = integer.format(Math.round((pipeline.records - state.records[0]) / ((now - state.records[1]) / 1000)));
    }
    state.records = [pipeline.records, now];
    const lag = pipeline.partitions.reduce((sum, p) => sum + (p.lag || 0), 0);
    figures.push(["events/s", rate], ["records read", integer.format(pipeline.records)], ["consumer lag", integer.format(lag)]);
    figures.push(["open windows", integer.format(pipeline.open_windows)]);
    if (pipeline.commit_latency_ms) {
      const { p50, p99 } = pipeline.commit_latency_ms;
      figures.push(["commit latency", `p50 ${p50.toFixed(1)} ms · p99 ${p99.toFixed(1)} ms`]);
    }
    if (pipeline.database_up !== null) figures.push(["database", pipeline.database_up ? "up" : "down"]);
    setRows($("#partitions tbody"), pipeline.partitions.map((p) => [
      [String(p.partition)], [p.lag === null ? "—" : integer.format(p.lag), "number"], [p.watermark || "—"], [p.state],
    ]));
  } else {
    figures.push(["pipeline", "runs in another process (streamflow serve)"]);
    setRows($("#partitions tbody"), []);
  }
  figures.push(["watermark delay", seconds(status.freshness.watermark_delay_seconds)]);
  figures.push(["freshness", status.freshness.seconds_since_commit === null ? "no commit yet" : `${seconds(status.freshness.seconds_since_commit)} since the last commit`]);
  const dl = $("#figures");
  dl.replaceChildren(...figures.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.figure = name;
    return [dt, dd];
  }));
  const letters = Object.entries(status.dead_letters).sort((a, b) => b[1] - a[1]);
  setRows($("#dead-letters tbody"), letters.map(([reason, count]) => [[reason], [integer.format(count), "number"]]));
}

function renderFreshness(freshness) {
  const badge = $("#freshness");
  if (freshness.seconds_since_commit === null) {
    badge.textContent = "no commit yet";
    badge.className = "badge stale";
    return;
  }
  const watermark = freshness.watermark ? ` · watermark ${freshness.watermark}` : "";
  badge.textContent = `last commit ${seconds(freshness.seconds_since_commit)} ago${watermark}`;
  badge.className = freshness.seconds_since_commit < 10 ? "badge fresh" : "badge stale";
}

async function start() {
  state.status = await json("/status");
  const ranked = state.status.columns.filter((c) => c.ranked);
  const by = $("#by");
  for (const c of ranked) {
    const option = document.createElement("option");
    option.value = c.name;
    option.textContent = c.name;
    by.append(option);
  }
  state.by = state.status.default_by || ranked[0].name;
  by.value = state.by;
  $("#keys-name").textContent = state.status.keys;
  $("#key-head").textContent = state.status.key;
  by.addEventListener("change", () => { state.by = by.value; connect(); });
  $("#minutes").addEventListener("change", (event) => { state.minutes = Number(event.target.value); connect(); });
  window.addEventListener("resize", () => state.chart && state.chart.setSize({ width: chartWidth(), height: chartHeight() }));
  connect();
  refreshStatus();
  setInterval(refreshStatus, 2000);
}

start().catch((error) => {
  $("#freshness").textContent = `cannot start: ${error.message}`;
});
