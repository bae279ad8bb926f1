// The console's graph editor for visual modeling: the one module that talks to the vendored
// Drawflow (static/vendor/drawflow/), so pages build graphs through BMLGraph only and the
// library can be swapped without touching them.
//
// Our graph (apps/visual/graph.py):
//   {nodes: [{id: "n1", component, label?, x, y, params, package}],
//    edges: [{from, from_port, to, to_port}]}
// Drawflow numbers its nodes itself; our id ("n1") lives in the node's data, and ports are
// Drawflow's "input_1"/"output_2" in the order of the component's description.
(function () {
  "use strict";
  const graphs = new WeakMap();

  // options: components [descriptions], readOnly, onChange(graph), onSelect(id | null),
  // onRefused(message), onContextMenu(id, clientX, clientY).
  function create(container, options) {
    const editor = new window.Drawflow(container);
    editor.reroute = false;
    editor.start();
    if (options.readOnly) editor.editor_mode = "view";  // pan and zoom, no edits
    const components = {};
    (options.components || []).forEach(function (c) { components[c.name] = c; });
    let counter = 0;       // the last "nN" given out
    let quiet = 0;         // > 0 while we rebuild: no onChange, no connection checks
    const boxed = new Set(); // our ids picked by box selection

    function data() { return editor.drawflow.drawflow[editor.module].data; }
    function drawflowId(id) {
      const all = data();
      for (const key in all) if (all[key].data.id === id) return key;
      return null;
    }
    function ourId(key) { const n = data()[key]; return n ? n.data.id : null; }
    function element(id) {
      const key = drawflowId(id);
      return key ? container.querySelector("#node-" + key) : null;
    }
    function changed() { if (!quiet && options.onChange) options.onChange(graph); }

    // "output_2" of a node -> that port's description.
    function port(key, cls) {
      const node = data()[key];
      const c = node && components[node.name];
      if (!c) return null;
      const [side, index] = cls.split("_");
      return (side === "input" ? c.inputs : c.outputs)[Number(index) - 1] || null;
    }
    function portClass(component, side, name) {
      const list = side === "input" ? component.inputs : component.outputs;
      const index = list.findIndex(function (p) { return p.name === name; });
      return index < 0 ? null : side + "_" + (index + 1);
    }

    // Label every port and say its name and kind (tests and CSS read data-port/data-kind).
    function decorate(key, c, id) {
      const el = container.querySelector("#node-" + key);
      el.dataset.node = id;
      el.dataset.component = c.name;
      el.querySelector(".graph-node-title").textContent = c.label;
      el.querySelector(".graph-node-id").textContent = id;
      [["input", c.inputs], ["output", c.outputs]].forEach(function (side) {
        side[1].forEach(function (p, i) {
          const dot = el.querySelector("." + side[0] + "s ." + side[0] + "_" + (i + 1));
          dot.dataset.port = p.name;
          dot.dataset.kind = p.kind;
          dot.dataset.label = p.label || p.name;
          dot.title = (p.label || p.name) + " (" + p.kind + ")";
        });
      });
    }

    // A new connection that breaks a rule goes at once, with the reason.
    function checkConnection(info) {
      if (quiet) return true;
      const out = port(info.output_id, info.output_class);
      const inp = port(info.input_id, info.input_class);
      let problem = "";
      if (!out || !inp) problem = "Unknown port.";
      else if (out.kind !== inp.kind) {
        problem = "A " + out.kind + " output cannot feed the " + inp.kind + " input '" + (inp.label || inp.name) + "'.";
      } else if (data()[info.input_id].inputs[info.input_class].connections.length > 1) {
        problem = "The input '" + (inp.label || inp.name) + "' already has a connection.";
      }
      if (!problem) return true;
      quiet++;
      editor.removeSingleConnection(info.output_id, info.input_id, info.output_class, info.input_class);
      quiet--;
      if (options.onRefused) options.onRefused(problem);
      return false;
    }

    function setPosition(key, x, y) {
      const node = data()[key];
      node.pos_x = x; node.pos_y = y;
      const el = container.querySelector("#node-" + key);
      el.style.left = x + "px"; el.style.top = y + "px";
      editor.updateConnectionNodes("node-" + key);
    }

    const graph = {
      components: components,
      editor: editor,
      // spec: {id, params, package, label}; a new node gets the next "nN".
      addNode: function (name, x, y, spec) {
        const c = components[name];
        if (!c) throw new Error("unknown component " + name);
        spec = spec || {};
        let id = spec.id;
        if (!id) { counter++; id = "n" + counter; }
        const number = Number(String(id).replace(/^n/, ""));
        if (Number.isInteger(number) && number > counter) counter = number;
        const nodeData = { id: id, component: name, params: spec.params || {}, package: spec.package ?? null };
        if (spec.label) nodeData.label = spec.label;
        quiet++;
        const key = editor.addNode(name, c.inputs.length, c.outputs.length, x, y, "graph-node", nodeData,
          '<div class="graph-node-head"><span class="graph-node-state" aria-hidden="true"></span>' +
          '<span class="graph-node-title"></span><span class="graph-node-warning" hidden>!</span></div>' +
          '<div class="graph-node-id muted"></div>');
        quiet--;
        decorate(key, c, id);  // the label as text, never as HTML
        changed();
        return id;
      },
      // Page coordinates (a drop) to the canvas's, whatever its pan and zoom.
      addNodeAt: function (name, clientX, clientY) {
        const box = editor.precanvas.getBoundingClientRect();
        return graph.addNode(name, (clientX - box.x) / editor.zoom, (clientY - box.y) / editor.zoom);
      },
      removeNode: function (id) {
        const key = drawflowId(id);
        if (key) editor.removeNodeId("node-" + key);
        boxed.delete(id);
      },
      // By port names: output `fromPort` of node `from` to input `toPort` of node `to`.
      connect: function (from, fromPort, to, toPort) {
        const a = drawflowId(from), b = drawflowId(to);
        if (!a || !b) return;
        const outClass = portClass(components[data()[a].name], "output", fromPort);
        const inClass = portClass(components[data()[b].name], "input", toPort);
        if (outClass && inClass) editor.addConnection(a, b, outClass, inClass);
      },
      node: function (id) {
        const key = drawflowId(id);
        if (!key) return null;
        const n = data()[key];
        return Object.assign({}, n.data, { x: n.pos_x, y: n.pos_y });
      },
      // Merge into the node's own data (params, package, label).
      setNodeData: function (id, values) {
        const key = drawflowId(id);
        if (!key) return;
        editor.updateNodeDataFromId(key, Object.assign({}, data()[key].data, values));
        changed();
      },
      nodeIds: function () {
        return Object.keys(data()).map(ourId);
      },
      element: element,
      // Our format, nodes in creation order.
      toGraph: function () {
        const all = data(), nodes = [], edges = [];
        Object.keys(all).sort(function (a, b) { return a - b; }).forEach(function (key) {
          const n = all[key], c = components[n.name];
          const node = { id: n.data.id, component: n.name, x: Math.round(n.pos_x), y: Math.round(n.pos_y),
            params: n.data.params || {}, package: n.data.package ?? null };
          if (n.data.label) node.label = n.data.label;
          nodes.push(node);
          Object.keys(n.outputs).forEach(function (cls) {
            const out = port(key, cls);
            n.outputs[cls].connections.forEach(function (conn) {
              const target = all[conn.node];
              const inp = port(conn.node, conn.output);
              if (target && out && inp && c) edges.push({ from: n.data.id, from_port: out.name, to: target.data.id, to_port: inp.name });
            });
          });
        });
        return { nodes: nodes, edges: edges };
      },
      // Replace the canvas with `g` (a load, an undo): quietly, then one onChange if asked.
      load: function (g, notify) {
        quiet++;
        editor.clear();
        boxed.clear();
        (g.nodes || []).forEach(function (n) {
          if (components[n.component]) graph.addNode(n.component, n.x || 0, n.y || 0, n);
        });
        (g.edges || []).forEach(function (e) { graph.connect(e.from, e.from_port, e.to, e.to_port); });
        quiet--;
        if (notify) changed();
      },
      exportGraph: function () { return editor.export(); },
      nodes: function () {
        const all = data();
        return Object.keys(all).map(function (key) { return all[key]; });
      },
      moveNode: function (id, x, y) {
        const key = drawflowId(id);
        if (key) setPosition(key, x, y);
      },
      // What a run left on each node: data-status, and the error as the title.
      setStatus: function (id, status, title) {
        const el = element(id);
        if (!el) return;
        if (status) el.dataset.status = status; else delete el.dataset.status;
        const mark = el.querySelector(".graph-node-state");
        mark.textContent = status === "cached" ? "✓ cached" : status === "succeeded" ? "✓" : status === "failed" ? "✗" : "";
        el.title = title || "";
      },
      // A problem of the static check, on its node.
      setWarning: function (id, message) {
        const el = element(id);
        if (!el) return;
        const mark = el.querySelector(".graph-node-warning");
        mark.hidden = !message;
        mark.title = message || "";
        el.classList.toggle("has-warning", !!message);
      },
      highlight: function (id) {
        container.querySelectorAll(".drawflow-node.error-highlight").forEach(function (el) { el.classList.remove("error-highlight"); });
        const el = id && element(id);
        if (el) el.classList.add("error-highlight");
      },
      zoomIn: function () { editor.zoom_in(); },
      zoomOut: function () { editor.zoom_out(); },
      zoomReset: function () { editor.zoom_reset(); },
      view: function () { return { zoom: editor.zoom, x: editor.canvas_x, y: editor.canvas_y }; },
      // Pan so that the canvas point (x, y) is in the middle of the box.
      centerOn: function (x, y) {
        editor.canvas_x = container.clientWidth / 2 - x * editor.zoom;
        editor.canvas_y = container.clientHeight / 2 - y * editor.zoom;
        editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + editor.zoom + ")";
        if (options.onView) options.onView();
      },
      // Box selection: the nodes whose boxes meet the page rectangle.
      boxSelect: function (rect) {
        graph.clearBox();
        container.querySelectorAll(".drawflow-node").forEach(function (el) {
          const r = el.getBoundingClientRect();
          if (r.right >= rect.left && r.left <= rect.right && r.bottom >= rect.top && r.top <= rect.bottom) {
            boxed.add(el.dataset.node);
            el.classList.add("box-selected");
          }
        });
        return Array.from(boxed);
      },
      boxed: function () { return Array.from(boxed); },
      clearBox: function () {
        boxed.clear();
        container.querySelectorAll(".box-selected").forEach(function (el) { el.classList.remove("box-selected"); });
      },
      // Move every boxed node but `except` (the one under the mouse) by the same amount.
      moveBoxedBy: function (start, dx, dy, except) {
        Object.keys(start).forEach(function (id) {
          if (id !== except) graph.moveNode(id, start[id].x + dx, start[id].y + dy);
        });
      },
    };

    editor.on("connectionCreated", function (info) { if (checkConnection(info)) changed(); });
    ["nodeRemoved", "nodeMoved", "connectionRemoved"].forEach(function (event) {
      editor.on(event, function () { changed(); });
    });
    editor.on("nodeSelected", function (key) { if (options.onSelect) options.onSelect(ourId(key)); });
    editor.on("nodeUnselected", function () { if (options.onSelect) options.onSelect(null); });
    ["zoom", "translate", "nodeMoved"].forEach(function (event) {
      editor.on(event, function () { if (options.onView) options.onView(); });
    });
    // Drawflow pans with a transform; a native scroll of its overflow-hidden box (the
    // browser bringing a focused or clicked node "into view") would shift every node off
    // its drawn place and hide some under others, so the box never keeps one.
    container.addEventListener("scroll", function () {
      if (container.scrollTop || container.scrollLeft) {
        container.scrollTop = 0;
        container.scrollLeft = 0;
      }
    });
    // Drawflow starts dragging a node (or panning) on any mouse button; a right-click is
    // for the node menu only, else the node follows the mouse to the menu and beyond.
    container.addEventListener("mousedown", function (ev) {
      if (ev.button !== 0) ev.stopImmediatePropagation();
    }, true);
    container.addEventListener("contextmenu", function (ev) {
      const el = ev.target.closest(".drawflow-node");
      if (!el || !options.onContextMenu) return;
      ev.preventDefault();
      options.onContextMenu(el.dataset.node, ev.clientX, ev.clientY);
    });
    graphs.set(container, graph);
    return graph;
  }

  window.BMLGraph = {
    create: create,
    get: function (container) { return graphs.get(container); },
  };
})();
