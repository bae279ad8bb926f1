"""Keep or drop columns; the choice is a step, so serving takes the same columns."""

from __future__ import annotations

from workers.runners.visual.base import Component, ComponentError, Param, Port, register
from workers.runners.visual.pipeline import schema_after, step


@register
class SelectColumns(Component):
    name = "select_columns"
    label = "Select columns"
    group = "Preprocessing"
    description = "Keep only the chosen columns, or drop them."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (
        Param("columns", "Columns", "columns", required=True),
        Param("mode", "Mode", "choice", default="keep", choices=("keep", "drop")),
    )

    def check(self, params, inputs):
        op = "select" if params["mode"] == "keep" else "drop"
        schema = schema_after(inputs["table"], op, params["columns"])
        if op == "select" and len(schema["columns"]) == len(params["columns"]):
            schema.pop("dynamic", None)  # every kept column is known: nothing to gain
        if not schema["columns"] and not schema.get("dynamic"):
            raise ComponentError("columns", "dropping them all leaves no column")
        return {"table": schema}

    def run(self, params, inputs, context):
        table = inputs["table"]
        op = "select" if params["mode"] == "keep" else "drop"
        one = step(op, columns=list(params["columns"]))
        out = table.apply(one)
        if not len(out.frame.columns):
            raise ValueError("columns: dropping them all leaves no column")
        return {"table": out}
