// Text annotation: the create form (scenario labels, storage path), the upload form's limits,
// and the annotation page: one sentence at a time, select words -> pick a tag -> a span stored
// by character offsets; spans linked into triples; keyboard navigation.
(function () {
  "use strict";

  const csrfToken = window.bml.csrfToken; // console.js

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") node.style.cssText = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach(function (child) {
      node.append(child);
    });
    return node;
  }

  // Offsets are counted in characters (Unicode code points), as the server's Python str
  // indices are; JavaScript strings count UTF-16 units, which differ outside the BMP.
  function codePoints(text) {
    return Array.from(text).length;
  }

  // -- create form ------------------------------------------------------------------------

  function setupCreateForm() {
    const form = document.getElementById("task-form");
    if (!form) return;
    function showScenario() {
      const checked = form.querySelector("input[name=scenario]:checked");
      const scenario = checked ? checked.value : "relation";
      form.querySelectorAll("[data-scenario-label]").forEach(function (label) {
        label.hidden = label.dataset.scenarioLabel !== scenario;
      });
    }
    form.querySelectorAll("input[name=scenario]").forEach(function (radio) {
      radio.addEventListener("change", showScenario);
    });
    showScenario();
    // The suggested folder follows the task's name until the user writes a path of their own.
    const name = document.getElementById("task-name");
    const path = document.getElementById("storage-path");
    const bucket = path.dataset.bucket;
    if (!bucket) return;
    const base = "bos://" + bucket + "/annotation/";
    let suggested = path.value === base || path.value === "";
    path.addEventListener("input", function () { suggested = false; });
    function follow() {
      if (suggested) path.value = base + (name.value.trim() ? name.value.trim() + "/" : "");
    }
    name.addEventListener("input", follow);
    // A name typed (or autofilled) before this deferred script ran is followed too.
    follow();
  }

  // -- upload form ------------------------------------------------------------------------

  function setupUploadForm() {
    const form = document.getElementById("upload-form");
    if (!form) return;
    const check = document.getElementById("upload-check");
    function showSource() {
      const checked = form.querySelector("input[name=source]:checked");
      const source = checked ? checked.value : "local";
      form.querySelectorAll("[data-source]").forEach(function (part) {
        part.hidden = part.dataset.source !== source;
      });
    }
    form.querySelectorAll("input[name=source]").forEach(function (radio) {
      radio.addEventListener("change", showSource);
    });
    showSource();
    form.addEventListener("submit", function (ev) {
      const source = form.querySelector("input[name=source]:checked").value;
      if (source !== "local") return;
      const files = Array.from(document.getElementById("upload-files").files);
      const maxFiles = Number(form.dataset.maxFiles), maxMb = Number(form.dataset.maxMb);
      let problem = "";
      if (!files.length) problem = "Choose the files to upload.";
      else if (files.length > maxFiles) problem = "At most " + maxFiles + " files can be uploaded at a time; " + files.length + " were chosen.";
      else {
        const big = files.find(function (f) {
          return !/\.zip$/i.test(f.name) && f.size > maxMb * 1024 * 1024;
        });
        if (big) problem = big.name + " is " + (big.size / 1048576).toFixed(1) + " MB; each file may be at most " + maxMb + " MB.";
      }
      if (problem) {
        ev.preventDefault();
        check.textContent = problem;
        check.hidden = false;
      }
    });
  }

  // -- the annotation page ------------------------------------------------------------------

  function setupAnnotator() {
    const root = document.getElementById("annotator");
    const dataNode = document.getElementById("annotation-data");
    if (!root || !dataNode) return;
    const config = JSON.parse(dataNode.textContent);
    const editable = config.editable;
    const tags = config.tags;
    const tagById = Object.fromEntries(tags.map(function (t) { return [t.id, t]; }));
    const spanTags = tags.filter(function (t) { return t.kind === "entity" || t.kind === config.object_kind; });
    const predicateTags = tags.filter(function (t) { return t.kind === config.predicate_kind; });
    const sentenceEl = document.getElementById("sentence-text");
    const popup = document.getElementById("tag-popup");
    const errorBox = document.getElementById("annotate-error");
    const tripleForm = document.getElementById("triple-form");
    let state = config.current;
    let pending = null; // the selection waiting for a tag: {start, end} in the document
    let busy = false;

    function showError(text) {
      errorBox.textContent = text;
      errorBox.hidden = !text;
    }

    // -- drawing ---------------------------------------------------------------------------

    // Each span gets the lowest underline lane free at its start, so overlapping spans are
    // drawn one under the other and stay readable.
    function lanes(spans) {
      const ends = [];
      const lane = {};
      spans.slice().sort(function (a, b) { return a.start - b.start || b.end - a.end; }).forEach(function (s) {
        let i = ends.findIndex(function (end) { return end <= s.start; });
        if (i < 0) i = ends.length;
        ends[i] = s.end;
        lane[s.id] = i;
      });
      return lane;
    }

    function drawSentence(sentence) {
      const chars = Array.from(sentence.text);
      const base = sentence.start;
      const lane = lanes(sentence.spans);
      const cuts = new Set([0, chars.length]);
      sentence.spans.forEach(function (s) { cuts.add(s.start - base); cuts.add(s.end - base); });
      const points = Array.from(cuts).sort(function (a, b) { return a - b; });
      sentenceEl.replaceChildren();
      for (let i = 0; i + 1 < points.length; i++) {
        const a = points[i], b = points[i + 1];
        const piece = chars.slice(a, b).join("");
        const over = sentence.spans.filter(function (s) { return s.start - base <= a && s.end - base >= b; });
        if (!over.length) {
          sentenceEl.append(document.createTextNode(piece));
          continue;
        }
        // Lane i is drawn 4i px under the text, whatever the depth of this piece.
        const depth = 4 * (Math.max.apply(null, over.map(function (s) { return lane[s.id]; })) + 1);
        const layers = over.map(function (s) {
          return "linear-gradient(" + s.color + "," + s.color + ") 0 calc(100% - " + (depth - 4 * lane[s.id] - 4) + "px)/100% 3px no-repeat";
        });
        layers.push("linear-gradient(" + over[0].color + "26," + over[0].color + "26)");
        sentenceEl.append(el("span", {
          class: "mark",
          style: "background:" + layers.join(",") + ";padding-bottom:" + depth + "px",
          title: over.map(function (s) { return s.label + " (" + s.text + ")"; }).join(", "),
          dataset: { spans: over.map(function (s) { return s.id; }).join(" ") },
        }, [piece]));
      }
      sentenceEl.dataset.index = sentence.index;
      sentenceEl.dataset.start = sentence.start;
    }

    function spanName(span) {
      return "\u201c" + span.text + "\u201d " + span.label + " @" + span.start;
    }

    function removeButton(url, what) {
      const button = el("button", { type: "button", class: "link danger", "aria-label": "Remove " + what, text: "Remove" });
      button.addEventListener("click", function () { write(url, {}); });
      return button;
    }

    function drawLists(sentence) {
      const spans = document.getElementById("span-list");
      spans.replaceChildren();
      const byId = {};
      sentence.spans.forEach(function (s) {
        byId[s.id] = s;
        const item = el("li", { dataset: { span: s.id } }, [
          el("span", { class: "swatch", style: "background:" + s.color }),
          el("b", { text: s.text }), " ",
          el("span", { class: "muted small", text: s.label + " [" + s.start + "\u2013" + s.end + ")" }),
        ]);
        if (editable) item.append(" ", removeButton(config.urls.spans + s.id + "/remove/", s.label + " " + s.text));
        item.addEventListener("mouseenter", function () { focusSpan(s.id, true); });
        item.addEventListener("mouseleave", function () { focusSpan(s.id, false); });
        spans.append(item);
      });
      if (!sentence.spans.length) spans.append(el("li", { class: "muted", text: editable ? "No span yet: select words in the sentence." : "No span." }));
      const triples = document.getElementById("triple-list");
      triples.replaceChildren();
      sentence.triples.forEach(function (t) {
        const head = byId[t.subject], tail = byId[t.object];
        const item = el("li", { dataset: { triple: t.id } }, [
          el("b", { text: head ? head.text : "?" }), " \u2014" + t.label + "\u2192 ", el("b", { text: tail ? tail.text : "?" }),
        ]);
        if (editable) item.append(" ", removeButton(config.urls.triples + t.id + "/remove/", t.label));
        triples.append(item);
      });
      if (!sentence.triples.length) triples.append(el("li", { class: "muted", text: "No triple yet." }));
    }

    function focusSpan(id, on) {
      sentenceEl.querySelectorAll(".mark").forEach(function (mark) {
        if (mark.dataset.spans.split(" ").includes(String(id))) mark.classList.toggle("focus", on);
      });
    }

    function fillSelect(select, options, placeholder) {
      const kept = select.value;
      select.replaceChildren(el("option", { value: "", text: placeholder }));
      options.forEach(function ([value, label]) { select.append(el("option", { value: String(value), text: label })); });
      if (options.some(function ([value]) { return String(value) === kept; })) select.value = kept;
      else if (options.length === 1 && select.name === "predicate") select.value = String(options[0][0]);
    }

    function drawTripleForm(sentence) {
      if (!tripleForm) return;
      const entities = sentence.spans.filter(function (s) { return s.kind === "entity"; });
      const objects = sentence.spans.filter(function (s) { return s.kind === config.object_kind; });
      fillSelect(tripleForm.elements.subject, entities.map(function (s) { return [s.id, spanName(s)]; }), "\u2014 select words, then a tag \u2014");
      fillSelect(tripleForm.elements.predicate, predicateTags.map(function (t) { return [t.id, t.name]; }), "\u2014 choose \u2014");
      fillSelect(tripleForm.elements.object, objects.map(function (s) { return [s.id, spanName(s)]; }), "\u2014 select words, then a tag \u2014");
    }

    function drawSide(data) {
      document.getElementById("document-progress").textContent = data.progress.done + " / " + data.progress.total;
      const bar = document.getElementById("document-progress-bar");
      bar.max = data.progress.total; bar.value = data.progress.done;
      const finish = document.getElementById("finish-form");
      if (finish) finish.dataset.unannotated = data.progress.unannotated;
      const status = document.getElementById("document-status");
      status.textContent = data.status_label;
      status.className = "tag doc-" + data.status;
      const list = document.getElementById("sentence-list");
      list.replaceChildren();
      data.nearby.forEach(function (item) {
        const link = el("a", { href: "?sentence=" + item.index, text: "#" + (item.index + 1) + " " + item.snippet });
        link.addEventListener("click", function (ev) { ev.preventDefault(); go(item.index); });
        const classes = [item.index === data.sentence.index ? "current" : "", item.done ? "done" : "", item.spans ? "annotated" : ""];
        list.append(el("li", { class: classes.join(" ").trim(), dataset: { index: item.index } }, [link]));
      });
    }

    function draw() {
      const sentence = state.sentence;
      drawSentence(sentence);
      document.getElementById("previous-sentence").textContent = state.previous ? state.previous.text : "";
      document.getElementById("next-sentence").textContent = state.next ? state.next.text : "";
      document.getElementById("sentence-number").textContent = "Sentence " + (sentence.index + 1) + " of " + state.progress.total;
      document.getElementById("sentence-done").hidden = !sentence.done;
      document.getElementById("previous-button").disabled = !state.previous;
      document.getElementById("next-button").disabled = !state.next;
      const mark = document.getElementById("mark-done");
      if (mark) mark.textContent = sentence.done ? "Mark as not done" : "Mark as done";
      drawLists(sentence);
      drawTripleForm(sentence);
      drawSide(state);
    }

    // -- requests --------------------------------------------------------------------------

    async function request(url, body) {
      const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
      if (body !== undefined) {
        options.method = "POST";
        options.headers["Content-Type"] = "application/json";
        options.headers["X-CSRFToken"] = csrfToken();
        options.body = JSON.stringify(body);
      }
      const response = await fetch(url, options);
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      if (!response.ok) {
        const errors = data && data.errors ? Object.values(data.errors).flat() : [];
        throw new Error(errors.join(" ") || "The server answered " + response.status + ".");
      }
      return data;
    }

    async function write(url, body) {
      if (busy) return null;
      busy = true;
      try {
        state = await request(url, body);
        showError("");
        draw();
        return state;
      } catch (err) {
        showError(err.message);
        return null;
      } finally {
        busy = false;
      }
    }

    async function go(index) {
      if (index < 0 || index >= state.progress.total || busy) return;
      closePopup();
      busy = true;
      try {
        state = await request(config.urls.sentence + index + "/");
        showError("");
        draw();
        history.replaceState(null, "", "?sentence=" + index);
      } catch (err) {
        showError(err.message);
      } finally {
        busy = false;
      }
    }

    // -- selecting words -------------------------------------------------------------------

    // Characters of the sentence element's text before a boundary point, counted by walking
    // its text nodes: where the words are, never a search for them.
    function textOffset(container, offset) {
      const probe = document.createRange();
      probe.setStart(container, offset);
      const walker = document.createTreeWalker(sentenceEl, NodeFilter.SHOW_TEXT);
      let count = 0;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node === container) return count + codePoints(node.data.slice(0, offset));
        if (probe.comparePoint(node, node.data.length) > 0) break;
        count += codePoints(node.data);
      }
      return count;
    }

    function selectedStretch() {
      const selection = window.getSelection();
      if (!selection || selection.isCollapsed || !selection.rangeCount) return null;
      const range = selection.getRangeAt(0);
      if (!range.intersectsNode(sentenceEl)) return null;
      const whole = document.createRange();
      whole.selectNodeContents(sentenceEl);
      const chars = Array.from(state.sentence.text);
      let a = range.compareBoundaryPoints(Range.START_TO_START, whole) <= 0 ? 0 : textOffset(range.startContainer, range.startOffset);
      let b = range.compareBoundaryPoints(Range.END_TO_END, whole) >= 0 ? chars.length : textOffset(range.endContainer, range.endOffset);
      while (a < b && /\s/.test(chars[a])) a++;
      while (b > a && /\s/.test(chars[b - 1])) b--;
      if (a >= b) return null;
      return { start: state.sentence.start + a, end: state.sentence.start + b, text: chars.slice(a, b).join(""), rect: range.getBoundingClientRect() };
    }

    function openPopup(stretch) {
      pending = stretch;
      document.getElementById("tag-popup-text").textContent = "\u201c" + stretch.text + "\u201d [" + stretch.start + "\u2013" + stretch.end + ")";
      const choices = document.getElementById("tag-choices");
      choices.replaceChildren();
      spanTags.forEach(function (tag) {
        const button = el("button", { type: "button", class: "tag-choice", dataset: { tag: tag.id } }, [
          el("span", { class: "swatch", style: "background:" + tag.color }),
          tag.shortcut ? el("kbd", { text: tag.shortcut }) : "",
          " " + tag.name,
          el("small", { class: "muted", text: " " + (tag.kind === "entity" ? "entity" : "attribute value") }),
        ]);
        button.addEventListener("click", function () { pick(tag.id); });
        choices.append(button);
      });
      if (!spanTags.length) choices.append(el("p", { class: "muted", text: "No tags yet: add them in tag management." }));
      popup.hidden = false;
      const rect = stretch.rect;
      popup.style.top = window.scrollY + rect.bottom + 8 + "px";
      popup.style.left = Math.max(8, window.scrollX + rect.left) + "px";
    }

    function closePopup() {
      popup.hidden = true;
      pending = null;
    }

    async function pick(tagId) {
      const stretch = pending;
      if (!stretch) return;
      closePopup();
      window.getSelection().removeAllRanges();
      const data = await write(config.urls.spans, { start: stretch.start, end: stretch.end, tag: tagId });
      if (!data || !tripleForm) return;
      // The new span fills the next empty end of the triple form: entity 1, then entity 2.
      const span = data.sentence.spans.find(function (s) { return s.start === stretch.start && s.end === stretch.end && s.tag === tagId; });
      if (!span) return;
      const subject = tripleForm.elements.subject, object = tripleForm.elements.object;
      if (span.kind === "entity" && !subject.value) subject.value = String(span.id);
      else if (span.kind === config.object_kind && !object.value && subject.value !== String(span.id)) object.value = String(span.id);
    }

    if (editable) {
      document.addEventListener("mouseup", function (ev) {
        if (popup.contains(ev.target)) return;
        // After the browser has settled the selection of this click.
        setTimeout(function () {
          const stretch = selectedStretch();
          if (stretch) openPopup(stretch);
          else if (!popup.contains(document.activeElement)) closePopup();
        }, 0);
      });
      tripleForm.addEventListener("submit", async function (ev) {
        ev.preventDefault();
        const f = tripleForm.elements;
        if (!f.subject.value || !f.predicate.value || !f.object.value) {
          showError("Choose both ends and the " + (config.scenario === "relation" ? "relationship" : "attribute") + " first.");
          return;
        }
        const body = { subject: Number(f.subject.value), predicate: Number(f.predicate.value), object: Number(f.object.value) };
        if (await write(config.urls.triples, body)) {
          f.subject.value = "";
          f.object.value = "";
        }
      });
      document.getElementById("mark-done").addEventListener("click", function () {
        write(config.urls.sentence + state.sentence.index + "/done/", { done: !state.sentence.done });
      });
    }

    document.getElementById("previous-button").addEventListener("click", function () { go(state.sentence.index - 1); });
    document.getElementById("next-button").addEventListener("click", function () { go(state.sentence.index + 1); });
    document.getElementById("goto-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      const wanted = Number(document.getElementById("goto-index").value);
      if (wanted >= 1) go(Math.min(wanted, state.progress.total) - 1);
    });

    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (!popup.hidden) {
        if (ev.key === "Escape") { ev.preventDefault(); closePopup(); window.getSelection().removeAllRanges(); return; }
        const tag = spanTags.find(function (t) { return t.shortcut && t.shortcut === ev.key.toLowerCase(); });
        if (tag) { ev.preventDefault(); pick(tag.id); }
        return;
      }
      const target = ev.target;
      if (target.closest && target.closest("input, select, textarea, [contenteditable]")) return;
      if (ev.shiftKey) return;
      if (ev.key === "j" || ev.key === "ArrowDown" || ev.key === "ArrowRight") { ev.preventDefault(); go(state.sentence.index + 1); }
      else if (ev.key === "k" || ev.key === "ArrowUp" || ev.key === "ArrowLeft") { ev.preventDefault(); go(state.sentence.index - 1); }
      else if (tripleForm) {
        // A relationship (or attribute) tag's key picks it in the triple form.
        const tag = predicateTags.find(function (t) { return t.shortcut && t.shortcut === ev.key.toLowerCase(); });
        if (tag) { ev.preventDefault(); tripleForm.elements.predicate.value = String(tag.id); }
      }
    });

    draw();
    root.dataset.ready = "1";
  }

  // "Save and go to next file" asks first while sentences have no annotation (the count is
  // the server's, kept current by every answer of the annotator).
  function setupFinishForm() {
    const form = document.getElementById("finish-form");
    if (!form) return;
    form.addEventListener("submit", function (ev) {
      const left = Number(form.dataset.unannotated || 0);
      if (!left) return;
      const total = Number(form.dataset.total || 0);
      const message = left + " of " + total + " sentences " + (left === 1 ? "has" : "have") +
        " no annotation (no span, not marked as done). Save and go to the next file anyway?";
      if (!window.confirm(message)) ev.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCreateForm();
    setupUploadForm();
    setupAnnotator();
    setupFinishForm();
  });
})();
