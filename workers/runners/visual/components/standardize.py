"""Standardize (z-score): (x - mean) / std per column, fitted on this table and repeated by
prediction and serving."""

from __future__ import annotations

from workers.runners.visual.base import Component, Param, Port, register
from workers.runners.visual.pipeline import schema_after, step


@register
class Standardize(Component):
    name = "standardize"
    label = "Standardize"
    group = "Preprocessing"
    description = "Mean 0 and standard deviation 1 per column (z-score)."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (Param("columns", "Columns", "columns", required=True, column_types=("int", "float")),)

    def check(self, params, inputs):
        columns = {name: "float" for name in params["columns"]}
        return {"table": schema_after(inputs["table"], "standardize", columns)}

    def run(self, params, inputs, context):
        table = inputs["table"]
        fitted = {}
        for name, numbers in numeric_columns(table.frame, params["columns"]):
            fitted[name] = {"mean": float(numbers.mean()), "std": float(numbers.std(ddof=0))}
        one = step("standardize", columns=fitted)
        return {"table": table.apply(one)}


def numeric_columns(frame, names):
    """(name, the column's present values as floats) per column; a column that is not
    numeric or has no value at all is a ValueError naming it."""
    import numpy as np
    import pandas as pd

    for name in names:
        if name not in frame.columns:
            raise ValueError(f"columns: no column '{name}' in the input")
        values = frame[name]
        if not (pd.api.types.is_numeric_dtype(values.dtype) and values.dtype != bool):
            raise ValueError(f"column '{name}' is not numeric; it must be int or float")
        numbers = values.astype("float64")
        numbers = numbers[np.isfinite(numbers)]
        if not len(numbers):
            raise ValueError(f"column '{name}' has no values")
        yield name, numbers
