// Data set statistics: each numeric column's histogram, drawn by BMLCharts from the bins the
// page carries (json_script in the figure). A wide table can hold thousands of columns, so a
// chart is drawn when its cell first scrolls into view.
(function () {
  "use strict";
  function drawHistogram(figure) {
    const bins = JSON.parse(figure.querySelector("script[type='application/json']").textContent);
    window.BMLCharts.histogram(figure, {
      edges: bins.edges, counts: bins.counts, name: figure.dataset.column,
      filename: "histogram_" + figure.dataset.column, width: 280, height: 170,
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const figures = document.querySelectorAll("#statistics figure.histogram");
    if (!window.IntersectionObserver) { figures.forEach(drawHistogram); return; }
    const observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        observer.unobserve(entry.target);
        drawHistogram(entry.target);
      });
    }, { rootMargin: "200px" });
    figures.forEach(function (figure) { observer.observe(figure); });
  });
})();
