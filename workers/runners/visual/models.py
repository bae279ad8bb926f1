"""A trained component's model: the fitted estimator with what prediction needs around it
(the feature columns in order, the label and its classes, the preprocessing steps the
training table went through and the source columns before them). No Django import, and
nothing heavy at the module top (the web process imports the components, which import this).

A model folder holds model.json and the estimator, never a pickle:
- scikit-learn's linear models (LogisticRegression, LinearRegression, Ridge): their fitted
  coefficients as coefficients.json {"class", "coef", "intercept", "classes"?}, read back
  as a LinearEstimator that predicts with numpy alone (neither scikit-learn nor skops is
  imported to write or read it: seconds of imports per process);
- other scikit-learn estimators: estimator.skops (skops.io; loaded trusting only the types
  skops.io.get_untrusted_types lists, and only when every one of them is a plain
  scikit-learn/numpy class);
- XGBoost: estimator.json (XGBoost's own JSON model format).

predict_frame(artifact, frame) gives the prediction columns of a frame of rows:
- binary/multiclass: prediction_result (the original label value), prediction_score
  (binary: the probability of the positive class, classes[1] with the classes sorted;
  multiclass: the top probability), prediction_detail (JSON text {class: probability});
- regression: prediction_result (float);
- clustering: prediction_result (the cluster, int), prediction_score (the distance to
  its center).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "bml.visual.model"
VERSION = 1
CLASSIFICATION = ("binary", "multiclass")
SKOPS_FILE = "estimator.skops"
XGBOOST_FILE = "estimator.json"
LINEAR_FILE = "coefficients.json"
LINEAR_CLASSES = ("LogisticRegression", "LinearRegression", "Ridge")


@dataclass
class ModelArtifact:
    algorithm: str
    task: str  # base.TASKS
    features: list[str]
    label: str | None
    classes: list | None  # classifiers: the label's values, sorted (JSON values)
    estimator: Any
    steps: list[dict] = field(default_factory=list)
    source_columns: list[dict] | None = None
    params: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # training facts: rows, seconds, scores
    label_type: str | None = None  # the label column's type at training (COLUMN_TYPES)

    def schema(self) -> dict:
        return {
            "kind": "model",
            "algorithm": self.algorithm,
            "task": self.task,
            "features": list(self.features),
            "label": self.label,
            "classes": None if self.classes is None else list(self.classes),
        }

    def input_columns(self) -> list[dict]:
        """The raw columns a row must have for prediction: the source columns before the
        first preprocessing step, less the label."""
        columns = self.source_columns or [{"name": f, "type": "float"} for f in self.features]
        return [c for c in columns if c["name"] != self.label]


def plain_value(value: Any) -> Any:
    """A label value as a plain JSON value (numpy scalars unwrapped)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    return value


# ---- files -----------------------------------------------------------------------------------


def _is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == "xgboost"


def write_model(artifact: ModelArtifact, folder: Path | str) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    estimator = artifact.estimator
    if _is_xgboost(estimator):
        import xgboost

        estimator.save_model(str(folder / XGBOOST_FILE))
        stored = {
            "file": XGBOOST_FILE,
            "format": "xgboost",
            "class": type(estimator).__name__,
            "version": xgboost.__version__,
        }
    elif (linear := _linear_payload(estimator)) is not None:
        (folder / LINEAR_FILE).write_text(json.dumps(linear, allow_nan=False))
        stored = {
            "file": LINEAR_FILE,
            "format": "linear",
            "class": linear["class"],
            "version": linear["version"],
        }
    else:
        import sklearn

        skops_io = _skops()
        skops_io.dump(estimator, folder / SKOPS_FILE)
        stored = {
            "file": SKOPS_FILE,
            "format": "skops",
            "class": type(estimator).__name__,
            "version": sklearn.__version__,
        }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "algorithm": artifact.algorithm,
        "task": artifact.task,
        "features": list(artifact.features),
        "label": artifact.label,
        "label_type": artifact.label_type,
        "classes": artifact.classes,
        "steps": artifact.steps,
        "source_columns": artifact.source_columns,
        "params": artifact.params,
        "facts": artifact.facts,
        "estimator": stored,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=1, allow_nan=False))


