"""What the evaluation components share: the check of a column named by a default (which
clean_params does not see), JSON-safe numbers and curve downsampling. Light at the module
top; numpy/sklearn are imported inside the functions."""

from __future__ import annotations

import math
from typing import Any

from workers.runners.visual import base

MAX_CURVE_POINTS = 200
CLASS_TYPES = ("int", "float", "bool", "string")


def require_column(
    inputs: dict, field: str, name: str, types: tuple[str, ...] = (), port: str = "table"
) -> None:
    """Column `name` (parameter `field`) must be in the input table, of one of `types`;
    a dynamic table (columns known at run time) is checked at run time."""
    schema = inputs.get(port) or {}
    columns = base.table_columns(inputs, port)
    if name not in columns:
        if schema.get("dynamic"):
            return
        known = ", ".join(columns) or "none"
        raise base.ComponentError(field, f"no column '{name}' in the input (columns: {known})")
    if types and columns[name] not in types:
        raise base.ComponentError(
            field, f"column '{name}' is {columns[name]}; it must be {' or '.join(types)}"
        )


def distinct_columns(params: dict, *fields: str) -> None:
    seen: dict[str, str] = {}
    for field in fields:
        name = params.get(field)
        if name in seen:
            raise base.ComponentError(
                field, f"'{name}' is also the {seen[name]} column; pick another column"
            )
        if name is not None:
            seen[name] = field


def number(value: Any, digits: int = 6) -> float | None:
    """A metric as a JSON number: None where it is not finite (NaN, infinities)."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def downsample(xs, ys, limit: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """A curve's points, at most `limit` of them (evenly spaced, the first and last kept)."""
    import numpy as np

    n = len(xs)
    if n > limit:
        keep = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
        xs, ys = np.asarray(xs)[keep], np.asarray(ys)[keep]
    return [[number(x), number(y)] for x, y in zip(xs, ys, strict=True)]


def plain(value: Any) -> Any:
    """A label value as JSON: numpy scalars unwrapped, NaN as None."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def rows_with(frame, columns: list[str], context: base.RunContext):
    """The rows where every one of `columns` has a value (the others are counted, logged)."""
    for name in columns:
        if name not in frame.columns:
            raise ValueError(f"no column '{name}' in the input")
    present = frame[columns].notna().all(axis=1)
    left_out = int((~present).sum())
    if left_out:
        context.log(f"{left_out} rows lack a value of {', '.join(columns)} and are left out")
        context.facts["rows_left_out"] = left_out
    return frame[present]


# -- binary classification figures in numpy (scikit-learn's definitions, without importing
# sklearn.metrics: ~0.8-1.4 s in a process that has not imported scikit-learn) --------------


def threshold_counts(truth, scores):
    """scikit-learn's confusion_matrix_at_thresholds for 0/1 `truth`: the rows sorted by
    score descending, then per distinct score (descending) the false and true positives of
    predicting positive at or above it, and the scores (float64 arrays)."""
    import numpy as np

    # the order within a run of tied scores does not matter: only each run's end is kept
    order = np.argsort(scores)[::-1]
    sorted_scores = scores[order]
    distinct = np.flatnonzero(np.diff(sorted_scores))
    idx = np.concatenate([distinct, [len(order) - 1]])
    tps = np.cumsum(truth[order], dtype="float64")[idx]
    fps = 1 + idx.astype("float64") - tps
    return fps, tps, sorted_scores[idx]


def roc_points(fps, tps):
    """(fpr, tpr) as sklearn.metrics.roc_curve gives them (drop_intermediate=True)."""
    import numpy as np

    if len(fps) > 2:
        keep = np.flatnonzero(
            np.concatenate([[True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True]])
        )
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.concatenate([[0.0], fps]), np.concatenate([[0.0], tps])
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr


def pr_points(fps, tps):
    """(precision, recall) as sklearn.metrics.precision_recall_curve gives them: recall
    decreasing, ending at (1, 0)."""
    import numpy as np

    ps = tps + fps
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(ps != 0, tps / ps, 0.0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return (
        np.concatenate([precision[::-1], [1.0]]),
        np.concatenate([recall[::-1], [0.0]]),
    )


def binary_figures(truth, scores) -> dict:
    """AUC (None with one class), accuracy, precision, recall, F1 (0 where undefined) at
    the 0.5 threshold, log loss (None unless every score is in [0, 1]) and the ROC and PR
    curves (numpy arrays, not downsampled) of 0/1 `truth` and float `scores`, the figures
    sklearn.metrics gives (roc_auc_score, accuracy_score, precision_score, recall_score,
    f1_score with zero_division=0, log_loss with labels [0, 1])."""
    import numpy as np

    truth = np.asarray(truth).astype("int64")
    scores = np.asarray(scores, dtype="float64")
    predicted = scores >= 0.5
    positive = truth == 1
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted & ~positive))
    fn = int(np.count_nonzero(~predicted & positive))
    n = len(truth)
    both = 0 < int(positive.sum()) < n
    out = {
        "accuracy": float(np.count_nonzero(predicted == positive) / n) if n else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "auc": None,
        "logloss": None,
        "roc": None,
        "pr": None,
    }
    if n and ((scores >= 0) & (scores <= 1)).all():
        eps = np.finfo("float64").eps
        p = np.clip(scores, eps, 1 - eps)
        q = np.clip(1 - scores, eps, 1 - eps)
        out["logloss"] = float(np.mean(-np.where(positive, np.log(p), np.log(q))))
    if both:
        fps, tps, _ = threshold_counts(truth, scores)
        fpr, tpr = roc_points(fps, tps)
        out["auc"] = float(np.trapezoid(tpr, fpr))
        out["roc"] = (fpr, tpr)
        out["pr"] = pr_points(fps, tps)
    return out
