"""AutoDL (issue 22). Part "transfer": seconds until transfer learning reaches 95 % validation
accuracy on the CPU, our job's trainer beside the plain torchvision fine-tuning script a
user would write (benchmarks/autodl_parts/peer_finetune.py), on the same generated photos, the
same validation photos and the same pretrained network. Part "enas": the architecture
ENAS finds beside the median of 5 random architectures of its space trained with the same
budget (benchmarks/autodl_parts/enas.py says how). The photos: autodl_parts/photos.py.

    .venv/bin/python benchmarks/autodl.py [--quick | --smoke] [--part transfer|enas|all]

Measured on 2 cores, nothing else running (load 0.5), full run (4 minutes): ours reached
0.995 at its first epoch (of the head alone) 13.2 s after its start, 3.4 s of it before the
epoch; the job went on to 10 epochs (1.0 from epoch 2), 176 s in all, well inside the spec's
10 minutes. The peer reached 0.98 at its first epoch (of the whole network, 29.3 s) 32.0 s
after its start: ratio 0.413, meets. A first full run under heavy load (an ENAS job and a
browser test beside it) had printed 41.4 s against 334.3 s, a ratio that said nothing.
--smoke: 23 s.

Data (generate(), offline, deterministic): 5 classes of rendered shapes - circle, square,
triangle, star, ring - one per photo, filled or outlined in a random colour, random size,
place and rotation, over a random two-colour gradient background with distractor lines and
dots, pixel noise, saved as JPEG at a random quality; a zip with one folder per class,
exactly what the job takes. Full: 5 x 200 photos of 224 x 224 px; --quick: 5 x 40 of
128 px; --smoke: 5 x 20 (the job's minimum per class) of 64 px.

Ours: the job's runner (workers/runners/autodl_transfer.py) as the job engine starts it, a
subprocess in a fresh workspace with params.json: validation_ratio 0.2, seed 0, batch 32,
image_size 128, 10 epochs (its schedule: 3 of the head alone, 7 of the whole network). The
peer: autodl_parts/peer_finetune.py, a subprocess too, given the zip (it unzips it itself, as the
job extracts and checks it), the list of the validation photos of the job's own split
(autodl_data.check_training_data + autodl_finetune.stratified_split over the same zip, as
the runner calls them), the same pretrained EfficientNet-Lite0 (autodl_backbones.build_model,
pretrained=True), image size, batch size, DataLoader workers (autodl_finetune.loader_workers:
0 on 2 cores) and torch threads; its recipe is the usual one (the whole network from the
first epoch, Adam at 1e-3, RandomResizedCrop + flip / Resize + CenterCrop; its docstring
says why Adam at 1e-3: the strongest of the usual rates tried), at most 20 epochs, stopped
after the first at 95 %. They run one after the other, never together.

Why image_size 128: on 2 CPU cores an epoch of EfficientNet-Lite0 over 800 photos at 224 px
costs about three times one at 128 px (the network's work grows with the pixels), and the
shapes are as plain at 128; a user on a CPU host picks the smaller size for the same reason.
Both sides use it.

Timing: wall clock from just before the process is started (Python and torch start-up,
unzipping, the job's data check of every photo, building the network) to the moment the
line of the first epoch whose validation accuracy is >= 0.95 arrives on its stdout (both
print each epoch's line flushed as the epoch ends; the lines are read as they come and
stamped with time.monotonic()). What ours does after that epoch (more epochs, the
TorchScript export) is not counted, but the whole job's time is printed. A side that never
reaches 0.95 counts its whole run, and the goal is not met. Figure: seconds to 95 %, ours
and peer; ratio ours / peer. Goal: ratio <= 1.0 and ours < 600 s (the spec's promise:
>= 95 % on CPU in under 10 minutes). --smoke (tests/benchmarks/test_smoke.py): 1 epoch
each, no goal judged.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autodl_parts.enas import enas  # noqa: E402 - benchmarks/ is sys.path[0]
from autodl_parts.photos import SHAPES, generate  # noqa: E402

from workers.runners import autodl_finetune  # noqa: E402
from workers.runners.autodl_data import check_training_data  # noqa: E402

TARGET = 0.95
GOAL_SECONDS = 600
GOAL_RATIO = 1.0
TRANSFER_SIZES = {
    "full": {"per_class": 200, "side": 224, "image_size": 128, "epochs": 10, "peer_epochs": 20},
    "quick": {"per_class": 40, "side": 128, "image_size": 96, "epochs": 6, "peer_epochs": 12},
    "smoke": {"per_class": 20, "side": 64, "image_size": 64, "epochs": 1, "peer_epochs": 1},
}
RUN = {"validation_ratio": 0.2, "batch_size": 32, "seed": 0}
OURS_EPOCH = re.compile(r"^epoch (\d+)/\d+ .*val loss \S+ acc ([0-9.]+)")
PEER_EPOCH = re.compile(r"^epoch (\d+)/\d+ .*val_acc ([0-9.]+)")


# ---- the photos ----------------------------------------------------------------------------


def validation_members(archive: Path, work: Path) -> list[str]:
    """The archive members the job holds out: its data check and its seeded split, called
    as autodl_transfer calls them (the extracted names are the job's own, so the members
    are mapped back through the check's samples)."""
    check = check_training_data(archive, work, "transfer")
    if not check.ok:
        raise RuntimeError(f"the generated data breaks the job's rules: {check.report['errors']}")
    member = {sample.path: sample.member for sample in check.samples}
    _, validation = autodl_finetune.stratified_split(
        check.labelled_paths(), RUN["validation_ratio"], RUN["seed"]
    )
    return sorted(member[path] for path, _ in validation)


# ---- timed runs ----------------------------------------------------------------------------


def timed_run(command: list[str], cwd: Path, env: dict, pattern: re.Pattern, name: str):
    """Run to the end; every epoch line stamped as it arrives. (epochs, total seconds):
    epochs as [(epoch, val_acc, seconds since start)]."""
    epochs = []
    with (cwd / f"{name}.stderr").open("w") as errors:
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        for line in process.stdout:
            stamp = time.monotonic() - started
            found = pattern.match(line)
            if found:
                epochs.append((int(found[1]), float(found[2]), stamp))
                print(f"  {name} {stamp:6.1f} s  {line.strip()}", flush=True)
        process.wait()
        total = time.monotonic() - started
    if process.returncode != 0:
        tail = (cwd / f"{name}.stderr").read_text()[-3000:]
        raise RuntimeError(f"{name} failed ({process.returncode}):\n{tail}")
    return epochs, total


def seconds_to_target(epochs: list, total: float) -> tuple[float, int | None]:
    for epoch, accuracy, stamp in epochs:
        if accuracy >= TARGET:
            return stamp, epoch
    return total, None


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'sdk'}"
    return {**env, **extra}


