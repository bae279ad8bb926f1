"""AutoDL Image Sorting - ENAS (the spec's "AutoDL Job"): a neural architecture search on the
user's photos, one folder per class, by Efficient Neural Architecture Search (Pham et al.
2018), then the architecture found trained from scratch and saved as the spec's Keras HDF5.
No Django import.

Run by the job engine with the job's workspace as cwd:

    python -m workers.runners.autodl_enas --params params.json

params.json (each optional but input):
    input             the staged training data: a .zip, or a folder whose zips are all used
    validation_ratio  share of each class held out for validation, 0.05-0.5 (0.2)
    image_size        side of the square network input, 16-128, a multiple of 4 (32)
    layers            searched layers, 2-12 (6); channels 8-128 (32)
    search_rounds     rounds of the search, 1-100 (30)
    controller_steps  controller steps per round, 1-500 (30)
    derive_samples    children the trained controller proposes for the final pick, 1-100 (10)
    final_epochs      epochs of the from-scratch training, 1-300 (30)
    random_baselines  random architectures trained with the same budget, 0-10 (2)
    batch_size        8-512 (64); seed (0)
    model_dir, log_dir   output folders ("model", "log")

Steps:
    1. the data check (autodl_data.py with the spec's ENAS rules: >= 50 photos a class, each
       100 KB-3 MB, aspect within 3:1, sides in (30, 4096) px), log/data_report.json; a
       broken hard rule fails the job before any training
    2. a seeded stratified split: validation (never seen by the search), and of the rest a
       fifth as the controller's reward photos; log/preprocess.json
    3. the search (autodl_enas_search.py), `search_rounds` rounds; per round the curves
       shared_loss, shared_acc, controller_reward, controller_entropy, and the best child
       so far (scored on the reward photos) in log/enas.json, which the job page draws live
    4. the controller proposes `derive_samples` children; the best on the reward photos is
       trained from scratch in Keras (autodl_enas_keras.py) on all the non-validation photos
       (curves retrain_loss, retrain_acc, retrain_val_acc), then `random_baselines` random
       architectures of the space with the same budget: the fairness check (Li & Talwalkar
       2019 found random search a strong baseline for ENAS), in log/enas.json's "final"
    5. log/confusion.json: the kept model's confusion matrix on the validation photos

Outputs (model/):
    model.h5         the Keras HDF5 model (structure and weights): float32 RGB pixels
                     [N, S, S, 3] (0-255, channels last) in, [N, classes] logits out; reloaded
                     and checked against the trained model on a seeded batch before the job ends
    labels.txt       the class names, one a line, in output index order
    model_info.json  the architecture, classes, image_size, input layout, validation accuracy,
                     the fairness check

Failure: the message on stderr and exit code 1.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.runners.autodl_enas_space import (
    OPS,
    Architecture,
    graph,
    random_architecture,
    reductions,
)
from workers.runners.autodl_rules import rules_for
from workers.runners.autodl_transfer import (
    check_data,
    choose_device,
    with_defaults,
    write_confusion,
    write_json,
)
from workers.runners.ml_lr import RunnerError, cli, number, report, say

WHAT = "AutoDL ENAS"
REWARD_SHARE = 0.2  # of the non-validation photos: the controller's reward set
ROUND_DERIVE_SAMPLES = 4  # children scored after each round for the live "best so far"
DEFAULTS = {
    "validation_ratio": 0.2,
    "image_size": 32,
    "layers": 6,
    "channels": 32,
    "search_rounds": 30,
    "controller_steps": 30,
    "derive_samples": 10,
    "final_epochs": 30,
    "random_baselines": 2,
    "batch_size": 64,
    "seed": 0,
}


def parse_params(raw: dict) -> dict:
    raw, source = with_defaults(raw, DEFAULTS)
    params = {
        "input": source,
        "validation_ratio": number(raw, "validation_ratio", 0.05, 0.5),
        "image_size": number(raw, "image_size", 16, 128, integer=True),
        "layers": number(raw, "layers", 2, 12, integer=True),
        "channels": number(raw, "channels", 8, 128, integer=True),
        "search_rounds": number(raw, "search_rounds", 1, 100, integer=True),
        "controller_steps": number(raw, "controller_steps", 1, 500, integer=True),
        "derive_samples": number(raw, "derive_samples", 1, 100, integer=True),
        "final_epochs": number(raw, "final_epochs", 1, 300, integer=True),
        "random_baselines": number(raw, "random_baselines", 0, 10, integer=True),
        "batch_size": number(raw, "batch_size", 8, 512, integer=True),
        "seed": number(raw, "seed", 0, 2**31 - 1, integer=True),
        "model_dir": Path(raw.get("model_dir") or "model"),
        "log_dir": Path(raw.get("log_dir") or "log"),
    }
    if params["image_size"] % 4:
        # Two reductions halve the map twice; skips across them are pooled 2x or 4x.
        raise RunnerError(f"image_size must be a multiple of 4, got {params['image_size']}")
    return params


# ---- the photos --------------------------------------------------------------------------------


@dataclass
class Photos:
    classes: list[str]
    train_x: np.ndarray  # uint8 [N, S, S, 3]
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray


def decode(items: list[tuple[Path, str]], classes: list[str], size: int):
    """The photos as the prediction service decodes them: RGB, a bilinear resize to S x S."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = rules_for("enas").pixel_limit
    index = {name: i for i, name in enumerate(classes)}
    pixels = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, (path, _name) in enumerate(items):
        with Image.open(path) as image:
            image.draft("RGB", (2 * size, 2 * size))  # JPEG: decoded at a reduced scale
            pixels[i] = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
    labels = np.array([index[name] for _, name in items], dtype=np.int64)
    return pixels, labels


