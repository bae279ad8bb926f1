"""Machine learning and general-purpose loaders: sklearn, xgboost, pmml and custom. See
model_loaders.py for the contract; each function imports its framework when called.

Classifiers answer {"label": <label>, "probabilities": {"<class>": p, ...}} per instance
(probabilities where the model gives them), regressors the predicted value. Rows of numbers
in; where the model knows its feature names an instance may also be {feature name: value}.

A loader runs in a process of its own (a replica, the import check) and imports only what its
model needs: frameworks import some packages only in case they are installed, and those are
hidden while the framework is imported (imports_without, also used by the keras loader):
scikit-learn imports pandas (and with it pyarrow) if it can, skops imports every
scikit-learn module, one of which imports torch, xgboost imports scikit-learn for its
estimator classes. A model that does need pandas (a scikit-learn model fitted on a
DataFrame, PMML) gets it (PMML's pandas without pyarrow).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from workers.runners.model_loaders import (
    BadInput,
    ModelLoadError,
    Predictor,
    check_list,
    error_text,
    find_file,
    jsonable,
    label_outputs,
    numeric_batch,
    row_from_names,
    warning_messages,
)

PICKLE_WARNING = "pickle/joblib files run code when loaded; prefer skops"


class _Without:
    """A finder of sys.meta_path that finds nothing of the hidden packages."""

    def __init__(self, finder: Any, hidden: frozenset[str]):
        self.finder, self.hidden = finder, hidden

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name.partition(".")[0] in self.hidden:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.finder, name)


@contextmanager
def imports_without(*packages: str) -> Iterator[None]:
    """While the block runs, the packages not imported yet look not installed: importing them
    raises ModuleNotFoundError, importlib.util.find_spec() gives None. For a framework's
    imports of optional packages (`try: import pandas except ImportError`); only the
    framework's own import goes in the block, not the model's loading. A package that was
    imported before stays as it is. The module that tried keeps going without it for the
    life of the process: what a process of one model does not need."""
    hidden = frozenset(p for p in packages if p not in sys.modules)
    if not hidden:
        yield
        return
    sys.meta_path[:] = [_Without(finder, hidden) for finder in sys.meta_path]
    try:
        yield
    finally:
        sys.meta_path[:] = [f.finder if isinstance(f, _Without) else f for f in sys.meta_path]


# ---- sklearn -----------------------------------------------------------------------------


class EstimatorPredictor(Predictor):
    """A fitted estimator with the scikit-learn API (predict, maybe predict_proba)."""

    def __init__(self, model, info: dict, names: list[str] | None):
        classes = getattr(model, "classes_", None)
        super().__init__({**info, "classes": None if classes is None else jsonable(classes)})
        self.model, self.names = model, names
        if names:
            self.info.setdefault("feature_names", names)
            self.info["n_features"] = len(names)
        if self.info["n_features"]:
            self.info["input_shape"] = [self.info["n_features"]]
        self.pandas = None
        if names and hasattr(model, "feature_names_in_"):  # fitted on a DataFrame: fed one
            import pandas

            self.pandas = pandas

    def prepare(self, instances: list) -> Any:
        x = numeric_batch(instances, [self.info["n_features"] or -1], np.float64, self.names)
        if self.pandas is not None:
            return self.pandas.DataFrame(x, columns=self.names)
        return x

    def run(self, batch: Any) -> list:
        labels = self.model.predict(batch)
        if self.info["classes"] is None:
            return jsonable(np.asarray(labels))
        probabilities = None
        if hasattr(self.model, "predict_proba"):
            probabilities = np.asarray(self.model.predict_proba(batch))
        return label_outputs(labels, probabilities, self.info["classes"])


def load_sklearn(path: Path, fields: dict) -> Predictor:
    file = find_file(path, (".skops", ".joblib", ".pkl", ".pickle"), "scikit-learn")
    with imports_without("pandas", "pyarrow"):
        import sklearn

    info = {
        "framework": "sklearn",
        "framework_version": sklearn.__version__,
        "device": "cpu",
        "format": "skops" if file.suffix == ".skops" else "pickle",
        "warnings": [],
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if file.suffix == ".skops":
            # skops lists the trusted types by importing every scikit-learn package, tests
            # and the torch glue of its array API included
            with imports_without("torch", "pytest", "pandas", "pyarrow"):
                import skops
                import skops.io

            info["skops_version"] = skops.__version__
            untrusted = skops.io.get_untrusted_types(file=file)
            info["untrusted_types"] = untrusted
            refused = [name for name in untrusted if not plain_type(name)]
            if refused:
                raise ModelLoadError(
                    "the skops file refers to types that are not plain scikit-learn/numpy "
                    f"classes, so it is not loaded: {', '.join(refused)}"
                )
            model = skops.io.load(file, trusted=untrusted)
        else:
            import joblib

            info["warnings"].append(PICKLE_WARNING)
            try:
                model = joblib.load(file)
            except Exception as exc:
                raise ModelLoadError(
                    f"{file.name} is not a readable joblib/pickle file ({error_text(exc)})"
                ) from exc
    # e.g. scikit-learn's InconsistentVersionWarning (not the warnings of the imports)
    ours = [w for w in caught if any(m in w.filename for m in ("sklearn", "skops", "joblib"))]
    info["warnings"] += warning_messages(ours)
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"{file.name} holds a {type(model).__name__}, which has no predict()")
    info["estimator"] = type(model).__name__
    info["n_features"] = getattr(model, "n_features_in_", None)
    names = getattr(model, "feature_names_in_", None)
    return EstimatorPredictor(model, info, None if names is None else [str(n) for n in names])


def plain_type(name: str) -> bool:
    """A class (or numpy ufunc) of scikit-learn or numpy, outside their test helpers."""
    parts = name.split(".")
    if parts[0] not in ("sklearn", "numpy") or any("test" in p for p in parts):
        return False
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return isinstance(obj, type | np.ufunc)
    return False


# ---- xgboost -----------------------------------------------------------------------------


class XGBoostPredictor(Predictor):
    def __init__(self, booster, objective: str, num_class: int, info: dict):
        super().__init__(info)
        self.booster, self.objective, self.num_class = booster, objective, num_class

    def prepare(self, instances: list) -> Any:
        import xgboost

        names = self.info.get("feature_names")
        x = numeric_batch(instances, [self.info["n_features"]], np.float32, names)
        return xgboost.DMatrix(x, feature_names=names)

    def run(self, batch: Any) -> list:
        out = np.asarray(self.booster.predict(batch))
        if self.objective in ("binary:logistic", "binary:logitraw"):
            p = out if self.objective == "binary:logistic" else 1.0 / (1.0 + np.exp(-out))
            return [{"label": int(v >= 0.5), "probability": round(float(v), 6)} for v in p]
        if self.objective == "binary:hinge" or self.objective == "multi:softmax":
            return [{"label": int(v)} for v in out]
        if self.objective == "multi:softprob":
            out = out.reshape(len(out), -1)
            return [
                {"label": int(row.argmax()), "probabilities": [round(float(p), 6) for p in row]}
                for row in out
            ]
        return jsonable(out)


def load_xgboost(path: Path, fields: dict) -> Predictor:
    file = find_file(path, (".json", ".ubj"), "XGBoost")
    with imports_without("sklearn", "pandas", "pyarrow"):  # a Booster needs none of them
        import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(file))
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    num_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
    classes = None
    if objective.startswith("binary:"):
        classes = [0, 1]
    elif objective.startswith("multi:"):
        classes = list(range(num_class))
    info = {
        "framework": "xgboost",
        "framework_version": xgboost.__version__,
        "device": "cpu",
        "format": file.suffix.lstrip("."),
        "objective": objective,
        "n_features": booster.num_features(),
        "input_shape": [booster.num_features()],
        "feature_names": booster.feature_names,
        "num_boosted_rounds": booster.num_boosted_rounds(),
        "classes": classes,
    }
    return XGBoostPredictor(booster, objective, num_class, info)


# ---- pmml --------------------------------------------------------------------------------


class PMMLPredictor(EstimatorPredictor):
    """Rows or objects; numeric fields take numbers, categorical fields one of their values.
    Tree models take a category as its index, the others (one-hot encoding) as its value."""

    def __init__(self, model, info: dict, names: list[str]):
        from sklearn_pmml_model.base import OneHotEncodingMixin

        super().__init__(model, info, names)
        types = [model.field_mapping[n][1] for n in names]
        self.numeric = [t in (int, float) for t in types]
        self.categories = [getattr(t, "categories", None) for t in types]
        self.one_hot = isinstance(model, OneHotEncodingMixin)
        self.info["categories"] = {
            n: c for n, c in zip(names, self.categories, strict=True) if c is not None
        }

    def prepare(self, instances: list) -> Any:
        check_list(instances)
        rows = []
        for i, instance in enumerate(instances):
            row = (
                row_from_names(instance, self.names, i) if isinstance(instance, dict) else instance
            )
            if not isinstance(row, list):
                raise BadInput(f"instance {i}: expected a row of values or an object")
            if len(row) != len(self.names):
                raise BadInput(
                    f"each instance must have {len(self.names)} features, got {len(row)}"
                )
            rows.append([self.value(i, j, value) for j, value in enumerate(row)])
        numeric = all(self.numeric) or not self.one_hot
        return np.array(rows, dtype=np.float64 if numeric else object)

    def value(self, i: int, j: int, value: Any) -> Any:
        name, categories = self.names[j], self.categories[j]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if categories is not None:
            matches = [k for k, c in enumerate(categories) if c == value or str(c) == str(value)]
            if not matches or not (number or isinstance(value, str)):
                shown = ", ".join(map(str, categories[:20]))
                raise BadInput(f"instance {i}: feature {name} must be one of {shown}")
            return categories[matches[0]] if self.one_hot else matches[0]
        if self.numeric[j] and not number:
            raise BadInput(f"instance {i}: feature {name} must be a number, not {value!r}")
        if not self.numeric[j]:
            raise BadInput(f"feature {name} has a type the service cannot feed")
        return value


def load_pmml(path: Path, fields: dict) -> Predictor:
    file = find_file(path, (".pmml", ".xml"), "PMML")
    head = file.read_bytes()[:65536]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise ModelLoadError("PMML files with a DOCTYPE or entities are refused")
    with imports_without("pyarrow"):  # it needs pandas, pandas takes pyarrow if it can
        import sklearn_pmml_model
        from sklearn_pmml_model.auto_detect import auto_detect_estimator

    model = auto_detect_estimator(pmml=str(file))
    keep_category_order(model)
    target = model.target_field
    names = [n for n, e in model.fields.items() if e is not target and e.tag == "DataField"]
    info = {
        "framework": "sklearn-pmml-model",
        "framework_version": sklearn_pmml_model.__version__,
        "device": "cpu",
        "estimator": type(model).__name__,
        "target": None if target is None else target.get("name"),
    }
    return PMMLPredictor(model, info, names)


def keep_category_order(model) -> None:
    """sklearn-pmml-model 1.0.8 one-hot encodes a categorical field with a OneHotEncoder fitted
    on its values, which sorts them, while the coefficients follow the document's order: refit
    each encoder with the document's order."""
    from sklearn.preprocessing import OneHotEncoder

    transformers = getattr(getattr(model, "transformer", None), "transformers_", None) or []
    for k, (name, encoder, columns) in enumerate(transformers):
        if isinstance(encoder, OneHotEncoder):
            categories = list(model.field_mapping[name][1].categories)
            values = np.array(categories, dtype=object).reshape(-1, 1)
            transformers[k] = (name, OneHotEncoder(categories=[categories]).fit(values), columns)


