"""Loader of the models visual modeling's training components write (model_loaders.TYPES
"bml_visual"): a model folder (model.json and the estimator: skops for scikit-learn,
XGBoost's JSON; workers.runners.visual.models) with the preprocessing steps its training
table went through, repeated on each request's rows.

One instance is the raw row as the experiment's data set has it, before any preprocessing:
- an object {column: value} with every source column but the label (the label, if sent,
  is ignored; a column the model does not know is refused);
- or a list of those values in the order of info["columns"].
Missing values are null; numbers for int/float columns, true/false for bool columns,
text for string columns (a number is taken as its text), ISO text for datetime columns.

Answers, one per instance:
- classification: {"label": <original label>, "probabilities": {class: p}}, binary also
  {"probability": p} of the positive class (the greater of the two labels);
- regression: {"value": x};
- clustering: {"cluster": k, "distance": distance to that cluster's center}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from workers.runners.model_loaders import (
    BadInput,
    ModelLoadError,
    Predictor,
    check_list,
    describe,
    jsonable,
)

NUMBER_TYPES = ("int", "float")


class VisualPredictor(Predictor):
    def __init__(self, artifact, info: dict):
        self.artifact = artifact
        self.columns = artifact.input_columns()
        self.names = [c["name"] for c in self.columns]
        super().__init__(
            {
                "n_features": len(self.names),
                "input_shape": [len(self.names)],
                "columns": self.names,
                "column_types": {c["name"]: c["type"] for c in self.columns},
                "example": {c["name"]: _example(c["type"]) for c in self.columns},
                **info,
            }
        )

    # -- instances -> the rows after the model's preprocessing ---------------------------

    def _row(self, instance: Any, i: int) -> list:
        if isinstance(instance, dict):
            missing = [n for n in self.names if n not in instance]
            unknown = [str(k) for k in instance if k not in self.names and k != self.artifact.label]
            if missing or unknown:
                raise BadInput(
                    f"instance {i}: the columns do not match the model's"
                    + (f"; missing: {', '.join(missing[:10])}" if missing else "")
                    + (f"; unknown: {', '.join(unknown[:10])}" if unknown else "")
                )
            return [instance[n] for n in self.names]
        if isinstance(instance, list | tuple):
            if len(instance) != len(self.names):
                raise BadInput(
                    f"instance {i}: expected {len(self.names)} values "
                    f"({', '.join(self.names[:10])}), got {len(instance)}"
                )
            return list(instance)
        raise BadInput(
            f"instance {i}: expected an object {{column: value}} or a list of the values of "
            f"{', '.join(self.names[:10])}"
        )

    def _frame(self, rows: list[list]):
        import pandas as pd

        data = {}
        for j, column in enumerate(self.columns):
            name, kind = column["name"], column["type"]
            values = [_value(row[j], kind, name, i) for i, row in enumerate(rows)]
            if kind == "int":
                whole = None not in values
                data[name] = pd.Series(values, dtype="int64" if whole else "float64")
            elif kind == "float":
                data[name] = pd.Series(values, dtype="float64")
            elif kind == "bool":
                data[name] = pd.Series(values, dtype="bool" if None not in values else object)
            elif kind == "datetime":
                try:
                    data[name] = pd.to_datetime(pd.Series(values, dtype=object))
                except (TypeError, ValueError) as exc:
                    raise BadInput(f"column '{name}': not a date/time ({exc})") from None
            else:
                data[name] = pd.Series(values, dtype=object)
        return pd.DataFrame(data)

    def prepare(self, instances: list) -> Any:
        from workers.runners.visual import models, pipeline

        check_list(instances)
        frame = self._frame([self._row(instance, i) for i, instance in enumerate(instances)])
        try:
            frame = pipeline.apply_steps(frame, self.artifact.steps, lenient=True)
            models.feature_matrix(
                frame, self.artifact.features, models.takes_missing(self.artifact)
            )
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return frame

    # -- the model -------------------------------------------------------------------------

    def run(self, batch: Any) -> list:
        from workers.runners.visual import models

        artifact = self.artifact
        out = models.predict_frame(artifact, batch, applied=artifact.steps)
        if artifact.task == "regression":
            return [{"value": _round(v)} for v in out["prediction_result"]]
        if artifact.task == "clustering":
            return [
                {"cluster": int(c), "distance": _round(d)}
                for c, d in zip(out["prediction_result"], out["prediction_score"], strict=True)
            ]
        answers = []
        for label, score, detail in zip(
            out["prediction_result"], out["prediction_score"], out["prediction_detail"], strict=True
        ):
            answer = {"label": jsonable(label), "probabilities": json.loads(detail)}
            if artifact.task == "binary":
                answer["probability"] = _round(score)
            answers.append(answer)
        return answers


def _round(value) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def _example(kind: str) -> Any:
    return {"int": 1, "float": 1.0, "bool": True, "datetime": "2024-01-01T00:00:00"}.get(kind, "a")


def _value(value: Any, kind: str, name: str, i: int) -> Any:
    """One cell of a request, checked against its column's type (None: missing)."""
    if value is None:
        return None
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadInput(f"instance {i}: column '{name}' takes a number ({describe(value)})")
        if not math.isfinite(value):
            raise BadInput(f"instance {i}: column '{name}' takes a finite number")
        if kind == "int" and isinstance(value, float):
            if not value.is_integer():
                raise BadInput(f"instance {i}: column '{name}' takes an integer, not {value}")
            value = int(value)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadInput(f"instance {i}: column '{name}' takes true or false")
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        from workers.runners.visual.pipeline import category_key

        return category_key(value)
    if not isinstance(value, str):
        raise BadInput(f"instance {i}: column '{name}' takes text ({describe(value)})")
    return value


def load_visual(path: Path, fields: dict) -> Predictor:
    from workers.runners.visual import models

    if not path.is_dir():
        raise ModelLoadError(
            "a visual modeling model is its folder (model.json and the estimator file)"
        )
    try:
        artifact = models.read_model(path)
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"not a visual modeling model folder: {exc}") from exc
    stored = json.loads((path / "model.json").read_text()).get("estimator") or {}
    info = {
        "framework": "xgboost" if stored.get("format") == "xgboost" else "sklearn",
        "framework_version": stored.get("version", ""),
        "device": "cpu",
        "algorithm": artifact.algorithm,
        "task": artifact.task,
        "estimator": stored.get("class"),
        "features": list(artifact.features),
        "label": artifact.label,
        "classes": [str(c) for c in artifact.classes] if artifact.classes else None,
        "steps": [s.get("op") for s in artifact.steps],
    }
    if artifact.task == "binary":
        info["positive_label"] = jsonable(artifact.classes[1])
    return VisualPredictor(artifact, info)
