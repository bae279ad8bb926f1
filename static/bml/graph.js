// The console's graph editor for visual modeling: the one module that talks to the vendored
// Drawflow (static/vendor/drawflow/), so pages build graphs through BMLGraph only and the
// library can be swapped without touching them.
(function () {
  "use strict";
  const graphs = new WeakMap();

  // options.components: [{name, label, inputs, outputs}]; options.onChange(graph) after any
  // node or connection is added, moved or removed.
  function create(container, options) {
    const editor = new window.Drawflow(container);
    editor.reroute = false;
    editor.start();
    const components = {};
    (options.components || []).forEach(function (c) { components[c.name] = c; });

    const graph = {
      addNode: function (name, x, y) {
        const c = components[name];
        if (!c) throw new Error("unknown component " + name);
        const id = editor.addNode(name, c.inputs, c.outputs, x, y, "graph-node", { component: name },
          '<div class="graph-node-title"></div>');
        // The label as text, never as HTML.
        container.querySelector("#node-" + id + " .graph-node-title").textContent = c.label;
        return id;
      },
      // Output port `output` (1-based) of node `from` to input port `input` of node `to`.
      connect: function (from, to, output, input) {
        editor.addConnection(from, to, "output_" + (output || 1), "input_" + (input || 1));
      },
      // Page coordinates (a drop) to the canvas's, whatever its pan and zoom.
      addNodeAt: function (name, clientX, clientY) {
        const box = editor.precanvas.getBoundingClientRect();
        return graph.addNode(name, (clientX - box.x) / editor.zoom, (clientY - box.y) / editor.zoom);
      },
      // The whole graph: nodes with their component, position and connections.
      exportGraph: function () { return editor.export(); },
      nodes: function () {
        const data = editor.export().drawflow.Home.data;
        return Object.keys(data).map(function (id) { return data[id]; });
      },
    };
    if (options.onChange) {
      ["nodeCreated", "nodeRemoved", "nodeMoved", "connectionCreated", "connectionRemoved"].forEach(function (event) {
        editor.on(event, function () { options.onChange(graph); });
      });
    }
    graphs.set(container, graph);
    return graph;
  }

  window.BMLGraph = {
    create: create,
    get: function (container) { return graphs.get(container); },
  };
})();
