// Visual modeling spike: a palette of components dragged (or clicked) onto the canvas,
// connected port to port, the graph shown as exported JSON.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const canvas = document.getElementById("graph-canvas");
    if (!canvas) return;
    const output = document.getElementById("graph-json");
    const components = JSON.parse(document.getElementById("graph-components").textContent);
    const graph = window.BMLGraph.create(canvas, {
      components: components,
      onChange: function (g) { output.textContent = JSON.stringify(g.exportGraph(), null, 2); },
    });
    output.textContent = JSON.stringify(graph.exportGraph(), null, 2);

    let added = 0;
    document.querySelectorAll("#graph-palette [data-component]").forEach(function (item) {
      item.addEventListener("dragstart", function (ev) {
        ev.dataTransfer.setData("text/plain", item.dataset.component);
      });
      // Without a mouse: a click places the component in the next free spot.
      item.addEventListener("click", function () {
        graph.addNode(item.dataset.component, 40 + (added % 3) * 240, 40 + Math.floor(added / 3) * 120);
        added++;
      });
    });
    canvas.addEventListener("dragover", function (ev) { ev.preventDefault(); });
    canvas.addEventListener("drop", function (ev) {
      ev.preventDefault();
      const name = ev.dataTransfer.getData("text/plain");
      if (name) { graph.addNodeAt(name, ev.clientX, ev.clientY); added++; }
    });
  });
})();
