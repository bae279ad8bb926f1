// Progressive behaviour of the console: project switcher, confirmations, uploads with progress.
(function () {
  "use strict";

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  // Shared with the pages' own scripts (deferred after this one, so it is there).
  window.bml = Object.assign(window.bml || {}, { csrfToken: csrfToken });

  function setupSwitcher() {
    const form = document.getElementById("project-switcher");
    if (!form) return;
    const select = form.querySelector("select");
    select.addEventListener("change", function () {
      form.action = form.dataset.switchUrl.replace("/0/", "/" + select.value + "/");
      form.submit();
    });
  }

  function setupConfirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
      });
    });
  }

  function encodeKey(key) {
    return key.split("/").map(encodeURIComponent).join("/");
  }

  // One PUT per file, the raw body streamed; the server sends large ones multipart to the store.
  function uploadFile(objectsUrl, prefix, file, list) {
    const row = document.createElement("li");
    row.dataset.file = file.name;
    const name = document.createElement("span");
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    const state = document.createElement("span");
    state.className = "state"; state.textContent = "0%";
    row.append(name, bar, state);
    list.appendChild(row);
    return new Promise(function (resolve) {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", objectsUrl + encodeKey(prefix + file.name));
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      if (file.type) xhr.setRequestHeader("X-Object-Content-Type", file.type);
      xhr.upload.onprogress = function (ev) {
        if (!ev.lengthComputable) return;
        const pct = Math.floor((ev.loaded / ev.total) * 100);
        bar.value = Math.min(pct, 99); state.textContent = Math.min(pct, 99) + "%";
      };
      xhr.onload = function () {
        if (xhr.status === 201) {
          bar.value = 100; state.textContent = "done"; state.classList.add("done");
        } else {
          let detail = xhr.statusText;
          try { const body = JSON.parse(xhr.responseText); detail = body.detail || JSON.stringify(body); } catch (e) { /* not JSON */ }
          state.textContent = "failed"; state.title = detail; state.classList.add("failed");
          row.appendChild(Object.assign(document.createElement("small"), { textContent: detail, className: "muted" }));
        }
        resolve(xhr.status === 201);
      };
      xhr.onerror = function () { state.textContent = "failed"; state.classList.add("failed"); resolve(false); };
      xhr.send(file);
    });
  }

  function setupUploader() {
    const box = document.querySelector(".uploader");
    if (!box) return;
    const input = document.getElementById("upload-input");
    const list = document.getElementById("uploads");
    input.addEventListener("change", async function () {
      const files = Array.from(input.files);
      const results = await Promise.all(files.map(function (f) {
        return uploadFile(box.dataset.objectsUrl, box.dataset.prefix, f, list);
      }));
      input.value = "";
      if (box.dataset.fill && results.every(Boolean) && files.length) {
        // An upload form's "from your computer": the stored file becomes its source path.
        document.getElementById(box.dataset.fill).value =
          "bos://" + box.dataset.bucket + "/" + box.dataset.prefix + files[0].name;
        return;
      }
      if (results.every(Boolean)) {
        const note = document.createElement("li");
        note.className = "all-done"; note.textContent = "All uploads finished.";
        list.appendChild(note);
        setTimeout(function () { window.location.reload(); }, 800);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSwitcher(); setupConfirmations(); setupUploader();
  });
})();
