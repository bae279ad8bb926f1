"""Cast columns to another type (int, float, string, bool) as a step, so serving casts the
raw request values the same way; a value that does not convert fails the run naming it."""

from __future__ import annotations

from workers.runners.visual.base import (
    Component,
    ComponentError,
    Param,
    Port,
    register,
    table_columns,
)
from workers.runners.visual.pipeline import CAST_TYPES, schema_after, step


@register
class TypeCast(Component):
    name = "type_cast"
    label = "Type cast"
    group = "Preprocessing"
    description = "Change the type of columns (text to numbers, numbers to text...)."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (
        Param("columns", "Columns", "columns", required=True),
        Param("to", "Type", "choice", required=True, choices=CAST_TYPES),
    )

    def check(self, params, inputs):
        types = table_columns(inputs, "table")
        for name in params["columns"]:
            if types.get(name) == "datetime" and params["to"] != "string":
                raise ComponentError(
                    "columns", f"column '{name}' is datetime; it can only be cast to string"
                )
        columns = {name: params["to"] for name in params["columns"]}
        return {"table": schema_after(inputs["table"], "cast", columns)}

    def run(self, params, inputs, context):
        table = inputs["table"]
        one = step("cast", columns={name: params["to"] for name in params["columns"]})
        return {"table": table.apply(one)}
