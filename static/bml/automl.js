// An AutoML job's search (the job page's "Search" box): the trial table, sortable, and its
// charts (BMLCharts): AUC per trial with the best so far, each parameter against the AUC,
// and the parameters' importances. Polled from /api/v1/jobs/<id>/trials/ while the job
// runs (the runner stores its journal after every round of trials).
(function () {
  "use strict";
  const POLL_MS = 2000;
  const STATES = { COMPLETE: "finished", PRUNED: "pruned", FAIL: "failed" };

  function number(value, digits) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(digits || 3) : value.toFixed(digits || 5);
  }

  // -- the table ------------------------------------------------------------------------------

  function tableColumns(summary) {
    return ["trial"].concat(summary.params, ["auc", "seconds", "state", "instance"]);
  }

  function renderTable(table, summary, sort) {
    const columns = tableColumns(summary);
    const rows = summary.trials.slice().sort(function (a, b) {
      const x = a[sort.column], y = b[sort.column];
      if (x === y) return a.trial - b.trial;
      if (x === null || x === undefined) return 1; // no AUC (failed): last either way
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sort.direction;
    });
    const best = summary.best ? summary.best.trial : null;
    const head = "<thead><tr>" + columns.map(function (c) {
      const mark = c === sort.column ? (sort.direction > 0 ? " ▲" : " ▼") : "";
      return '<th data-column="' + c + '" aria-sort="' + (mark ? (sort.direction > 0 ? "ascending" : "descending") : "none") + '">' + c + mark + "</th>";
    }).join("") + "</tr></thead>";
    const body = rows.map(function (row) {
      const cells = columns.map(function (c) {
        let text = c === "trial" ? String(row.trial + 1) : c === "state" ? (STATES[row.state] || row.state) : number(row[c], c === "seconds" ? 2 : undefined);
        if (c === "state" && row.error) text = '<span title="' + row.error.replace(/"/g, "&quot;") + '">' + text + "</span>";
        return "<td>" + text + "</td>";
      }).join("");
      return '<tr data-trial="' + row.trial + '" data-state="' + row.state + '"' + (row.trial === best ? ' class="best"' : "") + ">" + cells + "</tr>";
    }).join("");
    table.innerHTML = head + "<tbody>" + body + "</tbody>";
  }

  // -- the charts -----------------------------------------------------------------------------

  function figure(box, key, caption) {
    let el = box.querySelector('figure.chart[data-search="' + key + '"]');
    if (!el) {
      el = document.createElement("figure");
      el.className = "chart";
      el.dataset.search = key;
      el.setAttribute("aria-label", caption);
      box.appendChild(el);
    }
    return el;
  }

  function drawOrUpdate(kind, el, spec) {
    if (el.dataset.chart === kind) window.BMLCharts.update(el, spec);
    else window.BMLCharts[kind](el, spec);
  }

  function progressSpec(summary) {
    const finished = [], pruned = [], best = [];
    let top = null;
    summary.trials.slice().sort(function (a, b) { return a.trial - b.trial; }).forEach(function (row) {
      if (row.auc === null) return;
      if (row.state === "COMPLETE") {
        finished.push([row.trial + 1, row.auc]);
        top = top === null ? row.auc : Math.max(top, row.auc);
      } else if (row.state === "PRUNED") {
        pruned.push([row.trial + 1, row.auc]);
      }
      if (top !== null) best.push([row.trial + 1, top]);
    });
    return {
      title: "AUC per trial", xName: "trial", yName: "AUC", width: 460, height: 260, filename: "auc-per-trial",
      series: [
        { name: "finished", data: finished },
        { name: "pruned (last epoch scored)", data: pruned },
        { name: "best so far", data: best, step: true },
      ],
    };
  }

  function paramSpec(summary, name) {
    const points = summary.trials.filter(function (row) {
      return row.state === "COMPLETE" && row.auc !== null && typeof row[name] === "number";
    }).map(function (row) { return [row[name], row.auc]; });
    const xs = points.map(function (p) { return p[0]; });
    const positive = xs.length && Math.min.apply(null, xs) > 0;
    return {
      title: name + " against AUC", xName: name, yName: "AUC", width: 300, height: 240, filename: "auc-by-" + name,
      xLog: positive && Math.max.apply(null, xs) / Math.min.apply(null, xs) > 100,
      series: [{ name: "finished trials", data: points }],
    };
  }

  function importanceSpec(summary) {
    const names = Object.keys(summary.importances).sort(function (a, b) {
      return summary.importances[b] - summary.importances[a];
    });
    return {
      title: "Parameter importance (fANOVA)", yName: "share of AUC variance", width: 300, height: 240,
      filename: "importances", categories: names,
      series: [{ name: "importance", data: names.map(function (n) { return summary.importances[n]; }) }],
    };
  }

  function renderCharts(box, summary) {
    drawOrUpdate("scatter", figure(box, "progress", "AUC per trial"), progressSpec(summary));
    if (Object.keys(summary.importances).length) {
      drawOrUpdate("bar", figure(box, "importances", "Parameter importance"), importanceSpec(summary));
    }
    summary.params.forEach(function (name) {
      drawOrUpdate("scatter", figure(box, "param-" + name, name + " against AUC"), paramSpec(summary, name));
    });
  }

  function renderSummary(el, summary) {
    const counts = { COMPLETE: 0, PRUNED: 0, FAIL: 0 };
    summary.trials.forEach(function (row) { counts[row.state] = (counts[row.state] || 0) + 1; });
    const done = summary.trials.length, budget = summary.budget || done;
    let text = done + " of " + budget + " trials: " + counts.COMPLETE + " finished, " + counts.PRUNED + " pruned, " + counts.FAIL + " failed.";
    if (summary.best) {
      text += " Best: trial " + (summary.best.trial + 1) + ", AUC " + number(summary.best.auc) + " (" +
        summary.params.map(function (p) { return p + " " + number(summary.best[p]); }).join(", ") + ").";
    }
    el.textContent = text;
    const bar = document.getElementById("search-progress");
    if (bar) { bar.max = budget; bar.value = done; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const box = document.getElementById("search");
    if (!box) return;
    const table = document.getElementById("trials");
    const charts = document.getElementById("search-charts");
    const summaryLine = document.getElementById("search-summary");
    const sort = { column: "auc", direction: -1 };
    let last = null;
    table.addEventListener("click", function (event) {
      const th = event.target.closest("th[data-column]");
      if (!th || !last) return;
      const column = th.dataset.column;
      sort.direction = sort.column === column ? -sort.direction : (column === "trial" ? 1 : -1);
      sort.column = column;
      renderTable(table, last, sort);
    });
    async function tick() {
      let summary = null;
      try {
        const response = await fetch(box.dataset.trialsUrl, { credentials: "same-origin" });
        if (response.ok) summary = await response.json();
      } catch (error) { /* the next poll tries again */ }
      if (summary && summary.trials.length) {
        last = summary;
        const note = document.getElementById("search-note");
        if (note) note.remove();
        renderSummary(summaryLine, summary);
        renderTable(table, summary, sort);
        renderCharts(charts, summary);
      }
      if (box.dataset.live) setTimeout(tick, POLL_MS);
    }
    tick();
  });
})();
