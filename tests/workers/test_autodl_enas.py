"""AutoDL ENAS (workers/runners/autodl_enas*.py): the search space and its two builders (the
shared PyTorch network, the Keras model), the controller's policy gradient, and one real run
on the CPU over rendered shapes big enough for the spec's ENAS rules (100 KB-3 MB a photo):
the search's journal, the from-scratch model as a Keras HDF5 that reloads with the trained
outputs, the fairness check, and the model served through the keras model type.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.workers.test_autodl_transfer import shapes_zip

os.environ.setdefault("KERAS_BACKEND", "torch")

REPO = Path(__file__).resolve().parents[2]
SHAPES = ("circle", "square", "triangle")
PHOTO_SIDE = 216  # with the grain below, a PNG of this side weighs 100-115 KB


def photo(shape: str, rng: random.Random, grain: np.random.Generator) -> Image.Image:
    """A filled shape on a light background, with camera-like grain (which also keeps the
    PNG above the spec's 100 KB minimum)."""
    side = PHOTO_SIDE
    image = Image.new("RGB", (side, side), tuple(rng.randint(150, 255) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    size = rng.randint(80, 140)
    left, top = rng.randint(2, side - size - 2), rng.randint(2, side - size - 2)
    colour = tuple(rng.randint(0, 110) for _ in range(3))
    if shape == "circle":
        draw.ellipse((left, top, left + size, top + size), fill=colour)
    elif shape == "square":
        draw.rectangle((left, top, left + size, top + size), fill=colour)
    else:
        draw.polygon(
            [(left + size / 2, top), (left, top + size), (left + size, top + size)], colour
        )
    noisy = np.asarray(image).astype(np.int16) + grain.integers(-24, 25, (side, side, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def enas_photos_zip(path: Path, per_class: int = 50, classes=SHAPES, seed: int = 1) -> Path:
    rng, grain = random.Random(seed), np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for shape in classes:
            for index in range(per_class):
                buffer = io.BytesIO()
                photo(shape, rng, grain).save(buffer, "PNG")
                archive.writestr(f"{shape}/{index}.png", buffer.getvalue())
    return path


def run_enas(workspace: Path, params: dict) -> subprocess.CompletedProcess:
    """As the job engine runs it: a subprocess in the job's workspace."""
    (workspace / "params.json").write_text(json.dumps(params))
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}:{REPO / 'sdk'}",
        "BML_METRICS_FILE": str(workspace / "metrics.jsonl"),
    }
    return subprocess.run(
        [sys.executable, "-m", "workers.runners.autodl_enas", "--params", "params.json"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


TINY = {
    "image_size": 16,
    "layers": 4,
    "channels": 8,
    "search_rounds": 2,
    "controller_steps": 3,
    "derive_samples": 3,
    "final_epochs": 2,
    "random_baselines": 1,
    "batch_size": 16,
    "seed": 5,
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    workspace = tmp_path_factory.mktemp("enas")
    enas_photos_zip(workspace / "shapes.zip")
    result = run_enas(workspace, {"input": "shapes.zip", **TINY})
    assert result.returncode == 0, result.stderr[-3000:]
    return workspace, result


# ---- the space ----------------------------------------------------------------------------------


def test_architectures_keep_to_the_space():
    from workers.runners.autodl_enas_space import (
        OPS,
        Architecture,
        downsampling,
        graph,
        random_architecture,
        reductions,
    )

    assert reductions(6) == (1, 3) and reductions(4) == (0, 1) and reductions(2) == (0,)
    assert downsampling(6, 0, 5) == 4 and downsampling(6, 2, 3) == 1 and downsampling(6, 2, 5) == 2
    with pytest.raises(ValueError, match="layer 2: skips"):
        Architecture((0, 0, 0), ((), (), (1,)))  # layer 1 is layer 2's input already
    with pytest.raises(ValueError, match="operation 9"):
        Architecture((9,), ((),))
    rng = random.Random(0)
    drawn = [random_architecture(rng, 6) for _ in range(50)]
    assert {op for arch in drawn for op in arch.ops} == set(range(len(OPS)))
    assert any(arch.skips[5] for arch in drawn) and not any(arch.skips[1] for arch in drawn)
    arch = Architecture((0, 2, 4, 5), ((), (), (0,), (0, 1)))
    assert Architecture.from_json(json.loads(json.dumps(arch.to_json()))) == arch
    drawing = graph(arch)
    layers = [n for n in drawing["nodes"] if n["id"].startswith("layer")]
    assert [n["op"] for n in layers] == ["conv3x3", "sep3x3", "max3x3", "avg3x3"]
    skips = [(e["from"], e["to"]) for e in drawing["edges"] if e["kind"] == "skip"]
    assert skips == [("layer0", "layer2"), ("layer0", "layer3"), ("layer1", "layer3")]
    assert [n["id"] for n in drawing["nodes"] if n["id"].startswith("pool")] == ["pool0", "pool1"]


def test_both_builders_take_every_operation_and_skips_across_reductions():
    import torch

    from workers.runners.autodl_enas_search import SharedNetwork, to_input
    from workers.runners.autodl_enas_space import Architecture, build_keras

    arch = Architecture((1, 3, 4, 5, 0, 2), ((), (), (0,), (0, 1), (0, 2), (1, 3)))
    photos = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    shared = SharedNetwork(layers=6, channels=8, classes=3)
    assert shared(to_input(photos), arch).shape == (2, 3)
    model = build_keras(arch, classes=3, image_size=16, channels=8)
    assert tuple(model.predict(photos.numpy().astype("float32"), verbose=0).shape) == (2, 3)
    assert model.inputs[0].shape[1:] == (16, 16, 3)


def test_the_controller_learns_what_is_rewarded():
    """REINFORCE for real: rewarding children whose first layer is a 5x5 separable
    convolution makes the controller sample it far more often than its initial 1/6."""
    import torch

    from workers.runners.autodl_enas_search import Search

    search = Search(
        layers=3, channels=8, classes=2, rounds=1, steps_per_round=1, seed=0, device="cpu"
    )
    generator = torch.Generator().manual_seed(0)

    def share_of_target(n=300):
        with torch.no_grad():
            return sum(search.controller.sample(generator).arch.ops[0] == 3 for _ in range(n)) / n

    before = share_of_target()
    for _ in range(150):
        sample = search.controller.sample(generator)
        search.reinforce(sample, 1.0 if sample.arch.ops[0] == 3 else 0.0)
    after = share_of_target()
    assert before < 0.3 and after > 0.6, (before, after)


def test_sampled_children_are_valid_and_carry_their_log_probability():
    from workers.runners.autodl_enas_search import Controller

    controller = Controller(layers=5)
    sample = controller.sample()
    assert sample.arch.layers == 5 and sample.log_prob.requires_grad
    assert sample.log_prob.item() < 0 and sample.entropy.item() > 0
    assert 0.0 <= sample.skip_share <= 1.0


# ---- the run ------------------------------------------------------------------------------------


def test_the_run_writes_the_spec_outputs_and_its_search(searched):
    workspace, result = searched
    labels = (workspace / "model" / "labels.txt").read_text().split()
    assert labels == list(SHAPES)
    info = json.loads((workspace / "model" / "model_info.json").read_text())
    assert info["image_size"] == 16 and info["serving"] == {"type": "keras", "output": "logits"}
    assert info["reload_max_difference"] <= 1e-4
    journal = json.loads((workspace / "log" / "enas.json").read_text())
    assert journal["stage"] == "done" and len(journal["rounds"]) == 2
    assert journal["best"]["round"] == "final" and journal["best"]["graph"]["nodes"]
    assert journal["best"]["architecture"] == info["architecture"]
    assert [row["name"] for row in journal["final"]] == ["ENAS", "random 1"]
    fairness = journal["fairness"]
    assert fairness["random_val_accs"] == [journal["final"][1]["val_acc"]]
    assert fairness["beats_median"] == (
        fairness["enas_val_acc"] > fairness["random_median_val_acc"]
    )
    assert len(journal["candidates"]) >= 1
    confusion = json.loads((workspace / "log" / "confusion.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 30  # the 10 validation photos of each class
    report = json.loads((workspace / "log" / "data_report.json").read_text())
    assert report["total_photos"] == 150 and report["refused_count"] == 0
    assert "searching 4 layers" in result.stdout and "fairness check" in result.stdout


def test_each_round_and_epoch_reports_its_curves(searched):
    workspace, _ = searched
    points = [json.loads(line) for line in (workspace / "metrics.jsonl").read_text().splitlines()]
    rounds = [p for p in points if "controller_reward" in p]
    assert [p["step"] for p in rounds] == [1, 2]
    assert all({"shared_loss", "shared_acc", "controller_entropy"} <= set(p) for p in rounds)
    assert [p["step"] for p in points if "retrain_val_acc" in p] == [1, 2]


def test_the_hdf5_model_reloads_and_serves_the_spec_answer(searched):
    import keras

    from workers.runners.model_loaders_dl import load_keras

    workspace, _ = searched
    model = keras.models.load_model(str(workspace / "model" / "model.h5"), compile=False)
    rng = random.Random(9)
    image = photo("square", rng, np.random.default_rng(9))
    pixels = np.asarray(image.resize((16, 16), Image.BILINEAR), dtype="float32")[None]
    expected = model.predict(pixels, verbose=0)[0]
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    predictor = load_keras(workspace / "model", {"output": "logits"})
    spec_form = str(base64.b64encode(buffer.getvalue()))  # the spec client's "b'...'"
    (answer,) = predictor.run(predictor.prepare([{"data": spec_form}]))
    assert np.allclose(answer, expected, atol=1e-4)
    assert predictor.info["result_as_text"] and predictor.info["classes"] == list(SHAPES)


# ---- refusals -----------------------------------------------------------------------------------


def test_photos_under_the_spec_minimum_fail_before_the_search(tmp_path):
    shapes_zip(tmp_path / "small.zip", per_class=50)  # 64 px photos: a few KB each
    result = run_enas(tmp_path, {"input": "small.zip", **TINY})
    assert result.returncode == 1
    assert "nothing was trained" in result.stderr and "photos_per_class" in result.stderr
    report = json.loads((tmp_path / "log" / "data_report.json").read_text())
    assert {r["rule"] for r in report["refused"]} == {"file_size"}
    assert not (tmp_path / "log" / "enas.json").exists()


@pytest.mark.parametrize(
    "change,words",
    [
        ({"image_size": 30}, "multiple of 4"),
        ({"layers": 13}, "layers must be in [2, 12]"),
        ({"random_baselines": -1}, "random_baselines must be in [0, 10]"),
    ],
)
def test_parameters_out_of_range_are_refused(change, words):
    from workers.runners.autodl_enas import parse_params
    from workers.runners.ml_lr import RunnerError

    with pytest.raises(RunnerError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_params({"input": "x.zip", **change})
