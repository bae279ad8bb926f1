// Notebook pages: while an instance starts or stops, poll its status and update the badge,
// the reason and the "Open Jupyter" link, so the page never needs a reload.
(function () {
  "use strict";
  const SETTLED = new Set(["running", "stopped", "failed"]);

  function watch(root) {
    const url = root.dataset.statusUrl;
    const badge = root.querySelector('[data-role="status"]') ||
      document.querySelector('#notebook [data-role="status"]');
    const open = root.querySelector('[data-role="open"]');
    const reason = document.querySelector('[data-role="reason"]');
    let last = badge ? badge.className.replace(/.*nb-/, "") : "";
    async function poll() {
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const state = await response.json();
        if (badge) {
          badge.textContent = state.label;
          badge.className = "tag nb-" + state.status;
          badge.title = state.reason;
        }
        if (open) open.hidden = !state.open;
        if (reason && root.id === "notebook") {
          reason.textContent = state.reason;
          reason.hidden = !state.reason;
        }
        // A change of state changes which buttons apply: reload once it has settled.
        if (state.status !== last && SETTLED.has(state.status) && !SETTLED.has(last)) {
          window.location.reload();
          return;
        }
        last = state.status;
      } catch (error) {
        // the appliance restarts: try again on the next round
      }
      if (!SETTLED.has(last)) window.setTimeout(poll, 1000);
    }
    if (!SETTLED.has(last)) window.setTimeout(poll, 500);
  }

  document.querySelectorAll("[data-status-url]").forEach(watch);
})();
