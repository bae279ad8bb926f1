"""A long line series through BMLCharts (static/bml/charts.js) in the browser: ECharts is given
a decimated series (per pixel column the first, last, lowest and highest points), yet every
drawn point is a real one, a zoomed-in window shows every real point in it, live updates
keep the zoom, and the CSV download holds every point. A file:// page: no appliance needed."""

import csv
import io
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
N = 100_000

PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<figure class="chart" id="long" style="width: 460px"></figure>
<script src="{echarts}"></script><script src="{charts}"></script>
<script>
  // step i: a slow decay with a spike every 997 steps and a gap (missing value) at 5,000.
  window.series = function (n) {{
    const flat = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {{
      flat[2 * i] = i;
      const spike = i % 997 === 0 ? 1 : 0;
      flat[2 * i + 1] = i === 5000 ? NaN : 2 * Math.exp(-i / 20000) + spike + (i % 7) / 100;
    }}
    return flat;
  }};
  BMLCharts.line(document.getElementById("long"), {{
    title: "loss", series: [{{ name: "instance 0", data: series({n}) }}], xName: "step",
    logScale: true, width: 460, filename: "long-loss",
  }});
</script></body></html>"""

# The drawn series as [[x, y], ...] (NaN as null) and the zoom window, read through the wrapper.
SHOWN = """() => {
  const option = BMLCharts.get(document.getElementById("long")).getOption();
  const data = option.series[0].data, points = [];
  for (let i = 0; i < data.length; i += 2) {
    points.push([data[i], Number.isNaN(data[i + 1]) ? null : data[i + 1]]);
  }
  const zoom = option.dataZoom[0];
  return { points, start: zoom.start, end: zoom.end, from: zoom.startValue, to: zoom.endValue };
}"""


@pytest.fixture
def chart_page(browser, tmp_path):
    path = tmp_path / "long.html"
    static = ROOT / "static"
    path.write_text(
        PAGE.format(
            echarts=(static / "vendor/echarts/echarts.min.js").as_uri(),
            charts=(static / "bml/charts.js").as_uri(),
            n=N,
        )
    )
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_selector("#long[data-points] canvas")
    yield page
    context.close()
    assert errors == []


def values_at(page, n: int) -> list:
    """Every real point of the page's series of n points, as the page computes them."""
    return page.evaluate(
        "n => { const f = series(n), out = [];"
        " for (let i = 0; i < f.length; i += 2) out.push(Number.isNaN(f[i + 1]) ? null : f[i + 1]);"
        " return out; }",
        n,
    )


def hovered(text: str) -> tuple[int, float]:
    """The step and the value an axis tooltip shows ("51234.00\\ninstance 0 1.2345")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    step = float(lines[0].replace(",", ""))
    assert step == int(step), text  # a real step, not a place between two
    return int(step), float(lines[-1].split()[-1])


def zoom(page, **window) -> dict:
    page.evaluate(
        "w => BMLCharts.get(document.getElementById('long')).dispatchAction("
        "Object.assign({type: 'dataZoom'}, w))",
        window,
    )
    return page.evaluate(SHOWN)


def test_long_series_is_drawn_decimated_and_zooming_in_shows_the_real_points(chart_page):
    page = chart_page
    truth = values_at(page, N)
    assert page.get_attribute("#long", "data-points") == str(N)  # the full count

    whole = page.evaluate(SHOWN)
    xs = [x for x, _ in whole["points"]]
    assert 1000 < len(xs) < 4 * 460  # decimated: at most 4 a pixel column
    assert xs == sorted(set(xs)) and xs[0] == 0 and xs[-1] == N - 1
    assert all(y == truth[int(x)] for x, y in whole["points"])  # only real points
    assert 5000 in xs and truth[5000] is None  # the gap is kept
    drawn = dict(whole["points"])
    assert max(y for y in drawn.values() if y is not None) == max(
        y for y in truth if y is not None
    )  # the extremes survive
    assert all(s in drawn for s in range(0, N, 997))  # every spike is drawn

    # Hovering shows a real point: its step and its value.
    box = page.locator("#long canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
    tooltip = page.locator("#long .bml-chart-tooltip")
    tooltip.wait_for(state="visible")
    header, value = hovered(tooltip.inner_text())
    assert truth[header] is not None and abs(value - truth[header]) <= 1e-4 * abs(truth[header])

    # A narrow window (the toolbox's box zoom dispatches values): every real point in it.
    narrow = zoom(page, startValue=40_000, endValue=40_300)
    inside = [(x, y) for x, y in narrow["points"] if 40_000 <= x <= 40_300]
    assert [x for x, _ in inside] == list(range(40_000, 40_301))
    assert all(y == truth[int(x)] for x, y in inside)

    # A wider window in percent (wheel, slider): decimated again, at its own resolution.
    wide = zoom(page, start=10, end=30)
    inside = [x for x, _ in wide["points"] if wide["from"] <= x <= wide["to"]]
    assert 1000 < len(inside) < 4 * 460
    assert all(y == truth[int(x)] for x, y in wide["points"])
    assert sum(1 for x in xs if wide["from"] <= x <= wide["to"]) < len(inside) / 2

    # Live update while zoomed: the window stays and still holds real points at full detail.
    zoom(page, startValue=40_000, endValue=40_300)
    page.evaluate(
        "BMLCharts.update(document.getElementById('long'),"
        " {series: [{name: 'instance 0', data: series(120000)}]})"
    )
    after = page.evaluate(SHOWN)
    assert (after["from"], after["to"]) == (40_000, 40_300)
    inside = [x for x, _ in after["points"] if 40_000 <= x <= 40_300]
    assert inside == list(range(40_000, 40_301))
    assert after["points"][-1][0] == 120_000 - 1
    assert page.get_attribute("#long", "data-points") == "120000"

    # The reset shows everything again, decimated.
    reset = zoom(page, start=0, end=100)
    assert reset["start"] == 0 and reset["end"] == 100
    assert len(reset["points"]) < 4 * 460 + 4


def test_csv_download_holds_every_point(chart_page):
    page = chart_page
    truth = values_at(page, N)
    with page.expect_download() as download:
        page.evaluate(
            "BMLCharts.get(document.getElementById('long')).getOption()"
            ".toolbox[0].feature.myCsv.onclick()"
        )
    assert download.value.suggested_filename == "long-loss.csv"
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["series", "step", "value"]
    assert len(rows) == N + 1
    assert [int(r[1]) for r in rows[1:]] == list(range(N))
    assert rows[5001][2] == ""  # the missing value
    assert all(float(r[2]) == truth[i] for i, r in enumerate(rows[1:]) if truth[i] is not None)
