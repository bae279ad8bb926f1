// Visual modeling's menus, panels and dialogs: the node's right-click menu, View data (the
// output table paged, its schema and statistics; an evaluation's report with its charts),
// View log, History and Compare, Release, Clear data and Copy task.
(function () {
  "use strict";
  const PAGE = 50;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function table(head, rows, attrs) {
    const t = el("table", Object.assign({ class: "grid" }, attrs || {}));
    const tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", {}, h)); });
    t.appendChild(el("thead")).appendChild(tr);
    const body = t.appendChild(el("tbody"));
    rows.forEach(function (row) {
      const r = body.appendChild(el("tr"));
      row.forEach(function (cell) { r.appendChild(el("td", {}, cell === null || cell === undefined ? "" : String(cell))); });
    });
    return t;
  }
  function number(x) { return typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toPrecision(4)) : x; }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  function setup(ctx) {
    const menu = document.getElementById("node-menu");
    const panel = document.getElementById("node-panel");
    const panelTitle = document.getElementById("panel-title");
    const panelBody = document.getElementById("panel-body");
    let menuNode = null;

    function openPanel(title) {
      panelTitle.textContent = title;
      panelBody.textContent = "";
      panel.hidden = false;
      return panelBody;
    }
    document.getElementById("panel-close").addEventListener("click", function () { panel.hidden = true; });
    function runOf(nodeId) {
      if (!ctx.run || !ctx.run.nodes || !ctx.run.nodes[nodeId]) {
        ctx.message("Node " + nodeId + " has not run yet.", "warning");
        return null;
      }
      return ctx.run;
    }

    // -- the right-click menu --------------------------------------------------------------
    ctx.openMenu = function (id, x, y) {
      menuNode = id;
      menu.querySelectorAll("[data-write]").forEach(function (b) { b.disabled = !ctx.config.may_write; });
      menu.style.left = x + "px"; menu.style.top = y + "px";
      menu.hidden = false;
      menu.dataset.node = id;
      const first = menu.querySelector("button:not([disabled])");
      if (first) first.focus();
    };
    document.addEventListener("click", function (ev) { if (!menu.contains(ev.target)) menu.hidden = true; });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") menu.hidden = true; });
    menu.addEventListener("click", function (ev) {
      const button = ev.target.closest("[data-menu]");
      if (!button) return;
      menu.hidden = true;
      const action = button.dataset.menu, id = menuNode;
      if (action === "copy") copyNode(id);
      else if (action === "delete") ctx.graph.removeNode(id);
      else if (action === "sample") {
        const rows = window.prompt("Test run on how many rows?", "100");
        if (rows !== null && Number(rows) > 0) ctx.startRun("sample", id, Number(rows));
      } else if (action === "data") viewData(id);
      else if (action === "log") viewLog(id);
      else ctx.startRun(action, id);
    });
    function copyNode(id) {
      const n = ctx.graph.node(id);
      ctx.graph.addNode(n.component, n.x + 40, n.y + 40, { params: JSON.parse(JSON.stringify(n.params)), package: n.package });
    }

    // -- View data / report ------------------------------------------------------------
    async function viewData(id) {
      const run = runOf(id);
      if (!run) return;
      const node = run.nodes[id];
      const ports = Object.keys(node.outputs || {});
      if (ports.some(function (p) { return node.outputs[p].kind === "report"; })) return viewReport(id, run);
      const tables = ports.filter(function (p) { return node.outputs[p].kind === "table"; });
      const body = openPanel("Data of " + id + " (run #" + run.number + ")");
      body.dataset.node = id;
      if (!tables.length) { body.appendChild(el("p", { class: "muted" }, "This node has no table output.")); return; }
      const chooser = el("select", { id: "data-port", "aria-label": "Output port" });
      tables.forEach(function (p) { chooser.appendChild(el("option", { value: p }, p)); });
      if (tables.length > 1) body.appendChild(el("label", { class: "inline" }, "Output ")).appendChild(chooser);
      const holder = body.appendChild(el("div", { id: "data-view" }));
      const show = function (offset) { loadPage(run, id, chooser.value, offset, holder); };
      chooser.addEventListener("change", function () { show(0); });
      show(0);
    }

    async function loadPage(run, id, port, offset, holder) {
      let page;
      try {
        page = await ctx.api("runs/" + run.number + "/nodes/" + encodeURIComponent(id) + "/data/?port=" + encodeURIComponent(port) + "&offset=" + offset + "&limit=" + PAGE);
      } catch (e) { holder.textContent = e.message; return; }
      holder.textContent = "";
      holder.appendChild(el("h3", {}, "Schema and statistics"));
      holder.appendChild(table(["Column", "Type", "Missing", "Distinct", "Mean", "Std", "Min", "Max"],
        (page.stats || []).map(function (s) { return [s.name, s.type, s.missing, s.distinct, number(s.mean), number(s.std), number(s.min), number(s.max)]; }),
        { id: "data-stats" }));
      holder.appendChild(el("h3", {}, "Rows " + (page.total ? page.offset + 1 : 0) + "–" + (page.offset + page.rows.length) + " of " + page.total));
      const scroll = holder.appendChild(el("div", { class: "table-scroll" }));
      scroll.appendChild(table(page.columns.map(function (c) { return c.name + " (" + c.type + ")"; }),
        page.rows.map(function (r) { return r.map(number); }), { id: "data-rows" }));
      const pager = holder.appendChild(el("p", { class: "inline" }));
      if (page.offset > 0) {
        pager.appendChild(el("button", { type: "button" }, "‹ Previous")).addEventListener("click", function () { loadPage(run, id, port, Math.max(0, page.offset - PAGE), holder); });
      }
      if (page.offset + page.rows.length < page.total) {
        pager.appendChild(el("button", { type: "button", id: "data-next" }, "Next ›")).addEventListener("click", function () { loadPage(run, id, port, page.offset + PAGE, holder); });
      }
    }

    async function viewReport(id, run) {
      const body = openPanel("Evaluation report of " + id + " (run #" + run.number + ")");
      let report;
      try { report = await ctx.api("runs/" + run.number + "/nodes/" + encodeURIComponent(id) + "/report/"); } catch (e) { body.textContent = e.message; return; }
      body.dataset.task = report.task;
      const metrics = report.metrics || {};
      body.appendChild(table(["Metric", "Value"], Object.keys(metrics).map(function (k) { return [k, number(metrics[k])]; }), { id: "report-metrics" }));
      const charts = body.appendChild(el("div", { class: "report-charts" }));
      if (report.task === "binary") {
        const roc = charts.appendChild(el("figure", { class: "chart", id: "report-roc" }));
        window.BMLCharts.line(roc, { title: "ROC curve", xName: "false positive rate", series: [{ name: "ROC", data: report.roc || [] }], width: 360 });
        const pr = charts.appendChild(el("figure", { class: "chart", id: "report-pr" }));
        window.BMLCharts.line(pr, { title: "Precision-recall curve", xName: "recall", series: [{ name: "PR", data: report.pr || [] }], width: 360 });
      } else if (report.task === "multiclass") {
        charts.appendChild(confusion(report.labels || [], report.confusion || []));
        if (report.per_class) {
          const rows = report.per_class.map(function (c) { return typeof c === "object" ? Object.values(c).map(number) : [c]; });
          const head = report.per_class.length && typeof report.per_class[0] === "object" ? Object.keys(report.per_class[0]) : ["class"];
          body.appendChild(table(head, rows, { id: "report-per-class" }));
        }
      }
    }

    // The confusion matrix as a heat map: each cell shaded by its share of the true class.
    function confusion(labels, matrix) {
      const t = el("table", { class: "grid confusion", id: "report-confusion" });
      const head = t.appendChild(el("thead")).appendChild(el("tr"));
      head.appendChild(el("th", {}, "true \\ predicted"));
      labels.forEach(function (l) { head.appendChild(el("th", {}, l)); });
      const body = t.appendChild(el("tbody"));
      matrix.forEach(function (row, i) {
        const tr = body.appendChild(el("tr", { "data-class": labels[i] }));
        tr.appendChild(el("th", {}, labels[i]));
        const total = row.reduce(function (a, b) { return a + b; }, 0) || 1;
        row.forEach(function (count) {
          const td = tr.appendChild(el("td", {}, String(count)));
          td.style.background = "rgba(36, 104, 242, " + (0.08 + 0.8 * count / total).toFixed(2) + ")";
          if (count / total > 0.5) td.style.color = "#fff";
        });
      });
      return t;
    }

    async function viewLog(id) {
      const run = runOf(id);
      if (!run) return;
      const body = openPanel("Log of " + id + " (run #" + run.number + ")");
      try {
        const log = await ctx.api("runs/" + run.number + "/nodes/" + encodeURIComponent(id) + "/log/");
        body.appendChild(el("pre", { class: "log", id: "node-log" }, log.text || "(empty)"));
      } catch (e) { body.textContent = e.message; }
    }
    ctx.viewData = viewData;
    ctx.viewLog = viewLog;
    // A failed node's log is one click away: clicking its red mark opens it.
    document.getElementById("graph-canvas").addEventListener("click", function (ev) {
      const nodeEl = ev.target.closest(".drawflow-node[data-status=failed]");
      if (nodeEl && ev.target.closest(".graph-node-state")) viewLog(nodeEl.dataset.node);
    });

    history(ctx);
    release(ctx);
    experimentActions(ctx);
  }

  // -- History and Compare ---------------------------------------------------------------
  function history(ctx) {
    const dialog = document.getElementById("history-dialog");
    const body = dialog.querySelector("#history tbody");
    const compareButton = document.getElementById("compare-button");
    const out = document.getElementById("compare");
    dialog.querySelectorAll("[data-close]").forEach(function (b) { b.addEventListener("click", function () { dialog.close(); }); });
    function picked() { return Array.from(body.querySelectorAll("input:checked")).map(function (i) { return i.value; }); }
    document.getElementById("history-button").addEventListener("click", async function () {
      out.textContent = "";
      body.textContent = "";
      dialog.showModal();
      let runs;
      try { runs = await ctx.api("runs/"); } catch (e) { out.textContent = e.message; return; }
      runs.forEach(function (r) {
        const tr = body.appendChild(el("tr", { "data-run": r.number }));
        const pick = el("input", { type: "checkbox", value: r.number, "aria-label": "Compare run " + r.number });
        pick.addEventListener("change", function () { compareButton.disabled = picked().length !== 2; });
        tr.appendChild(el("td")).appendChild(pick);
        tr.appendChild(el("td", {}, "#" + r.number + (r.cleared ? " (cleared)" : "")));
        tr.appendChild(el("td", {}, when(r.started_at)));
        tr.appendChild(el("td", {}, r.duration_s != null ? r.duration_s.toFixed(1) + " s" : ""));
        tr.appendChild(el("td")).appendChild(el("span", { class: "tag status-" + r.status }, r.status));
        tr.appendChild(el("td", {}, r.mode + (r.target ? " (" + r.target + ")" : "")));
        tr.appendChild(el("td")).appendChild(el("a", { href: ctx.config.run_url.replace("{run}", r.number) }, "Open"));
      });
      if (!runs.length) body.appendChild(el("tr")).appendChild(el("td", { colspan: 7, class: "muted" }, "No runs yet."));
      compareButton.disabled = true;
    });
    compareButton.addEventListener("click", async function () {
      const [a, b] = picked().map(Number).sort(function (x, y) { return x - y; });
      out.textContent = "";
      let answer;
      try { answer = await ctx.api("compare/?a=" + a + "&b=" + b); } catch (e) { out.textContent = e.message; return; }
      const t = el("table", { class: "grid", id: "compare-table" });
      const head = t.appendChild(el("thead")).appendChild(el("tr"));
      ["Node", "Settings #" + a, "Settings #" + b, "Metrics #" + a, "Metrics #" + b].forEach(function (h) { head.appendChild(el("th", {}, h)); });
      const tbody = t.appendChild(el("tbody"));
      answer.nodes.forEach(function (n) {
        const tr = tbody.appendChild(el("tr", { "data-node": n.node_id }));
        if (n.changed) tr.classList.add("changed");
        tr.appendChild(el("td", {}, (n.label || n.component) + " (" + n.node_id + ")"));
        [n.params_a, n.params_b].forEach(function (params, side) {
          const other = side ? n.params_a : n.params_b;
          const td = tr.appendChild(el("td"));
          Object.keys(params || {}).forEach(function (k) {
            const line = td.appendChild(el("div", {}, k + ": " + JSON.stringify(params[k])));
            // The settings that differ between the two versions stand out.
            if (JSON.stringify((other || {})[k]) !== JSON.stringify(params[k])) line.className = "changed-setting";
          });
        });
        [n.metrics_a, n.metrics_b].forEach(function (metrics) {
          const td = tr.appendChild(el("td"));
          Object.keys(metrics || {}).forEach(function (k) { td.appendChild(el("div", {}, k + ": " + number(metrics[k]))); });
        });
      });
      out.appendChild(t);
    });
  }

  // -- Release ---------------------------------------------------------------------------
  function release(ctx) {
    const button = document.getElementById("release-button");
    if (!button) return;
    const dialog = document.getElementById("release-dialog");
    const form = document.getElementById("release-form");
    const error = document.getElementById("release-error");
    ctx.on("run", function (run) {
      button.disabled = !(run.releasable && run.releasable.length) || run.status === "running";
    });
    dialog.querySelectorAll("[data-close]").forEach(function (b) { b.addEventListener("click", function () { dialog.close(); }); });
    form.querySelectorAll("input[name=target]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        form.querySelectorAll("[data-target]").forEach(function (x) { x.hidden = x.dataset.target !== form.target.value; });
      });
    });
    button.addEventListener("click", async function () {
      error.textContent = "";
      const nodes = document.getElementById("release-node");
      nodes.textContent = "";
      ctx.run.releasable.forEach(function (id) {
        const n = ctx.graph.node(id);
        nodes.appendChild(el("option", { value: id }, (n ? ctx.graph.components[n.component].label + " · " : "") + id));
      });
      const models = document.getElementById("release-model");
      models.textContent = "";
      try {
        const listed = await ctx.api(ctx.config.api + "models/?project=" + ctx.config.project);
        (listed.results || listed).forEach(function (m) { models.appendChild(el("option", { value: m.id }, m.name)); });
      } catch (e) { /* no models to pick: a new one it is */ }
      dialog.showModal();
    });
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const body = { node: form.node.value, description: form.description.value };
      if (form.target.value === "new") body.name = form.name.value.trim();
      else body.model = Number(form.model.value);
      try {
        const done = await ctx.api("release/", "POST", body);
        dialog.close();
        const url = ctx.config.version_url.replace("{model}", done.model_id).replace("{version}", done.version);
        const note = document.getElementById("visual-message");
        note.className = "msg success"; note.hidden = false; note.textContent = "Released: ";
        note.appendChild(el("a", { href: url, id: "released-link" }, "model version " + done.version));
        note.append(".");
      } catch (e) { error.textContent = e.message; }
    });
  }

  // -- Copy task, Clear data -------------------------------------------------------------
  function experimentActions(ctx) {
    const copy = document.getElementById("copy-button");
    if (copy) {
      copy.addEventListener("click", async function () {
        try {
          const made = await ctx.api("copy/", "POST", {});
          ctx.message("Copied as ", "success");
          const note = document.getElementById("visual-message");
          note.appendChild(el("a", { href: ctx.config.canvas_url.replace(/\/\d+\/$/, "/" + made.id + "/") }, made.name));
        } catch (e) { ctx.message(e.message, "error"); }
      });
    }
    const clear = document.getElementById("clear-button");
    if (clear) {
      clear.addEventListener("click", async function () {
        try {
          const size = await ctx.api("clear/");
          const mb = (size.bytes / 1e6).toFixed(1);
          if (!window.confirm("This frees " + mb + " MB of intermediate results and logs of " + size.runs + " runs. Clear them?")) return;
          const freed = await ctx.api("clear/", "POST", {});
          ctx.message("Freed " + (freed.bytes / 1e6).toFixed(1) + " MB of " + freed.runs + " runs.", "success");
        } catch (e) { ctx.message(e.message, "error"); }
      });
    }
  }

  window.BMLVisualPanels = { setup: setup };
})();
