"""Prediction: a trained model on a table's rows; the rows come out with the prediction
columns appended (models.predict_frame: prediction_result, and prediction_score /
prediction_detail by task). The model's preprocessing steps the rows have not been through
are repeated on them first."""

from __future__ import annotations

from workers.runners.visual import base, training
from workers.runners.visual.models import CLASSIFICATION, prediction_columns


def result_type(model: dict, table: dict) -> str:
    """The type of prediction_result for a classifier: the label column's type in the rows
    where they have it, else string."""
    for column in table.get("columns", []):
        if column["name"] == model.get("label"):
            return column["type"]
    return "string"


def output_schema(params: dict, model: dict, table: dict) -> dict:
    added = prediction_columns(model["task"], result_type(model, table))
    replaced = {c["name"] for c in added}
    kept = [c for c in table["columns"] if c["name"] not in replaced]
    if params.get("keep_columns") is not None:
        by_name = {c["name"]: c for c in kept}
        kept = [by_name[n] for n in params["keep_columns"] if n in by_name]
    out = {"kind": "table", "columns": kept + added}
    if table.get("dynamic") and params.get("keep_columns") is None:
        out["dynamic"] = True
    return out


@base.register
class Predict(training.DeferDynamic, base.Component):
    name = "predict"
    label = "Prediction"
    group = "Prediction"
    description = (
        "Runs a trained model on a table: its rows with prediction_result (and by task "
        "prediction_score, prediction_detail) appended."
    )
    inputs = (
        base.Port("model", "model", "Model"),
        base.Port("table", "table", "Table to predict"),
    )
    outputs = (base.Port("table", "table", "Predictions"),)
    params = (
        base.Param(
            "keep_columns",
            "Columns to keep",
            "columns",
            help="The input columns the output keeps before the predictions (empty: all).",
        ),
    )
    is_prediction = True

    def check(self, params, inputs):
        model, table = inputs["model"], inputs["table"]
        if model.get("kind") != "model" or model.get("task") not in base.TASKS:
            raise base.ComponentError("model", "the input 'Model' must be a trained model")
        if table.get("kind") != "table":
            raise base.ComponentError("table", "the input 'Table to predict' must be a table")
        return {"table": output_schema(params, model, table)}

    def run(self, params, inputs, context):
        from workers.runners.visual import models

        artifact, table = inputs["model"], inputs["table"]
        schema = table.schema()
        params, outputs = self.validate(params, {"model": artifact.schema(), "table": schema})
        frame = table.frame
        context.log(
            f"Predicting {len(frame)} rows with {artifact.algorithm} ({artifact.task}); "
            f"{len(models.steps_to_apply(artifact, table.steps))} preprocessing steps to repeat"
        )
        predicted = models.predict_frame(artifact, frame, applied=table.steps, lenient=True)
        if len(predicted) != len(frame):
            raise ValueError("the model's preprocessing steps changed the number of rows")
        predicted.index = frame.index
        if artifact.task in CLASSIFICATION:
            kind = result_type(artifact.schema(), schema)
            predicted["prediction_result"] = models.cast_values(
                predicted["prediction_result"], kind, "the predicted classes"
            )
        added = list(predicted.columns)
        kept = [c for c in frame.columns if c not in added]
        if params.get("keep_columns") is not None:
            kept = [c for c in params["keep_columns"] if c in kept]
        context.facts["rows"] = len(frame)
        # the kept columns are the input's: stored as a view of it plus the predictions
        return {"table": table.with_columns(kept, predicted)}
