// AutoDL ENAS job page: the best architecture of the search drawn as a graph, following the
// search while the job runs (GET /api/v1/jobs/<id>/architecture/ every few seconds). The
// tuning result table is drawn by the server once the job has ended (jobs.js reloads).
(function () {
  "use strict";
  const POLL_MS = 4000;

  function spec(best) {
    const graph = best.graph || { nodes: [], edges: [] };
    return {
      title: best.round === "final" ? "Architecture found" : "Best architecture so far (round " + best.round + ")",
      nodes: graph.nodes.map(function (n) { return { id: n.id, label: n.label, group: n.op || "" }; }),
      edges: graph.edges,
      height: 90 + 46 * graph.nodes.length,
      filename: "architecture",
    };
  }

  function summary(box, search) {
    const note = document.getElementById("enas-summary");
    if (!note || !search.rounds) return;
    const planned = box.dataset.rounds || "?";
    let text = search.rounds.length + " of " + planned + " search round(s); stage: " + search.stage + ".";
    const last = search.rounds[search.rounds.length - 1];
    if (last) {
      text += " Last round: reward " + last.reward.toFixed(4) + ", entropy " + last.entropy.toFixed(3) +
        ", shared-weight accuracy " + last.shared_acc.toFixed(4) + ".";
    }
    note.textContent = text;
  }

  async function refresh(box, figure) {
    const response = await fetch(box.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return;
    const search = await response.json();
    summary(box, search);
    if (!search.best) return;
    const key = search.best.describe + "@" + search.best.round;
    if (figure.dataset.drawn === key) return;
    figure.dataset.drawn = key;
    figure.dataset.architecture = search.best.describe;
    BMLCharts.graph(figure, spec(search.best));
  }

  document.addEventListener("DOMContentLoaded", function () {
    const box = document.getElementById("enas");
    const figure = document.getElementById("enas-architecture");
    if (!box || !figure) return;
    async function tick() {
      try {
        await refresh(box, figure);
      } finally {
        if (box.dataset.live) setTimeout(tick, POLL_MS);
      }
    }
    tick();
  });
})();
