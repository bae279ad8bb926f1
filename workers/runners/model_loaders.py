"""Model loaders for the model warehouse and the prediction service. No Django import.

    predictor = load(model_type, path, fields)
    predictor.info           # what the loader found (see below)
    predictor.predict(instances) -> list      # one JSON-serialisable result per instance

The warehouse validates an import by loading the model in a separate process with a time limit
(`python -m workers.runners.model_check`); prediction replicas load the same files with the
same code. Model files come from users: loaders that run code when loading (pickle/joblib,
custom predictors) say so in info["warnings"].

`path` is the model's files as imported: a file, or a folder holding them. `fields` are the
type-specific import fields (TYPES[...].fields lists each type's fields and their kinds; an
unknown field or a field of the wrong kind is refused).

info holds at least: type, framework, framework_version, device, input_shape (one instance's
shape, None where unknown), n_features, classes (None where unknown), warnings (list of
strings) and load_seconds.

Bad requests: predict() (and validate_instances(), which checks without predicting) raises
BadInput, a ValueError, for a wrong feature count, non-numeric or non-finite values (NaN,
Infinity, 1e400), bad base64 or an
undecodable image; the serving layer answers those with a 4xx. Any other exception from
predict() is the model's error. load() raises ModelLoadError with a message for the user when
anything goes wrong while loading: its message is for the user (one paragraph, the framework's
own error included where it has one), the original exception is its __cause__.

Inputs and outputs per type (instances is always a non-empty list):
- pytorch: rows of numbers (nested lists of one shape: one tensor), or {"data": "<base64
  image>"} items for image models. Classifiers (an architecture, or task "classification")
  give {"class": i, "probability": p, "top_k": [{"class", "probability"}, ...]}, other models
  their raw outputs. Fields: architecture + num_classes (a torchvision state_dict), image_size
  (224), top_k (5), input_shape (TorchScript: one instance's shape, checked), task.
- image_classification: {"data": "<base64 image>"} items; [{"label", "score"}, ...] top-k
  (5); with output "logits" each image's raw class scores, and the service answers the
  spec's {"result": "[[...], ...]"} (one text). Fields: image_size (224), top_k, output.
- paddle, onnx, keras: rows of numbers (a model with several inputs takes objects {input
  name: value}); the outputs per instance (an object {output name: value} for several).
  keras: a model whose one input is [H, W, C] (C 1 or 3) also takes {"data": "<base64
  image>"} items (a batch is all images or all rows), fed as raw pixels 0-255, channels-last,
  resized to W x H (the model scales them itself). Field: output, "raw" (the outputs) or
  "logits" (each instance's row of class scores; the service answers the spec's {"result":
  "[[...], ...]"}, one text, as for image_classification).
- sklearn, pmml: rows, or objects {feature name: value} where the model has feature names;
  classifiers {"label", "probabilities": {"<class>": p}}, regressors the value. PMML
  categorical fields take their category values.
- xgboost: rows; binary objectives {"label": 0|1, "probability": p}, multi:softprob
  {"label", "probabilities": [...]}, multi:softmax {"label"}, others the value.
- custom: whatever predictor.py's predict() takes; one JSON result per instance.
- bml_logistic_regression, bml_kmeans, bml_gbdt: the platform's own machine learning jobs'
  model/ folders; samples as the job read them before standardization (a line "No,label,..."
  in the job's input format, a list of values, or {feature: weight}); {"probability",
  "label"}, {"cluster", "distance"}, GBDT by objective (model_loaders_bml.py). Field: format.
- bml_visual: a visual modeling training component's model folder; raw rows {source column:
  value} (or lists in info["columns"] order) put through the training table's preprocessing;
  {"label", "probabilities"} (+ "probability" binary), {"value"}, {"cluster", "distance"}.

This module holds the registry, the base Predictor and the input/output helpers the loaders
share. The loaders, by concept:
- model_loaders_torch.py: pytorch, image_classification;
- model_loaders_dl.py: paddle, onnx, keras;
- model_loaders_ml.py: sklearn, xgboost, pmml, custom;
- model_loaders_bml.py: bml_logistic_regression, bml_kmeans, bml_gbdt.
- model_loaders_visual.py: bml_visual.
Each loader imports its framework only when called (importing torch takes seconds).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import io
import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FINITE_NUMBERS = "finite numbers (NaN/Infinity refused)"


class BadInput(ValueError):
    """The instances do not fit the model (the client's fault: a 4xx)."""


class ModelLoadError(Exception):
    """The model's files or fields are wrong; the message is for the user."""


@dataclass(frozen=True)
class ModelType:
    module: str  # workers.runners.<module>
    function: str  # loader(path: Path, fields: dict) -> Predictor
    description: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> "int" | "str" | "int_list"


TYPES: dict[str, ModelType] = {
    "pytorch": ModelType(
        "model_loaders_torch",
        "load_pytorch",
        "TorchScript file (.pt), or a torchvision architecture's state_dict (.pt/.pth)",
        {
            "architecture": "str",
            "num_classes": "int",
            "image_size": "int",
            "top_k": "int",
            "input_shape": "int_list",
            "task": "str",
        },
    ),
    "paddle": ModelType(
        "model_loaders_dl",
        "load_paddle",
        "Paddle inference model (paddle.jit.save): .json or .pdmodel plus .pdiparams",
    ),
    "onnx": ModelType("model_loaders_dl", "load_onnx", "ONNX model (.onnx)"),
    "keras": ModelType(
        "model_loaders_dl",
        "load_keras",
        "Keras 3 model (.keras or .h5)",
        {"output": "str"},
    ),
    "sklearn": ModelType(
        "model_loaders_ml",
        "load_sklearn",
        "scikit-learn estimator: .skops (preferred) or .joblib/.pkl",
    ),
    "xgboost": ModelType("model_loaders_ml", "load_xgboost", "XGBoost Booster (.json or .ubj)"),
    "pmml": ModelType("model_loaders_ml", "load_pmml", "PMML document (.pmml or .xml)"),
    "custom": ModelType(
        "model_loaders_ml",
        "load_custom",
        "folder with predictor.py defining class Predictor: load(model_dir), predict(instances)",
    ),
    # The platform's own machine learning jobs (model_loaders_bml.py): raw samples in.
    "bml_logistic_regression": ModelType(
        "model_loaders_bml",
        "load_logistic_regression",
        "BML logistic regression: a logistic regression job's model/ folder (model.json)",
        {"format": "str"},
    ),
    "bml_kmeans": ModelType(
        "model_loaders_bml",
        "load_kmeans",
        "BML KMeans clustering: a KMeans job's model/ folder (model.json)",
        {"format": "str"},
    ),
    "bml_gbdt": ModelType(
        "model_loaders_bml",
        "load_gbdt",
        "BML GBDT: a GBDT job's model/ folder (model.json, model_info.json)",
        {"format": "str"},
    ),
    "bml_visual": ModelType(
        "model_loaders_visual",
        "load_visual",
        "BML visual modeling: a trained component's model folder (model.json) with its "
        "preprocessing; raw feature columns in",
    ),
    "image_classification": ModelType(
        "model_loaders_torch",
        "load_image_classification",
        "transfer learning - image classification: folder with model.pt (TorchScript) and "
        "labels.txt",
        {"image_size": "int", "top_k": "int", "output": "str"},
    ),
}


class Predictor:
    """A loaded model. Subclasses implement prepare() (validation and conversion of the
    instances, raising BadInput) and run() (the model itself)."""

    def __init__(self, info: dict):
        self.info = {"input_shape": None, "n_features": None, "classes": None, **info}
        self.info.setdefault("warnings", [])

    def prepare(self, instances: list) -> Any:
        return check_list(instances)

    def run(self, batch: Any) -> list:
        raise NotImplementedError

    def predict(self, instances: list) -> list:
        return self.run(self.prepare(instances))


def validate_instances(predictor: Predictor, instances: list) -> Any:
    """Raises BadInput if the instances do not fit the model; returns the prepared batch."""
    return predictor.prepare(instances)


def load(model_type: str, path: Path | str, fields: dict | None = None) -> Predictor:
    if model_type not in TYPES:
        raise ModelLoadError(
            f"unknown model type {model_type!r}; the types are: {', '.join(TYPES)}"
        )
    kind = TYPES[model_type]
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"the model path {path} does not exist")
    fields = check_fields(kind, dict(fields or {}))
    module = importlib.import_module(f"workers.runners.{kind.module}")
    started = time.monotonic()
    try:
        predictor = getattr(module, kind.function)(path, fields)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"the {model_type} model could not be loaded: {error_text(exc)}"
        ) from exc
    predictor.info["type"] = model_type
    predictor.info["load_seconds"] = round(time.monotonic() - started, 3)
    return predictor


