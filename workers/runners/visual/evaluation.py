"""What the evaluation components share: the check of a column named by a default (which
clean_params does not see), JSON-safe numbers and curve downsampling. Light at the module
top; numpy/sklearn are imported inside the functions."""

from __future__ import annotations

import math
from typing import Any

from workers.runners.visual import base

MAX_CURVE_POINTS = 200
CLASS_TYPES = ("int", "float", "bool", "string")


def require_column(
    inputs: dict, field: str, name: str, types: tuple[str, ...] = (), port: str = "table"
) -> None:
    """Column `name` (parameter `field`) must be in the input table, of one of `types`;
    a dynamic table (columns known at run time) is checked at run time."""
    schema = inputs.get(port) or {}
    columns = base.table_columns(inputs, port)
    if name not in columns:
        if schema.get("dynamic"):
            return
        known = ", ".join(columns) or "none"
        raise base.ComponentError(field, f"no column '{name}' in the input (columns: {known})")
    if types and columns[name] not in types:
        raise base.ComponentError(
            field, f"column '{name}' is {columns[name]}; it must be {' or '.join(types)}"
        )


def distinct_columns(params: dict, *fields: str) -> None:
    seen: dict[str, str] = {}
    for field in fields:
        name = params.get(field)
        if name in seen:
            raise base.ComponentError(
                field, f"'{name}' is also the {seen[name]} column; pick another column"
            )
        if name is not None:
            seen[name] = field


def number(value: Any, digits: int = 6) -> float | None:
    """A metric as a JSON number: None where it is not finite (NaN, infinities)."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def downsample(xs, ys, limit: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """A curve's points, at most `limit` of them (evenly spaced, the first and last kept)."""
    import numpy as np

    n = len(xs)
    if n > limit:
        keep = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
        xs, ys = np.asarray(xs)[keep], np.asarray(ys)[keep]
    return [[number(x), number(y)] for x, y in zip(xs, ys, strict=True)]


def plain(value: Any) -> Any:
    """A label value as JSON: numpy scalars unwrapped, NaN as None."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def rows_with(frame, columns: list[str], context: base.RunContext):
    """The rows where every one of `columns` has a value (the others are counted, logged)."""
    for name in columns:
        if name not in frame.columns:
            raise ValueError(f"no column '{name}' in the input")
    present = frame[columns].notna().all(axis=1)
    left_out = int((~present).sum())
    if left_out:
        context.log(f"{left_out} rows lack a value of {', '.join(columns)} and are left out")
        context.facts["rows_left_out"] = left_out
    return frame[present]
