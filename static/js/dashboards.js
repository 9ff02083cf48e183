// The dashboards page: every chart asks the metrics query (api/metrics/query) with the page's
// shared range and filters plus its own measure and grouping, draws it with Chart.js, and fills
// its data table (for screen readers, and for anyone who wants the figures).
//
// Live: every POLL_MS, while the tab is visible, one small totals query (calls, cost and run
// counts over the range — a read of the hourly rollups, a few milliseconds) is compared with the
// last one; only when it changed are the charts and tables asked again. A poll rather than a
// socket because the figures are sums that move on every finished call: a push per call would
// cost more than a cheap look every few seconds, and nothing is missed between looks.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  var form = document.querySelector("[data-dashboard-form]");
  if (!root || !form || !window.Chart) return;

  var POLL_MS = 5000;
  var api = root.dataset.api;
  var workspace = root.dataset.workspace;
  var charts = {};
  var lastStamp = null;
  var generation = 0;
  // Okabe–Ito: told apart with the common colour-vision deficiencies, on light and dark.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999", "#7F3C8D", "#11A579"];
  var STATUS_COLOURS = { succeeded: "#009E73", failed: "#D55E00", cancelled: "#999999", waiting: "#E69F00", running: "#56B4E9", queued: "#CC79A7" };
  var RUN_FILTERS = ["workflow", "user"];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function fixed() {
    var found = {};
    ["agent", "workflow"].forEach(function (name) {
      var value = root.getAttribute("data-fixed-" + name);
      if (value) found[name] = value;
    });
    return found;
  }

  // The page's shared state as URL parameters: range (or from/to), stack, filters.
  function pageParams() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (value !== "") params.append(name, value);
    });
    if (params.get("range") !== "custom") {
      params.delete("from");
      params.delete("to");
    } else {
      params.delete("range");
    }
    return params;
  }

  function queryFor(figure) {
    var params = pageParams();
    var stack = params.get("stack");
    params.delete("stack");
    var fixedFilters = fixed();
    Object.keys(fixedFilters).forEach(function (name) { params.set(name, fixedFilters[name]); });
    if (figure.hasAttribute("data-runs")) {
      ["provider", "model", "agent", "deployment", "error_kind"].forEach(function (name) { params.delete(name); });
    }
    params.set("workspace", workspace);
    params.set("measure", figure.dataset.measure);
    var dimension = figure.dataset.dimension === "stack" ? stack : figure.dataset.dimension;
    if (dimension) params.set("dimension", dimension);
    params.set("granularity", figure.dataset.granularity || "auto");
    return params;
  }

  function unitOf(answer, measure) { return (answer.units || {})[measure] || ""; }

  function format(value, unit) {
    if (value === null || value === undefined) return "unknown";
    if (unit === "USD") return "$" + (value >= 1 || value === 0 ? value.toFixed(2) : value.toFixed(4));
    if (unit === "ms") return value >= 1000 ? (value / 1000).toFixed(2) + " s" : Math.round(value) + " ms";
    if (unit === "ratio") return (value * 100).toFixed(1) + " %";
    return Number(value).toLocaleString();
  }

  var MEASURE_NAMES = {
    latency_p50: "p50", latency_p95: "p95", latency_p99: "p99",
    first_token_p50: "p50", first_token_p95: "p95", error_rate: "error rate",
  };

  function timeLabel(iso, granularity) {
    var date = new Date(iso);
    var opts = { month: "short", day: "numeric", timeZone: "UTC" };
    if (granularity === "hour") { opts.hour = "2-digit"; opts.minute = "2-digit"; opts.hourCycle = "h23"; }
    var text = date.toLocaleString(undefined, opts);
    return granularity === "week" ? "week of " + text : text;
  }

  // Rows of the answer as Chart.js labels and datasets, and as a table.
  function shape(figure, answer) {
    var query = answer.query;
    var measures = query.measures;
    var dimension = query.dimensions[0] || null;
    var labels = dimension ? (answer.labels[dimension] || {}) : {};
    var dropEmpty = figure.hasAttribute("data-drop-empty");
    var rows = answer.rows.filter(function (row) { return !(dropEmpty && dimension && row[dimension] === ""); });
    var timed = query.granularity !== "total";
    var series = [];
    var categories;
    if (timed) {
      categories = answer.buckets;
      var index = {};
      categories.forEach(function (bucket, i) { index[new Date(bucket).getTime()] = i; });
      var byKey = {};
      rows.forEach(function (row) {
        measures.forEach(function (measure) {
          var key = dimension ? row[dimension] : measure;
          if (!byKey[key]) {
            byKey[key] = {
              key: key,
              label: dimension ? (labels[key] || key || "none") : (MEASURE_NAMES[measure] || measure),
              unit: unitOf(answer, measure),
              values: categories.map(function () { return null; }),
            };
            series.push(byKey[key]);
          }
          var at = index[new Date(row.time).getTime()];
          if (at !== undefined) byKey[key].values[at] = row[measure];
        });
      });
      // A stacked bar reads a missing value as nothing there; a line keeps its gap.
      if (figure.dataset.kind === "stacked") {
        series.forEach(function (s) { s.values = s.values.map(function (v) { return v === null ? 0 : v; }); });
      }
      categories = categories.map(function (bucket) { return timeLabel(bucket, query.granularity); });
    } else {
      categories = rows.map(function (row) { return labels[row[dimension]] || row[dimension] || "none"; });
      measures.forEach(function (measure) {
        series.push({
          key: measure,
          label: MEASURE_NAMES[measure] || measure,
          unit: unitOf(answer, measure),
          values: rows.map(function (row) { return row[measure]; }),
        });
      });
    }
    return { categories: categories, series: series, timed: timed, dimension: dimension };
  }

  function colourFor(figure, s, i) {
    if (figure.dataset.measure === "runs" && STATUS_COLOURS[s.key]) return STATUS_COLOURS[s.key];
    return PALETTE[i % PALETTE.length];
  }

  function draw(figure, shaped) {
    var canvas = figure.querySelector("canvas");
    var kind = figure.dataset.kind;
    var stacked = kind === "stacked";
    var text = css("--muted") || "#666";
    var grid = css("--border") || "#ddd";
    var unit = shaped.series[0] ? shaped.series[0].unit : "";
    var data = {
      labels: shaped.categories,
      datasets: shaped.series.map(function (s, i) {
        var colour = colourFor(figure, s, i);
        return {
          label: s.label, data: s.values, backgroundColor: colour, borderColor: colour,
          borderWidth: kind === "line" ? 2 : 0, pointRadius: kind === "line" ? 1.5 : 0,
          spanGaps: false, tension: 0.2, unit: s.unit,
        };
      }),
    };
    var options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { color: text, boxWidth: 12 } },
        tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + format(ctx.raw, ctx.dataset.unit); } } },
      },
      scales: {
        x: { stacked: stacked, ticks: { color: text, maxRotation: 0, autoSkip: true }, grid: { color: grid } },
        y: { stacked: stacked, beginAtZero: true, ticks: { color: text, callback: function (v) { return format(v, unit); } }, grid: { color: grid } },
      },
    };
    var existing = charts[figure.id];
    if (existing) {
      existing.config.type = kind === "line" ? "line" : "bar";
      existing.data = data;
      existing.options = options;
      existing.update("none");
    } else {
      charts[figure.id] = new window.Chart(canvas, { type: kind === "line" ? "line" : "bar", data: data, options: options });
    }
  }

  function table(figure, shaped, answer) {
    var holder = figure.querySelector("[data-chart-table]");
    var tableEl = document.createElement("table");
    var head = tableEl.createTHead().insertRow();
    var first = document.createElement("th");
    first.scope = "col";
    first.textContent = shaped.timed ? "Time (UTC)" : (shaped.dimension || "");
    head.appendChild(first);
    shaped.series.forEach(function (s) {
      var th = document.createElement("th");
      th.scope = "col";
      th.className = "num";
      th.textContent = s.label;
      head.appendChild(th);
    });
    var body = tableEl.createTBody();
    shaped.categories.forEach(function (category, i) {
      var tr = body.insertRow();
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = category;
      tr.appendChild(th);
      shaped.series.forEach(function (s) {
        var td = tr.insertCell();
        td.className = "num";
        td.textContent = format(s.values[i], s.unit);
      });
    });
    holder.replaceChildren(tableEl);
    var note = figure.querySelector("[data-chart-note]");
    var notes = [];
    if (answer.unpriced_tokens) notes.push(Number(answer.unpriced_tokens).toLocaleString() + " tokens have no known price and are not in this figure.");
    if (answer.precision && !shaped.timed) notes.push("Percentiles from fixed latency buckets; the true value lies in the same bucket.");
    note.textContent = notes.join(" ");
  }

  function empty(figure, isEmpty) {
    figure.querySelector("[data-chart-empty]").hidden = !isEmpty;
    figure.dataset.state = isEmpty ? "empty" : "drawn";
  }

  function refreshChart(figure, run) {
    var params = queryFor(figure);
    figure.dataset.query = params.toString();
    var csv = new URLSearchParams(params);
    csv.set("format", "csv");
    figure.querySelector("[data-chart-csv]").href = api + "?" + csv.toString();
    figure.dataset.state = "loading";
    return fetch(api + "?" + params.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
      })
      .then(function (result) {
        if (run !== generation) return; // a newer range or filter was asked for meanwhile
        var note = figure.querySelector("[data-chart-note]");
        if (!result.ok) {
          note.textContent = result.answer.error || "This chart could not be loaded.";
          empty(figure, true);
          figure.dataset.state = "error";
          return;
        }
        var shaped = shape(figure, result.answer);
        // A line's 0 is a figure (no errors); a stack of zeros is nothing to show.
        var line = figure.dataset.kind === "line";
        var hasData = shaped.series.some(function (s) {
          return s.values.some(function (v) { return v !== null && (line || v !== 0); });
        });
        draw(figure, shaped);
        table(figure, shaped, result.answer);
        empty(figure, !hasData);
        figure.dataset.rows = String(result.answer.rows.length);
      })
      .catch(function () {
        figure.querySelector("[data-chart-note]").textContent = "The figures could not be loaded; retrying shortly.";
        figure.dataset.state = "error";
      });
  }

  // The headline and the tables are rendered by the server: each region is asked on its own.
  function refreshRegions(run) {
    var params = pageParams();
    var regions = Array.prototype.slice.call(root.querySelectorAll("[data-region]"));
    return Promise.all(regions.map(function (region) {
      var name = region.dataset.region;
      var asked = new URLSearchParams(params);
      asked.set("region", name);
      return fetch(window.location.pathname + "?" + asked.toString(), { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null || run !== generation) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("dash-" + name);
          var current = document.getElementById("dash-" + name);
          if (fresh && current) current.replaceWith(document.importNode(fresh, true));
        })
        .catch(function () { /* the next change or poll tries again */ });
    }));
  }

  function refreshAll() {
    generation += 1;
    var run = generation;
    var figures = Array.prototype.slice.call(root.querySelectorAll("[data-chart]"));
    root.dataset.refreshing = "true";
    return Promise.all(figures.map(function (figure) { return refreshChart(figure, run); }).concat([refreshRegions(run)]))
      .then(function () { if (run === generation) root.dataset.refreshing = "false"; });
  }

  function stampParams(measure) {
    var params = pageParams();
    params.delete("stack");
    var fixedFilters = fixed();
    Object.keys(fixedFilters).forEach(function (name) { params.set(name, fixedFilters[name]); });
    if (measure === "runs") {
      Array.from(params.keys()).forEach(function (name) {
        if (["range", "from", "to"].indexOf(name) < 0 && RUN_FILTERS.indexOf(name) < 0) params.delete(name);
      });
      params.set("dimension", "status");
    }
    params.set("workspace", workspace);
    params.set("measure", measure);
    params.set("granularity", "total");
    return params;
  }

  function poll() {
    if (document.hidden) return;
    var asks = ["calls,cost", "runs"].map(function (measure) {
      return fetch(api + "?" + stampParams(measure).toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; });
    });
    Promise.all(asks).then(function (answers) {
      var stamp = JSON.stringify(answers.map(function (answer) { return answer ? answer.rows : null; }));
      if (lastStamp !== null && stamp !== lastStamp) refreshAll();
      lastStamp = stamp;
    }).catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  function showCustom() {
    var custom = form.querySelector("[data-range]").value === "custom";
    form.querySelectorAll("[data-custom]").forEach(function (field) { field.hidden = !custom; });
    return custom;
  }

  function applied() {
    var custom = showCustom();
    if (custom && (!form.elements.from.value || !form.elements.to.value)) return; // wait for both dates
    var params = pageParams();
    history.replaceState(null, "", window.location.pathname + (params.toString() ? "?" + params.toString() : ""));
    lastStamp = null;
    refreshAll().then(poll);
  }

  form.addEventListener("change", applied);
  form.addEventListener("submit", function (event) { event.preventDefault(); applied(); });

  // Redraw in the other theme's colours when it is switched.
  new MutationObserver(function () {
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    refreshAll();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

  refreshAll().then(poll);
  window.setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
})();