MAX_ERROR = 1500


def error_text(exc: BaseException, with_type: bool = True) -> str:
    """An exception's message as one paragraph, without the C++ stack traces some frameworks
    put in it."""
    text = str(exc)
    if "Error Message Summary:" in text:  # paddle: the C++ traceback first, the message after
        text = text.split("Error Message Summary:", 1)[1]
    text = text.split("Stack trace:", 1)[0]  # xgboost: "[bt] (0) libxgboost.so(...)" lines
    text = re.sub(r"^\s*\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", text)  # xgboost: "[time] file:line:"
    text = re.sub(r"\[operator < .*? > error\]|\[Hint: .*?\]", "", text)
    text = " ".join(text.split())
    if with_type and not isinstance(exc, ModelLoadError | BadInput):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def check_fields(kind: ModelType, fields: dict) -> dict:
    for name, value in fields.items():
        if name not in kind.fields:
            known = ", ".join(kind.fields) or "none"
            raise ModelLoadError(f"unknown field {name!r} for this model type (fields: {known})")
        want = kind.fields[name]
        if want == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ModelLoadError(f"field {name!r} must be a positive integer, not {value!r}")
        if want == "str" and (not isinstance(value, str) or not value.strip()):
            raise ModelLoadError(f"field {name!r} must be a non-empty string")
        if want == "int_list" and (
            not isinstance(value, list)
            or not value
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
        ):
            raise ModelLoadError(f"field {name!r} must be a list of positive integers")
    return fields