def run_ours(work: Path, data: Path, size: dict) -> tuple[list, float]:
    workspace = work / "ours"
    workspace.mkdir()
    params = {"input": str(data), "epochs": size["epochs"], "image_size": size["image_size"]}
    (workspace / "params.json").write_text(json.dumps({**params, **RUN}))
    command = [sys.executable, "-m", "workers.runners.autodl_transfer", "--params", "params.json"]
    env = child_env(BML_METRICS_FILE=str(workspace / "metrics.jsonl"))
    return timed_run(command, workspace, env, OURS_EPOCH, "ours")


def run_peer(work: Path, data: Path, validation: Path, size: dict, smoke: bool):
    workspace = work / "peer"
    workspace.mkdir()
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "autodl_parts" / "peer_finetune.py"),
        *("--input", str(data), "--work", str(workspace), "--validation-list", str(validation)),
        *("--image-size", str(size["image_size"]), "--epochs", str(size["peer_epochs"])),
        *("--batch-size", str(RUN["batch_size"]), "--seed", str(RUN["seed"])),
        *("--workers", str(autodl_finetune.loader_workers())),
        *("--threads", str(autodl_finetune.available_cpus())),  # as the job's choose_device
        *(() if smoke else ("--stop-at", str(TARGET))),
    ]
    return timed_run(command, workspace, child_env(), PEER_EPOCH, "peer")


def transfer(mode: str) -> dict:
    size, smoke = TRANSFER_SIZES[mode], mode == "smoke"
    with tempfile.TemporaryDirectory(prefix="bml-bench-autodl-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        data = generate(work / "shapes.zip", size["per_class"], size["side"])
        held_out = validation_members(data, work / "check")
        (work / "validation.txt").write_text("".join(f"{name}\n" for name in held_out))
        print(
            f"{len(SHAPES)} x {size['per_class']} photos of {size['side']} px, "
            f"{len(held_out)} held out ({time.monotonic() - started:.1f} s to make)",
            flush=True,
        )
        ours, ours_total = run_ours(work, data, size)
        peer, peer_total = run_peer(work, data, work / "validation.txt", size, smoke)
        info = json.loads((work / "ours" / "model" / "model_info.json").read_text())
    ours_s, ours_epoch = seconds_to_target(ours, ours_total)
    peer_s, peer_epoch = seconds_to_target(peer, peer_total)
    before_first = ours[0][2] - info["history"][0]["seconds"] if ours else None
    print(f"ours val_acc per epoch: {[acc for _, acc, _ in ours]}", flush=True)
    print(f"peer val_acc per epoch: {[acc for _, acc, _ in peer]}", flush=True)
    reached = ours_epoch is not None and peer_epoch is not None
    return {
        "figure": "autodl transfer: seconds to 95% validation accuracy (CPU)",
        "ours": round(ours_s, 1),
        "peer": round(peer_s, 1),
        "ratio": round(ours_s / peer_s, 3),
        "goal": f"<= {GOAL_RATIO} and ours < {GOAL_SECONDS} s",
        "meets": None
        if smoke
        else reached and ours_s / peer_s <= GOAL_RATIO and ours_s < GOAL_SECONDS,
        "ours_epoch_at_95": ours_epoch,
        "peer_epoch_at_95": peer_epoch,
        "ours_before_first_epoch_s": None if before_first is None else round(before_first, 1),
        "ours_epoch_s": [round(h["seconds"], 1) for h in info["history"]],
        "ours_job_s": round(ours_total, 1),
        "ours_best_val_acc": info["val_accuracy"],
        "photos": len(SHAPES) * size["per_class"],
        "photo_side": size["side"],
        "image_size": size["image_size"],
        "epochs": size["epochs"],
        "smoke": smoke,
    }


# One function per part; `--part all` runs every part in this order, the last RESULT last.
PARTS = {"transfer": transfer, "enas": enas}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 x 40 photos, 6 epochs")
    parser.add_argument("--smoke", action="store_true", help="tiny: runs, no figure")
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    args = parser.parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    parts = list(PARTS) if args.part == "all" else [args.part]
    for name in parts:
        print(f"== {name}", flush=True)
        result = PARTS[name](mode)
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
