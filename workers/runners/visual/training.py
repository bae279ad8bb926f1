"""What the training components share: their field parameters, the static check, a
validate that defers column checks on a table whose columns are known only at run time
("dynamic": true, after a one-hot), and the fit itself (label classes, features, timing,
training facts) that makes a models.ModelArtifact. Light at the module top (the web
process imports the components): numpy/sklearn are imported when a model is fitted."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

from workers.runners.visual import base

FEATURE_TYPES = ("int", "float", "bool")
CLASS_LABEL_TYPES = ("int", "float", "bool", "string")
REGRESSION_LABEL_TYPES = ("int", "float")
# the training accuracy / R2 facts are scored on at most this many rows (a seeded sample)
SCORE_ROWS = 100_000


def features_param() -> base.Param:
    return base.Param(
        "features",
        "Feature columns",
        "columns",
        required=True,
        column_types=FEATURE_TYPES,
        help="The numeric columns the model learns from (encode text columns first).",
    )


def label_param(column_types: tuple[str, ...] = CLASS_LABEL_TYPES) -> base.Param:
    return base.Param(
        "label",
        "Label column",
        "column",
        required=True,
        column_types=column_types,
        help="The column the model learns to predict.",
    )


def known_columns(specs: tuple, params: dict, inputs: dict) -> dict:
    """`inputs` with the columns the parameters name added to a dynamic table schema (its
    columns are known only at run time), so that clean_params takes them; the run checks
    them against the real table."""
    out = dict(inputs)
    for spec in specs:
        if spec.type not in ("column", "columns"):
            continue
        schema = inputs.get(spec.input)
        if not schema or schema.get("kind") != "table" or not schema.get("dynamic"):
            continue
        value = (params or {}).get(spec.name)
        names = value if isinstance(value, list) else [value]
        have = {c["name"] for c in schema["columns"]}
        extra = [
            {"name": n, "type": (spec.column_types or ("float",))[0]}
            for n in names
            if isinstance(n, str) and n and n not in have
        ]
        if extra:
            schema = {**schema, "columns": list(schema["columns"]) + extra}
            out[spec.input] = schema
    return out


class DeferDynamic:
    """Mixin for components (before base.Component): column parameters on a dynamic
    table schema are checked at run time."""

    def validate(self, params: dict, inputs: dict[str, dict]):
        return base.Component.validate(self, params, known_columns(self.params, params, inputs))


def model_schema(algorithm: str, task: str, params: dict) -> dict:
    return {
        "kind": "model",
        "algorithm": algorithm,
        "task": task,
        "features": list(params["features"]),
        "label": params.get("label"),
        "classes": None,  # known once trained
    }


def check_training(algorithm: str, task: str, params: dict) -> dict[str, dict]:
    label = params.get("label")
    if label is not None and label in params["features"]:
        raise base.ComponentError(
            "label", f"'{label}' is also a feature; the label cannot be one of the features"
        )
    return {"model": model_schema(algorithm, task, params)}


def column_kind(table, name: str) -> str:
    for column in table.schema()["columns"]:
        if column["name"] == name:
            return column["type"]
    raise base.ComponentError("label", f"no column '{name}' in the input")


def fit(
    component: base.Component,
    params: dict,
    inputs: dict,
    context: base.RunContext,
    task: str,
    make: Callable[[dict, int], Any],
    what: str,
):
    """Train `make(params, n_classes)` on the input table; returns {"model": artifact}.
    `what` names the algorithm in messages ("logistic regression")."""
    import numpy as np

    from workers.runners.visual import models

    began = time.monotonic()
    table = inputs["table"]
    params, _ = component.validate(params, {"table": table.schema()})
    frame, features, label = table.frame, params["features"], params.get("label")
    facts: dict[str, Any] = {}
    classes, label_type, y = None, None, None
    if label is not None:
        label_type = column_kind(table, label)
        missing = int(frame[label].isna().sum())
        if missing:
            frame = frame[frame[label].notna()]
            facts["rows_without_label"] = missing
            context.log(f"{missing} rows have no '{label}' value and are left out")
    if not len(frame):
        raise base.ComponentError("table", "the input table has no rows to train on")
    X = models.feature_matrix(frame, features, models.takes_missing(component.name))
    if task in models.CLASSIFICATION:
        classes = sorted(models.plain_value(v) for v in frame[label].unique())
        if task == "binary" and len(classes) != 2:
            raise base.ComponentError(
                "label",
                f"binary {what} needs exactly 2 classes in '{label}', found {len(classes)}",
            )
        if len(classes) < 2:
            raise base.ComponentError(
                "label", f"{what} needs at least 2 classes in '{label}', found {len(classes)}"
            )
        y = class_indices(frame[label], classes)
    elif task == "regression":
        y = frame[label].astype("float64").to_numpy()
    estimator = make(params, len(classes or ()))
    shown = f"{len(X)} rows x {len(features)} features"
    context.log(f"Training {what} ({task}) on {shown}" + (f", label '{label}'" if label else ""))
    started = time.monotonic()
    prepared = round(started - began, 3)  # the matrix, the labels, the estimator's import
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if y is None:
            estimator.fit(X)
        else:
            estimator.fit(X, y)
    seconds = round(time.monotonic() - started, 3)
    facts.update(
        rows=int(len(X)), features=len(features), fit_seconds=seconds, prepare_seconds=prepared
    )
    if "solver" in params:  # "auto" resolved
        facts["solver"] = getattr(estimator, "solver", params["solver"])
    if y is not None:
        # the training score on at most SCORE_ROWS rows (a seeded sample of larger tables)
        rows = score_rows(len(X), context.seed)
        if rows is not None:
            facts["training_score_rows"] = int(len(rows))
        X_score, y_score = (X, y) if rows is None else (X[rows], y[rows])
        predicted = estimator.predict(X_score)
    if classes is not None:
        facts["classes"] = len(classes)
        facts["training_accuracy"] = round(float((predicted == y_score).mean()), 6)
    elif task == "regression":
        r2 = _r2(y_score, np.asarray(predicted, dtype="float64").ravel())
        facts["training_r2"] = round(r2, 6) if np.isfinite(r2) else None
    else:
        facts["inertia"] = round(float(estimator.inertia_), 6)
        facts["iterations"] = int(estimator.n_iter_)
    notes = []
    for w in caught:
        text = str(w.message).split("\n")[0][:300]
        if issubclass(w.category, UserWarning | RuntimeWarning) and text not in notes:
            notes.append(text)
    if notes:
        facts["warnings"] = notes
        for note in notes:
            context.log(f"Warning: {note}")
    scores = {k: v for k, v in facts.items() if k.startswith("training_") or k == "inertia"}
    context.log(f"Trained in {seconds} s: {scores}")
    context.facts.update(facts)
    artifact = models.ModelArtifact(
        algorithm=component.name,
        task=task,
        features=list(features),
        label=label,
        classes=classes,
        estimator=estimator,
        steps=list(table.steps),
        source_columns=table.source_columns or table.schema()["columns"],
        params=params,
        facts=facts,
        label_type=label_type,
    )
    return {"model": artifact}


def class_indices(values, classes: list):
    """Each value's index in `classes` (the sorted plain values), as an int64 array: the
    distinct values are looked up once, not every row."""
    import numpy as np
    import pandas as pd

    from workers.runners.visual import models

    index = {c: i for i, c in enumerate(classes)}
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    lookup = np.asarray([index[models.plain_value(v)] for v in uniques], dtype="int64")
    return lookup[codes] if len(lookup) else np.zeros(0, dtype="int64")


def score_rows(rows: int, seed: int):
    """None (all rows) up to SCORE_ROWS rows, else SCORE_ROWS positions drawn for `seed`,
    ascending."""
    import numpy as np

    if rows <= SCORE_ROWS:
        return None
    picked = np.random.default_rng(seed).choice(rows, SCORE_ROWS, replace=False)
    return np.sort(picked)


def _r2(y, predicted) -> float:
    """The coefficient of determination (sklearn.metrics.r2_score's, without importing it):
    NaN for fewer than two rows; a constant label scores 1.0 when predicted exactly, else
    0.0."""
    import numpy as np

    if len(y) < 2:
        return float("nan")
    residual = float(np.sum((y - predicted) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total
