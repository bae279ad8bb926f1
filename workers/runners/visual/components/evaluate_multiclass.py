"""Multiclass classification evaluation: accuracy, macro precision/recall/F1, the
confusion matrix (rows: true class, columns: predicted) and the per-class figures."""

from __future__ import annotations

from workers.runners.visual import base, evaluation, training


def sortable(values: list) -> list:
    """The classes sorted; values of mixed kinds (an int label, string predictions) by text."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


@base.register
class EvaluateMulticlass(training.DeferDynamic, base.Component):
    name = "evaluate_multiclass"
    imports = ("sklearn.metrics",)
    label = "Multiclass classification evaluation"
    group = "Evaluation"
    description = "Accuracy, macro precision/recall/F1, the confusion matrix and per-class figures."
    inputs = (base.Port("table", "table", "Predictions"),)
    outputs = (base.Port("report", "report", "Evaluation report"),)
    params = (
        base.Param(
            "label", "Label column", "column", required=True, column_types=evaluation.CLASS_TYPES
        ),
        base.Param(
            "prediction",
            "Predicted class column",
            "column",
            default="prediction_result",
            column_types=evaluation.CLASS_TYPES,
        ),
    )

    def check(self, params, inputs):
        evaluation.require_column(
            inputs, "prediction", params["prediction"], evaluation.CLASS_TYPES
        )
        evaluation.distinct_columns(params, "label", "prediction")
        return {"report": {"kind": "report", "task": "multiclass"}}

    def run(self, params, inputs, context):
        from sklearn import metrics

        table = inputs["table"]
        params, _ = self.validate(params, {"table": table.schema()})
        label, prediction = params["label"], params["prediction"]
        frame = evaluation.rows_with(table.frame, [label, prediction], context)
        if not len(frame):
            raise base.ComponentError("table", "no rows to evaluate")
        truth = [evaluation.plain(v) for v in frame[label]]
        predicted = [evaluation.plain(v) for v in frame[prediction]]
        if {type(v) for v in truth} != {type(v) for v in predicted}:
            truth, predicted = [str(v) for v in truth], [str(v) for v in predicted]
        labels = sortable(list(set(truth) | set(predicted)))
        confusion = metrics.confusion_matrix(truth, predicted, labels=labels)
        precision, recall, f1, support = metrics.precision_recall_fscore_support(
            truth, predicted, labels=labels, zero_division=0
        )
        present = support > 0  # macro figures over the classes the label has
        m = {
            "accuracy": evaluation.number(metrics.accuracy_score(truth, predicted)),
            "macro_precision": evaluation.number(precision[present].mean()),
            "macro_recall": evaluation.number(recall[present].mean()),
            "macro_f1": evaluation.number(f1[present].mean()),
            "samples": len(truth),
        }
        per_class = [
            {
                "label": c,
                "precision": evaluation.number(p),
                "recall": evaluation.number(r),
                "f1": evaluation.number(f),
                "support": int(s),
            }
            for c, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        ]
        context.log(
            f"Multiclass evaluation of {m['samples']} rows, {len(labels)} classes: "
            f"accuracy {m['accuracy']}, macro F1 {m['macro_f1']}"
        )
        context.facts.update(accuracy=m["accuracy"], samples=m["samples"])
        report = {
            "task": "multiclass",
            "metrics": m,
            "labels": labels,
            "confusion": confusion.astype(int).tolist(),
            "per_class": per_class,
        }
        return {"report": report}
