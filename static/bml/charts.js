// BMLCharts: the console's one way to draw a chart. Pages hand it their data; it draws with
// Apache ECharts (static/vendor/echarts/echarts.min.js, vendored by `make frontend`), so no
// page talks to the library itself and a change of library is a change of this file.
//
//   BMLCharts.line(el, {title, series: [{name, data: [[x, y], ...]}], xName, yName,
//                       (data may also come packed: a Float64Array [x0, y0, x1, y1, ...])
//                       xType: "value"|"time"|"category", logScale: true, filename})
//   (every kind also takes width and height in pixels: the width of `el` and 260 by default,
//    and `format`, a function value -> text for hover values and the value axis: units)
//   BMLCharts.bar(el, {title, categories: [...], series: [{name, data: [...]}], stack, yName})
//   BMLCharts.pie(el, {title, data: [{name, value}, ...]})
//   BMLCharts.histogram(el, {title, edges: [n + 1 numbers], counts: [n numbers], name})
//   BMLCharts.scatter(el, {title, series: [{name, data: [[x, y], ...], step: true?}], xName,
//                          yName, xLog: true?})   points (a series with step: true is drawn
//                          as a step line instead, e.g. a best-so-far beside the points)
//   BMLCharts.graph(el, {title, nodes: [{id, label, group?}], edges: [{from, to, kind}]})
//                          a network drawn top to bottom in the order of `nodes`; an edge of
//                          kind "skip" is drawn as a curve beside the main path (an ENAS
//                          architecture); hover names the node; the CSV lists the edges
//   BMLCharts.update(el, spec)   new data for a drawn chart (zoom, legend choices are kept)
//   BMLCharts.get(el)            the ECharts instance (browser tests read what is drawn)
//
// `el` is any element (a <figure>, a <div>): the plot goes into a div appended to it, so a
// caption or a note inside stays. The element is marked data-chart (its kind), data-series
// and data-points (how many points it was given). Every chart has hover values, PNG and CSV
// download; line charts zoom (wheel, drag, the slider, a box) with a reset, toggle series on
// the legend, and offer a log scale when `logScale` is set and every value is positive (loss
// curves). A long line series (more points than 4 per pixel column of the plot, its steps in
// order) is handed to ECharts decimated: per pixel column the first, last, lowest and highest
// points (M4), which draws the same line at screen resolution; zooming decimates the visible
// window again from the full data, so a narrow window shows every real point in it. Only real
// points are drawn and hovered; data-points, the CSV and the log-scale check keep the full data.
(function () {
  "use strict";
  const COLORS = ["#2468f2", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4", "#bc4c00"];
  const ANIMATE_BELOW = 2000; // points: longer charts are drawn at once, not animated
  const GRID = { left: 56, right: 24 }; // px beside the plot
  const ICONS = {
    csv: "path://M4 2h11l5 5v15H4z M15 2v5h5 M7 12h10 M7 16h10",
    log: "path://M3 21V3 M3 21h18 M5 19C9 6 14 4 21 3",
    reset: "path://M4 12a8 8 0 1 0 3-6.2 M4 3v5h5",
  };
  const states = new WeakMap(); // element -> {chart, kind, spec, log}

  function toCsv(rows) {
    return rows.map(function (row) {
      return row.map(function (cell) {
        const text = cell === null || cell === undefined ? "" : String(cell);
        return /[",\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
      }).join(",");
    }).join("\n") + "\n";
  }

  // The rows a chart's CSV holds: what the page gave, not the sampled points on screen.
  function csvRows(state) {
    const spec = state.spec;
    if (state.kind === "line" || state.kind === "scatter") {
      const rows = [["series", spec.xName || "x", spec.yName || "value"]];
      spec.series.forEach(function (s) {
        eachPoint(s.data, function (x, y) { rows.push([s.name, x, Number.isNaN(y) ? "" : y]); });
      });
      return rows;
    }
    if (state.kind === "bar") {
      const rows = [["category"].concat(spec.series.map(function (s) { return s.name; }))];
      spec.categories.forEach(function (c, i) {
        rows.push([c].concat(spec.series.map(function (s) { return s.data[i]; })));
      });
      return rows;
    }
    if (state.kind === "graph") {
      return [["from", "to", "kind"]].concat(spec.edges.map(function (e) { return [e.from, e.to, e.kind || ""]; }));
    }
    if (state.kind === "histogram") {
      const rows = [["from", "to", "count"]];
      spec.counts.forEach(function (n, i) { rows.push([spec.edges[i], spec.edges[i + 1], n]); });
      return rows;
    }
    return [["name", "value"]].concat(spec.data.map(function (d) { return [d.name, d.value]; }));
  }

  function fileBase(spec) {
    return (spec.filename || spec.title || "chart").replace(/[^\w.-]+/g, "_");
  }

  function downloadCsv(state) {
    const blob = new Blob([toCsv(csvRows(state))], { type: "text/csv" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = fileBase(state.spec) + ".csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
  }

  function allPositive(spec) {
    return spec.series.every(function (s) {
      const data = s.data;
      if (ArrayBuffer.isView(data)) return scan(data).positive;
      return data.every(function (p) { return p[1] === null || p[1] === undefined || !(p[1] <= 0); });
    });
  }

  function countPoints(state) {
    const spec = state.spec;
    if (state.kind === "line" || state.kind === "bar" || state.kind === "scatter") {
      return spec.series.reduce(function (n, s) { return n + pointCount(s.data); }, 0);
    }
    if (state.kind === "graph") return spec.nodes.length;
    return state.kind === "histogram" ? spec.counts.length : spec.data.length;
  }

  function format(value) {
    if (typeof value !== "number") return value;
    return Number.isInteger(value) ? String(value) : Number(value.toPrecision(5)).toString();
  }

  function toolbox(state, zoom) {
    const feature = {};
    if (zoom) {
      feature.dataZoom = { yAxisIndex: "none", title: { zoom: "Zoom to a box", back: "Undo zoom" } };
      feature.myReset = {
        show: true, title: "Reset zoom", icon: ICONS.reset,
        onclick: function () { state.chart.dispatchAction({ type: "dataZoom", start: 0, end: 100 }); },
      };
    }
    if (state.kind === "line" && state.spec.logScale) {
      feature.myLog = {
        show: allPositive(state.spec), title: "Log scale", icon: ICONS.log,
        onclick: function () { setLog(state, !state.log); },
      };
    }
    feature.saveAsImage = { title: "Download PNG", name: fileBase(state.spec), pixelRatio: 2 };
    feature.myCsv = {
      show: true, title: "Download CSV", icon: ICONS.csv,
      onclick: function () { downloadCsv(state); },
    };
    return { right: 8, top: 0, feature: feature };
  }

  function setLog(state, on) {
    state.log = on && allPositive(state.spec);
    state.element.dataset.scale = state.log ? "log" : "linear";
    state.chart.setOption({ yAxis: { type: state.log ? "log" : "value" } });
  }

  function base(state) {
    const spec = state.spec;
    return {
      animation: countPoints(state) < ANIMATE_BELOW,
      color: COLORS,
      title: spec.title ? { text: spec.title, left: 0, top: 2, textStyle: { fontSize: 13, fontWeight: 600 } } : undefined,
      grid: { left: GRID.left, right: GRID.right, top: spec.title ? 72 : 44, bottom: state.kind === "line" ? 64 : 32, containLabel: false },
      tooltip: { className: "bml-chart-tooltip", confine: true, valueFormatter: spec.format || format },
    };
  }

  // The value axis' labels in the page's units when it gave a `format`.
  // (ECharts hides the labels of an axis given axisLabel: undefined, so {} without one.)
  function valueLabels(spec) {
    return spec.format ? { formatter: function (value) { return spec.format(value); } } : {};
  }

  // A line series' data: [[x, y], ...], or already packed as a Float64Array [x0, y0, x1, ...].
  function pointCount(data) {
    return ArrayBuffer.isView(data) ? data.length / 2 : data.length;
  }

  function eachPoint(data, visit) {
    if (ArrayBuffer.isView(data)) {
      for (let i = 0; i < data.length; i += 2) visit(data[i], data[i + 1]);
    } else {
      data.forEach(function (p) { visit(p[0], p[1] === null || p[1] === undefined ? NaN : p[1]); });
    }
  }

  // [[x, y], ...] as one flat Float64Array [x0, y0, x1, y1, ...]: ECharts takes a long series
  // in at about half the cost of nested arrays (benchmarks/charts.py). Missing values: NaN.
  function packed(data) {
    if (ArrayBuffer.isView(data)) return data;
    if (!data.length || typeof data[0][0] !== "number") return data; // categories, dates
    const flat = new Float64Array(data.length * 2);
    for (let i = 0; i < data.length; i++) {
      const y = data[i][1];
      flat[2 * i] = data[i][0];
      flat[2 * i + 1] = y === null || y === undefined ? NaN : y;
    }
    return flat;
  }

  // What decimation and the log-scale check need to know of a packed series, from one pass
  // over it, kept while the same array is drawn: x in order (steps), every y positive.
  const scans = new WeakMap();
  function scan(flat) {
    let known = scans.get(flat);
    if (!known) {
      let ordered = true, positive = true;
      for (let i = 0; i < flat.length; i += 2) {
        if (i && !(flat[i] >= flat[i - 2])) ordered = false;
        if (flat[i + 1] <= 0) positive = false;
      }
      known = { ordered: ordered, positive: positive };
      scans.set(flat, known);
    }
    return known;
  }

  // First index whose x is >= value (or > value when `after`), in packed data ordered by x.
  function search(flat, value, after) {
    let lo = 0, hi = flat.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const x = flat[2 * mid];
      if (after ? x <= value : x < value) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // M4 over the points whose x lies in [from, to]: per one of `columns` equal slices of that
  // range, the first, lowest, highest and last point (and the first missing value, so a gap
  // stays a gap), plus the point either side of the range (the line runs on to the edges).
  // The indexes, in order.
  function m4(flat, from, to, columns) {
    const n = flat.length / 2;
    const first = search(flat, from, false), end = search(flat, to, true);
    const out = [];
    if (first > 0) out.push(first - 1);
    if (end - first <= 4 * columns) {
      for (let i = first; i < end; i++) out.push(i);
    } else {
      const scale = columns / ((to - from) || 1);
      let column = -1, start = 0, low = 0, high = 0, last = 0, gap = -1;
      const flush = function () {
        out.push(start);
        const middle = [low, high, gap].sort(function (a, b) { return a - b; });
        let previous = start;
        for (let k = 0; k < 3; k++) {
          const i = middle[k];
          if (i > previous && i < last) { out.push(i); previous = i; }
        }
        if (last > start) out.push(last);
      };
      for (let i = first; i < end; i++) {
        const c = Math.min(columns - 1, Math.floor((flat[2 * i] - from) * scale));
        const y = flat[2 * i + 1];
        if (c !== column) {
          if (column >= 0) flush();
          column = c; start = low = high = last = i; gap = -1;
        }
        last = i;
        if (y !== y) { if (gap < 0) gap = i; continue; }
        if (!(y >= flat[2 * low + 1])) low = i; // a missing low or high is replaced too
        if (!(y <= flat[2 * high + 1])) high = i;
      }
      if (column >= 0) flush();
    }
    if (end < n) out.push(end);
    return out;
  }

  // The points of one series that ECharts is given: the M4 of the whole range (the overview
  // the slider's shadow shows and that keeps the axis' extent) and of the window zoomed to
  // (`range`: [from, to] in x; null: everything).
  function shown(flat, columns, range) {
    const n = flat.length / 2;
    let keep = m4(flat, flat[0], flat[2 * n - 2], columns);
    if (range) {
      const inside = m4(flat, range[0], range[1], columns), merged = [];
      let a = 0, b = 0;
      while (a < keep.length || b < inside.length) {
        const i = b >= inside.length || (a < keep.length && keep[a] < inside[b]) ? keep[a++] : inside[b++];
        if (merged[merged.length - 1] !== i) merged.push(i);
      }
      keep = merged;
    }
    const out = new Float64Array(2 * keep.length);
    for (let k = 0; k < keep.length; k++) {
      out[2 * k] = flat[2 * keep[k]];
      out[2 * k + 1] = flat[2 * keep[k] + 1];
    }
    return out;
  }

  // Pixel columns of the plot (device pixels, at most 2 per CSS pixel).
  function plotColumns(state) {
    const width = state.chart.getWidth() - GRID.left - GRID.right;
    return Math.max(64, Math.ceil(width * Math.min(window.devicePixelRatio || 1, 2)));
  }

  function decimated(state, data) {
    return ArrayBuffer.isView(data) && data.length / 2 > 4 * plotColumns(state) && scan(data).ordered;
  }

  function lineSeries(state) {
    return state.spec.series.map(function (s) {
      let data = packed(s.data);
      const thin = decimated(state, data);
      if (thin) data = shown(data, plotColumns(state), state.window);
      return {
        id: s.name, name: s.name, type: "line", data: data, dimensions: ArrayBuffer.isView(data) ? ["x", "y"] : undefined,
        showSymbol: pointCount(s.data) < 50,
        // Decimated series are drawn as given (ECharts' own sampling would thin them again).
        symbolSize: 4, sampling: thin ? "none" : "lttb", connectNulls: false, lineStyle: { width: 1.5 },
      };
    });
  }

  // After a zoom: the window in x, or null when everything is shown; the decimated series are
  // taken again from the full data for it.
  function zoomed(state) {
    const zoom = state.chart.getOption().dataZoom[0];
    const range = zoom.start <= 0 && zoom.end >= 100 ? null : [zoom.startValue, zoom.endValue];
    const same = range === state.window ||
      (range && state.window && range[0] === state.window[0] && range[1] === state.window[1]);
    if (same) return;
    state.window = range;
    if (!state.spec.series.some(function (s) { return decimated(state, packed(s.data)); })) return;
    state.chart.setOption({ series: lineSeries(state) });
  }

  const BUILDERS = {
    line: function (state) {
      const spec = state.spec;
      const option = base(state);
      option.tooltip.trigger = "axis";
      option.legend = { type: "scroll", top: 30, left: 0, right: 170 };
      option.toolbox = toolbox(state, true);
      // Labels that would touch are left out (a time axis of short labels at 440 px).
      option.xAxis = { type: spec.xType || "value", name: spec.xName, nameLocation: "end", scale: true, axisLabel: { hideOverlap: true } };
      option.yAxis = { type: state.log ? "log" : "value", name: spec.yName, scale: true, axisLabel: valueLabels(spec) };
      if (spec.yName) option.grid.top += 16; // the axis name under the legend
      option.dataZoom = [{ type: "inside", xAxisIndex: 0 }, { type: "slider", xAxisIndex: 0, height: 18, bottom: 8 }];
      option.series = lineSeries(state);
      return option;
    },
    bar: function (state) {
      const spec = state.spec;
      const option = base(state);
      option.tooltip.trigger = "axis";
      option.legend = spec.series.length > 1 ? { type: "scroll", top: 30, left: 0, right: 170 } : undefined;
      option.toolbox = toolbox(state, false);
      option.xAxis = { type: "category", data: spec.categories, axisLabel: { hideOverlap: true } };
      option.yAxis = { type: "value", name: spec.yName, axisLabel: valueLabels(spec) };
      option.series = spec.series.map(function (s) {
        return { id: s.name, name: s.name, type: "bar", data: s.data, stack: spec.stack ? "all" : undefined };
      });
      return option;
    },
    pie: function (state) {
      const option = base(state);
      option.tooltip.trigger = "item";
      option.legend = { type: "scroll", top: 30, left: 0, right: 170 };
      option.toolbox = toolbox(state, false);
      option.series = [{
        id: "pie", name: state.spec.name || state.spec.title || "", type: "pie", radius: ["35%", "65%"],
        center: ["50%", "58%"], data: state.spec.data, label: { formatter: "{b}: {d}%" },
      }];
      return option;
    },
    scatter: function (state) {
      const spec = state.spec;
      const option = base(state);
      option.tooltip.trigger = "item";
      option.tooltip.formatter = function (item) {
        const point = item.value || [];
        return item.seriesName + "<br>" + (spec.xName || "x") + " " + format(point[0]) + ", " +
          (spec.yName || "y") + " " + (spec.format || format)(point[1]);
      };
      option.legend = spec.series.length > 1 ? { type: "scroll", top: 30, left: 0, right: 170 } : undefined;
      option.toolbox = toolbox(state, false);
      option.xAxis = { type: spec.xLog ? "log" : "value", name: spec.xName, nameLocation: "end", scale: true, axisLabel: { hideOverlap: true } };
      option.yAxis = { type: "value", name: spec.yName, scale: true, axisLabel: valueLabels(spec) };
      if (option.legend && spec.yName) option.grid.top += 16; // the axis name under the legend
      option.series = spec.series.map(function (s) {
        if (s.step) return { id: s.name, name: s.name, type: "line", step: "end", showSymbol: false, data: s.data };
        return { id: s.name, name: s.name, type: "scatter", symbolSize: 8, data: s.data };
      });
      return option;
    },
    graph: function (state) {
      const option = base(state);
      option.tooltip.trigger = "item";
      option.tooltip.formatter = function (item) {
        return item.dataType === "edge" ? item.data.source + " \u2192 " + item.data.target : item.name;
      };
      option.toolbox = toolbox(state, false);
      option.series = graphOption(state);
      return option;
    },
    histogram: function (state) {
      const spec = state.spec;
      const option = base(state);
      option.tooltip.trigger = "axis";
      option.toolbox = toolbox(state, false);
      option.xAxis = {
        type: "category",
        data: spec.counts.map(function (_, i) { return format(spec.edges[i]) + " \u2013 " + format(spec.edges[i + 1]); }),
        axisLabel: { hideOverlap: true },
      };
      option.yAxis = { type: "value", name: "count", minInterval: 1 };
      option.series = [{ id: "histogram", name: spec.name || "count", type: "bar", data: spec.counts, barCategoryGap: "2%" }];
      return option;
    },
  };

  // Graph nodes by what they do: the same colour for the same kind of operation.
  const NODE_COLORS = { conv: "#2468f2", sep: "#1a7f37", max: "#bc4c00", avg: "#9a6700" };

  function graphOption(state) {
    const spec = state.spec;
    const row = {};
    spec.nodes.forEach(function (n, i) { row[n.id] = i; });
    const nodes = spec.nodes.map(function (n, i) {
      const color = NODE_COLORS[(n.group || "").replace(/\d.*$/, "")] || "#6e7781";
      return {
        id: n.id, name: n.label || n.id, x: 0, y: i * 46, symbol: "roundRect", symbolSize: [190, 30],
        itemStyle: { color: "#fff", borderColor: color, borderWidth: 2 },
        label: { show: true, color: "#1f2328", fontSize: 12 },
      };
    });
    const links = spec.edges.map(function (e) {
      const skip = e.kind === "skip";
      const span = Math.abs((row[e.to] || 0) - (row[e.from] || 0));
      return {
        source: e.from, target: e.to,
        // Longer skips bow out further, so they do not lie on top of each other.
        lineStyle: skip ? { color: "#8250df", width: 1.5, type: "dashed", curveness: Math.min(0.9, 0.25 + 0.08 * span) } : { color: "#57606a", width: 2 },
      };
    });
    return [{
      id: "graph", type: "graph", layout: "none", roam: true, data: nodes, links: links,
      edgeSymbol: ["none", "arrow"], edgeSymbolSize: 7, top: spec.title ? 48 : 16, bottom: 16,
      emphasis: { focus: "adjacency" },
    }];
  }

  function mark(state) {
    const el = state.element;
    el.dataset.chart = state.kind;
    el.dataset.points = String(countPoints(state));
    el.dataset.series = String(state.spec.series ? state.spec.series.length : 1);
  }

  function draw(kind, element, spec) {
    if (typeof window.echarts === "undefined") {
      element.textContent = "Charts need the vendored chart library: run `make frontend`.";
      return null;
    }
    const old = states.get(element);
    if (old) old.chart.dispose();
    let plot = element.querySelector(":scope > .bml-chart-plot");
    if (!plot) {
      plot = document.createElement("div");
      plot.className = "bml-chart-plot";
      plot.style.width = spec.width ? spec.width + "px" : "100%";
      plot.style.height = (spec.height || 260) + "px";
      element.appendChild(plot);
      // An element that shrinks to its content (inline-block) gives "100%" nothing to hold.
      if (!plot.clientWidth) plot.style.width = "460px";
    }
    const state = { element: element, kind: kind, spec: spec, log: false, window: null };
    state.chart = window.echarts.init(plot, null, { renderer: "canvas" });
    states.set(element, state);
    state.chart.setOption(BUILDERS[kind](state));
    if (kind === "line") state.chart.on("datazoom", function () { zoomed(state); });
    mark(state);
    if (!element.dataset.chartObserved && window.ResizeObserver) {
      element.dataset.chartObserved = "1";
      let size = plot.clientWidth + "x" + plot.clientHeight;
      new ResizeObserver(function () {
        const current = states.get(element);
        const now = plot.clientWidth + "x" + plot.clientHeight;
        if (!current || now === size) return; // the first call: the size it was drawn at
        size = now;
        current.chart.resize();
        if (current.kind === "line") current.chart.setOption({ series: lineSeries(current) }); // columns
      }).observe(plot);
    }
    return state.chart;
  }

  // New data into a drawn chart: its zoom window, legend choices and scale stay as they are.
  function update(element, spec) {
    const state = states.get(element);
    if (!state) return null;
    state.spec = Object.assign({}, state.spec, spec);
    if (state.kind === "line") {
      if (state.log && !allPositive(state.spec)) setLog(state, false);
      const option = { series: lineSeries(state), animation: countPoints(state) < ANIMATE_BELOW };
      if (state.spec.logScale) option.toolbox = { feature: { myLog: { show: allPositive(state.spec) } } };
      state.chart.setOption(option, { replaceMerge: ["series"] });
      zoomed(state); // a zoom kept in percent moves in x as the data grows
    } else {
      const option = BUILDERS[state.kind](state);
      state.chart.setOption({ series: option.series, xAxis: option.xAxis }, { replaceMerge: ["series"] });
    }
    mark(state);
    return state.chart;
  }

  window.BMLCharts = {
    line: function (el, spec) { return draw("line", el, spec); },
    bar: function (el, spec) { return draw("bar", el, spec); },
    pie: function (el, spec) { return draw("pie", el, spec); },
    histogram: function (el, spec) { return draw("histogram", el, spec); },
    scatter: function (el, spec) { return draw("scatter", el, spec); },
    graph: function (el, spec) { return draw("graph", el, spec); },
    update: update,
    get: function (el) { const state = states.get(el); return state ? state.chart : null; },
    csv: function (el) { const state = states.get(el); return state ? toCsv(csvRows(state)) : null; },
  };
})();
