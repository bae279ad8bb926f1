"""Time to draw a job's training curves in headless chromium: the job page's own script
(static/bml/jobs.js over static/bml/charts.js and the vendored ECharts) beside the
hand-drawn SVG polylines it replaced (the old drawing code, kept in charts_svg.js), on the
same data: 100,000 points per series, one series per metric (loss, acc). Goal: faster than
the SVG, and under 500 ms.

    .venv/bin/python benchmarks/charts.py [--quick | --smoke] [--points N] [--rounds N]

Both sides run on a static page (file://, no appliance, no network) whose fetch() answers
the metrics URL with the API's answer, built here from the same reported points: one object
per point for the old page (what the API answered then, and still does by default), one
list per name for ours (`?shape=columns`, what the job page asks for now). A draw is timed
from that answer (the JSON is parsed by the page's script, as on the job page) until the
frame after the one that shows the charts (two requestAnimationFrame callbacks), median of
the rounds, each in a fresh page. Needs `make frontend` (static/vendor/) and Debian's
chromium (`make browser`).
Each side must have been given every point: the polylines' points, and for ours the charts'
data-points (charts.js hands ECharts a per-pixel-column decimation of a long series, M4,
and decimates again from the full data on zoom; the CSV and data-points keep every point).

--smoke (tests/benchmarks/test_smoke.py): 2,000 points, one round; the goal is not judged.
"""

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.jobs.metric_columns import metric_columns  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS  # noqa: E402

GOAL_MS = 500
METRICS = ("loss", "acc")

# The hand-drawn SVG curves that charts.js replaced, as they were (the peer).
OLD_SVG_CURVES = Path(__file__).with_name("charts_svg.js")

# The job page's curve and log boxes, a fetch() that answers from memory, and the clock.
# Each side is answered as the API answered it: the old page asked for one object per point,
# ours asks for `?shape=columns` (apps.jobs.metric_columns); both from the same points.
HARNESS = r"""
window.BENCH = {};
(function () {
  const ANSWERS = __ANSWERS__, METRICS = __METRICS__;
  window.fetch = async function (url) {
    if (url in ANSWERS) {
      BENCH.t0 = performance.now();
      return new Response(ANSWERS[url], { headers: { "Content-Type": "application/json" } });
    }
    return new Response("[]", { headers: { "Content-Type": "application/json" } });
  };
  document.addEventListener("DOMContentLoaded", function () {
    const curves = document.getElementById("curves");
    new MutationObserver(function () {
      if (BENCH.t1 || curves.querySelectorAll("figure.chart").length < METRICS.length) return;
      BENCH.t1 = -1;
      requestAnimationFrame(function () { requestAnimationFrame(function () {
        BENCH.t1 = performance.now();
        BENCH.ms = BENCH.t1 - BENCH.t0;
      }); });
    }).observe(curves, { childList: true, subtree: true });
  });
})();
"""


def reported_points(n: int) -> list[dict]:
    """What bml.report writes for a run of n steps: time, step, loss and acc per line."""
    rng = random.Random(20)
    return [
        {
            "time": round(1_700_000_000 + i * 0.05, 3),
            "step": i,
            "loss": 2.3 * math.exp(-i / (n / 5)) + 0.05 * rng.random() + 0.01,
            "acc": 1 - math.exp(-i / (n / 8)) * 0.9 - 0.02 * rng.random(),
        }
        for i in range(n)
    ]


