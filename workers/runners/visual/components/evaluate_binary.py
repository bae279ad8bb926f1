"""Binary classification evaluation: AUC, accuracy, precision, recall, F1 and log loss of
a score column (the positive class's probability) against the label, with the ROC and
precision-recall curves (evaluation.binary_figures: scikit-learn's figures, in numpy)."""

from __future__ import annotations

from workers.runners.visual import base, evaluation


def positive_class(values: list, chosen: str | None):
    """The positive class: `chosen` (a label value as text), else the greater of the two
    values sorted (the rule models.py trains by: classes sorted, positive = classes[1])."""
    ordered = sorted(values)
    if chosen:
        for value in ordered:
            if str(value) == chosen or evaluation_text(value) == chosen:
                return value
        shown = ", ".join(str(v) for v in ordered)
        raise base.ComponentError("positive", f"'{chosen}' is not a label value ({shown})")
    return ordered[-1]


def evaluation_text(value) -> str:
    from workers.runners.visual.pipeline import category_key

    return category_key(value) or ""


@base.register
class EvaluateBinary(base.Component):
    name = "evaluate_binary"
    label = "Binary classification evaluation"
    group = "Evaluation"
    description = "AUC, accuracy, precision, recall, F1, log loss, and the ROC and PR curves."
    inputs = (base.Port("table", "table", "Predictions"),)
    outputs = (base.Port("report", "report", "Evaluation report"),)
    params = (
        base.Param(
            "label",
            "Label column",
            "column",
            required=True,
            column_types=evaluation.CLASS_TYPES,
        ),
        base.Param(
            "score",
            "Score column",
            "column",
            default="prediction_score",
            column_types=("int", "float"),
            help="The probability of the positive class (0.5 is the threshold).",
        ),
        base.Param(
            "positive",
            "Positive class",
            "string",
            help="The label value counted as positive; empty: the greater of the two.",
        ),
    )

    def validate(self, params, inputs):
        # the default score column may come from a one-hot upstream: checked at run time
        from workers.runners.visual.training import known_columns

        return super().validate(params, known_columns(self.params, params, inputs))

    def check(self, params, inputs):
        evaluation.require_column(inputs, "score", params["score"], ("int", "float"))
        evaluation.distinct_columns(params, "label", "score")
        return {"report": {"kind": "report", "task": "binary"}}

    def run(self, params, inputs, context):
        import numpy as np
        import pandas as pd

        table = inputs["table"]
        params, _ = self.validate(params, {"table": table.schema()})
        label, score = params["label"], params["score"]
        frame = evaluation.rows_with(table.frame, [label, score], context)
        values = [evaluation.plain(v) for v in frame[label].unique()]
        if len(values) > 2:
            raise base.ComponentError(
                "label",
                f"binary evaluation needs at most 2 classes in '{label}', found {len(values)} "
                "(use the multiclass evaluation)",
            )
        if not len(frame):
            raise base.ComponentError("table", "no rows to evaluate")
        positive = positive_class(values, params.get("positive") or None)
        # each distinct label value compared once, then spread over the rows
        codes, uniques = pd.factorize(frame[label], use_na_sentinel=False)
        is_positive = np.asarray([evaluation.plain(v) == positive for v in uniques], dtype=int)
        truth = is_positive[codes]
        scores = frame[score].astype("float64").to_numpy()
        figures = evaluation.binary_figures(truth, scores)
        m = {
            "auc": evaluation.number(figures["auc"]),
            "accuracy": evaluation.number(figures["accuracy"]),
            "precision": evaluation.number(figures["precision"]),
            "recall": evaluation.number(figures["recall"]),
            "f1": evaluation.number(figures["f1"]),
            "logloss": evaluation.number(figures["logloss"]),
            "samples": int(len(frame)),
        }
        roc, pr = [], []
        if figures["roc"] is not None:
            roc = evaluation.downsample(*figures["roc"])
            precision, recall = figures["pr"]
            pr = evaluation.downsample(recall[::-1], precision[::-1])
        else:
            context.log("Only one class in the label: no AUC or curves")
        context.log(f"Binary evaluation of {m['samples']} rows: AUC {m['auc']}, F1 {m['f1']}")
        context.facts.update(auc=m["auc"], accuracy=m["accuracy"], samples=m["samples"])
        report = {
            "task": "binary",
            "positive": positive,
            "metrics": m,
            "roc": roc,
            "pr": pr,
        }
        return {"report": report}
