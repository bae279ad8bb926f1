// Prediction services: the create / edit forms (model -> its versions), copy buttons, the
// status of a deploying service, the test console, and the service quality charts (inline SVG).
(function () {
  "use strict";
  const SVG_W = 420, SVG_H = 200, PAD_L = 48, PAD_R = 12, PAD_T = 14, PAD_B = 28;
  const METRICS = [
    ["pv", "PV (requests)", "count"],
    ["sumTraffic", "Total traffic (sumTraffic)", "bytes"],
    ["avgTraffic", "Average traffic per request (avgTraffic)", "bytes"],
    ["sumHandleTime", "Total handling time (sumHandleTime)", "ms"],
    ["avgHandleTime", "Average handling time per request (avgHandleTime)", "ms"],
  ];
  const STATUSES = [
    ["status2xxProportion", "2xx", "#1a7f37"],
    ["status3xxProportion", "3xx", "#2468f2"],
    ["status4xxProportion", "4xx", "#9a6700"],
    ["status5xxProportion", "5xx", "#cf222e"],
  ];
  const QUALITY_POLL_MS = 3000, STATUS_POLL_MS = 1500;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

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

  function seriesChart(metric, title, unit, points, kind, long) {
    const values = points.map(function (p) { return +p[metric] || 0; });
    const max = Math.max.apply(null, values.concat([0])), top = max || 1;
    const n = values.length, plotW = SVG_W - PAD_L - PAD_R, plotH = SVG_H - PAD_T - PAD_B;
    const x = function (i) { return PAD_L + (n > 1 ? (i / (n - 1)) * plotW : plotW / 2); };
    const y = function (v) { return PAD_T + plotH - (v / top) * plotH; };
    let marks;
    if (kind === "bar") {
      const w = Math.max(1, plotW / Math.max(n, 1) - 1);
      marks = values.map(function (v, i) {
        const left = PAD_L + (i * plotW) / Math.max(n, 1);
        return '<rect x="' + left.toFixed(1) + '" y="' + y(v).toFixed(1) + '" width="' + w.toFixed(1) +
          '" height="' + (PAD_T + plotH - y(v)).toFixed(1) + '" fill="#2468f2"><title>' +
          esc(timeLabel(points[i].time, long) + ": " + human(v, unit)) + "</title></rect>";
      }).join("");
    } else {
      marks = '<polyline fill="none" stroke="#2468f2" stroke-width="2" points="' +
        values.map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); }).join(" ") + '"/>' +
        values.map(function (v, i) {
          return v ? '<circle cx="' + x(i).toFixed(1) + '" cy="' + y(v).toFixed(1) + '" r="2.5" fill="#2468f2"><title>' +
            esc(timeLabel(points[i].time, long) + ": " + human(v, unit)) + "</title></circle>" : "";
        }).join("");
    }
    const axis = '<line x1="' + PAD_L + '" y1="' + (PAD_T + plotH) + '" x2="' + (SVG_W - PAD_R) + '" y2="' + (PAD_T + plotH) + '" stroke="#ccc"/>' +
      '<line x1="' + PAD_L + '" y1="' + PAD_T + '" x2="' + PAD_L + '" y2="' + (PAD_T + plotH) + '" stroke="#ccc"/>' +
      '<text x="' + (PAD_L - 4) + '" y="' + (PAD_T + 4) + '" text-anchor="end" font-size="10" fill="#6b7785">' + esc(human(max, unit)) + "</text>" +
      '<text x="' + (PAD_L - 4) + '" y="' + (PAD_T + plotH) + '" text-anchor="end" font-size="10" fill="#6b7785">0</text>' +
      (n ? '<text x="' + PAD_L + '" y="' + (SVG_H - 8) + '" font-size="10" fill="#6b7785">' + esc(timeLabel(points[0].time, long)) + "</text>" +
        '<text x="' + (SVG_W - PAD_R) + '" y="' + (SVG_H - 8) + '" text-anchor="end" font-size="10" fill="#6b7785">' + esc(timeLabel(points[n - 1].time, long)) + "</text>" : "");
    return '<figure class="chart" data-metric="' + metric + '" data-kind="' + kind + '"><figcaption>' + esc(title) + "</figcaption>" +
      '<svg viewBox="0 0 ' + SVG_W + " " + SVG_H + '" width="' + SVG_W + '" height="' + SVG_H + '" role="img" aria-label="' + esc(title) + '">' +
      axis + marks + "</svg></figure>";
  }

  function pieChart(totals) {
    const R = 80, C = 100;
    const slices = STATUSES.map(function (s) { return { key: s[0], label: s[1], color: s[2], value: +totals[s[0]] || 0 }; })
      .filter(function (s) { return s.value > 0; });
    let shapes, angle = -Math.PI / 2;
    if (!slices.length) {
      shapes = '<circle cx="' + C + '" cy="' + C + '" r="' + R + '" fill="#eef1f4"/><text x="' + C + '" y="' + (C + 4) +
        '" text-anchor="middle" font-size="12" fill="#6b7785">no requests</text>';
    } else {
      const sum = slices.reduce(function (a, s) { return a + s.value; }, 0);
      shapes = slices.map(function (s) {
        const share = s.value / sum;
        let d;
        if (share >= 0.9999) { // a whole circle: two half arcs
          d = "M " + (C - R) + " " + C + " A " + R + " " + R + " 0 1 1 " + (C + R) + " " + C + " A " + R + " " + R + " 0 1 1 " + (C - R) + " " + C + " Z";
        } else {
          const end = angle + share * 2 * Math.PI;
          const p = function (a) { return (C + R * Math.cos(a)).toFixed(2) + " " + (C + R * Math.sin(a)).toFixed(2); };
          d = "M " + C + " " + C + " L " + p(angle) + " A " + R + " " + R + " 0 " + (share > 0.5 ? 1 : 0) + " 1 " + p(end) + " Z";
          angle = end;
        }
        return '<path d="' + d + '" fill="' + s.color + '" data-status="' + s.label + '"><title>' + s.label + ": " +
          (share * 100).toFixed(2) + "%</title></path>";
      }).join("");
    }
    const legend = STATUSES.map(function (s) {
      return '<li><span class="swatch" style="background:' + s[2] + '"></span>' + s[1] + " " + human(+totals[s[0]] || 0, "ratio") + "</li>";
    }).join("");
    return '<figure class="chart pie" data-metric="status"><figcaption>Status codes</figcaption>' +
      '<svg viewBox="0 0 200 200" width="200" height="200" role="img" aria-label="proportions of status codes">' + shapes +
      '</svg><ul class="legend">' + legend + "</ul></figure>";
  }

  function setupQuality() {
    const box = document.getElementById("quality");
    if (!box) return;
    const charts = document.getElementById("quality-charts");
    const error = document.getElementById("quality-error");
    const kind = document.getElementById("chart-kind");
    const version = document.getElementById("quality-version");
    let query = { range: "1h" }, timer = null, last = null;

    function draw() {
      if (!last) return;
      const long = (new Date(last.end) - new Date(last.start)) > 36 * 3600 * 1000;
      charts.innerHTML = METRICS.map(function (m) {
        return seriesChart(m[0], m[1], m[2], last.points, kind.value, long);
      }).join("") + pieChart(last.totals);
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