# ---- custom ------------------------------------------------------------------------------


class CustomPredictor(Predictor):
    def __init__(self, instance, info: dict):
        super().__init__(info)
        self.instance = instance

    def run(self, batch: list) -> list:
        results = self.instance.predict(batch)
        if not isinstance(results, list | tuple | np.ndarray) or len(results) != len(batch):
            raise ValueError("predictor.py's predict() must return one result per instance")
        return jsonable(list(results))


def load_custom(path: Path, fields: dict) -> Predictor:
    if path.is_file() and path.name == "predictor.py":  # a folder holding only predictor.py
        path = path.parent
    if not path.is_dir() or not (path / "predictor.py").is_file():
        raise ModelLoadError("a custom model is a folder with predictor.py")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"bml_custom_predictor_{digest}"
    spec = importlib.util.spec_from_file_location(name, path / "predictor.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path))  # its own helper modules
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cls = getattr(module, "Predictor", None)
    if not isinstance(cls, type):
        raise ModelLoadError("predictor.py defines no class Predictor")
    for method in ("load", "predict"):
        if not callable(getattr(cls, method, None)):
            raise ModelLoadError(f"predictor.py's Predictor has no {method}() method")
    instance = cls()
    instance.load(str(path))
    info = {
        "framework": "custom",
        "framework_version": None,
        "device": None,
        "warnings": ["predictor.py is code: it runs with the prediction service's permissions"],
    }
    return CustomPredictor(instance, info)
