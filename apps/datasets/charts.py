"""Statistics shaped for the console: formatted numbers, each numeric column's histogram bins
(drawn in the browser by BMLCharts, static/bml/charts.js) and the widths of the top-value
bars of the other columns."""

TOP_W = 160


def _number(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def histogram_bins(histogram: dict | None) -> dict | None:
    """The bins as the page embeds them (json_script) for the chart: n + 1 edges, n counts."""
    if not histogram or not histogram.get("counts"):
        return None
    return {"edges": histogram["edges"], "counts": histogram["counts"]}


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
        "histogram": histogram_bins(stat.get("histogram")),
        "top": top_bars(stat.get("top")),
    }