# ---- model files -------------------------------------------------------------------------


def cpu_threads() -> int:
    """Threads a model may compute with: the lease's cores (a replica's OMP_NUM_THREADS is set
    from them), else the cores this process may run on. torch reads OMP_NUM_THREADS itself;
    Paddle (one thread unless told) and onnxruntime (every core of the machine) must be told."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0))


def find_file(path: Path, suffixes: tuple[str, ...], what: str) -> Path:
    """The model file: `path` itself, or the one file in folder `path` with one of the
    suffixes."""
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) if found else "none"
    raise ModelLoadError(
        f"the model folder must hold exactly one {what} file ({' / '.join(suffixes)}); "
        f"found: {names}"
    )


# ---- inputs ------------------------------------------------------------------------------


def check_list(instances: Any) -> list:
    if not isinstance(instances, list) or not instances:
        raise BadInput("instances must be a non-empty list")
    return instances


def numeric_batch(
    instances: list,
    shape: list | tuple | None = None,
    dtype: Any = np.float32,
    names: list[str] | None = None,
) -> np.ndarray:
    """Rows of numbers (or nested lists of one shape) -> array with a batch dimension.
    `shape` is one instance's shape (None or -1 for any size); with `names`, an instance may
    also be an object {feature name: number}."""
    check_list(instances)
    rows = []
    for i, instance in enumerate(instances):
        if isinstance(instance, dict):
            instance = row_from_names(instance, names, i)
        if isinstance(instance, str | bytes) or instance is None:
            raise BadInput(f"instance {i}: expected numbers, got {type(instance).__name__}")
        try:
            row = np.asarray(instance)
        except ValueError as exc:  # ragged nesting
            raise BadInput(f"instance {i}: nested lists of uneven length") from exc
        if row.dtype.kind not in "biuf":
            raise BadInput(f"instance {i}: all values must be numbers ({describe(instance)})")
        rows.append(row)
    first = rows[0].shape
    for i, row in enumerate(rows):
        if row.shape != first:
            raise BadInput(f"instance {i} has shape {list(row.shape)}, instance 0 {list(first)}")
    if shape is not None:
        check_shape(first, shape)
    with np.errstate(over="ignore"):  # beyond float32's range: inf, refused just below
        batch = np.stack(rows).astype(dtype, copy=False)
    if batch.dtype.kind == "f":  # NaN, or 1e400 (inf), or beyond float32's range
        finite = np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
        if not finite.all():
            raise BadInput(f"instances[{int(np.argmin(finite))}]: values must be {FINITE_NUMBERS}")
    return batch


def row_from_names(instance: dict, names: list[str] | None, i: int) -> list:
    if not names:
        raise BadInput(f"instance {i}: this model takes rows of numbers, not objects")
    missing = [n for n in names if n not in instance]
    extra = [k for k in instance if k not in names]
    if missing or extra:
        raise BadInput(
            f"instance {i}: features do not match the model's"
            + (f"; missing: {', '.join(missing[:10])}" if missing else "")
            + (f"; unknown: {', '.join(map(str, extra[:10]))}" if extra else "")
        )
    return [instance[n] for n in names]


def check_shape(got: tuple, want: list | tuple) -> None:
    want = [None if (d is None or not isinstance(d, int) or d < 0) else d for d in want]
    if len(got) != len(want) or any(
        w is not None and g != w for g, w in zip(got, want, strict=True)
    ):
        if len(want) == 1 and len(got) == 1:
            raise BadInput(f"each instance must have {want[0]} features, got {got[0]}")
        shown = ["any" if w is None else w for w in want]
        raise BadInput(f"each instance must have shape {shown}, got {list(got)}")


def describe(instance: Any) -> str:
    flat = instance if isinstance(instance, list) else [instance]
    for value in flat:
        if not isinstance(value, int | float | list):
            return f"found {type(value).__name__} {str(value)[:40]!r}"
    return "found a non-numeric value"


def read_labels(path: Path) -> list[str] | None:
    """The class names in a model folder's labels.txt, one a line, in output index order
    (an AutoDL job's model/ folder has one); None without the file or a name in it."""
    file = path / "labels.txt"
    if not path.is_dir() or not file.is_file():
        return None
    labels = [line.strip() for line in file.read_text("utf-8").splitlines()]
    return [label for label in labels if label] or None


def is_image_instance(instance: Any) -> bool:
    return isinstance(instance, dict) and "data" in instance


MAX_IMAGE_PIXELS = 50_000_000


def decode_image(instance: Any, i: int):
    """{"data": "<base64 image>"} -> RGB PIL image; BadInput if it is not one."""
    from PIL import Image

    if not is_image_instance(instance) or not isinstance(instance["data"], str):
        raise BadInput(f'instance {i}: expected {{"data": "<base64 image>"}}')
    text = instance["data"].strip()
    if text.startswith("data:") and "," in text:  # data URL
        text = text.split(",", 1)[1]
    if text[:2] in ("b'", 'b"') and text[-1:] == text[1]:
        # The spec's own client sends str(base64.b64encode(...)): "b'iVBOR...'" in Python 3.
        text = text[2:-1]
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"instance {i}: 'data' is not valid base64") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise BadInput(f"instance {i}: image of {image.width}x{image.height} is too large")
            image.load()
            return image.convert("RGB")
    except BadInput:
        raise
    except Exception as exc:  # PIL raises many kinds for undecodable data
        raise BadInput(f"instance {i}: 'data' is not a decodable image ({exc})") from exc


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def image_batch(instances: list, size: int) -> np.ndarray:
    """Base64 images -> float32 [N, 3, size, size], resized and ImageNet-normalised."""
    from PIL import Image

    check_list(instances)
    arrays = []
    for i, instance in enumerate(instances):
        image = decode_image(instance, i).resize((size, size), Image.Resampling.BILINEAR)
        array = (np.asarray(image, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        arrays.append(array.transpose(2, 0, 1))
    return np.stack(arrays)


def pixel_batch(instances: list, height: int, width: int, channels: int) -> np.ndarray:
    """Base64 images -> float32 [N, height, width, channels], channels-last: decoded as
    decode_image does, converted to RGB (3 channels) or grayscale L (1), resized to
    width x height (bilinear), raw pixel values 0-255 (not normalised)."""
    from PIL import Image

    check_list(instances)
    arrays = []
    for i, instance in enumerate(instances):
        image = decode_image(instance, i)
        if channels == 1:
            image = image.convert("L")
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(image, dtype=np.float32).reshape(height, width, channels))
    return np.stack(arrays)


def named_inputs(instances: list, specs: list[tuple[str, list | None, Any]]) -> dict:
    """Inputs for a model with named input tensors, specs [(name, instance shape, dtype)]:
    with one input, rows; with several, each instance an object {input name: value}."""
    check_list(instances)
    for name, _, dtype in specs:
        if dtype is None:
            raise BadInput(f"the model's input {name} is not numeric; the service feeds numbers")
    if len(specs) == 1:
        name, shape, dtype = specs[0]
        return {name: numeric_batch(instances, shape, dtype)}
    batch = {}
    for name, shape, dtype in specs:
        values = []
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict) or name not in instance:
                wanted = ", ".join(s[0] for s in specs)
                raise BadInput(f"instance {i}: the model takes objects with the inputs {wanted}")
            values.append(instance[name])
        batch[name] = numeric_batch(values, shape, dtype)
    return batch


