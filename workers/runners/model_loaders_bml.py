"""Loaders of the models the platform's own machine learning jobs write (model_loaders.TYPES
"bml_logistic_regression", "bml_kmeans", "bml_gbdt"): a request sends samples as the job read
them, before standardization, and gets what the job's own prediction step would have written.
No Django import.

The model folder is the job's `<output>/<job_id>/model/`:
- logistic regression (ml_lr.py): model.json (weights, intercept, feature_names, label_names,
  format) beside the spec's text model;
- KMeans (ml_kmeans.py): model.json (centers, distance, feature_names, format);
- GBDT (ml_gbdt.py): model.json (XGBoost's own) and model_info.json (feature_names,
  label_names, format, objective).
feature_names is the standardization's feature dictionary (featureIDMap: internal id ->
original name), so a sample is matched to the model by its original feature names, exactly as
the jobs match evaluation and prediction data; features the model does not know are ignored
(and counted in the answer). Models written before the format was recorded take it from the
import field "format" (DENSE, SPARSE_ID or SPARSE_ID_WEIGHT).

One instance is any of:
- a sample line in the job's input format, "No,label,features" (No and label may be empty:
  ",,5.1,3.5,1.4,0.2"); DENSE: the feature values; SPARSE_ID: feature names (weight 1);
  SPARSE_ID_WEIGHT: "name weight" pairs. For DENSE the values alone ("5.1,3.5,1.4,0.2") are
  accepted too;
- DENSE: a list of the feature values;
- an object {original feature name: weight} (for DENSE the names are the column numbers
  "0", "1", ...; a feature left out weighs 0).
Answers, one per instance ("no" where the line had a No):
- logistic regression: {"probability": P(positive label), "label": <original label>}
  (threshold 0.5, as the job's predict/ output);
- KMeans: {"cluster": id, "distance": distance to that center};
- GBDT: binary {"probability", "label"}, multi-class {"label", "probability" (of that label),
  "probabilities": {label: p}}, regression {"value"}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from workers.runners.model_loaders import BadInput, ModelLoadError, Predictor, check_list

FORMATS = ("DENSE", "SPARSE_ID", "SPARSE_ID_WEIGHT")
MAX_DENSE_CELLS = 50_000_000  # samples x features of one batch held dense


def read_json(path: Path, name: str) -> dict:
    """The folder's JSON file `name` (or `path` itself when it is a file)."""
    file = path / name if path.is_dir() else path
    if not file.is_file():
        raise ModelLoadError(f"the model folder must hold {file.name} (the job's model/ folder)")
    try:
        value = json.loads(file.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{file.name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ModelLoadError(f"{file.name} must hold a JSON object")
    return value


def data_format(meta: dict, fields: dict) -> str:
    chosen = fields.get("format") or meta.get("format")
    if not chosen:
        raise ModelLoadError(
            "the model does not record its data format; give the field 'format' "
            f"({', '.join(FORMATS)}: the standardization job's input format)"
        )
    if chosen not in FORMATS:
        raise ModelLoadError(f"format must be one of {', '.join(FORMATS)}, not {chosen!r}")
    return chosen


def finite(text: str, i: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"instance {i}: {what} {text.strip()[:40]!r} is not a number") from None
    if not math.isfinite(value) or "_" in text:
        raise BadInput(f"instance {i}: {what} {text.strip()[:40]!r} is not a finite number")
    return value


class Samples:
    """Raw samples -> the model's feature matrix, by original feature name."""

    def __init__(self, format: str, feature_names: list[str]):
        self.format = format
        self.names = [str(n) for n in feature_names]
        self.ids = {name: index for index, name in enumerate(self.names)}
        self.d = len(self.names)

    def example(self) -> str:
        """A sample line this model takes (the service page's test console starts with it)."""
        if self.format == "DENSE":
            return ",," + ",".join(["1"] * min(self.d, 1000))
        shown = self.names[:3]
        if self.format == "SPARSE_ID":
            return ",," + ",".join(shown)
        return ",," + ",".join(f"{name} 1" for name in shown)

    def parse(self, instance: Any, i: int) -> tuple[str, dict[str, float]]:
        """One instance -> (its No, {feature name: weight})."""
        if isinstance(instance, str):
            return self._line(instance, i)
        if isinstance(instance, dict):
            weights = {}
            for name, value in instance.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise BadInput(f"instance {i}: the weight of {name!r} must be a number")
                if not math.isfinite(value):
                    raise BadInput(f"instance {i}: the weight of {name!r} is not finite")
                weights[str(name)] = float(value)
            return "", weights
        if isinstance(instance, list) and self.format == "DENSE":
            if len(instance) != self.d:
                raise BadInput(
                    f"instance {i}: expected {self.d} feature values, got {len(instance)}"
                )
            values = {}
            for j, value in enumerate(instance):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise BadInput(f"instance {i}: feature {j} must be a number")
                values[str(j)] = float(value)
            return "", values
        wanted = "a sample line, a list of the feature values or an object {feature: weight}"
        if self.format != "DENSE":
            wanted = f"a {self.format} sample line or an object {{feature: weight}}"
        raise BadInput(f"instance {i}: expected {wanted}")

    def _line(self, line: str, i: int) -> tuple[str, dict[str, float]]:
        cells = line.strip("\r\n").split(",")
        if self.format == "DENSE":
            if len(cells) == self.d + 2:
                number, cells = cells[0], cells[2:]
            elif len(cells) == self.d:
                number = ""
            else:
                raise BadInput(
                    f"instance {i}: a DENSE line of this model has {self.d + 2} fields "
                    f"(No,label and {self.d} values) or just the {self.d} values; "
                    f"got {len(cells)}"
                )
            return number, {str(j): finite(cell, i, f"value {j}") for j, cell in enumerate(cells)}
        if len(cells) < 2:
            raise BadInput(f'instance {i}: a {self.format} line is "No,label,features..."')
        number, weights = cells[0], {}
        for cell in cells[2:]:
            if not cell.strip():
                continue
            if self.format == "SPARSE_ID":
                name, weight = cell.strip(), 1.0
            else:
                parts = cell.split()
                if len(parts) != 2:
                    raise BadInput(f"instance {i}: {cell[:40]!r} is not 'feature weight'")
                name, weight = parts[0], finite(parts[1], i, f"the weight of {parts[0]!r}")
            weights[name] = weights.get(name, 0.0) + weight
        return number, weights

    def matrix(self, instances: list) -> tuple[Any, list[str], list[int]]:
        """(X with one row per instance, their Nos, unknown features per instance)."""
        check_list(instances)
        numbers, unknown, rows, cols, vals = [], [], [], [], []
        for i, instance in enumerate(instances):
            number, weights = self.parse(instance, i)
            numbers.append(number)
            missing = 0
            for name, weight in weights.items():
                index = self.ids.get(name)
                if index is None:
                    missing += 1
                elif weight:
                    rows.append(i)
                    cols.append(index)
                    vals.append(weight)
            unknown.append(missing)
        n = len(instances)
        if self.format == "DENSE" and n * self.d <= MAX_DENSE_CELLS:
            X = np.zeros((n, self.d))
            X[rows, cols] = vals
        else:
            from scipy import sparse

            X = sparse.csr_matrix((vals, (rows, cols)), shape=(n, self.d))
            X.sum_duplicates()
        return X, numbers, unknown


class BmlPredictor(Predictor):
    def __init__(self, samples: Samples, info: dict):
        super().__init__(
            {
                "framework": "bml",
                "framework_version": "",
                "device": "cpu",
                "format": samples.format,
                "n_features": samples.d,
                "input_shape": [samples.d] if samples.format == "DENSE" else None,
                "example": samples.example(),
                **info,
            }
        )
        self.samples = samples

    def prepare(self, instances: list) -> Any:
        return self.samples.matrix(instances)

    def run(self, batch: Any) -> list:
        X, numbers, unknown = batch
        results = self.answers(X)
        for result, number, missing in zip(results, numbers, unknown, strict=True):
            if number:
                result["no"] = number
            if missing:
                result["unknown_features"] = missing
        return results

    def answers(self, X) -> list[dict]:
        raise NotImplementedError


def feature_names(meta: dict) -> list[str]:
    names = meta.get("feature_names")
    if not isinstance(names, list) or not names:
        raise ModelLoadError("the model records no feature names (feature_names)")
    return names


# ---- logistic regression -------------------------------------------------------------------


class LogisticRegressionPredictor(BmlPredictor):
    def __init__(self, samples: Samples, weights, intercept: float, labels: list[str], info):
        super().__init__(samples, info)
        self.w, self.b, self.labels = weights, intercept, labels

    def answers(self, X) -> list[dict]:
        from workers.runners.ml_lr import _probabilities

        return [
            {"probability": round(float(p), 6), "label": self.labels[1 if p >= 0.5 else 0]}
            for p in _probabilities(X, self.w, self.b)
        ]


def load_logistic_regression(path: Path, fields: dict) -> Predictor:
    meta = read_json(path, "model.json")
    if meta.get("algorithm") != "logistic_regression" or "weights" not in meta:
        raise ModelLoadError(
            "model.json is not a logistic regression job's model (its model/ folder)"
        )
    names = feature_names(meta)
    weights = np.asarray(meta["weights"], dtype=np.float64)
    if weights.shape != (len(names),):
        raise ModelLoadError("model.json has a weight count unlike its feature count")
    labels = [str(label) for label in meta.get("label_names") or ["0", "1"]]
    if len(labels) != 2:
        raise ModelLoadError("a logistic regression model has two labels")
    samples = Samples(data_format(meta, fields), names)
    info = {
        "classes": labels,
        "positive_label": labels[1],
        "nonzero_weights": int(np.count_nonzero(weights)),
    }
    return LogisticRegressionPredictor(samples, weights, float(meta["intercept"]), labels, info)


# ---- KMeans --------------------------------------------------------------------------------


class KMeansPredictor(BmlPredictor):
    def __init__(self, samples: Samples, centers, info: dict):
        super().__init__(samples, info)
        self.centers = centers

    def answers(self, X) -> list[dict]:
        from workers.runners.ml_kmeans import Rows

        clusters, distances = self.centers.nearest(Rows.of(X))
        return [
            {"cluster": int(c), "distance": round(float(d), 6)}
            for c, d in zip(clusters, distances, strict=True)
        ]


def load_kmeans(path: Path, fields: dict) -> Predictor:
    from scipy import sparse

    from workers.runners.ml_kmeans import DISTANCES, Centers

    meta = read_json(path, "model.json")
    if meta.get("algorithm") != "kmeans" or not isinstance(meta.get("centers"), list):
        raise ModelLoadError("model.json is not a KMeans job's model (its model/ folder)")
    names = feature_names(meta)
    distance = meta.get("distance")
    if distance not in DISTANCES:
        raise ModelLoadError(f"model.json has an unknown distance {distance!r}")
    d, centers = len(names), meta["centers"]
    if all(isinstance(c, dict) for c in centers):  # sparse centers: {"ids", "weights"}
        rows = [i for i, c in enumerate(centers) for _ in c["ids"]]
        cols = [j for c in centers for j in c["ids"]]
        vals = [w for c in centers for w in c["weights"]]
        C = sparse.csr_matrix((vals, (rows, cols)), shape=(len(centers), d))
    else:
        C = np.asarray(centers, dtype=np.float64)
        if C.ndim != 2 or C.shape[1] != d:
            raise ModelLoadError("model.json's centers do not have one value per feature")
    samples = Samples(data_format(meta, fields), names)
    info = {"clusters": len(centers), "distance": distance, "classes": None}
    return KMeansPredictor(samples, Centers(C, distance), info)


# ---- GBDT ----------------------------------------------------------------------------------


class GbdtPredictor(BmlPredictor):
    def __init__(self, samples: Samples, booster, objective: str, labels: list[str], info):
        super().__init__(samples, info)
        self.booster, self.objective, self.labels = booster, objective, labels

    def label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else str(index)

    def answers(self, X) -> list[dict]:
        import xgboost

        scores = np.asarray(self.booster.predict(xgboost.DMatrix(X, missing=np.nan)))
        if self.objective.startswith("binary:"):
            return [
                {"probability": round(float(p), 6), "label": self.label(int(p >= 0.5))}
                for p in scores
            ]
        if self.objective == "multi:softprob":
            scores = scores.reshape(len(scores), -1)
            return [
                {
                    "label": self.label(int(row.argmax())),
                    "probability": round(float(row.max()), 6),
                    "probabilities": {self.label(j): round(float(p), 6) for j, p in enumerate(row)},
                }
                for row in scores
            ]
        return [{"value": round(float(v), 6)} for v in scores.ravel()]


def load_gbdt(path: Path, fields: dict) -> Predictor:
    import xgboost

    if not path.is_dir():
        raise ModelLoadError(
            "a GBDT model is the job's model/ folder (model.json and model_info.json)"
        )
    meta = read_json(path, "model_info.json")
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path / "model.json"))
    except xgboost.core.XGBoostError as exc:
        raise ModelLoadError(f"model.json is not an XGBoost model: {exc}") from exc
    names = feature_names(meta)
    if booster.num_features() > len(names):
        raise ModelLoadError("the booster uses more features than model_info.json names")
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    labels = [str(label) for label in meta.get("label_names") or []]
    samples = Samples(data_format(meta, fields), names)
    info = {
        "framework": "xgboost",
        "framework_version": xgboost.__version__,
        "objective": objective,
        "classes": labels or None,
        "num_boosted_rounds": booster.num_boosted_rounds(),
    }
    return GbdtPredictor(samples, booster, objective, labels, info)
