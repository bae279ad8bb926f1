// The canvas toolbar of visual modeling: zoom, full screen, box selection, the thumbnail
// (minimap), undo/redo and auto-layout. Works on the page's ctx (visual.js).
(function () {
  "use strict";

  // -- undo and redo: a stack of graph snapshots (JSON text) ------------------------------
  function history(ctx) {
    const undoButton = document.getElementById("undo");
    const redoButton = document.getElementById("redo");
    const past = [JSON.stringify(ctx.graph.toGraph())];
    const future = [];
    let restoring = false, timer = null;

    function buttons() {
      if (undoButton) undoButton.disabled = past.length < 2;
      if (redoButton) redoButton.disabled = future.length === 0;
    }
    // A node removed fires several changes (its connections first): one snapshot for all.
    ctx.on("change", function () {
      if (restoring) return;
      clearTimeout(timer);
      timer = setTimeout(function () {
        const now = JSON.stringify(ctx.graph.toGraph());
        if (now === past[past.length - 1]) return;
        past.push(now);
        if (past.length > 100) past.shift();
        future.length = 0;
        buttons();
      }, 50);
    });
    function restore(text) {
      restoring = true;
      ctx.graph.load(JSON.parse(text), true);
      restoring = false;
      if (ctx.run) ctx.showRun(ctx.run);
      buttons();
    }
    ctx.undo = function () {
      if (past.length < 2) return;
      future.push(past.pop());
      restore(past[past.length - 1]);
    };
    ctx.redo = function () {
      if (!future.length) return;
      past.push(future.pop());
      restore(past[past.length - 1]);
    };
    if (undoButton) undoButton.addEventListener("click", ctx.undo);
    if (redoButton) redoButton.addEventListener("click", ctx.redo);
    buttons();
  }

  // -- auto-layout: columns by topological depth, left to right ---------------------------
  function depths(g) {
    const depth = {}, incoming = {};
    g.nodes.forEach(function (n) { depth[n.id] = 0; incoming[n.id] = []; });
    g.edges.forEach(function (e) { if (incoming[e.to]) incoming[e.to].push(e.from); });
    // Longest path from a source; the graph is a DAG (a cycle stops after n rounds).
    for (let round = 0; round < g.nodes.length; round++) {
      let moved = false;
      g.edges.forEach(function (e) {
        if (depth[e.from] !== undefined && depth[e.to] < depth[e.from] + 1) { depth[e.to] = depth[e.from] + 1; moved = true; }
      });
      if (!moved) break;
    }
    return depth;
  }
  function autoLayout(ctx) {
    const g = ctx.graph.toGraph();
    const depth = depths(g);
    const rows = {};
    g.nodes.slice().sort(function (a, b) { return a.y - b.y; }).forEach(function (n) {
      const column = depth[n.id];
      rows[column] = (rows[column] || 0) + 1;
      ctx.graph.moveNode(n.id, 40 + column * 240, 40 + (rows[column] - 1) * 130);
    });
    ctx.markDirty();
    ctx.emit("change");
  }

  // -- box selection ----------------------------------------------------------------------
  function boxSelection(ctx, box, canvas) {
    const toggle = document.getElementById("box-select");
    const rect = document.getElementById("box-rect");
    if (!toggle) return;
    let on = false, start = null, group = null;
    toggle.addEventListener("click", function () {
      on = !on;
      toggle.setAttribute("aria-pressed", String(on));
      toggle.classList.toggle("active", on);
      box.classList.toggle("boxing", on);
      if (!on) ctx.graph.clearBox();
    });
    // Capture phase: ahead of Drawflow, which would pan the canvas on a background drag.
    canvas.addEventListener("mousedown", function (ev) {
      const nodeEl = ev.target.closest(".drawflow-node");
      if (nodeEl && nodeEl.classList.contains("box-selected")) {
        // Dragging one boxed node moves them all by the same amount.
        group = { id: nodeEl.dataset.node, start: {}, x: ev.clientX, y: ev.clientY };
        ctx.graph.boxed().forEach(function (id) { const n = ctx.graph.node(id); group.start[id] = { x: n.x, y: n.y }; });
        return;
      }
      if (!on || nodeEl || ev.button !== 0 || ev.target.closest(".output, .input")) return;
      ev.stopPropagation(); ev.preventDefault();
      start = { x: ev.clientX, y: ev.clientY };
      drawRect(ev);
      rect.hidden = false;
    }, true);
    function drawRect(ev) {
      const b = box.getBoundingClientRect();
      rect.style.left = Math.min(start.x, ev.clientX) - b.left + "px";
      rect.style.top = Math.min(start.y, ev.clientY) - b.top + "px";
      rect.style.width = Math.abs(ev.clientX - start.x) + "px";
      rect.style.height = Math.abs(ev.clientY - start.y) + "px";
    }
    document.addEventListener("mousemove", function (ev) {
      if (start) drawRect(ev);
      if (group) {
        const z = ctx.graph.view().zoom;
        ctx.graph.moveBoxedBy(group.start, (ev.clientX - group.x) / z, (ev.clientY - group.y) / z, group.id);
      }
    });
    document.addEventListener("mouseup", function (ev) {
      if (group) { group = null; return; }
      if (!start) return;
      const picked = ctx.graph.boxSelect({
        left: Math.min(start.x, ev.clientX), right: Math.max(start.x, ev.clientX),
        top: Math.min(start.y, ev.clientY), bottom: Math.max(start.y, ev.clientY),
      });
      start = null;
      rect.hidden = true;
      ctx.message(picked.length ? picked.length + " nodes selected: drag one to move them, Delete to remove them." : "", "");
    });
    ctx.deleteBoxed = function () {
      const ids = ctx.graph.boxed();
      ids.forEach(function (id) { ctx.graph.removeNode(id); });
      return ids.length;
    };
  }

  // -- thumbnail ---------------------------------------------------------------------------
  function minimap(ctx, box) {
    const map = document.getElementById("minimap");
    const toggle = document.getElementById("minimap-toggle");
    let scale = 1, origin = { x: 0, y: 0 };
    function bounds(nodes) {
      const b = { x0: 0, y0: 0, x1: 600, y1: 300 };
      nodes.forEach(function (n) {
        b.x0 = Math.min(b.x0, n.x); b.y0 = Math.min(b.y0, n.y);
        b.x1 = Math.max(b.x1, n.x + 200); b.y1 = Math.max(b.y1, n.y + 90);
      });
      return b;
    }
    ctx.drawMinimap = function () {
      if (map.hidden) return;
      const g = ctx.graph.toGraph(), b = bounds(g.nodes), draw = map.getContext("2d");
      scale = Math.min(map.width / (b.x1 - b.x0), map.height / (b.y1 - b.y0));
      origin = { x: b.x0, y: b.y0 };
      draw.clearRect(0, 0, map.width, map.height);
      const status = (ctx.run && ctx.run.nodes) || {};
      g.nodes.forEach(function (n) {
        const s = status[n.id] && status[n.id].status;
        draw.fillStyle = s === "failed" ? "#cf222e" : s === "succeeded" || s === "cached" ? "#1a7f37" : "#2468f2";
        draw.fillRect((n.x - origin.x) * scale, (n.y - origin.y) * scale, 180 * scale, 60 * scale);
      });
      // The part of the canvas in view.
      const v = ctx.graph.view(), canvas = document.getElementById("graph-canvas");
      draw.strokeStyle = "#57606a";
      draw.strokeRect((-v.x / v.zoom - origin.x) * scale, (-v.y / v.zoom - origin.y) * scale,
        canvas.clientWidth / v.zoom * scale, canvas.clientHeight / v.zoom * scale);
    };
    map.addEventListener("click", function (ev) {
      const r = map.getBoundingClientRect();
      ctx.graph.centerOn((ev.clientX - r.left) / scale + origin.x, (ev.clientY - r.top) / scale + origin.y);
      ctx.drawMinimap();
    });
    toggle.addEventListener("click", function () {
      map.hidden = !map.hidden;
      toggle.setAttribute("aria-pressed", String(!map.hidden));
      ctx.drawMinimap();
    });
    ctx.on("change", ctx.drawMinimap);
    ctx.on("run", ctx.drawMinimap);
    ctx.drawMinimap();
  }

  function keyboard(ctx) {
    document.addEventListener("keydown", function (ev) {
      if (ev.target.closest("input, select, textarea, dialog")) return;
      const key = ev.key.toLowerCase();
      if ((ev.ctrlKey || ev.metaKey) && key === "z") {
        ev.preventDefault();
        if (ev.shiftKey) ctx.redo(); else ctx.undo();
      } else if ((ev.ctrlKey || ev.metaKey) && key === "y") {
        ev.preventDefault(); ctx.redo();
      } else if ((key === "delete" || key === "backspace") && ctx.deleteBoxed && ctx.graph.boxed().length) {
        ev.preventDefault(); ctx.deleteBoxed();
      }
    });
  }

  function setup(ctx) {
    const box = document.getElementById("canvas-box");
    const canvas = document.getElementById("graph-canvas");
    const click = function (id, fn) { const el = document.getElementById(id); if (el) el.addEventListener("click", fn); };
    click("zoom-in", function () { ctx.graph.zoomIn(); });
    click("zoom-out", function () { ctx.graph.zoomOut(); });
    click("zoom-reset", function () { ctx.graph.zoomReset(); });
    click("fullscreen", function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (box.requestFullscreen) box.requestFullscreen();
    });
    click("auto-layout", function () { autoLayout(ctx); });
    minimap(ctx, box);
    if (ctx.config.may_write) {
      history(ctx);
      boxSelection(ctx, box, canvas);
      keyboard(ctx);
    }
  }

  window.BMLVisualTools = { setup: setup, depths: depths };
})();