# ---- outputs -----------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Numpy/torch values -> plain JSON types (NaN and infinities -> None)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"the model returned a {type(value).__name__}, which is not JSON data")


def split_outputs(outputs: Any, n: int, names: list[str] | None = None) -> list:
    """Batched outputs -> one entry per instance. A list/tuple of outputs gives a list per
    instance (an object keyed by `names` where given), a dict an object."""
    if isinstance(outputs, dict):
        names, outputs = list(outputs), list(outputs.values())
    if isinstance(outputs, list | tuple) and outputs and not np.isscalar(outputs[0]):
        parts = [jsonable(o) for o in outputs]
        for part in parts:
            if not isinstance(part, list) or len(part) != n:
                raise ValueError(f"the model's outputs do not have one entry per instance ({n})")
        if len(parts) == 1:
            return parts[0]
        if names:
            return [
                {name: part[i] for name, part in zip(names, parts, strict=True)} for i in range(n)
            ]
        return [[part[i] for part in parts] for i in range(n)]
    rows = jsonable(outputs)
    if not isinstance(rows, list) or len(rows) != n:
        raise ValueError(f"the model's output does not have one entry per instance ({n})")
    return rows


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def label_outputs(labels: Any, probabilities: np.ndarray | None, classes: list | None) -> list:
    """Classifier results: {"label"} plus {"probabilities": {class: p}} where known."""
    results = []
    for i, label in enumerate(jsonable(list(labels))):
        result = {"label": label}
        if probabilities is not None and classes is not None:
            result["probabilities"] = {
                str(c): round(float(p), 6) for c, p in zip(classes, probabilities[i], strict=True)
            }
        results.append(result)
    return results


def warning_messages(caught: list) -> list[str]:
    seen = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen:
            seen.append(text)
    return seen
