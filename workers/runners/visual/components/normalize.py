"""Normalize (min-max) to [0, 1] per column, fitted on this table and repeated by
prediction and serving (new rows may fall outside [0, 1])."""

from __future__ import annotations

from workers.runners.visual.base import Component, Param, Port, register
from workers.runners.visual.components.standardize import numeric_columns
from workers.runners.visual.pipeline import schema_after, step


@register
class Normalize(Component):
    name = "normalize"
    label = "Normalize"
    group = "Preprocessing"
    description = "Scale each column to [0, 1] by its minimum and maximum."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (Param("columns", "Columns", "columns", required=True, column_types=("int", "float")),)

    def check(self, params, inputs):
        columns = {name: "float" for name in params["columns"]}
        return {"table": schema_after(inputs["table"], "normalize", columns)}

    def run(self, params, inputs, context):
        table = inputs["table"]
        fitted = {}
        for name, numbers in numeric_columns(table.frame, params["columns"]):
            fitted[name] = {"min": float(numbers.min()), "max": float(numbers.max())}
        one = step("normalize", columns=fitted)
        return {"table": table.apply(one)}
