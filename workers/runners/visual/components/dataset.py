"""A data set (the user's or a public one) as a table: the control plane resolves it
without a process, giving check() the version's schema and staging its parquet parts as the
output."""

from __future__ import annotations

from pathlib import Path

from workers.runners.visual.base import Component, ComponentError, Param, Port, register


@register
class DataSet(Component):
    name = "dataset"
    label = "Data set"
    group = "Data"
    description = "Rows of a data set version (the newest unless a version is chosen)."
    outputs = (Port("table", "table", "Table"),)
    params = (
        Param("dataset", "Data set", "int", required=True, min=1, help="The data set's id."),
        Param("version", "Version", "int", min=1, help="Empty: the newest version."),
    )
    runs_as_job = False
    reads_dataset = True

    def check(self, params, inputs):
        schema = inputs.get("dataset")
        if not schema or schema.get("kind") != "table":
            raise ComponentError("dataset", "choose a data set")
        return {"table": schema}

    def run(self, params, inputs, context):
        from workers.runners.visual import tables

        folder = Path(context.workspace) / "inputs" / "dataset"
        return {"table": tables.read_table(folder, context.sample_rows)}
