// The visual modeling canvas: the graph editor (BMLGraph, graph.js) bound to an experiment
// through the REST API: save, the static check as the user edits, runs and their node
// states. The settings panel (visual_settings.js), the canvas tools (visual_tools.js) and
// the panels and dialogs (visual_panels.js) get the shared `ctx` built here.
(function () {
  "use strict";
  const LIVE = new Set(["pending", "queued", "running"]);

  // DRF errors: {"field": "message"} or {"field": ["message"]}; the first, as text.
  function errorText(data, status) {
    if (data && typeof data === "object") {
      const key = Object.keys(data)[0];
      if (key) {
        const value = Array.isArray(data[key]) ? data[key][0] : data[key];
        return key === "detail" || key === "graph" || key === "non_field_errors" ? String(value) : key + ": " + value;
      }
    }
    return "The server answered " + status + ".";
  }

  function makeApi(base) {
    return async function api(path, method, body) {
      const options = { method: method || "GET", credentials: "same-origin", headers: {} };
      if (options.method !== "GET") options.headers["X-CSRFToken"] = window.bml.csrfToken();
      if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
      const response = await fetch(path.startsWith("/") ? path : base + path, options);
      const data = response.status === 204 ? null : await response.json().catch(function () { return null; });
      if (!response.ok) {
        const error = new Error(errorText(data, response.status));
        error.data = data; error.status = response.status;
        throw error;
      }
      return data;
    };
  }

  function setup(config) {
    const canvas = document.getElementById("graph-canvas");
    const note = document.getElementById("visual-message");
    const ctx = {
      config: config,
      api: makeApi(config.api + "visual-experiments/" + config.experiment + "/"),
      checks: {},      // node id -> the check endpoint's {inputs, outputs, error}
      run: null,       // the run detail shown on the nodes
      dirty: false,
      listeners: { change: [], select: [], run: [], check: [] },
    };
    ctx.on = function (event, fn) { ctx.listeners[event].push(fn); };
    ctx.emit = function (event, value) { ctx.listeners[event].forEach(function (fn) { fn(value); }); };
    ctx.message = function (text, kind) {
      note.textContent = text || "";
      note.className = "msg" + (kind ? " " + kind : "");
      note.hidden = !text;
    };

    ctx.graph = window.BMLGraph.create(canvas, {
      components: config.palette,
      readOnly: !config.may_write,
      onChange: function () { markDirty(); ctx.emit("change"); },
      onSelect: function (id) { ctx.emit("select", id); },
      onRefused: function (text) { ctx.message(text, "warning"); },
      onContextMenu: function (id, x, y) { ctx.openMenu(id, x, y); },
      onView: function () { if (ctx.drawMinimap) ctx.drawMinimap(); },
    });
    ctx.graph.load(config.graph || { nodes: [], edges: [] });

    // -- unsaved changes ---------------------------------------------------------------
    const saveButton = document.getElementById("save-button");
    function markDirty() {
      ctx.dirty = true;
      if (saveButton) { saveButton.classList.add("unsaved"); saveButton.textContent = "Save *"; }
      scheduleCheck();
    }
    ctx.markDirty = markDirty;
    function markSaved() {
      ctx.dirty = false;
      if (saveButton) { saveButton.classList.remove("unsaved"); saveButton.textContent = "Save"; }
    }
    window.addEventListener("beforeunload", function (ev) {
      if (!ctx.dirty) return;
      ev.preventDefault();
      ev.returnValue = "";  // the browser asks whether to leave
    });

    // -- save and the static check ---------------------------------------------------------
    ctx.save = async function () {
      try {
        await ctx.api("graph/", "PUT", { graph: ctx.graph.toGraph() });
        markSaved();
        ctx.graph.highlight(null);
        ctx.message("Saved.", "success");
        return true;
      } catch (e) {
        ctx.message(e.message, "error");
        // "node 'Split' (n2): ...": the node named is the one to look at.
        const named = /\(([A-Za-z0-9_-]{1,32})\)/.exec(e.message);
        ctx.graph.highlight(named ? named[1] : null);
        return false;
      }
    };
    if (saveButton) saveButton.addEventListener("click", ctx.save);

    let checkTimer = null;
    function scheduleCheck() {
      clearTimeout(checkTimer);
      checkTimer = setTimeout(check, 500);  // debounced: one request once the user pauses
    }
    ctx.check = check;
    async function check() {
      let answer;
      try {
        answer = await ctx.api("check/", "POST", { graph: ctx.graph.toGraph() });
      } catch (e) {
        // A structural problem (a cycle, say) comes as a 400 naming the node.
        const named = /\(([A-Za-z0-9_-]{1,32})\)/.exec(e.message);
        ctx.graph.nodeIds().forEach(function (id) { ctx.graph.setWarning(id, named && named[1] === id ? e.message : ""); });
        return;
      }
      ctx.checks = answer.nodes || {};
      ctx.graph.nodeIds().forEach(function (id) {
        const error = ctx.checks[id] && ctx.checks[id].error;
        ctx.graph.setWarning(id, error ? error.message || (error.field + ": " + error.rule) : "");
      });
      ctx.emit("check");
    }

    // -- palette -------------------------------------------------------------------------
    let added = 0;
    document.querySelectorAll("#graph-palette [data-component]").forEach(function (item) {
      item.addEventListener("dragstart", function (ev) {
        ev.dataTransfer.setData("text/plain", item.dataset.component);
      });
      // Without a mouse: a click places the component in the next free spot.
      item.addEventListener("click", function () {
        if (!config.may_write) return;
        ctx.graph.addNode(item.dataset.component, 40 + (added % 3) * 240, 40 + Math.floor(added / 3) * 130);
        added++;
      });
    });
    canvas.addEventListener("dragover", function (ev) { ev.preventDefault(); });
    canvas.addEventListener("drop", function (ev) {
      ev.preventDefault();
      const name = ev.dataTransfer.getData("text/plain");
      if (name && config.may_write) { ctx.graph.addNodeAt(name, ev.clientX, ev.clientY); added++; }
    });

    // -- runs --------------------------------------------------------------------------
    const runButton = document.getElementById("run-button");
    const cancelButton = document.getElementById("cancel-button");
    const status = document.getElementById("run-status");

    // mode: all | from_here | to_here | node | sample. Runs use the saved graph: save first.
    ctx.startRun = async function (mode, node, sampleRows) {
      if (ctx.dirty && !(await ctx.save())) return;
      const body = { mode: mode };
      if (node) body.node = node;
      if (sampleRows) body.sample_rows = sampleRows;
      try {
        const detail = await ctx.api("runs/", "POST", body);
        ctx.message("Run #" + detail.number + " started.", "");
        showRun(detail);
        poll(detail.number);
      } catch (e) {
        ctx.message(e.message, "error");
        const named = /\(([A-Za-z0-9_-]{1,32})\)/.exec(e.message);
        if (named) ctx.graph.highlight(named[1]);
      }
    };
    if (runButton) runButton.addEventListener("click", function () { ctx.startRun("all"); });
    if (cancelButton) {
      cancelButton.addEventListener("click", async function () {
        if (!ctx.run) return;
        try { await ctx.api("runs/" + ctx.run.number + "/cancel/", "POST", {}); } catch (e) { ctx.message(e.message, "error"); }
      });
    }

    function nodeTitle(node) {
      if (node.status === "failed") return "Failed: " + (node.error || "see the log");
      if (node.status === "cached") return "Cached from run #" + node.cached_from_run;
      if (node.status === "skipped") return "Skipped: an input failed";
      return node.status + (node.duration_s != null ? " in " + node.duration_s.toFixed(1) + " s" : "");
    }

    function showRun(detail) {
      ctx.run = detail;
      const nodes = detail.nodes || {};
      ctx.graph.nodeIds().forEach(function (id) {
        const node = nodes[id];
        ctx.graph.setStatus(id, node ? node.status : null, node ? nodeTitle(node) : "");
      });
      status.hidden = false;
      status.textContent = "Run #" + detail.number + ": " + detail.status;
      status.className = "tag status-" + detail.status;
      status.dataset.status = detail.status;
      const live = detail.status === "running";
      if (runButton) runButton.disabled = live;
      if (cancelButton) cancelButton.disabled = !live;
      ctx.emit("run", detail);
    }
    ctx.showRun = showRun;

    let pollTimer = null;
    async function poll(number) {
      clearTimeout(pollTimer);
      let detail;
      try {
        detail = await ctx.api("runs/" + number + "/");
      } catch (e) {
        pollTimer = setTimeout(function () { poll(number); }, 3000);
        return;
      }
      showRun(detail);
      const live = detail.status === "running" ||
        Object.values(detail.nodes || {}).some(function (n) { return LIVE.has(n.status) && detail.status === "running"; });
      if (live) pollTimer = setTimeout(function () { poll(number); }, 1000);
      else if (detail.status === "failed") ctx.message("Run #" + number + " failed" + (detail.reason ? ": " + detail.reason : "."), "error");
      else if (detail.status === "succeeded") ctx.message("Run #" + number + " succeeded.", "success");
    }
    ctx.poll = poll;

    if (config.run) poll(config.run);
    if (config.may_write && ctx.graph.nodeIds().length) check();
    return ctx;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const node = document.getElementById("visual-config");
    if (!node || !document.getElementById("graph-canvas")) return;
    const ctx = setup(JSON.parse(node.textContent));
    window.BMLVisualTools.setup(ctx);
    window.BMLVisualSettings.setup(ctx);
    window.BMLVisualPanels.setup(ctx);
    // Tests and the console's own scripts reach the page's state here.
    window.BMLVisual = ctx;
  });
})();
