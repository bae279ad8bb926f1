"""AutoDL Image Sorting - Transfer Learning (the spec's "AutoDL Job"): an ImageNet-pretrained
CNN fine-tuned on the user's photos, one folder per class. No Django import.

Run by the job engine with the job's workspace as cwd:

    python -m workers.runners.autodl_transfer --params params.json

params.json:
    input             the staged training data: a .zip, or a folder whose zips are all used
    validation_ratio  share of each class held out for validation, 0.05-0.5 (default 0.2)
    epochs            1-100 (default 10)
    image_size        side of the square network input, 64-512 (default 224)
    batch_size        1-512 (default 32)
    seed              split, augmentation and head initialisation (default 0)
    backbone          "efficientnet-lite0" (default; see autodl_backbones.py)
    model_dir, log_dir   output folders ("model", "log")

Steps:
    1. the data check (autodl_data.py, the spec's rules for transfer learning), its report in
       log/data_report.json; a broken hard rule fails the job before any training
    2. a seeded stratified split; log/preprocess.json (train/validation photos per class)
       and a few augmented training photos in log/samples/*.png for the job page
    3. fine-tuning: about a third of the epochs train the new head alone (backbone frozen),
       the rest the whole network at a lower rate; train and validation loss and accuracy
       per epoch as the job's curves (bml.report, step = epoch); the epoch with the best
       validation accuracy is kept
    4. log/confusion.json: the kept model's confusion matrix on the validation photos

Outputs (model/):
    model.pth        the network's weights (a PyTorch state_dict), as the spec says
    model.pt         TorchScript of the evaluation network: float32 [N, 3, S, S] in, [N, classes]
                     scores out; what the image_classification model type serves (register
                     it with image_size = S)
    labels.txt       the class names, one a line, in output index order
    model_info.json  backbone, classes, image_size, preprocessing (mean, std), validation
                     accuracy, epochs, the per-epoch history

Failure: the message on stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from workers.runners import autodl_backbones
from workers.runners.autodl_data import DataCheck, check_training_data, write_report
from workers.runners.autodl_rules import rules_for
from workers.runners.ml_lr import RunnerError, cli, number, report, say

WHAT = "AutoDL transfer learning"
SAMPLES_PER_CLASS = 2
MAX_SAMPLES = 12
SAMPLE_SIDE = 128  # small: the job page shows them as thumbnails
DEFAULTS = {
    "validation_ratio": 0.2,
    "epochs": 10,
    "image_size": 224,
    "batch_size": 32,
    "seed": 0,
    "backbone": "efficientnet-lite0",
}


# ---- parameters ----------------------------------------------------------------------------


def with_defaults(raw: dict, defaults: dict) -> tuple[dict, str]:
    """(the settings with a default for each blank one, the training data's path). A blank
    field (null or "") takes its default: the console sends blanks."""
    raw = {**defaults, **{name: value for name, value in raw.items() if value not in (None, "")}}
    source = raw.get("input")
    if not isinstance(source, str) or not source:
        raise RunnerError("input is required: the training data (a .zip or a folder of zips)")
    return raw, source


def parse_params(raw: dict) -> dict:
    raw, source = with_defaults(raw, DEFAULTS)
    backbone = raw["backbone"]
    if not isinstance(backbone, str) or backbone not in autodl_backbones.BACKBONES:
        raise RunnerError(
            f"backbone must be one of {', '.join(autodl_backbones.BACKBONES)}, got {backbone!r}"
        )
    return {
        "input": source,
        "validation_ratio": number(raw, "validation_ratio", 0.05, 0.5),
        "epochs": number(raw, "epochs", 1, 100, integer=True),
        "image_size": number(raw, "image_size", 64, 512, integer=True),
        "batch_size": number(raw, "batch_size", 1, 512, integer=True),
        "seed": number(raw, "seed", 0, 2**31 - 1, integer=True),
        "backbone": backbone,
        "model_dir": Path(raw.get("model_dir") or "model"),
        "log_dir": Path(raw.get("log_dir") or "log"),
    }


# ---- the run -------------------------------------------------------------------------------


def run(raw: dict) -> None:
    params = parse_params(raw)
    params["model_dir"].mkdir(parents=True, exist_ok=True)
    params["log_dir"].mkdir(parents=True, exist_ok=True)
    # The photos are extracted into the workspace (they can be gigabytes) and removed after.
    with tempfile.TemporaryDirectory(prefix=".autodl-photos-", dir=Path.cwd()) as photos:
        check = check_data(params, Path(photos))
        train_model(params, check)


def check_data(params: dict, photos: Path, method: str = "transfer") -> DataCheck:
    """The spec's rules for `method` ("transfer" or "enas"); the report in the log folder."""
    say(f"checking the training data {params['input']}")
    check = check_training_data(params["input"], photos, method)
    write_report(check.report, params["log_dir"] / "data_report.json")
    report_ = check.report
    for warning in report_["warnings"]:
        say(f"warning ({warning['rule']}): {warning['message']}")
    if not check.ok:
        errors = "; ".join(f"{e['message']} ({e['rule']})" for e in report_["errors"])
        raise RunnerError(f"the training data breaks the rules, nothing was trained: {errors}")
    say(
        f"{report_['total_photos']} photos in {len(report_['classes'])} classes kept, "
        f"{report_['refused_count']} files refused (see log/data_report.json)"
    )
    return check


def train_model(params: dict, check: DataCheck) -> None:
    # torch is imported here, not at the top: parameter and data errors come back without
    # the seconds it takes to load.
    from workers.runners import autodl_finetune as ft

    seed_everything(params["seed"])
    device = choose_device()
    labelled = check.labelled_paths()
    classes = sorted({name for _, name in labelled})
    train, validation = ft.stratified_split(labelled, params["validation_ratio"], params["seed"])
    write_preprocess_report(params, classes, train, validation)

    try:
        model = autodl_backbones.build_model(
            params["backbone"], len(classes), params["image_size"], pretrained=True
        )
    except autodl_backbones.BackboneError as exc:
        raise RunnerError(str(exc)) from exc
    say(model.message)
    model.module.to(device)

    train_batches, val_batches = photo_loaders(params, classes, train, validation, model)
    history, best = fine_tune(params, model, len(classes), train_batches, val_batches, device)
    best.restore(model.module)
    final = ft.evaluate(model.module, val_batches, len(classes), device)
    write_confusion(params["log_dir"], classes, final)
    say(f"kept epoch {best.epoch}: validation accuracy {final.accuracy:.4f}")
    write_model(params, model, classes, final, history, best.epoch)


def photo_loaders(params: dict, classes: list[str], train: list, validation: list, model):
    from workers.runners import autodl_finetune as ft

    index = {name: i for i, name in enumerate(classes)}
    size, mean, std = params["image_size"], model.backbone.mean, model.backbone.std
    limit = rules_for("transfer").pixel_limit
    train_set = ft.PhotoDataset(
        train, index, ft.train_transform(size, mean, std), limit, draft_size=2 * size
    )
    # Validation photos are decoded whole, as the prediction service decodes them.
    val_set = ft.PhotoDataset(validation, index, ft.eval_transform(size, mean, std), limit)
    batch, seed = params["batch_size"], params["seed"]
    return (
        ft.loader(train_set, batch, shuffle=True, seed=seed),
        ft.loader(val_set, batch, shuffle=False, seed=seed),
    )


def fine_tune(params: dict, model, num_classes: int, train_batches, val_batches, device):
    from workers.runners import autodl_finetune as ft

    epochs = params["epochs"]
    head_epochs = ft.head_epoch_count(epochs)
    say(
        f"fine-tuning {params['backbone']} on {device}: {head_epochs} epoch(s) of the head "
        f"alone, then {epochs - head_epochs} of the whole network"
    )
    history, best = [], ft.BestWeights()
    optimizer, scheduler = ft.head_phase(model), None
    for epoch in range(1, epochs + 1):
        phase = "head" if epoch <= head_epochs else "full"
        if epoch == head_epochs + 1:
            optimizer = ft.full_phase(model)
            steps = (epochs - head_epochs) * len(train_batches)
            scheduler = ft.cosine_schedule(optimizer, steps)
        started = time.monotonic()
        train_loss, train_acc = ft.train_one_epoch(
            model,
            train_batches,
            optimizer,
            device,
            body_frozen=phase == "head",
            scheduler=scheduler,
        )
        val = ft.evaluate(model.module, val_batches, num_classes, device)
        result = ft.EpochResult(
            epoch, phase, train_loss, train_acc, val.loss, val.accuracy, time.monotonic() - started
        )
        history.append(result)
        kept = best.offer(model.module, result)
        report_epoch(result, epochs, kept)
    return history, best


def report_epoch(result, epochs: int, kept: bool) -> None:
    say(
        f"epoch {result.epoch}/{epochs} ({result.phase}, {result.seconds:.1f} s): "
        f"train loss {result.train_loss:.4f} acc {result.train_acc:.4f}, "
        f"val loss {result.val_loss:.4f} acc {result.val_acc:.4f}" + (" *" if kept else "")
    )
    report(
        result.epoch,
        train_loss=result.train_loss,
        train_acc=result.train_acc,
        val_loss=result.val_loss,
        val_acc=result.val_acc,
    )


# ---- setup ---------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def choose_device():
    import torch

    from workers.runners.autodl_finetune import available_cpus

    if torch.cuda.is_available():
        return torch.device("cuda")
    if "OMP_NUM_THREADS" not in os.environ:  # the operator's setting wins
        torch.set_num_threads(available_cpus())
    return torch.device("cpu")


# ---- reports and outputs -------------------------------------------------------------------


def write_preprocess_report(params: dict, classes: list[str], train: list, validation: list):
    counts = {name: {"train": 0, "validation": 0} for name in classes}
    for _, name in train:
        counts[name]["train"] += 1
    for _, name in validation:
        counts[name]["validation"] += 1
    for name in classes:
        say(f"class {name}: {counts[name]['train']} train, {counts[name]['validation']} validation")
    samples = write_samples(params, train)
    write_json(
        params["log_dir"] / "preprocess.json",
        {
            "validation_ratio": params["validation_ratio"],
            "seed": params["seed"],
            "image_size": params["image_size"],
            "classes": counts,
            "train_total": len(train),
            "validation_total": len(validation),
            "augmentation": "training only: random resized crop (60-100% of the photo), "
            "horizontal flip, colour jitter (brightness, contrast, saturation 0.2)",
            "samples": samples,
        },
    )


def write_samples(params: dict, train: list) -> list[dict]:
    """A few augmented training photos, as the network sees them before normalisation."""
    from PIL import Image

    from workers.runners.autodl_finetune import augmentation

    folder = params["log_dir"] / "samples"
    folder.mkdir(exist_ok=True)
    augment = augmentation(min(params["image_size"], SAMPLE_SIDE))
    Image.MAX_IMAGE_PIXELS = rules_for("transfer").pixel_limit
    picked, per_class = [], {}
    for path, name in train:
        if len(picked) >= MAX_SAMPLES or per_class.get(name, 0) >= SAMPLES_PER_CLASS:
            continue
        per_class[name] = per_class.get(name, 0) + 1
        file = f"{name}_{per_class[name]}.png"
        with Image.open(path) as image:
            augment(image.convert("RGB")).save(folder / file, "PNG")
        picked.append({"file": f"samples/{file}", "class": name})
    return picked


def write_confusion(log_dir: Path, classes: list[str], evaluation) -> None:
    write_json(
        log_dir / "confusion.json",
        {
            "classes": classes,
            "matrix": evaluation.confusion,
            "rows": "true class",
            "columns": "predicted class",
            "accuracy": evaluation.accuracy,
            "loss": evaluation.loss,
        },
    )


def write_model(params, model, classes, evaluation, history, best_epoch) -> None:
    import torch

    folder = params["model_dir"]
    module = model.module.eval().cpu()
    torch.save(module.state_dict(), folder / "model.pth")
    autodl_backbones.export_torchscript(module, params["image_size"], folder / "model.pt")
    (folder / "labels.txt").write_text("".join(f"{name}\n" for name in classes), "utf-8")
    write_json(
        folder / "model_info.json",
        {
            "task": "image_classification",
            "backbone": params["backbone"],
            "pretrained": model.pretrained,
            "classes": classes,
            "num_classes": len(classes),
            "image_size": params["image_size"],
            "preprocessing": {
                "color": "RGB",
                "resize": f"{params['image_size']}x{params['image_size']}, bilinear",
                "scale": "pixel / 255",
                "mean": list(model.backbone.mean),
                "std": list(model.backbone.std),
                "layout": "NCHW float32",
            },
            "files": {
                "model.pth": "state_dict of the network",
                "model.pt": "TorchScript, normalised [N, 3, S, S] in, [N, classes] scores out",
                "labels.txt": "class names in output index order",
            },
            "serving": {"type": "image_classification", "image_size": params["image_size"]},
            "val_accuracy": evaluation.accuracy,
            "val_loss": evaluation.loss,
            "best_epoch": best_epoch,
            "epochs": params["epochs"],
            "batch_size": params["batch_size"],
            "validation_ratio": params["validation_ratio"],
            "seed": params["seed"],
            "history": [vars(result) for result in history],
        },
    )
    say(f"model written to {folder}/: model.pth, model.pt, labels.txt, model_info.json")


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    return cli(run, WHAT, argv)


if __name__ == "__main__":
    sys.exit(main())
