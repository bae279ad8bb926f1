// The hand-drawn SVG curves of static/bml/jobs.js before issue 20 (commit 36423b9), kept as
// they were for benchmarks/charts.py, but for the fetch, which the benchmark's page answers
// from memory for both sides alike.
(function () {
  "use strict";
  const COLORS = ["#2468f2", "#cf222e", "#1a7f37", "#9a6700", "#8250df"];
  function chart(name, series) {
    const W = 420, H = 200, P = 30;
    const all = series.flatMap(function (s) { return s.points; });
    const xs = all.map(function (p, i) { return p.step ?? i; });
    const ys = all.map(function (p) { return p[name]; });
    const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sx = function (x) { return P + ((x - x0) / ((x1 - x0) || 1)) * (W - 2 * P); };
    const sy = function (y) { return H - P - ((y - y0) / ((y1 - y0) || 1)) * (H - 2 * P); };
    const lines = series.map(function (s, k) {
      const pts = s.points.filter(function (p) { return p[name] !== undefined; })
        .map(function (p, i) { return sx(p.step ?? i).toFixed(1) + "," + sy(p[name]).toFixed(1); });
      return '<polyline fill="none" stroke-width="2" stroke="' + COLORS[k % COLORS.length] + '" points="' + pts.join(" ") + '"/>';
    });
    return '<figure class="chart" data-metric="' + name + '"><figcaption>' + name +
      ' <small class="muted">' + y0.toPrecision(3) + " … " + y1.toPrecision(3) + "</small></figcaption>" +
      '<svg viewBox="0 0 ' + W + " " + H + '" width="' + W + '" height="' + H + '" role="img" aria-label="' + name + ' curve">' +
      '<line x1="' + P + '" y1="' + (H - P) + '" x2="' + (W - P) + '" y2="' + (H - P) + '" stroke="#ccc"/>' +
      '<line x1="' + P + '" y1="' + P + '" x2="' + P + '" y2="' + (H - P) + '" stroke="#ccc"/>' + lines.join("") + "</svg></figure>";
  }
  async function refreshCurves(box) {
    const response = await fetch(box.dataset.metricsUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const series = await response.json();
    const names = new Set();
    series.forEach(function (s) { s.points.forEach(function (p) {
      Object.keys(p).forEach(function (k) { if (k !== "step" && k !== "time") names.add(k); });
    }); });
    if (names.size) box.innerHTML = Array.from(names).map(function (n) { return chart(n, series); }).join("");
  }
  document.addEventListener("DOMContentLoaded", function () {
    refreshCurves(document.getElementById("curves"));
  });
})();
