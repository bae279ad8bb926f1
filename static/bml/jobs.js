// Job details: follow the log while the job runs and draw its reported metrics as curves
// (BMLCharts, static/bml/charts.js).
(function () {
  "use strict";
  // Statuses a job (or instance) has not ended in: "staging" = its outputs wait for the store.
  const LIVE = new Set(["queued", "running", "staging"]);
  const LABELS = { staging: "Staging outputs", timed_out: "Timed out" };

  async function refreshLogs(box) {
    const response = await fetch(box.dataset.logsUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const logs = await response.json();
    logs.forEach(function (log) {
      let pre = document.getElementById("log-" + log.instance);
      if (!pre) {
        pre = document.createElement("pre");
        pre.className = "log"; pre.id = "log-" + log.instance;
        box.appendChild(pre);
      }
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = log.text;
      if (log.analysis && log.analysis.hint && !document.getElementById("hint-" + log.instance)) {
        const hint = document.createElement("div");
        hint.id = "hint-" + log.instance; hint.className = "msg warning log-hint";
        hint.textContent = "Instance " + log.instance + ": " + log.analysis.hint;
        pre.parentNode.insertBefore(hint, pre);
      }
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    return logs.length > 0 && logs.every(function (l) { return !LIVE.has(l.status); });
  }

  // One line chart per reported metric (static/bml/charts.js), one series per instance; while
  // the job runs the charts take the new points without being drawn again (zoom stays).
  function metricSeries(name, series) {
    return series.map(function (s) {
      // Packed [step, value, step, value, ...]: what charts.js hands ECharts, without a
      // small array per point on the way (a long run reports 100,000 points and more).
      const values = s.columns[name] || [], steps = s.columns.step || [];
      const flat = new Float64Array(s.count * 2);
      let n = 0;
      for (let i = 0; i < s.count; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue;
        flat[2 * n] = steps[i] ?? n;
        flat[2 * n + 1] = value;
        n++;
      }
      return { name: "instance " + s.instance, data: flat.subarray(0, 2 * n) };
    });
  }

  async function refreshCurves(box) {
    // One list per name (the API's column shape): a third smaller than one object per
    // point, and parsed in about half the time (benchmarks/charts.py).
    const url = box.dataset.metricsUrl + (box.dataset.metricsUrl.includes("?") ? "&" : "?") + "shape=columns";
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const series = await response.json();
    const names = new Set();
    series.forEach(function (s) {
      for (const k in s.columns) if (k !== "step" && k !== "time") names.add(k);
    });
    if (!names.size) return;
    const note = box.querySelector(":scope > p.muted");
    if (note) note.remove();
    names.forEach(function (name) {
      const data = metricSeries(name, series);
      if (data.every(function (s) { return s.data.length === 0; })) return;  // never a number
      let figure = box.querySelector('figure.chart[data-metric="' + CSS.escape(name) + '"]');
      if (!figure) {
        figure = document.createElement("figure");
        figure.className = "chart";
        figure.dataset.metric = name;
        box.appendChild(figure);
        BMLCharts.line(figure, {
          title: name, series: data, xName: "step", logScale: true, width: 460, filename: box.dataset.job + "-" + name,
        });
      } else if (figure.dataset.points !== String(data.reduce(function (n, s) { return n + s.data.length / 2; }, 0))) {
        BMLCharts.update(figure, { series: data });
      }
    });
  }

  // The status badge follows the job (Queued -> Running [-> Staging outputs] -> Succeeded)
  // while the page is open; true once the job has ended.
  async function refreshStatus(badge) {
    const response = await fetch(badge.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return false;
    const status = (await response.json()).status;
    if (badge.dataset.status !== status) {
      badge.dataset.status = status;
      badge.className = "tag status-" + status;
      badge.textContent = LABELS[status] || status.charAt(0).toUpperCase() + status.slice(1);
    }
    return !LIVE.has(status);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const logs = document.getElementById("logs");
    const curves = document.getElementById("curves");
    const badge = document.getElementById("job-status");
    if (!logs) return;
    async function tick() {
      const ended = badge ? await refreshStatus(badge) : false;
      const done = await refreshLogs(logs);
      if (curves) await refreshCurves(curves);
      if (!logs.dataset.live) return;
      // The page is drawn again once the job has ended: results, release form, metrics.
      if (ended || done) setTimeout(function () { window.location.reload(); }, 500);
      else setTimeout(tick, 1000);
    }
    tick();
  });

  // The create form: choosing a template fills the code box and picks its framework;
  // the code source radio shows either the editor or the code path with its command.
  document.addEventListener("DOMContentLoaded", function () {
    const select = document.getElementById("code-template");
    if (!select) return;
    select.addEventListener("change", function () {
      if (!select.value) return;
      const tpl = document.querySelector('template[data-template="' + select.value + '"]');
      document.querySelector("textarea[name=code]").value = tpl.innerHTML
        .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&amp;/g, "&");
      const framework = select.selectedOptions[0].dataset.framework;
      const frameworkSelect = document.getElementById("framework");
      if (framework && frameworkSelect.querySelector('option[value="' + framework + '"]')) frameworkSelect.value = framework;
    });
    const radios = document.querySelectorAll("input[name=code_source]");
    function showSource() {
      const chosen = document.querySelector("input[name=code_source]:checked").value;
      document.querySelectorAll("[data-code-source]").forEach(function (part) {
        part.hidden = part.dataset.codeSource !== chosen;
      });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", showSource); });
    showSource();
  });

  // "Release to the model warehouse": a new model needs a name, a new version does not.
  document.addEventListener("DOMContentLoaded", function () {
    const target = document.getElementById("release-target");
    if (!target) return;
    const name = document.getElementById("release-name");
    function showName() { name.hidden = target.value !== ""; }
    target.addEventListener("change", showName);
    showName();
  });
})();