def api_answers(points: list[dict]) -> dict[str, str]:
    """The metrics API's two answers for one instance, as DRF renders them (compact JSON)."""
    compact = {"separators": (",", ":")}
    return {
        "points": json.dumps([{"instance": 0, "points": points}], **compact),
        "columns": json.dumps([{"instance": 0, **metric_columns(points)}], **compact),
    }


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>curves</title>
<link rel="stylesheet" href="{css}"><script>{harness}</script></head><body><main>
<div class="card" id="curves" data-metrics-url="/metrics" data-job="job-bench"></div>
<div id="logs" data-logs-url="/logs"></div>
{scripts}
</main></body></html>"""


def write_pages(folder: Path, points: int) -> tuple[dict[str, Path], dict[str, int]]:
    answers = api_answers(reported_points(points))

    def harness(url: str, shape: str) -> str:
        # The answer is a string literal in the page: read before the clock starts, as the
        # bytes of a real answer are on their way before fetch() resolves.
        return HARNESS.replace("__ANSWERS__", json.dumps({url: answers[shape]})).replace(
            "__METRICS__", json.dumps(list(METRICS))
        )

    static = ROOT / "static"
    css = (static / "bml" / "console.css").as_uri()
    ours = "\n".join(
        f'<script src="{(static / path).as_uri()}" defer></script>'
        for path in ("vendor/echarts/echarts.min.js", "bml/charts.js", "bml/jobs.js")
    )
    pages = {
        "ours": PAGE.format(
            css=css, harness=harness("/metrics?shape=columns", "columns"), scripts=ours
        ),
        "svg": PAGE.format(
            css=css,
            harness=harness("/metrics", "points"),
            scripts=f'<script src="{OLD_SVG_CURVES.as_uri()}"></script>',
        ),
    }
    paths = {}
    for name, html in pages.items():
        paths[name] = folder / f"{name}.html"
        paths[name].write_text(html)
    return paths, {"ours": len(answers["columns"]), "svg": len(answers["points"])}


def drawn_points(page, side: str) -> list[int]:
    """Points each chart was given: the wrapper's data-points, or the polyline's."""
    if side == "ours":
        script = (
            "[...document.querySelectorAll('#curves figure.chart')].map(f => +f.dataset.points)"
        )
    else:
        script = (
            "[...document.querySelectorAll('#curves figure.chart polyline')]"
            ".map(p => p.getAttribute('points').split(' ').length)"
        )
    return page.evaluate(script)


def time_draw(browser, path: Path, side: str, points: int) -> float:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(path.as_uri())
        page.wait_for_function("window.BENCH && BENCH.ms !== undefined", timeout=120_000)
        if errors:
            raise RuntimeError(f"{side}: {errors}")
        drawn = drawn_points(page, side)
        if drawn != [points] * len(METRICS):
            raise RuntimeError(f"{side} drew {drawn} points, not {points} per metric")
        return page.evaluate("BENCH.ms")
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100,000 points, 3 rounds")
    parser.add_argument("--smoke", action="store_true", help="2,000 points, 1 round: runs only")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    points, rounds = (100_000, 3) if args.quick else (args.points, args.rounds)
    if args.smoke:
        points, rounds = 2_000, 1
    if not (ROOT / "static" / "vendor" / "echarts" / "echarts.min.js").exists():
        sys.exit("static/vendor/ is missing: run `make frontend`")
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is needed: `make browser` installs it")

    from playwright.sync_api import sync_playwright

    times = {"ours": [], "svg": []}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        paths, answer_bytes = write_pages(Path(folder), points)
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(rounds):
                for side in ("ours", "svg"):  # interleaved: both see the same machine load
                    times[side].append(time_draw(browser, paths[side], side, points))
        finally:
            browser.close()

    ours, peer = statistics.median(times["ours"]), statistics.median(times["svg"])
    print(f"{points:,} points per series x {len(METRICS)} metrics, {rounds} rounds (ms):")
    for side, label in (("ours", "charts.js/ECharts"), ("svg", "hand-drawn SVG")):
        print(f"  {label:18} median {statistics.median(times[side]):8.1f}  {times[side]}")
    result = {
        "figure": f"ms to draw a job's curves, {points:,} points per series",
        "ours": round(ours, 1),
        "peer": round(peer, 1),
        "ratio": round(ours / peer, 3),
        "goal": f"< 1 and ours < {GOAL_MS} ms",
        "meets": None if args.smoke else (ours < peer and ours < GOAL_MS),
        "points": points,
        "answer_bytes": answer_bytes,
        "rounds": rounds,
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
