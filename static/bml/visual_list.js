// The experiment list: create, copy and delete through the REST API, then reload the page
// (the server renders the list; this script only sends the changes).
(function () {
  "use strict";

  async function send(url, method, body) {
    const options = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRFToken": window.bml.csrfToken(), "Content-Type": "application/json" },
    };
    if (body !== undefined) options.body = JSON.stringify(body);
    const response = await fetch(url, options);
    const data = response.status === 204 ? null : await response.json().catch(function () { return null; });
    if (!response.ok) throw new Error(firstError(data) || "The server answered " + response.status + ".");
    return data;
  }

  // DRF errors: {"field": "message"} or {"field": ["message", ...]}.
  function firstError(data) {
    if (!data || typeof data !== "object") return "";
    const key = Object.keys(data)[0];
    if (!key) return "";
    const value = Array.isArray(data[key]) ? data[key][0] : data[key];
    return (key === "detail" || key === "non_field_errors" ? "" : key + ": ") + value;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const configNode = document.getElementById("visual-config");
    if (!configNode) return;
    const config = JSON.parse(configNode.textContent);
    const base = config.api + "visual-experiments/";
    const error = document.getElementById("list-error");
    function show(message) { error.textContent = message; error.hidden = false; }

    const form = document.getElementById("create-experiment");
    if (form) {
      form.addEventListener("submit", async function (ev) {
        ev.preventDefault();
        const body = { project: config.project, name: form.name.value.trim(), description: form.description.value };
        try {
          const created = await send(base, "POST", body);
          window.location.href = window.location.pathname.replace(/\/$/, "") + "/" + created.id + "/";
        } catch (e) {
          document.getElementById("create-error").textContent = e.message;
        }
      });
    }

    document.querySelectorAll("#experiments [data-action]").forEach(function (button) {
      button.addEventListener("click", async function () {
        const row = button.closest("tr");
        const url = base + row.dataset.experiment + "/";
        try {
          if (button.dataset.action === "copy") {
            await send(url + "copy/", "POST", {});
          } else {
            if (!window.confirm("Delete experiment " + row.dataset.name + " with its runs and results?")) return;
            await send(url, "DELETE");
          }
          window.location.reload();
        } catch (e) {
          show(e.message);
        }
      });
    });
  });
})();