def _skops():
    """skops.io, imported without torch and pytest (skops imports every scikit-learn module,
    one of which imports torch when it can: seconds for nothing)."""
    from workers.runners.model_loaders_ml import imports_without

    with imports_without("torch", "pytest"):
        import skops.io

    return skops.io


def read_model(folder: Path | str) -> ModelArtifact:
    """The model of a folder write_model wrote. Raises ValueError when the folder is not
    one, or when its skops file refers to anything but plain scikit-learn/numpy types."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"no model.json in {folder}: not a visual modeling model") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"model.json is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("model.json is not a visual modeling model's")
    stored = meta.get("estimator") or {}
    path = folder / str(stored.get("file", ""))
    if stored.get("format") == "xgboost" and stored.get("file") == XGBOOST_FILE:
        import xgboost

        classes = {"XGBClassifier": xgboost.XGBClassifier, "XGBRegressor": xgboost.XGBRegressor}
        if stored.get("class") not in classes:
            raise ValueError(f"unknown XGBoost estimator {stored.get('class')!r}")
        estimator = classes[stored["class"]]()
        estimator.load_model(str(path))
        estimator.set_params(n_jobs=os.cpu_count())
    elif stored.get("format") == "linear" and stored.get("file") == LINEAR_FILE:
        try:
            estimator = LinearEstimator.from_payload(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{LINEAR_FILE} is not a linear model's coefficients: {exc}") from None
    elif stored.get("format") == "skops" and stored.get("file") == SKOPS_FILE:
        from workers.runners.model_loaders_ml import plain_type

        skops_io = _skops()
        untrusted = skops_io.get_untrusted_types(file=path)
        refused = [name for name in untrusted if not plain_type(name)]
        if refused:
            raise ValueError(
                "the model's estimator refers to types that are not plain scikit-learn/numpy "
                f"classes, so it is not loaded: {', '.join(refused)}"
            )
        estimator = skops_io.load(path, trusted=untrusted)
    else:
        raise ValueError("model.json names no estimator file this appliance reads")
    return ModelArtifact(
        algorithm=meta["algorithm"],
        task=meta["task"],
        features=list(meta["features"]),
        label=meta.get("label"),
        classes=meta.get("classes"),
        estimator=estimator,
        steps=meta.get("steps") or [],
        source_columns=meta.get("source_columns"),
        params=meta.get("params") or {},
        facts=meta.get("facts") or {},
        label_type=meta.get("label_type"),
    )


def _linear_payload(estimator: Any) -> dict | None:
    """A fitted scikit-learn linear model's coefficients as JSON values, or None for any
    other estimator (or coefficients that are not all finite: those go to skops)."""
    import sys

    import numpy as np

    if isinstance(estimator, LinearEstimator):  # a model read back, written again
        name = estimator.name
    elif type(estimator).__module__.startswith("sklearn."):
        name = type(estimator).__name__
    else:
        return None
    if name not in LINEAR_CLASSES:
        return None
    coef = np.asarray(estimator.coef_, dtype="float64")
    intercept = np.asarray(estimator.intercept_, dtype="float64")
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        return None
    payload = {
        "class": name,
        "version": getattr(estimator, "version", None)
        or getattr(sys.modules.get("sklearn"), "__version__", ""),
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
    }
    if name == "LogisticRegression":
        payload["classes"] = [plain_value(c) for c in estimator.classes_]
    return payload


class LinearEstimator:
    """A scikit-learn linear model's predictions from its stored coefficients, in numpy:
    decision = X @ coef.T + intercept; LogisticRegression's predict_proba as scikit-learn
    computes it (two classes: the logistic function of the decision, [1 - p, p]; more:
    the softmax of the decisions), predict as its argmax (a class); the regressors'
    predict is the decision."""

    def __init__(self, name: str, coef, intercept, classes=None):
        import numpy as np

        self.name = name
        self.coef_ = np.asarray(coef, dtype="float64")
        self.intercept_ = np.asarray(intercept, dtype="float64")
        self.classes_ = None if classes is None else np.asarray(classes)
        self.n_features_in_ = int(self.coef_.shape[-1]) if self.coef_.size else 0
        self.version = ""

    @classmethod
    def from_payload(cls, payload: dict) -> LinearEstimator:
        if payload["class"] not in LINEAR_CLASSES:
            raise TypeError(f"unknown linear model {payload['class']!r}")
        classes = payload.get("classes") if payload["class"] == "LogisticRegression" else None
        estimator = cls(payload["class"], payload["coef"], payload["intercept"], classes)
        estimator.version = str(payload.get("version") or "")  # scikit-learn's, at training
        return estimator

    def __repr__(self) -> str:
        return f"LinearEstimator({self.name}, {self.n_features_in_} features)"

    def decision_function(self, X):
        import numpy as np

        X = np.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[-1]} features; the model takes {self.n_features_in_}")
        coef_t = self.coef_.T if self.coef_.ndim == 2 else self.coef_
        scores = X @ coef_t + self.intercept_
        return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        import numpy as np

        if self.classes_ is None:
            raise AttributeError(f"{self.name} has no predict_proba")
        scores = self.decision_function(X)
        if scores.ndim == 1:
            with np.errstate(over="ignore"):
                p = 1.0 / (1.0 + np.exp(-scores))
            return np.stack([1 - p, p], axis=1)
        scores = scores - scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def predict(self, X):
        scores = self.decision_function(X)
        if self.classes_ is None:
            return scores
        top = (scores > 0).astype("int64") if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[top]


# ---- prediction ------------------------------------------------------------------------------


def feature_matrix(frame, features: list[str], allow_missing: bool = False):
    """The features of `frame` as a float matrix. ValueError naming the columns that are
    missing, not numeric, or (unless the estimator takes them) hold missing values."""
    import numpy as np
    import pandas as pd

    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise ValueError(f"the rows lack the model's feature columns: {', '.join(absent)}")
    wrong = [
        f
        for f in features
        if not (pd.api.types.is_numeric_dtype(frame[f]) or pd.api.types.is_bool_dtype(frame[f]))
    ]
    if wrong:
        raise ValueError(
            f"feature columns must be numbers (int, float or bool): {', '.join(wrong)} "
            "are not (encode them first, e.g. one-hot)"
        )
    # row-major: pandas hands a float block over column-major, and scikit-learn's solvers
    # run 1.4-3x slower on that (lbfgs at 800k x 18: 1.5 s against 0.46 s). Filled column
    # by column into one matrix: a frame's select, cast and to_numpy each made a copy
    # first (345 MB of fresh memory at 800k x 18 instead of 115).
    X = np.empty((len(frame), len(features)), dtype="float64")
    for j, name in enumerate(features):
        X[:, j] = frame[name].to_numpy(dtype="float64", na_value=np.nan)
    if not allow_missing:
        # a column's sum is finite unless it holds a NaN or an infinity: only those
        # columns are searched for a NaN (no n x p mask)
        with np.errstate(invalid="ignore", over="ignore"):
            suspects = np.flatnonzero(~np.isfinite(X.sum(axis=0)))
        holes = [features[j] for j in suspects if np.isnan(X[:, j]).any()]
        if holes:
            raise ValueError(
                f"feature columns hold missing values: {', '.join(holes)} "
                "(fill or drop them first, or use GBDT, which takes them)"
            )
    return X


def takes_missing(artifact_or_algorithm: Any) -> bool:
    algorithm = getattr(artifact_or_algorithm, "algorithm", artifact_or_algorithm)
    return algorithm in ("gbdt", "random_forest")


def steps_to_apply(artifact: ModelArtifact, applied: list | tuple | set = ()) -> list[dict]:
    done = {s.get("id") if isinstance(s, dict) else s for s in applied}
    return [s for s in artifact.steps if s.get("id") not in done]


def predict_frame(artifact: ModelArtifact, frame, applied=(), lenient: bool = True):
    """The prediction columns for the rows of `frame` (same index). `applied`: the steps
    (or their ids) the rows already went through, not repeated; the model's other steps
    are, leniently by default (a per-column step of a column absent, the label, is
    skipped). ValueError naming the feature columns the rows lack."""
    import numpy as np
    import pandas as pd

    steps = steps_to_apply(artifact, applied)
    if steps:
        from workers.runners.visual import pipeline

        frame = pipeline.apply_steps(frame, steps, lenient=lenient)
    X = feature_matrix(frame, artifact.features, takes_missing(artifact))
    estimator = artifact.estimator
    out = pd.DataFrame(index=frame.index)
    if artifact.task in CLASSIFICATION:
        classes = list(artifact.classes or [])
        proba = np.asarray(estimator.predict_proba(X), dtype="float64")
        if proba.ndim != 2 or proba.shape[1] != len(classes):
            raise RuntimeError(
                f"the estimator gives {proba.shape[-1]} probabilities for {len(classes)} classes"
            )
        top = proba.argmax(axis=1)
        labels = np.empty(len(classes), dtype=object)
        labels[:] = classes
        # the label values' own dtype where they share one (int64 for int classes)
        out["prediction_result"] = pd.Series(labels[top], index=frame.index).infer_objects()
        score = proba[:, 1] if artifact.task == "binary" else proba.max(axis=1)
        out["prediction_score"] = score.astype("float64")
        out["prediction_detail"] = detail_texts(proba, [str(c) for c in classes])
    elif artifact.task == "regression":
        out["prediction_result"] = np.asarray(estimator.predict(X), dtype="float64").ravel()
    elif artifact.task == "clustering":
        distances = np.asarray(estimator.transform(X), dtype="float64")
        clusters = distances.argmin(axis=1)
        out["prediction_result"] = clusters.astype("int64")
        out["prediction_score"] = distances[np.arange(len(X)), clusters]
    else:
        raise ValueError(f"unknown task {artifact.task!r}")
    return out


def detail_texts(proba, names: list[str]) -> list[str]:
    """prediction_detail per row: JSON text {class: probability rounded to 6 decimals}, the
    text json.dumps gives, made by one format string over the rounded matrix instead of a
    dict and json.dumps per row."""
    import numpy as np

    rounded = np.round(proba, 6)
    if not np.isfinite(rounded).all():  # NaN/inf as json.dumps writes them
        return [
            json.dumps({n: round(float(p), 6) for n, p in zip(names, row, strict=True)})
            for row in proba
        ]
    keys = [json.dumps(n).replace("%", "%%") for n in names]
    template = "{" + ", ".join(f"{key}: %r" for key in keys) + "}"
    # one list per class column, zipped (a list per row would cost the garbage collector)
    columns = [rounded[:, j].tolist() for j in range(rounded.shape[1])]
    return [template % values for values in zip(*columns, strict=True)]


def prediction_columns(task: str, result_type: str = "string") -> list[dict]:
    """The columns predict_frame adds, with their types (classification: `result_type`, the
    label column's)."""
    if task in CLASSIFICATION:
        return [
            {"name": "prediction_result", "type": result_type},
            {"name": "prediction_score", "type": "float"},
            {"name": "prediction_detail", "type": "string"},
        ]
    if task == "regression":
        return [{"name": "prediction_result", "type": "float"}]
    return [
        {"name": "prediction_result", "type": "int"},
        {"name": "prediction_score", "type": "float"},
    ]


def cast_values(values, column_type: str, what: str = "the predictions"):
    """A Series of label values as a column of `column_type` (COLUMN_TYPES)."""
    import pandas as pd

    try:
        if column_type == "int":
            return values.astype("int64")
        if column_type == "float":
            return values.astype("float64")
        if column_type == "bool":
            return values.map(lambda v: str(v).lower() in ("true", "1", "1.0")).astype("bool")
        if column_type == "datetime":
            return pd.to_datetime(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} do not fit a column of type {column_type}: {exc}") from None
    return values.map(str).astype(object)
