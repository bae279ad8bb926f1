"""AutoDL transfer learning (workers/runners/autodl_transfer.py): EfficientNet-Lite0 with its
installed ImageNet weights, fine-tuned for real on the CPU on rendered shapes (circles,
squares, triangles in random colours, sizes and places), then served through the
image_classification model type as a prediction service would.

No Django and no database: also runs with
`pytest tests/workers/test_autodl_transfer.py -p no:django`.
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

import pytest
from PIL import Image, ImageDraw

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SHAPES = ("circle", "square", "triangle")
SIDE = 64


def render(shape: str, rng: random.Random) -> Image.Image:
    """One shape, filled, in a random colour on a random light background."""
    background = tuple(rng.randint(170, 255) for _ in range(3))
    colour = tuple(rng.randint(0, 120) for _ in range(3))
    image = Image.new("RGB", (SIDE, SIDE), background)
    draw = ImageDraw.Draw(image)
    size = rng.randint(26, 44)
    left, top = rng.randint(2, SIDE - size - 2), rng.randint(2, SIDE - size - 2)
    box = (left, top, left + size, top + size)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(left + size / 2, top), (left, top + size), (left + size, top + size)], colour
        )
    return image


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def shapes_zip(path: Path, per_class: int, classes=SHAPES, seed: int = 1) -> Path:
    """One folder per class; PNG and JPEG photos mixed, as users upload them."""
    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for shape in classes:
            for index in range(per_class):
                fmt, suffix = ("PNG", "png") if index % 2 else ("JPEG", "jpg")
                archive.writestr(f"{shape}/{index}.{suffix}", encoded(render(shape, rng), fmt))
    return path


def run_trainer(workspace: Path, params: dict) -> subprocess.CompletedProcess:
    """As the job engine runs it: a subprocess in the job's workspace."""
    (workspace / "params.json").write_text(json.dumps(params))
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}:{REPO / 'sdk'}",
        "BML_METRICS_FILE": str(workspace / "metrics.jsonl"),
    }
    return subprocess.run(
        [sys.executable, "-m", "workers.runners.autodl_transfer", "--params", "params.json"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One real training shared by the tests of its outputs (it is the slow part)."""
    workspace = tmp_path_factory.mktemp("autodl")
    shapes_zip(workspace / "shapes.zip", per_class=25)
    params = {
        "input": "shapes.zip",
        "image_size": SIDE,
        "epochs": 4,
        "batch_size": 16,
        "validation_ratio": 0.2,
        "seed": 3,
    }
    result = run_trainer(workspace, params)
    assert result.returncode == 0, result.stderr[-3000:]
    return workspace, result


def test_training_writes_the_model_and_the_reports(trained):
    workspace, result = trained
    model, log = workspace / "model", workspace / "log"
    for name in ("model.pth", "model.pt", "labels.txt", "model_info.json"):
        assert (model / name).is_file(), name
    assert (model / "labels.txt").read_text().split() == sorted(SHAPES)
    info = json.loads((model / "model_info.json").read_text())
    assert info["backbone"] == "efficientnet-lite0" and info["pretrained"] is True
    assert info["classes"] == sorted(SHAPES) and info["image_size"] == SIDE
    assert info["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    assert len(info["history"]) == 4 and info["epochs"] == 4
    # The log says where the weights came from and that the whole backbone matched.
    assert "ImageNet weights" in result.stdout and "backbone tensors matched" in result.stdout

    data_report = json.loads((log / "data_report.json").read_text())
    assert data_report["ok"] and data_report["classes"] == {s: 25 for s in sorted(SHAPES)}
    preprocess = json.loads((log / "preprocess.json").read_text())
    assert preprocess["classes"] == {s: {"train": 20, "validation": 5} for s in sorted(SHAPES)}
    assert preprocess["samples"] and all((log / s["file"]).is_file() for s in preprocess["samples"])
    with Image.open(log / preprocess["samples"][0]["file"]) as sample:
        assert sample.format == "PNG" and sample.size == (SIDE, SIDE)

    confusion = json.loads((log / "confusion.json").read_text())
    assert confusion["classes"] == sorted(SHAPES)
    assert sum(map(sum, confusion["matrix"])) == 15  # every validation photo, once
    # The extracted photos are gone; only what the job publishes stays.
    assert not list(workspace.glob(".autodl-photos-*"))


def test_validation_accuracy_is_well_above_chance(trained):
    workspace, _ = trained
    info = json.loads((workspace / "model" / "model_info.json").read_text())
    assert info["val_accuracy"] > 0.6  # chance is 1/3
    confusion = json.loads((workspace / "log" / "confusion.json").read_text())
    assert confusion["accuracy"] == info["val_accuracy"]


def test_model_pth_loads_strictly_into_a_fresh_network(trained):
    import torch

    from workers.runners.autodl_backbones import build_model

    workspace, _ = trained
    state = torch.load(workspace / "model" / "model.pth", map_location="cpu", weights_only=True)
    fresh = build_model("efficientnet-lite0", 3, SIDE, pretrained=False).module
    fresh.load_state_dict(state, strict=True)
    scripted = torch.jit.load(str(workspace / "model" / "model.pt"))
    example = torch.randn(2, 3, SIDE, SIDE)
    with torch.no_grad():
        assert torch.allclose(fresh.eval()(example), scripted(example), atol=1e-4)


def test_the_image_classification_type_serves_the_model(trained):
    from workers.runners.model_loaders import load

    workspace, _ = trained
    predictor = load("image_classification", workspace / "model", {"image_size": SIDE})
    rng = random.Random(99)
    circles = [render("circle", rng) for _ in range(5)]
    instances = [{"data": base64.b64encode(encoded(image, "PNG")).decode()} for image in circles]
    answers = predictor.predict(instances)
    assert all(len(answer) == 3 for answer in answers)  # top-k over the three classes
    assert all(abs(sum(a["score"] for a in answer) - 1) < 1e-3 for answer in answers)
    top = [answer[0]["label"] for answer in answers]
    assert top.count("circle") >= 3, top


def test_each_epoch_reports_its_curves(trained):
    workspace, _ = trained
    records = [json.loads(line) for line in (workspace / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for record in records:
        assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= record.keys()
        assert 0 <= record["val_acc"] <= 1


@pytest.mark.parametrize(
    ("classes", "per_class", "rule"),
    [(("circle",), 25, "class_count"), (SHAPES, 5, "photos_per_class")],
)
def test_data_breaking_a_hard_rule_fails_before_training(tmp_path, classes, per_class, rule):
    shapes_zip(tmp_path / "bad.zip", per_class=per_class, classes=classes)
    result = run_trainer(tmp_path, {"input": "bad.zip", "image_size": SIDE, "epochs": 1})
    assert result.returncode == 1
    assert rule in result.stderr and "nothing was trained" in result.stderr
    assert "fine-tuning" not in result.stdout
    assert json.loads((tmp_path / "log" / "data_report.json").read_text())["ok"] is False
    assert not (tmp_path / "model" / "model.pth").exists()


def test_parameters_out_of_range_are_refused(tmp_path):
    shapes_zip(tmp_path / "shapes.zip", per_class=20)
    result = run_trainer(tmp_path, {"input": "shapes.zip", "validation_ratio": 0.9})
    assert result.returncode == 1
    assert "validation_ratio must be in [0.05, 0.5]" in result.stderr


def test_a_backbone_without_installed_weights_says_it_trains_from_scratch(monkeypatch):
    from dataclasses import replace

    from workers.runners import autodl_backbones

    lite0 = autodl_backbones.BACKBONES["efficientnet-lite0"]
    monkeypatch.setitem(
        autodl_backbones.BACKBONES, lite0.name, replace(lite0, weights_file=lambda: None)
    )
    built = autodl_backbones.build_model(lite0.name, 4, SIDE, pretrained=True)
    assert built.pretrained is False and "FROM SCRATCH" in built.message


def test_pretrained_weights_that_do_not_fit_are_refused(tmp_path, monkeypatch):
    from dataclasses import replace

    import torch

    from workers.runners import autodl_backbones

    lite0 = autodl_backbones.BACKBONES["efficientnet-lite0"]
    state = torch.load(lite0.weights_file(), map_location="cpu", weights_only=True)
    del state["_conv_stem.weight"]  # one backbone tensor short: must not load half a network
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    monkeypatch.setitem(
        autodl_backbones.BACKBONES, lite0.name, replace(lite0, weights_file=lambda: partial)
    )
    with pytest.raises(autodl_backbones.BackboneError, match="_conv_stem.weight"):
        autodl_backbones.build_model(lite0.name, 3, SIDE, pretrained=True)


def test_blank_parameters_take_their_defaults():
    from workers.runners.autodl_transfer import parse_params

    params = parse_params({"input": "x.zip", "epochs": None, "image_size": "", "backbone": None})
    assert (params["epochs"], params["image_size"], params["validation_ratio"]) == (10, 224, 0.2)
    assert params["backbone"] == "efficientnet-lite0"
