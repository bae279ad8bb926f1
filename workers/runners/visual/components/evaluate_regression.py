"""Regression evaluation: RMSE, MAE and R2 of a predicted number against the label."""

from __future__ import annotations

from workers.runners.visual import base, evaluation, training

NUMBERS = ("int", "float")


@base.register
class EvaluateRegression(training.DeferDynamic, base.Component):
    name = "evaluate_regression"
    imports = ("sklearn.metrics",)
    label = "Regression evaluation"
    group = "Evaluation"
    description = "RMSE, MAE and R2 of the predictions against the label."
    inputs = (base.Port("table", "table", "Predictions"),)
    outputs = (base.Port("report", "report", "Evaluation report"),)
    params = (
        base.Param("label", "Label column", "column", required=True, column_types=NUMBERS),
        base.Param(
            "prediction",
            "Prediction column",
            "column",
            default="prediction_result",
            column_types=NUMBERS,
        ),
    )

    def check(self, params, inputs):
        evaluation.require_column(inputs, "prediction", params["prediction"], NUMBERS)
        evaluation.distinct_columns(params, "label", "prediction")
        return {"report": {"kind": "report", "task": "regression"}}

    def run(self, params, inputs, context):
        import numpy as np
        from sklearn import metrics

        table = inputs["table"]
        params, _ = self.validate(params, {"table": table.schema()})
        label, prediction = params["label"], params["prediction"]
        frame = evaluation.rows_with(table.frame, [label, prediction], context)
        if not len(frame):
            raise base.ComponentError("table", "no rows to evaluate")
        truth = frame[label].astype("float64").to_numpy()
        predicted = frame[prediction].astype("float64").to_numpy()
        r2 = None
        if len(truth) > 1 and np.ptp(truth) > 0:
            r2 = evaluation.number(metrics.r2_score(truth, predicted))
        m = {
            "rmse": evaluation.number(np.sqrt(metrics.mean_squared_error(truth, predicted))),
            "mae": evaluation.number(metrics.mean_absolute_error(truth, predicted)),
            "r2": r2,
            "samples": int(len(truth)),
        }
        context.log(f"Regression evaluation of {m['samples']} rows: RMSE {m['rmse']}, R2 {m['r2']}")
        context.facts.update(rmse=m["rmse"], r2=m["r2"], samples=m["samples"])
        return {"report": {"task": "regression", "metrics": m}}
