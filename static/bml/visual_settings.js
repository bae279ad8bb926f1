// The selected node's settings in three tabs: Parameters, Fields (columns from the upstream
// schema the check endpoint inferred, with their types) and Resources (a training package).
// Every edit goes into the node's data (BMLGraph.setNodeData), which marks the graph unsaved.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function labelled(spec, control) {
    const label = el("label", { "data-param": spec.name });
    label.append(spec.label + (spec.required ? " *" : ""));
    label.appendChild(control);
    if (spec.help) label.appendChild(el("small", { class: "muted" }, spec.help));
    return label;
  }

  // A value typed in a control -> the param's JSON value; "" (unset) means the default.
  function parse(spec, control) {
    if (spec.type === "bool") return control.checked;
    const raw = control.value;
    if (raw === "") return undefined;
    if (spec.type === "int") return Number.isNaN(parseInt(raw, 10)) ? raw : parseInt(raw, 10);
    if (spec.type === "float") return Number.isNaN(Number(raw)) ? raw : Number(raw);
    return raw;
  }

  function paramControl(spec, value, onEdit) {
    let control;
    if (spec.type === "choice") {
      control = el("select", { name: spec.name });
      spec.choices.forEach(function (choice) {
        control.appendChild(el("option", { value: choice }, String(choice) + (choice === spec.default ? " (default)" : "")));
      });
      control.value = value ?? spec.default ?? spec.choices[0];
    } else if (spec.type === "bool") {
      control = el("input", { type: "checkbox", name: spec.name });
      control.checked = value ?? !!spec.default;
    } else if (spec.type === "expression") {
      control = el("textarea", { name: spec.name, rows: 3, placeholder: "e.g. petal_length > 2" });
      control.value = value ?? "";
    } else {
      const number = spec.type === "int" || spec.type === "float";
      control = el("input", {
        name: spec.name, type: number ? "number" : "text", step: spec.type === "float" ? "any" : undefined,
        min: spec.min ?? undefined, max: spec.max ?? undefined,
        placeholder: spec.default !== null && spec.default !== undefined ? "default " + spec.default : "",
      });
      control.value = value ?? "";
    }
    control.addEventListener("change", function () { onEdit(spec.name, parse(spec, control)); });
    return labelled(spec, control);
  }

  // Upstream columns for a column/columns param: from the check's inputs schema of the node.
  function upstreamColumns(ctx, nodeId, spec) {
    const check = ctx.checks[nodeId];
    const schema = check && check.inputs && check.inputs[spec.input || "table"];
    const columns = (schema && schema.kind === "table" && schema.columns) || [];
    if (!spec.column_types || !spec.column_types.length) return columns;
    return columns.filter(function (c) { return spec.column_types.indexOf(c.type) >= 0; });
  }

  function fieldControl(ctx, nodeId, spec, value, onEdit) {
    const columns = upstreamColumns(ctx, nodeId, spec);
    if (spec.type === "column") {
      const select = el("select", { name: spec.name });
      select.appendChild(el("option", { value: "" }, "(none)"));
      columns.forEach(function (c) { select.appendChild(el("option", { value: c.name }, c.name + " (" + c.type + ")")); });
      // A saved choice the schema lacks (not checked yet, or dynamic) stays shown.
      if (value && !columns.some(function (c) { return c.name === value; })) select.appendChild(el("option", { value: value }, value));
      select.value = value || "";
      select.addEventListener("change", function () { onEdit(spec.name, select.value || undefined); });
      return labelled(spec, select);
    }
    const box = el("fieldset", { class: "column-choices", "data-param": spec.name });
    box.appendChild(el("legend", {}, spec.label + (spec.required ? " *" : "")));
    const chosen = new Set(value || []);
    const names = columns.map(function (c) { return c; });
    chosen.forEach(function (name) { if (!columns.some(function (c) { return c.name === name; })) names.push({ name: name, type: "?" }); });
    if (!names.length) box.appendChild(el("p", { class: "muted" }, "Connect an input to choose its columns."));
    names.forEach(function (c) {
      const label = el("label", { class: "inline-choice" });
      const input = el("input", { type: "checkbox", value: c.name });
      input.checked = chosen.has(c.name);
      // "click" as well as "change": the box is rebuilt when a check answers, and a click
      // landing on the rebuilt box must still count.
      input.addEventListener("click", function () {
        const picked = Array.from(box.querySelectorAll("input:checked")).map(function (i) { return i.value; });
        onEdit(spec.name, picked.length ? picked : undefined);
      });
      label.append(input, c.name + " ", el("span", { class: "muted" }, c.type));
      box.appendChild(label);
    });
    return box;
  }

  // The data set node: a data set of the project or a public one, and an optional version.
  function datasetControls(ctx, node, onEdit) {
    const select = el("select", { name: "dataset" });
    select.appendChild(el("option", { value: "" }, "(choose a data set)"));
    ctx.config.datasets.forEach(function (d) {
      select.appendChild(el("option", { value: d.id }, d.name + (d.public ? " (public)" : "")));
    });
    select.value = node.params.dataset ?? "";
    select.addEventListener("change", function () { onEdit("dataset", select.value ? Number(select.value) : undefined); });
    const version = el("input", { type: "number", name: "version", min: 1, placeholder: "the current version" });
    version.value = node.params.version ?? "";
    version.addEventListener("change", function () { onEdit("version", version.value ? Number(version.value) : undefined); });
    return [labelled({ name: "dataset", label: "Data set", required: true }, select),
      labelled({ name: "version", label: "Version (optional)" }, version)];
  }

  function setup(ctx) {
    const empty = document.getElementById("settings-empty");
    const panel = document.getElementById("settings-node");
    const form = document.getElementById("settings-form");
    const title = document.getElementById("settings-title");
    let current = null, tab = "parameters";

    function edit(name, value) {
      const node = ctx.graph.node(current);
      const params = Object.assign({}, node.params);
      if (value === undefined) delete params[name]; else params[name] = value;
      ctx.graph.setNodeData(current, { params: params });
    }

    function render() {
      const node = current && ctx.graph.node(current);
      empty.hidden = !!node;
      panel.hidden = !node;
      if (!node) return;
      const c = ctx.graph.components[node.component];
      title.textContent = c.label + " · " + node.id;
      panel.querySelectorAll("[data-tab]").forEach(function (a) { a.classList.toggle("active", a.dataset.tab === tab); });
      form.dataset.tab = tab;
      form.textContent = "";
      if (tab === "resources") {
        const select = el("select", { name: "package" });
        select.appendChild(el("option", { value: "" }, "(the default package)"));
        ctx.config.packages.forEach(function (p) { select.appendChild(el("option", { value: p.id }, p.name)); });
        select.value = node.package ?? "";
        select.addEventListener("change", function () { ctx.graph.setNodeData(current, { package: select.value ? Number(select.value) : null }); });
        form.appendChild(labelled({ name: "package", label: "Resource package" }, select));
      } else if (tab === "parameters" && node.component === "dataset") {
        datasetControls(ctx, node, edit).forEach(function (x) { form.appendChild(x); });
      } else {
        const specs = c.params.filter(function (p) { return p.tab === tab; });
        if (!specs.length) form.appendChild(el("p", { class: "muted" }, "Nothing to set here."));
        specs.forEach(function (spec) {
          form.appendChild(tab === "fields" ? fieldControl(ctx, current, spec, node.params[spec.name], edit)
            : paramControl(spec, node.params[spec.name], edit));
        });
      }
      const check = ctx.checks[current];
      if (check && check.error) form.appendChild(el("p", { class: "field-error", id: "settings-problem" }, check.error.message || check.error.rule));
      if (!ctx.config.may_write) form.querySelectorAll("input, select, textarea").forEach(function (x) { x.disabled = true; });
    }

    panel.querySelectorAll("[data-tab]").forEach(function (a) {
      a.addEventListener("click", function (ev) { ev.preventDefault(); tab = a.dataset.tab; render(); });
    });
    ctx.on("select", function (id) {
      // Drawflow unselects on any click of the canvas; keep the panel while editing it.
      if (id === null) return;
      current = id; render();
    });
    // New schemas from the check: the fields tab offers the new columns (unless typing).
    ctx.on("check", function () { if (current && !form.contains(document.activeElement)) render(); });
    ctx.on("change", function () { if (current && !ctx.graph.node(current)) { current = null; render(); } });
    ctx.selectNode = function (id) { current = id; render(); };
  }

  window.BMLVisualSettings = { setup: setup };
})();
