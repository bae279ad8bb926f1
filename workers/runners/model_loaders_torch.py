"""PyTorch loaders: the pytorch type (TorchScript, or a torchvision architecture's state_dict)
and the built-in image classification type (transfer learning - image classification). See
model_loaders.py for the contract; torch is imported when a loader is called.

Device: CUDA when torch sees it (torch.cuda.is_available()), otherwise the CPU. Image inputs
are {"data": "<base64 image>"}, decoded with PIL, converted to RGB, resized to
image_size x image_size (bilinear) and normalised with the ImageNet mean/std.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from workers.runners.model_loaders import (
    BadInput,
    ModelLoadError,
    Predictor,
    check_list,
    error_text,
    find_file,
    image_batch,
    is_image_instance,
    numeric_batch,
    read_labels,
    split_outputs,
)

# ---- pytorch -----------------------------------------------------------------------------


class TorchPredictor(Predictor):
    """Rows of numbers (one tensor) or {"data": base64 image} items in. Classifiers give
    {"class", "probability", "top_k": [{"class", "probability"}]}; with labels (the image
    classification type) [{"label", "score"}] top-k; otherwise the raw outputs."""

    def __init__(
        self,
        module,
        device,
        info,
        *,
        input_shape,
        image_size,
        classify,
        top_k,
        labels=None,
        logits=False,
        images_only=False,
    ):
        super().__init__({**info, "input_shape": input_shape})
        self.module, self.device = module, device
        self.image_size, self.classify, self.top_k = image_size, classify, top_k
        self.labels, self.images_only = labels, images_only
        self.logits = logits
        if input_shape and len(input_shape) == 1:
            self.info["n_features"] = input_shape[0]

    def prepare(self, instances: list) -> np.ndarray:
        check_list(instances)
        takes_images = self.images_only or (self.input_shape is None or len(self.input_shape) == 3)
        if self.images_only or any(is_image_instance(x) for x in instances):
            if not takes_images:
                raise BadInput("this model takes rows of numbers, not images")
            return image_batch(instances, self.image_size)
        return numeric_batch(instances, self.input_shape)

    @property
    def input_shape(self):
        return self.info["input_shape"]

    def run(self, batch: np.ndarray) -> list:
        import torch

        with torch.inference_mode():
            outputs = self.module(torch.from_numpy(batch).to(self.device))
        if not self.classify:
            return split_outputs(outputs, len(batch))
        if self.logits:  # the spec's answer: each image's raw class scores
            return [[float(v) for v in row] for row in outputs.float().tolist()]
        if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
            raise ValueError("a classifier must return one row of class scores per instance")
        probabilities = torch.softmax(outputs.float(), dim=1)
        scores, indices = probabilities.topk(min(self.top_k, outputs.shape[1]), dim=1)
        results = []
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
            if self.labels is not None:
                results.append(
                    [
                        {"label": self.labels[c], "score": round(s, 6)}
                        for c, s in zip(row_indices, row_scores, strict=True)
                    ]
                )
                continue
            top = [
                {"class": c, "probability": round(s, 6)}
                for c, s in zip(row_indices, row_scores, strict=True)
            ]
            results.append({**top[0], "top_k": top})
        return results


def torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torchvision_model(architecture: str, num_classes: int):
    import torchvision
    from torchvision import models

    names = models.list_models(module=models)  # the image classification architectures
    if architecture not in names:
        raise ModelLoadError(
            f"unknown architecture {architecture!r}; torchvision {torchvision.__version__} "
            f"classification architectures: {', '.join(names)}"
        )
    kwargs = {}
    if architecture in ("googlenet", "inception_v3"):  # no auxiliary heads in a served model
        kwargs = {"aux_logits": False, "init_weights": False}
    return models.get_model(architecture, weights=None, num_classes=num_classes, **kwargs)


def load_state_dict_file(module, file: Path, architecture: str, num_classes: int) -> None:
    import torch

    if is_torchscript(file):
        raise ModelLoadError(
            f"{file.name} is a TorchScript model, not a state_dict: leave out architecture"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"{file.name} is not a weights-only state_dict ({first_sentence(exc)})"
        ) from exc
    for key in ("state_dict", "model_state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{file.name} does not hold a state_dict (a mapping to tensors)")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"the weights do not fit {architecture} with num_classes={num_classes}: "
            + " ".join(str(exc).split())[:600]
        ) from exc


def load_pytorch(path: Path, fields: dict) -> Predictor:
    import torch

    device = torch_device()
    architecture = fields.get("architecture")
    task = fields.get("task", "classification" if architecture else "raw")
    if task not in ("classification", "raw"):
        raise ModelLoadError("field 'task' must be 'classification' or 'raw'")
    image_size = image_size_field(fields)
    info = {"framework": "torch", "framework_version": torch.__version__, "device": str(device)}
    if architecture:
        if "num_classes" not in fields:
            raise ModelLoadError("a state_dict needs the num_classes field with architecture")
        if "input_shape" in fields:
            raise ModelLoadError("input_shape is for TorchScript models; use image_size")
        file = find_file(path, (".pt", ".pth", ".bin"), "state_dict")
        module = torchvision_model(architecture, fields["num_classes"])
        load_state_dict_file(module, file, architecture, fields["num_classes"])
        input_shape = [3, image_size, image_size]
        info.update(format="state_dict", architecture=architecture)
        info["classes"] = list(range(fields["num_classes"]))
    else:
        if "num_classes" in fields:
            raise ModelLoadError("num_classes goes with architecture (a state_dict file)")
        file = find_file(path, (".pt", ".pth", ".pts", ".torchscript"), "TorchScript")
        module = load_torchscript(file, device)
        input_shape = fields.get("input_shape")
        info["format"] = "torchscript"
        if input_shape and len(input_shape) == 3 and "image_size" not in fields:
            image_size = input_shape[-1]  # images are resized to the model's input
    module.eval().to(device)
    if input_shape:
        module, info["optimized"] = for_inference(module, (1, *input_shape), device)
    predictor = TorchPredictor(
        module,
        device,
        info,
        input_shape=input_shape,
        image_size=image_size,
        classify=task == "classification",
        top_k=fields.get("top_k", 5),
    )
    if input_shape:  # one forward pass on zeros: the weights fit the input shape
        predictor.run(np.zeros((1, *input_shape), dtype=np.float32))
    return predictor


def for_inference(module, example_shape: tuple, device):
    """(module, optimized?): the module frozen and optimized for inference when that works
    and answers as the original does on an example input.

    TorchScript freezing folds the weights in as constants, fuses convolutions with their
    batch norms and, on a CPU, packs convolutions for oneDNN: a ResNet-18 on two cores serves
    25-50% more images a second, and gains more from batches (per image, a batch of 12 takes
    0.67 of a single image's time instead of 0.8), with no recompilation when the batch size
    changes. Anything it cannot handle (modules that do not script, outputs that differ)
    keeps the module as loaded."""
    import torch

    generator = torch.Generator().manual_seed(0)
    example = torch.randn(example_shape, generator=generator).to(device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = (
                module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
            )
            optimized = torch.jit.optimize_for_inference(torch.jit.freeze(scripted.eval()))
        with torch.inference_mode():
            expected, got = module(example), optimized(example)
    except Exception:  # noqa: BLE001 - the module as loaded still serves
        return module, False
    same = (
        isinstance(expected, torch.Tensor)
        and isinstance(got, torch.Tensor)
        and expected.shape == got.shape
        and torch.allclose(expected.float(), got.float(), rtol=1e-3, atol=1e-3)
    )
    return (optimized, True) if same else (module, False)


def load_torchscript(file: Path, device):
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torch.jit.load is deprecated"
            return torch.jit.load(str(file), map_location=device)
    except Exception as exc:
        raise ModelLoadError(
            f"{file.name} is not a TorchScript model ({first_sentence(exc)}); a state_dict "
            "needs the architecture and num_classes fields"
        ) from exc


MAX_IMAGE_SIZE = 1024
IMAGE_OUTPUTS = ("top_k", "logits")


def image_size_field(fields: dict) -> int:
    size = fields.get("image_size", 224)
    if size > MAX_IMAGE_SIZE:
        raise ModelLoadError(f"image_size must be at most {MAX_IMAGE_SIZE}")
    return size


def is_torchscript(file: Path) -> bool:
    """A TorchScript archive holds the model's code (<name>/code/...)."""
    try:
        with zipfile.ZipFile(file) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def first_sentence(exc: BaseException) -> str:
    text = error_text(exc, with_type=False)
    end = text.find(". ")
    return text[: end + 1] if 0 < end < 300 else text[:300]


def load_image_classification(path: Path, fields: dict) -> Predictor:
    import torch

    if not path.is_dir():
        raise ModelLoadError("an image classification model is a folder: model.pt, labels.txt")
    for name in ("model.pt", "labels.txt"):
        if not (path / name).is_file():
            raise ModelLoadError(f"the image classification model folder has no {name}")
    labels = read_labels(path)
    if not labels:
        raise ModelLoadError("labels.txt holds no class names (one per line)")
    device = torch_device()
    module = load_torchscript(path / "model.pt", device).eval().to(device)
    size = image_size_field(fields)
    output = fields.get("output", "top_k")
    if output not in IMAGE_OUTPUTS:
        raise ModelLoadError(f"output is one of {', '.join(IMAGE_OUTPUTS)}, not {output!r}")
    module, optimized = for_inference(module, (1, 3, size, size), device)
    predictor = TorchPredictor(
        module,
        device,
        {
            "framework": "torch",
            "framework_version": torch.__version__,
            "device": str(device),
            "format": "torchscript",
            "classes": labels,
            "optimized": optimized,
            # "logits": the spec's {"result": "[[scores, ...]]"} (an AutoDL model's default)
            "output": output,
            "result_as_text": output == "logits",
        },
        input_shape=[3, size, size],
        image_size=size,
        classify=True,
        top_k=fields.get("top_k", 5),
        labels=labels,
        images_only=True,
        logits=output == "logits",
    )
    with torch.inference_mode():
        out = module(torch.zeros((1, 3, size, size), device=device))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, len(labels)):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelLoadError(
            f"model.pt returns {shape} for one image; labels.txt has {len(labels)} classes"
        )
    return predictor