def split_photos(params: dict, labelled: list) -> tuple[list[str], dict]:
    from workers.runners.autodl_finetune import stratified_split

    classes = sorted({name for _, name in labelled})
    rest, validation = stratified_split(labelled, params["validation_ratio"], params["seed"])
    search_train, reward = stratified_split(rest, REWARD_SHARE, params["seed"] + 1)
    size = params["image_size"]
    sets = {
        name: decode(items, classes, size)
        for name, items in (
            ("search_train", search_train),
            ("reward", reward),
            ("validation", validation),
        )
    }
    counts = {name: {"search": 0, "reward": 0, "validation": 0} for name in classes}
    for key, items in (("search", search_train), ("reward", reward), ("validation", validation)):
        for _, name in items:
            counts[name][key] += 1
    write_json(
        params["log_dir"] / "preprocess.json",
        {
            "validation_ratio": params["validation_ratio"],
            "seed": params["seed"],
            "image_size": size,
            # train = what the from-scratch training learns from (search + reward photos)
            "classes": {
                name: {"train": c["search"] + c["reward"], "validation": c["validation"], **c}
                for name, c in counts.items()
            },
            "train_total": len(rest),
            "validation_total": len(validation),
            "augmentation": "training only: horizontal flip, shifts of up to 1/8 of the side",
            "samples": [],
        },
    )
    say(
        f"{len(search_train)} photos train the shared weights, {len(reward)} score the "
        f"controller, {len(validation)} are held out for validation ({size}x{size} px)"
    )
    return classes, sets


def batches(pixels: np.ndarray, labels: np.ndarray, batch_size: int, rng: random.Random):
    """Shuffled batches as tensors; a last batch of one photo is left out (batch
    normalisation needs two)."""
    import torch

    order = list(range(len(labels)))
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        if len(chosen) >= 2:
            yield torch.from_numpy(pixels[chosen]), torch.from_numpy(labels[chosen])


# ---- the run -----------------------------------------------------------------------------------


class Journal:
    """log/enas.json, written again after every step so the job page follows the search."""

    def __init__(self, params: dict, classes: list[str]):
        self.path = params["log_dir"] / "enas.json"
        self.value = {
            "stage": "search",
            "space": {
                "layers": params["layers"],
                "channels": params["channels"],
                "ops": list(OPS),
                "reductions": list(reductions(params["layers"])),
            },
            "classes": classes,
            "rounds": [],
            "best": None,
            "candidates": [],
            "final": [],
            "fairness": None,
        }

    def write(self, **changes) -> None:
        self.value.update(changes)
        write_json(self.path, self.value)


