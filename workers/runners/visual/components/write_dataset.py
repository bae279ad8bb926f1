"""Write a table as a new data set (or a new version of one): the rows pass through, and
the run leaves the data set version's summary in its facts for the control plane."""

from __future__ import annotations

import re

from workers.runners.visual.base import Component, ComponentError, Param, Port, register

# apps.datasets.services.DATASET_NAME_RULE (no Django import here)
DATASET_NAME_RULE = re.compile(r"^[^\W\d_][\w-]{0,49}$")


@register
class WriteDataSet(Component):
    name = "write_dataset"
    label = "Write data set"
    group = "Data"
    description = "Save the rows as a data set of the project."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    materializes = True
    params = (
        Param(
            "name",
            "Data set name",
            "string",
            required=True,
            help="1-50 letters, digits, _ or -, starting with a letter.",
        ),
    )

    def check(self, params, inputs):
        if not DATASET_NAME_RULE.match(params["name"]):
            raise ComponentError("name", "1-50 letters, digits, _ or -, starting with a letter")
        from workers.runners.table_preview import column_name_problem

        for column in inputs["table"]["columns"]:
            problem = column_name_problem(column["name"])
            if problem:
                raise ComponentError("table", f"column name '{column['name']}' {problem}")
        return {"table": inputs["table"]}

    def run(self, params, inputs, context):
        table = inputs["table"]
        context.facts["dataset_summary"] = summary(table)
        return {"table": table}


def summary(table) -> dict:
    """What a data set version records: rows, columns and the data sets' own statistics
    (workers.runners.table_stats, as the table import computes them)."""
    import pyarrow as pa

    from workers.runners.table_preview import column_name_problem
    from workers.runners.table_stats import TableStats
    from workers.runners.table_types import ARROW_TYPES

    columns = table.schema()["columns"]
    for column in columns:
        problem = column_name_problem(column["name"])
        if problem:
            raise ValueError(f"column name '{column['name']}' {problem}")
    arrow = pa.Table.from_pandas(table.frame, preserve_index=False)
    arrow = arrow.cast(pa.schema([pa.field(c["name"], ARROW_TYPES[c["type"]]) for c in columns]))
    stats = TableStats([(c["name"], c["type"]) for c in columns])
    for batch in arrow.to_batches(max_chunksize=65536):
        stats.update(batch)
    return {"rows": arrow.num_rows, "columns": columns, "stats": stats.results()}
