"""Deep learning loaders: paddle, onnx and keras. See model_loaders.py for the contract (the
pytorch and image classification types live in model_loaders_torch.py); each function imports
its framework when called.

Devices: keras (torch backend) uses CUDA when torch sees it, onnxruntime its CUDA provider when
the installed onnxruntime has one (the onnxruntime wheel is CPU-only; onnxruntime-gpu has it),
paddle the GPU when the paddle wheel is a CUDA build and a GPU is present, a Kunlun XPU when
it is an XPU build and one is present; otherwise the CPU, with as many threads as the lease
has cores (`model_loaders.cpu_threads`).

Keras image models (one input [H, W, 1 or 3]) also take {"data": "<base64 image>"} items, fed
as raw pixels 0-255 (see KerasPredictor); output "logits" answers the spec's {"result": "[[...]]"}.

Keras is imported without pandas, pyarrow and scikit-learn, which it imports only in case they
are installed (model_loaders_ml.imports_without): a replica of a keras model is torch and keras.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workers.runners.model_loaders import (
    BadInput,
    ModelLoadError,
    Predictor,
    check_list,
    cpu_threads,
    find_file,
    is_image_instance,
    jsonable,
    named_inputs,
    numeric_batch,
    pixel_batch,
    read_labels,
    split_outputs,
)
from workers.runners.model_loaders_ml import imports_without

# ---- paddle ------------------------------------------------------------------------------

NUMPY_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}


class PaddlePredictor(Predictor):
    def __init__(self, predictor, specs, info):
        super().__init__(info)
        self.predictor, self.specs = predictor, specs
        self.output_names = predictor.get_output_names()

    def prepare(self, instances: list) -> dict:
        return named_inputs(instances, self.specs)

    def run(self, batch: dict) -> list:
        for name, array in batch.items():
            handle = self.predictor.get_input_handle(name)
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(np.ascontiguousarray(array))
        self.predictor.run()
        outputs = [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names]
        return split_outputs(outputs, len(next(iter(batch.values()))), self.output_names)


def paddle_files(path: Path) -> tuple[Path, Path]:
    if path.is_file():
        if path.suffix == ".pdiparams":
            candidates = [path.with_suffix(".json"), path.with_suffix(".pdmodel")]
            model = next((c for c in candidates if c.is_file()), None)
            if model is None:
                raise ModelLoadError(f"no {path.stem}.json or {path.stem}.pdmodel next to {path}")
            return model, path
        params = path.with_suffix(".pdiparams")
        if path.suffix not in (".json", ".pdmodel") or not params.is_file():
            raise ModelLoadError(
                "a paddle inference model is <name>.json or <name>.pdmodel with <name>.pdiparams"
            )
        return path, params
    pairs = [
        (p, p.with_suffix(".pdiparams"))
        for p in sorted(path.iterdir())
        if p.suffix in (".json", ".pdmodel") and p.with_suffix(".pdiparams").is_file()
    ]
    if len(pairs) != 1:
        raise ModelLoadError(
            "the model folder must hold one paddle inference model: <name>.json or "
            f"<name>.pdmodel with <name>.pdiparams (found {len(pairs)})"
        )
    return pairs[0]


def paddle_input_specs(model_file: Path, names: list[str]) -> list:
    """(name, instance shape, dtype) per input; shapes from the data ops of a .json (PIR)
    program where they can be read, otherwise unknown (float32)."""
    found = {}
    if model_file.suffix == ".json":
        try:
            program = json.loads(model_file.read_text("utf-8"))
            for op in walk_dicts(program):
                if op.get("#") != "1.data":
                    continue
                attrs = {a.get("N"): a.get("AT", {}).get("D") for a in op.get("A", [])}
                found[attrs.get("name")] = (attrs.get("shape"), attrs.get("dtype"))
        except (ValueError, AttributeError, TypeError):
            found = {}
    specs = []
    for name in names:
        shape, dtype = found.get(name, (None, None))
        if isinstance(shape, list) and shape:
            shape = [d if isinstance(d, int) and d >= 0 else None for d in shape[1:]]
        else:
            shape = None
        specs.append((name, shape, NUMPY_DTYPES.get(dtype, np.float32)))
    return specs


def walk_dicts(node: Any):
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def load_paddle(path: Path, fields: dict) -> Predictor:
    model_file, params_file = paddle_files(path)
    import paddle
    from paddle import inference

    config = inference.Config(str(model_file), str(params_file))
    device = paddle_device(paddle)
    if device == "gpu:0":
        config.enable_use_gpu(256, 0)
    else:
        config.disable_gpu()
        if device == "xpu:0":  # a Kunlun card; the lease's XPU_VISIBLE_DEVICES makes it 0
            config.enable_xpu()
        else:
            # One thread unless told: the lease's cores double a ResNet-18's images/s on 2.
            config.set_cpu_math_library_num_threads(cpu_threads())
    config.disable_glog_info()
    threads = config.cpu_math_library_num_threads() if device == "cpu" else None
    predictor = inference.create_predictor(config)
    specs = paddle_input_specs(model_file, predictor.get_input_names())
    info = {
        "framework": "paddle",
        "framework_version": paddle.__version__,
        "device": device,
        "cpu_threads": threads,
        "format": model_file.suffix.lstrip("."),
        "inputs": [{"name": n, "shape": s} for n, s, _ in specs],
        "outputs": predictor.get_output_names(),
    }
    return PaddlePredictor(predictor, specs, with_shape(info, specs))


def paddle_device(paddle) -> str:
    """A CUDA GPU when the wheel is a CUDA build and sees one, a Kunlun XPU likewise, else
    the CPU."""
    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        return "gpu:0"
    if paddle.device.is_compiled_with_xpu() and paddle.device.xpu.device_count() > 0:
        return "xpu:0"
    return "cpu"


def with_shape(info: dict, specs: list) -> dict:
    if len(specs) == 1 and specs[0][1] is not None:
        shape = specs[0][1]
        info["input_shape"] = shape
        if len(shape) == 1 and isinstance(shape[0], int) and shape[0] > 0:
            info["n_features"] = shape[0]
    return info


# ---- onnx --------------------------------------------------------------------------------

ONNX_DTYPES = {f"tensor({k})": v for k, v in NUMPY_DTYPES.items()}
ONNX_DTYPES.update({"tensor(float)": np.float32, "tensor(double)": np.float64})


class OnnxPredictor(Predictor):
    def __init__(self, session, specs, info, one_at_a_time):
        super().__init__(info)
        self.session, self.specs, self.one_at_a_time = session, specs, one_at_a_time
        self.output_names = [o.name for o in session.get_outputs()]

    def prepare(self, instances: list) -> dict:
        return named_inputs(instances, self.specs)

    def run(self, batch: dict) -> list:
        n = len(next(iter(batch.values())))
        if not self.one_at_a_time:
            return split_outputs(self.session.run(None, batch), n, self.output_names)
        results = []
        for i in range(n):  # the model's batch dimension is fixed at 1
            feed = {name: array[i : i + 1] for name, array in batch.items()}
            results += split_outputs(self.session.run(None, feed), 1, self.output_names)
        return results


def load_onnx(path: Path, fields: dict) -> Predictor:
    file = find_file(path, (".onnx",), "ONNX")
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = cpu_threads()  # not every core of the machine
    session = ort.InferenceSession(str(file), sess_options=options, providers=providers)
    info = {
        "framework": "onnxruntime",
        "framework_version": ort.__version__,
        "device": "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu",
        "producer": session.get_modelmeta().producer_name or None,
        "inputs": [],
        "outputs": [{"name": o.name, "type": o.type} for o in session.get_outputs()],
    }
    specs, one_at_a_time = [], False
    for node in session.get_inputs():
        shape = [d if isinstance(d, int) else None for d in node.shape]
        if shape and shape[0] == 1:
            one_at_a_time = True
        info["inputs"].append({"name": node.name, "type": node.type, "shape": shape})
        if node.type not in ONNX_DTYPES:
            info.setdefault("warnings", []).append(
                f"input {node.name} has type {node.type}; the service feeds numbers only"
            )
        specs.append((node.name, shape[1:] if shape else None, ONNX_DTYPES.get(node.type)))
    return OnnxPredictor(session, specs, with_shape(info, specs), one_at_a_time)


# ---- keras -------------------------------------------------------------------------------


KERAS_OUTPUTS = ("raw", "logits")
MAX_KERAS_IMAGE_SIDE = 1024  # as image_classification's largest image_size


class KerasPredictor(Predictor):
    """Rows of numbers (objects {input name: value} for several inputs) in; the outputs per
    instance, or with output "logits" each instance's row of class scores as floats.

    A model whose one input is [H, W, C] (integer H and W, C 1 or 3) also takes {"data":
    "<base64 image>"} items: decoded as the other image models' are (model_loaders.pixel_batch),
    converted to RGB (C 3) or grayscale L (C 1), resized to W x H (bilinear), fed as float32
    pixels 0-255, channels-last. They are not normalised: such a model scales its pixels
    itself (a keras.layers.Rescaling, as an AutoDL job's models do). A batch is all images or
    all rows of numbers."""

    def __init__(self, model, specs, info, *, image_shape=None, logits=False):
        super().__init__(info)
        self.model, self.specs = model, specs
        self.image_shape, self.logits = image_shape, logits

    def prepare(self, instances: list) -> Any:
        check_list(instances)
        images = [is_image_instance(x) for x in instances]
        if any(images):
            if self.image_shape is None:
                raise BadInput("this model takes rows of numbers, not images")
            if not all(images):
                i = images.index(False)
                raise BadInput(
                    f'instance {i}: a batch is either all images ({{"data": "<base64 image>"}}) '
                    "or all rows of numbers, not both"
                )
            height, width, channels = self.image_shape
            name, _, dtype = self.specs[0]
            return {name: pixel_batch(instances, height, width, channels).astype(dtype)}
        if not self.specs:
            return numeric_batch(instances)
        return named_inputs(instances, self.specs)

    def run(self, batch: Any) -> list:
        n = len(batch) if isinstance(batch, np.ndarray) else len(next(iter(batch.values())))
        if isinstance(batch, dict):
            batch = list(batch.values()) if len(batch) > 1 else next(iter(batch.values()))
        outputs = self.model.predict_on_batch(batch)
        if self.logits:  # the spec's answer: each instance's raw class scores
            return logit_rows(outputs, n)
        return split_outputs(outputs, n, list(getattr(self.model, "output_names", []) or []))


def logit_rows(outputs: Any, n: int) -> list:
    if isinstance(outputs, list | tuple | dict):
        raise ValueError('output "logits" needs a model with one output, [batch, classes]')
    array = np.asarray(outputs)
    if array.ndim != 2 or array.shape[0] != n or array.dtype.kind not in "biuf":
        raise ValueError(
            f'output "logits" needs one row of class scores per instance; the model returned '
            f"shape {list(array.shape)} for {n}"
        )
    return jsonable(array.astype(np.float64))


def keras_image_shape(specs: list) -> tuple[int, int, int] | None:
    """(H, W, C) where the model's one input is an image, channels-last, C 1 or 3."""
    if len(specs) != 1 or specs[0][1] is None or len(specs[0][1]) != 3:
        return None
    height, width, channels = specs[0][1]
    if not all(isinstance(d, int) and d > 0 for d in (height, width, channels)):
        return None
    if channels not in (1, 3) or specs[0][2] is np.bool_:
        return None
    return height, width, channels


def load_keras(path: Path, fields: dict) -> Predictor:
    file = find_file(path, (".keras", ".h5", ".hdf5"), "Keras")
    output = fields.get("output", "raw")
    if output not in KERAS_OUTPUTS:
        raise ModelLoadError(
            f"field 'output' must be one of {', '.join(KERAS_OUTPUTS)}, not {output!r}"
        )
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
    # keras imports these in case they are installed (data adapters, scikit-learn wrappers)
    with imports_without("pandas", "pyarrow", "sklearn"):
        import keras

    if file.suffix == ".keras" and not zipfile.is_zipfile(file):
        raise ModelLoadError(f"{file.name} is not a Keras 3 .keras file (not a zip archive)")
    model = keras.saving.load_model(str(file), compile=False, safe_mode=True)
    specs = []
    try:
        for tensor in model.inputs:
            shape = [d if isinstance(d, int) else None for d in tensor.shape]
            specs.append((tensor.name, shape[1:], NUMPY_DTYPES.get(tensor.dtype, np.float32)))
    except (AttributeError, ValueError):  # a subclassed model without known inputs
        specs = []
    image_shape = keras_image_shape(specs)
    info = {
        "framework": "keras",
        "framework_version": keras.__version__,
        "backend": keras.backend.backend(),
        "device": keras_device(keras),
        "format": file.suffix.lstrip("."),
        "inputs": [{"name": n, "shape": s} for n, s, _ in specs],
        # "logits": the spec's {"result": "[[scores, ...]]"} (an AutoDL model's answer)
        "output": output,
        "result_as_text": output == "logits",
    }
    if image_shape and max(image_shape[:2]) > MAX_KERAS_IMAGE_SIDE:
        info["warnings"] = [
            f"the input is {image_shape[0]}x{image_shape[1]}: images are taken up to "
            f"{MAX_KERAS_IMAGE_SIDE}x{MAX_KERAS_IMAGE_SIDE}; this model takes rows of numbers"
        ]
        image_shape = None
    info["images"] = image_shape is not None
    labels = read_labels(path)
    if labels:
        info["classes"] = labels
    predictor = KerasPredictor(
        model, specs, with_shape(info, specs), image_shape=image_shape, logits=output == "logits"
    )
    if output == "logits":
        check_logits(predictor, specs, labels)
    return predictor


def check_logits(predictor: KerasPredictor, specs: list, labels: list[str] | None) -> None:
    """One prediction on zeros where the input shape is known: the model gives one row of
    class scores (as many as labels.txt has classes, where there is one)."""
    if not specs or any(s is None or None in s for _, s, _ in specs):
        return
    batch = {name: np.zeros((1, *shape), dtype=dtype) for name, shape, dtype in specs}
    try:
        rows = predictor.run(batch)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    if labels and len(rows[0]) != len(labels):
        raise ModelLoadError(
            f"the model gives {len(rows[0])} class scores for one instance; labels.txt has "
            f"{len(labels)} classes"
        )


def keras_device(keras) -> str:
    if keras.backend.backend() != "torch":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
