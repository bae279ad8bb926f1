"""One-hot encode columns: one 0/1 int column per category, `<col>_<category>` (characters
other than letters, digits and _ as _), categories sorted as text and fitted on this table;
a category unseen here is all zeros at prediction and serving. The new columns depend on
the data, so the output schema is "dynamic" (base.py)."""

from __future__ import annotations

from workers.runners.visual.base import Component, Param, Port, register
from workers.runners.visual.pipeline import schema_after, step


@register
class OneHot(Component):
    name = "one_hot"
    label = "One-hot encode"
    group = "Preprocessing"
    description = "One 0/1 column per category of each chosen column."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (
        Param(
            "columns",
            "Columns",
            "columns",
            required=True,
            column_types=("string", "int", "bool"),
        ),
        Param("max_categories", "Most categories", "int", default=50, min=1, max=1000),
    )

    def check(self, params, inputs):
        return {"table": schema_after(inputs["table"], "one_hot", params["columns"])}

    def run(self, params, inputs, context):
        from workers.runners.visual.pipeline import category_key

        table = inputs["table"]
        frame = table.frame
        limit = params["max_categories"]
        fitted = {}
        for name in params["columns"]:
            if name not in frame.columns:
                raise ValueError(f"columns: no column '{name}' in the input")
            if frame[name].dtype.kind == "f" and not (frame[name].dropna() % 1 == 0).all():
                raise ValueError(f"column '{name}' is float; it must be string, int or bool")
            keys = {k for k in frame[name].map(category_key) if isinstance(k, str)}
            if len(keys) > limit:
                raise ValueError(
                    f"column '{name}' has {len(keys):,} distinct values; "
                    f"max_categories is {limit:,}"
                )
            fitted[name] = sorted(keys)
        one = step("one_hot", columns=fitted)
        context.facts["categories"] = {n: len(c) for n, c in fitted.items()}
        return {"table": table.apply(one)}