def arch_entry(arch: Architecture, **extra) -> dict:
    return {"architecture": arch.to_json(), "describe": arch.describe(), **extra}


def run(raw: dict) -> None:
    params = parse_params(raw)
    params["model_dir"].mkdir(parents=True, exist_ok=True)
    params["log_dir"].mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".autodl-photos-", dir=Path.cwd()) as photos:
        check = check_data(params, Path(photos), "enas")
        classes, sets = split_photos(params, check.labelled_paths())
    journal = Journal(params, classes)
    best = search(params, classes, sets, journal)
    train_final(params, classes, sets, best, journal)


def search(params: dict, classes: list[str], sets: dict, journal: Journal) -> Architecture:
    from workers.runners.autodl_enas_search import Search

    device = choose_device()
    rounds, batch_size = params["search_rounds"], params["batch_size"]
    train_x, train_y = sets["search_train"]
    steps = max(1, len(train_y) // batch_size)
    engine = Search(
        layers=params["layers"],
        channels=params["channels"],
        classes=len(classes),
        rounds=rounds,
        steps_per_round=steps,
        seed=params["seed"],
        device=device,
    )
    rng = random.Random(params["seed"])
    # Shuffled once: the photos come sorted by class, and a batch of one class scored with
    # batch statistics (as the paper scores children) normalises its class away - chance.
    reward_batches = list(batches(*sets["reward"], batch_size, random.Random(params["seed"] + 2)))
    say(
        f"searching {params['layers']} layers x {len(OPS)} operations with skips on {device}: "
        f"{rounds} round(s) of {steps} shared-weight step(s) and {params['controller_steps']} "
        "controller step(s)"
    )
    for round_ in range(1, rounds + 1):
        started = time.monotonic()
        shared_loss, shared_acc = engine.train_shared(batches(train_x, train_y, batch_size, rng))
        reward, entropy, skip_share = engine.train_controller(
            params["controller_steps"], reward_batches
        )
        (arch, score), *_ = engine.derive(ROUND_DERIVE_SAMPLES, reward_batches)
        seconds = time.monotonic() - started
        point = {
            "round": round_,
            "shared_loss": shared_loss,
            "shared_acc": shared_acc,
            "reward": reward,
            "baseline": engine.baseline,
            "entropy": entropy,
            "skip_share": skip_share,
            "best_acc": score,
            "seconds": seconds,
        }
        report(
            round_,
            shared_loss=shared_loss,
            shared_acc=shared_acc,
            controller_reward=reward,
            controller_entropy=entropy,
        )
        best = journal.value["best"]
        if best is None or score >= best["search_acc"]:
            best = arch_entry(arch, search_acc=score, round=round_, graph=graph(arch))
        journal.write(rounds=journal.value["rounds"] + [point], best=best)
        say(
            f"round {round_}/{rounds} ({seconds:.1f} s): shared loss {shared_loss:.4f} acc "
            f"{shared_acc:.4f}, reward {reward:.4f}, entropy {entropy:.3f}, best child "
            f"{score:.4f}: {arch.describe()}"
        )
    # The last round's best was scored with the same final weights: it stays in the running.
    candidates = dict(engine.derive(params["derive_samples"], reward_batches))
    candidates.setdefault(arch, score)
    candidates = sorted(candidates.items(), key=lambda item: -item[1])
    arch, score = candidates[0]
    journal.write(
        stage="retrain",
        candidates=[arch_entry(a, search_acc=s) for a, s in candidates],
        best=arch_entry(arch, search_acc=score, round="final", graph=graph(arch)),
    )
    say(f"the controller proposed {len(candidates)} children; best {score:.4f}: {arch.describe()}")
    return arch


def train_final(params, classes, sets, arch: Architecture, journal: Journal) -> None:
    from workers.runners import autodl_enas_keras as trainer

    data = Photos(
        classes,
        np.concatenate([sets["search_train"][0], sets["reward"][0]]),
        np.concatenate([sets["search_train"][1], sets["reward"][1]]),
        *sets["validation"],
    )
    budget = {
        "channels": params["channels"],
        "epochs": params["final_epochs"],
        "batch_size": params["batch_size"],
        "seed": params["seed"],
    }

    def on_epoch(point: dict) -> None:
        report(
            point["epoch"],
            retrain_loss=point["loss"],
            retrain_acc=point["acc"],
            retrain_val_acc=point["val_acc"],
        )
        say(
            f"from scratch, epoch {point['epoch']}/{params['final_epochs']}: loss "
            f"{point['loss']:.4f} acc {point['acc']:.4f}, val loss {point['val_loss']:.4f} acc "
            f"{point['val_acc']:.4f}"
        )

    epochs = params["final_epochs"]
    say(f"training the architecture found from scratch in Keras for {epochs} epoch(s)")
    found = trainer.train_from_scratch(arch, data, on_epoch=on_epoch, **budget)
    final = [final_entry("ENAS", arch, found)]
    journal.write(stage="random baselines", final=final)
    rng = random.Random(params["seed"] + 7)
    for k in range(1, params["random_baselines"] + 1):
        other = random_architecture(rng, params["layers"])
        say(f"fairness check {k}/{params['random_baselines']}: a random architecture, same budget")
        trained = trainer.train_from_scratch(other, data, **budget)
        say(f"random {k}: validation accuracy {trained.val_acc:.4f} ({other.describe()})")
        final.append(final_entry(f"random {k}", other, trained))
        journal.write(final=final)
    randoms = [entry["val_acc"] for entry in final[1:]]
    fairness = None
    if randoms:
        median = statistics.median(randoms)
        fairness = {
            "enas_val_acc": found.val_acc,
            "random_median_val_acc": median,
            "random_val_accs": randoms,
            "beats_median": found.val_acc > median,
        }
        say(
            f"fairness check: ENAS {found.val_acc:.4f} against the random median {median:.4f}"
            + ("" if found.val_acc > median else " (the search did not beat random here)")
        )
    write_outputs(params, classes, arch, found, final, fairness)
    journal.write(stage="done", final=final, fairness=fairness)


def final_entry(name: str, arch: Architecture, trained) -> dict:
    return arch_entry(
        arch,
        name=name,
        val_acc=trained.val_acc,
        val_loss=trained.val_loss,
        best_epoch=trained.best_epoch,
        parameters=trained.parameters,
        seconds=round(trained.seconds, 2),
    )


def write_outputs(params, classes, arch, found, final, fairness) -> None:
    from workers.runners.autodl_enas_keras import save_hdf5
    from workers.runners.autodl_finetune import Evaluation

    folder, size = params["model_dir"], params["image_size"]
    difference = save_hdf5(found.model, folder / "model.h5", params["seed"], params["batch_size"])
    say(f"model.h5 reloaded gives the trained outputs (largest difference {difference:.2g})")
    (folder / "labels.txt").write_text("".join(f"{name}\n" for name in classes), "utf-8")
    write_confusion(
        params["log_dir"], classes, Evaluation(found.val_loss, found.val_acc, found.confusion)
    )
    write_json(
        folder / "model_info.json",
        {
            "task": "image_classification",
            "method": "enas",
            "architecture": arch.to_json(),
            "describe": arch.describe(),
            "space": {"layers": params["layers"], "channels": params["channels"], "ops": list(OPS)},
            "classes": classes,
            "num_classes": len(classes),
            "image_size": size,
            "input": f"float32 RGB pixels 0-255, [N, {size}, {size}, 3] (channels last); "
            "the model rescales them itself",
            "output": "logits [N, classes], in the order of labels.txt",
            "files": {
                "model.h5": "Keras HDF5: structure and weights (keras.models.load_model)",
                "labels.txt": "class names in output index order",
            },
            "serving": {"type": "keras", "output": "logits"},
            "val_accuracy": found.val_acc,
            "val_loss": found.val_loss,
            "best_epoch": found.best_epoch,
            "parameters": found.parameters,
            "reload_max_difference": difference,
            "final": final,
            "fairness": fairness,
            "history": found.history,
        },
    )
    say(f"model written to {folder}/: model.h5, labels.txt, model_info.json")


def main(argv: list[str] | None = None) -> int:
    return cli(run, WHAT, argv)


if __name__ == "__main__":
    sys.exit(main())
