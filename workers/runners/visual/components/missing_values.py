"""Missing values: fill them (a mean, median, the most frequent value or a constant, fitted
as a fill_missing step that prediction repeats) or drop the rows that have them."""

from __future__ import annotations

import math
from datetime import datetime

from workers.runners.visual.base import (
    Component,
    ComponentError,
    Param,
    Port,
    register,
    table_columns,
)
from workers.runners.visual.pipeline import FALSE_TEXT, TRUE_TEXT, schema_after, step

STRATEGIES = ("mean", "median", "most_frequent", "constant", "drop_rows")


@register
class MissingValues(Component):
    name = "missing_values"
    label = "Missing values"
    group = "Preprocessing"
    description = "Fill missing cells, or drop the rows that have them."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (
        Param(
            "columns",
            "Columns",
            "columns",
            help="Empty: every column (the numeric ones for mean and median).",
        ),
        Param("strategy", "Strategy", "choice", default="mean", choices=STRATEGIES),
        Param("fill_value", "Fill value", "string", help="The value for 'constant'."),
    )

    def check(self, params, inputs):
        schema = inputs["table"]
        types = table_columns(inputs, "table")
        strategy = params["strategy"]
        columns = picked_columns(params, types)
        if strategy in ("mean", "median"):
            for name in columns:
                if types.get(name, "float") not in ("int", "float"):
                    raise ComponentError(
                        "columns",
                        f"column '{name}' is {types[name]}; {strategy} needs int or float",
                    )
            floats = {name: "float" for name in columns}
            return {"table": schema_after(schema, "cast", floats)}
        if strategy == "constant":
            if params.get("fill_value") is None:
                raise ComponentError("fill_value", "is required for the constant strategy")
            for name in columns:
                if name in types:
                    typed_value(params["fill_value"], types[name], name)
        return {"table": schema}

    def run(self, params, inputs, context):
        table = inputs["table"]
        frame = table.frame
        types = {c["name"]: c["type"] for c in table.schema()["columns"]}
        strategy = params["strategy"]
        chosen = bool(params.get("columns"))
        columns = picked_columns(params, types)
        if strategy == "drop_rows":
            if not columns:
                context.facts["rows_dropped"] = 0
                return {"table": table}
            kept = table.take_rows(frame[columns].notna().all(axis=1).to_numpy())
            context.facts["rows_dropped"] = len(frame) - len(kept.frame)
            return {"table": kept}
        if not chosen and strategy in ("most_frequent", "constant"):
            columns = [n for n in columns if frame[n].isna().any()]
        values = {}
        for name in columns:
            values[name] = fitted_value(frame[name], strategy, params, types[name], name)
            if values[name] is None and chosen:
                raise ValueError(f"column '{name}' has no values to compute the {strategy}")
        values = {n: v for n, v in values.items() if v is not None}
        context.facts["filled"] = {n: int(frame[n].isna().sum()) for n in values}
        fitted = step("fill_missing", columns=values)
        return {"table": table.apply(fitted)}


def picked_columns(params: dict, types: dict[str, str]) -> list[str]:
    if params.get("columns"):
        return list(params["columns"])
    if params["strategy"] in ("mean", "median"):
        return [n for n, t in types.items() if t in ("int", "float")]
    return list(types)


def fitted_value(values, strategy: str, params: dict, type_name: str, name: str):
    """The JSON value that fills `values`'s missing cells (its type is the column's type
    afterwards); None when nothing can be computed (no values at all)."""
    if strategy == "constant":
        return typed_value(params["fill_value"], type_name, name)
    present = values.dropna()
    if not len(present):
        return None
    if strategy == "mean":
        return float(present.astype("float64").mean())
    if strategy == "median":
        return float(present.astype("float64").median())
    counts = present.value_counts(sort=False)
    top = counts[counts == counts.max()].index
    value = sorted(top, key=str)[0]  # ties: the smallest as text, the same every run
    return json_value(value, type_name)


def json_value(value, type_name: str):
    if type_name == "datetime":
        return value.isoformat()
    if type_name == "int":
        return int(value)
    if type_name == "float":
        return float(value)
    if type_name == "bool":
        return bool(value)
    return str(value)


def typed_value(text: str, type_name: str, name: str):
    """The constant as the column's type, or the rule broken naming fill_value."""
    text = text.strip()
    value = None
    try:
        if type_name == "int":
            value = int(text)
        elif type_name == "float":
            value = float(text) if math.isfinite(float(text)) else None
        elif type_name == "datetime":
            value = datetime.fromisoformat(text).isoformat()
        elif type_name == "bool":
            lower = text.lower()
            value = True if lower in TRUE_TEXT else False if lower in FALSE_TEXT else None
        else:
            value = text
    except ValueError:
        value = None
    if value is None:
        raise ComponentError(
            "fill_value", f"'{text}' is not a valid {type_name} for column '{name}'"
        )
    return value
