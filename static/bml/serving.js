// Prediction services: the create / edit forms (model -> its versions), copy buttons, the
// status of a deploying service, the test console, and the service quality charts (BMLCharts).
(function () {
  "use strict";
  const METRICS = [
    ["pv", "PV, requests (pv)", "count"],
    ["sumTraffic", "Total traffic, bytes (sumTraffic)", "bytes"],
    ["avgTraffic", "Average traffic per request, bytes (avgTraffic)", "bytes"],
    ["sumHandleTime", "Total handling time, ms (sumHandleTime)", "ms"],
    ["avgHandleTime", "Average handling time per request, ms (avgHandleTime)", "ms"],
  ];
  const STATUSES = [
    ["status2xxProportion", "2xx", "#1a7f37"],
    ["status3xxProportion", "3xx", "#2468f2"],
    ["status4xxProportion", "4xx", "#9a6700"],
    ["status5xxProportion", "5xx", "#cf222e"],
  ];
  const QUALITY_POLL_MS = 3000, STATUS_POLL_MS = 1500;

  // -- forms: a model's versions, creation mode, next version number ------------------------

  function setupModelSelects() {
    document.querySelectorAll("select[data-versions]").forEach(function (modelSelect) {
      const versionSelect = document.getElementById(modelSelect.dataset.versions);
      if (!versionSelect) return;
      // Every model's versions, kept aside: only the chosen model's are in the select, so a
      // version number (the same in many models) is never ambiguous.
      const groups = Array.from(versionSelect.querySelectorAll("optgroup")).map(function (g) {
        return g.cloneNode(true);
      });
      function show(keepValue) {
        const model = modelSelect.value;
        const current = keepValue ? versionSelect.value : "";
        const currentModel = versionSelect.selectedOptions[0] && versionSelect.selectedOptions[0].dataset.model;
        versionSelect.innerHTML = "";
        groups.forEach(function (g) {
          if (!model || g.dataset.model === model) versionSelect.appendChild(g.cloneNode(true));
        });
        if (current && currentModel === model) versionSelect.value = current;
      }
      modelSelect.addEventListener("change", function () { show(false); });
      versionSelect.addEventListener("change", function () {
        const chosen = versionSelect.selectedOptions[0];
        if (!modelSelect.value && chosen) {
          const value = chosen.value;
          modelSelect.value = chosen.dataset.model;
          show(false);
          versionSelect.value = value;
        }
      });
      show(true);
    });
  }

  function setupCreateForm() {
    const form = document.getElementById("service-form");
    if (!form) return;
    const radios = form.querySelectorAll("input[name=mode]");
    function showMode() {
      const checked = form.querySelector("input[name=mode]:checked");
      const mode = checked ? checked.value : "new";
      form.querySelectorAll("[data-mode]").forEach(function (part) { part.hidden = part.dataset.mode !== mode; });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", showMode); });
    showMode();
    const service = document.getElementById("service-select");
    service.addEventListener("change", function () {
      const next = service.selectedOptions[0] && service.selectedOptions[0].dataset.next;
      if (next) document.getElementById("number").value = next;
    });
  }

  // -- details: copy, expand a version, follow the status ------------------------------------

  function setupCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        const field = document.getElementById(button.dataset.copy);
        const text = field.value !== undefined ? field.value : field.textContent;
        function done() {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        }
        function fallback() { field.select(); document.execCommand("copy"); done(); }
        if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
        else fallback();
      });
    });
  }

  function setupExpand() {
    document.querySelectorAll("[data-expand]").forEach(function (button) {
      button.addEventListener("click", function () {
        const details = document.getElementById(button.dataset.expand);
        details.open = !details.open;
      });
    });
  }

  function setTag(el, prefix, status, label) {
    el.className = "tag " + prefix + status;
    el.textContent = label;
  }

  function setupStatus() {
    const tag = document.getElementById("service-status");
    if (!tag || !tag.dataset.live) return;
    const rendered = tag.dataset.status; // its buttons (Restart, Delete) follow the status
    async function tick() {
      let data;
      try {
        const response = await fetch(tag.dataset.statusUrl, { credentials: "same-origin" });
        if (!response.ok) return setTimeout(tick, STATUS_POLL_MS * 2);
        data = await response.json();
      } catch (e) {
        return setTimeout(tick, STATUS_POLL_MS * 2);
      }
      setTag(tag, "svc-", data.status, data.label);
      tag.dataset.status = data.status;
      const reason = document.getElementById("service-reason");
      reason.textContent = data.reason; reason.hidden = !data.reason;
      let missing = false;
      data.versions.forEach(function (v) {
        const body = document.querySelector('#versions tbody[data-version="' + v.number + '"]');
        if (!body) { missing = true; return; }
        setTag(body.querySelector(".version-row [data-field=status]"), "svc-", v.status, v.label);
        body.querySelector(".version-row [data-field=reason]").textContent = v.reason;
        body.querySelector("[data-field=running]").textContent = v.running;
        body.querySelector("[data-field=expected]").textContent = v.expected;
        v.replicas.forEach(function (r) {
          const row = body.querySelector('tr[data-replica="' + v.number + "-" + r.index + '"]');
          if (!row) { missing = true; return; }
          setTag(row.querySelector("[data-field=status]"), "rep-", r.status, r.label);
          row.querySelector("[data-field=port]").textContent = r.port || "—";
          row.querySelector("[data-field=restarts]").textContent = r.restarts;
          row.querySelector("[data-field=reason]").textContent = r.reason;
        });
      });
      const busy = document.activeElement && document.activeElement.closest("#test-console, #quality");
      const buttonsChange = data.status !== rendered && (data.status === "failed" || data.status === "abnormal");
      if ((missing || buttonsChange) && !busy) return window.location.reload();
      if (data.status === "deploying" || data.status === "abnormal" || missing) setTimeout(tick, STATUS_POLL_MS);
    }
    setTimeout(tick, STATUS_POLL_MS);
  }

  // -- the test console ------------------------------------------------------------------------

  function setupTestConsole() {
    const form = document.getElementById("test-form");
    if (!form) return;
    const body = document.getElementById("test-body");
    const status = document.getElementById("test-status");
    const elapsed = document.getElementById("test-elapsed");
    const version = document.getElementById("test-version");
    const output = document.getElementById("test-response");
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      status.className = "tag"; status.textContent = "sending…";
      elapsed.textContent = ""; version.textContent = ""; output.textContent = "";
      const started = performance.now();
      try {
        const response = await fetch(form.dataset.url, {
          method: "POST",
          credentials: "omit", // the access key authorizes, not the console's session
          headers: { "Content-Type": "application/json", "X-BML-Access-Key": form.dataset.key },
          body: body.value,
        });
        const text = await response.text();
        elapsed.textContent = (performance.now() - started).toFixed(1) + " ms";
        status.className = "tag " + (response.ok ? "ok" : "bad");
        status.textContent = response.status + " " + response.statusText;
        const served = response.headers.get("x-bml-version");
        if (served) version.textContent = "answered by version " + served;
        try { output.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { output.textContent = text; }
      } catch (error) {
        status.className = "tag bad"; status.textContent = "no answer";
        output.textContent = String(error);
      }
    });
    const image = document.getElementById("test-image");
    image.addEventListener("change", function () {
      const file = image.files[0];
      if (!file) return;
      const reader = new FileReader();
      reader.onload = function () {
        const data = String(reader.result).split(",")[1] || "";
        body.value = JSON.stringify({ instances: [{ data: data }] }, null, 2);
      };
      reader.readAsDataURL(file);
    });
  }

  // -- service quality ---------------------------------------------------------------------------

  function human(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "bytes") {
      const units = ["B", "KB", "MB", "GB", "TB"];
      let v = value, i = 0;
      while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return (i ? v.toFixed(1) : Math.round(v)) + " " + units[i];
    }
    if (unit === "ms") return value >= 10000 ? (value / 1000).toFixed(1) + " s" : (+value).toFixed(1) + " ms";
    if (unit === "ratio") return (value * 100).toFixed(2) + "%";
    return String(value);
  }

  function timeLabel(iso, long) {
    const d = new Date(iso);
    const hm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
    return long ? (d.getMonth() + 1) + "-" + d.getDate() + " " + hm : hm;
  }

  // One figure per metric and one for the status classes, made once; BMLCharts draws into
  // them (the title is the chart's own, so it is in the PNG) and keeps each chart's zoom and
  // legend choices across the polls.
  function qualityFigures(charts) {
    const figures = {};
    charts.innerHTML = "";
    METRICS.concat([["status", "Status codes"]]).forEach(function (m) {
      const figure = document.createElement("figure");
      figure.className = "chart" + (m[0] === "status" ? " pie" : "");
      figure.dataset.metric = m[0];
      figure.setAttribute("aria-label", m[1]);
      charts.appendChild(figure);
      figures[m[0]] = figure;
    });
    return figures;
  }

  // The points are evenly spaced (a point every step), so the time axis is a category axis of
  // their labels: its labels keep apart at this width, and zoom works the same.
  function metricSpec(metric, title, data, kind) {
    const long = (new Date(data.end) - new Date(data.start)) > 36 * 3600 * 1000;
    const labels = data.points.map(function (p) { return timeLabel(p.time, long); });
    const values = data.points.map(function (p) { return +p[metric] || 0; });
    const unit = METRICS.find(function (m) { return m[0] === metric; })[2];
    const spec = {
      title: title, xName: "time", filename: metric, width: 440, height: 250,
      format: function (value) { return human(value, unit); },
    };
    if (kind === "bar") {
      spec.categories = labels;
      spec.series = [{ name: metric, data: values }];
    } else {
      spec.xType = "category";
      spec.series = [{ name: metric, data: labels.map(function (label, i) { return [label, values[i]]; }) }];
    }
    return spec;
  }

  function statusSpec(totals) {
    return {
      title: "Status codes", name: "Status codes", filename: "status", width: 440, height: 250,
      data: STATUSES.filter(function (s) { return (+totals[s[0]] || 0) > 0; }).map(function (s) {
        return { name: s[1], value: +totals[s[0]], itemStyle: { color: s[2] } };
      }),
    };
  }

  function setupQuality() {
    const box = document.getElementById("quality");
    if (!box) return;
    const charts = document.getElementById("quality-charts");
    const error = document.getElementById("quality-error");
    const kind = document.getElementById("chart-kind");
    const version = document.getElementById("quality-version");
    let query = { range: "1h" }, timer = null, last = null, figures = null;

    function draw() {
      if (!last) return;
      if (!figures) figures = qualityFigures(charts);
      const chartKind = kind.value === "bar" ? "bar" : "line";
      METRICS.forEach(function (m) {
        const figure = figures[m[0]];
        const spec = metricSpec(m[0], m[1], last, chartKind);
        // Same kind: new data into the drawn chart (zoom kept); another kind: drawn anew.
        if (figure.dataset.chart === chartKind) window.BMLCharts.update(figure, spec);
        else window.BMLCharts[chartKind](figure, spec);
        figure.dataset.kind = chartKind;
      });
      const pie = statusSpec(last.totals);
      if (figures.status.dataset.chart === "pie") window.BMLCharts.update(figures.status, pie);
      else window.BMLCharts.pie(figures.status, pie);
      let shares = figures.status.querySelector("[data-field=shares]");
      if (!shares) { // under the pie
        shares = document.createElement("p");
        shares.className = "muted small";
        shares.dataset.field = "shares";
        figures.status.appendChild(shares);
      }
      shares.textContent = pie.data.length
        ? STATUSES.map(function (s) { return s[1] + " " + human(+last.totals[s[0]] || 0, "ratio"); }).join(" · ")
        : "No requests in this window.";
      const totals = last.totals;
      box.querySelector("[data-total=pv]").textContent = totals.pv;
      box.querySelector("[data-total=sumHandleTime]").textContent = human(totals.sumHandleTime, "ms");
      box.querySelector("[data-total=sumTraffic]").textContent = human(totals.sumTraffic, "bytes");
      box.querySelector("[data-total=successRatio]").textContent = human(totals.successRatio, "ratio");
      document.getElementById("quality-window").textContent = "From " + new Date(last.start).toLocaleString() +
        " to " + new Date(last.end).toLocaleString() + ", a point every " + Math.round(last.step_seconds / 60) + " min.";
    }

    // A refused query leaves the last charts in place, dimmed: they are not of this query.
    function refuse(message) {
      clearTimeout(timer);
      error.textContent = message;
      error.hidden = false;
      box.classList.add("stale");
    }

    async function load() {
      clearTimeout(timer);
      const params = new URLSearchParams(query);
      if (version.value) params.set("version", version.value);
      try {
        if (!document.hidden) {
          const response = await fetch(box.dataset.url + "?" + params, { credentials: "same-origin" });
          const data = await response.json();
          if (!response.ok) {
            refuse(Object.values(data.errors || {}).flat().join(" ") || "The query was refused.");
            return; // until the query changes
          }
          error.hidden = true;
          box.classList.remove("stale");
          last = data;
          draw();
        }
      } catch (e) { /* the next poll tries again */ }
      if (query.range) timer = setTimeout(load, QUALITY_POLL_MS); // a fixed range does not move
    }

    box.querySelectorAll("button[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        box.querySelectorAll("button[data-range]").forEach(function (b) { b.classList.toggle("active", b === button); });
        query = { range: button.dataset.range };
        load();
      });
    });
    document.getElementById("quality-apply").addEventListener("click", function () {
      const start = document.getElementById("quality-start").value;
      const end = document.getElementById("quality-end").value;
      if (!start || !end) { refuse("Choose both a start and an end."); return; }
      if (new Date(end) <= new Date(start)) { refuse("The end must be after the start."); return; }
      box.querySelectorAll("button[data-range]").forEach(function (b) { b.classList.remove("active"); });
      query = { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
      load();
    });
    version.addEventListener("change", load);
    kind.addEventListener("change", draw);
    load();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupModelSelects(); setupCreateForm(); setupCopy(); setupExpand();
    setupStatus(); setupTestConsole(); setupQuality();
  });
})();
