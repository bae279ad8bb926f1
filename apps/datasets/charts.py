"""Statistics shaped for the console: formatted numbers and the geometry of small SVG bar
charts (a histogram for numbers, the top values otherwise), drawn server-side so the page
needs no chart library and works without JavaScript."""

HIST_W, HIST_H = 240, 90
TOP_W = 160


def _number(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def histogram_bars(histogram: dict | None) -> list[dict]:
    if not histogram or not histogram.get("counts"):
        return []
    counts, edges = histogram["counts"], histogram["edges"]
    peak = max(counts) or 1
    width = HIST_W / len(counts)
    bars = []
    for i, count in enumerate(counts):
        height = round(HIST_H * count / peak, 1)
        bars.append(
            {
                "x": round(i * width, 1),
                "y": round(HIST_H - height, 1),
                "w": round(max(width - 1, 1), 1),
                "h": height,
                "label": f"{_number(edges[i])} to {_number(edges[i + 1])}: {count:,}",
            }
        )
    return bars


def top_bars(top: list | None) -> list[dict]:
    if not top:
        return []
    peak = max(count for _, count in top) or 1
    return [
        {"value": str(value), "count": count, "w": round(TOP_W * count / peak, 1)}
        for value, count in top
    ]


def column_view(stat: dict) -> dict:
    """One column's statistics for the statistics tab."""
    shown = {
        key: _number(stat.get(key))
        for key in ("count", "missing", "unique", "mean", "variance", "std")
        + ("min", "q1", "median", "q3", "max")
    }
    return {
        "name": stat.get("name"),
        "type": stat.get("type"),
        "shown": shown,
        "approximate_unique": stat.get("unique_exact") is False,
        "approximate_quantiles": stat.get("quantiles_exact") is False,
        "histogram": histogram_bars(stat.get("histogram")),
        "top": top_bars(stat.get("top")),
        "hist_w": HIST_W,
        "hist_h": HIST_H,
    }
