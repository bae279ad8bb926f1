"""The job metrics API's column shape: one list per reported name instead of one object
per point. A long run reports 100,000 points and more; as columns its answer is a third
smaller and the browser parses it in about half the time (benchmarks/charts.py), and the
page packs each curve from one list. Django-free: the charts benchmark builds its answer
with this function too."""

import math


def is_metric_value(value) -> bool:
    """A number a curve can show (bool is an int in Python, not a metric)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_columns(points: list[dict]) -> dict:
    """{"count": n, "columns": {"time": [...], "step": [...], name: [...]}}: every key any
    point has, in the order first seen, each list n long with null where a point lacks the
    key or holds something other than a finite number."""
    names: dict[str, None] = {}
    for point in points:
        for name in point:
            names.setdefault(name, None)
    columns: dict[str, list] = {}
    for name in names:
        columns[name] = [
            value if is_metric_value(value := point.get(name)) else None for point in points
        ]
    return {"count": len(points), "columns": columns}
