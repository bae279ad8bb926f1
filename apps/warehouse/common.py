"""The common models every install has (the spec: "several sample models provided by the
platform"), ready to deploy: an iris classifier (scikit-learn, skops) and a small
handwritten-digit image classifier (TorchScript, the built-in image classification type),
both trained here from data bundled with scikit-learn (no download). The trained files are
cached under var/common-models/, stored in a bucket of the appliance's own, and checked by
loading them like any import."""

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.storage.client import ObjectNotFound, get_client, translate_errors
from apps.warehouse.models import Model, ModelVersion, Source
from apps.warehouse.services import check_loads

COMMON_BUCKET = "bml-common-models"
DIGITS_IMAGE_SIZE = 32
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CommonModel:
    name: str
    model_type: str
    fields: dict
    description: str
    tags: tuple[str, ...]


IRIS = CommonModel(
    "iris_classifier",
    "sklearn",
    {},
    "Logistic regression on Fisher's iris: 4 measurements in cm -> species.",
    ("sample", "tabular"),
)
DIGITS = CommonModel(
    "digits_image_classifier",
    "image_classification",
    {"image_size": DIGITS_IMAGE_SIZE},
    "A small CNN reading handwritten digits (white on black), trained on scikit-learn's "
    "8x8 digits: a base64 image -> the digit.",
    ("sample", "image"),
)


def _build_iris(folder: Path) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target_names[data.target])
    sio.dump(model, folder / "iris_classifier.skops")


def _build_digits(folder: Path) -> None:
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    # What the image loader feeds the model: 3 channels at image_size, ImageNet-normalised.
    images = nn.functional.interpolate(images, size=DIGITS_IMAGE_SIZE, mode="bilinear")
    images = images.repeat(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    images, labels = (images - mean) / std, torch.tensor(digits.target)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (DIGITS_IMAGE_SIZE // 4) ** 2, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(8):
        for batch in torch.randperm(len(labels)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    model.eval()
    with warnings.catch_warnings():  # torch 2.14 marks torch.jit deprecated; it still works
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(model, images[:1]), folder / "model.pt")
    (folder / "labels.txt").write_text("\n".join(str(d) for d in range(10)) + "\n")


BUILDERS = {IRIS.name: (IRIS, _build_iris), DIGITS.name: (DIGITS, _build_digits)}


def _stored(version: ModelVersion | None) -> bool:
    if version is None:
        return False
    key = version.path.removeprefix(f"bos://{COMMON_BUCKET}/")
    try:
        with translate_errors():
            return any(get_client().list_objects(COMMON_BUCKET, prefix=key))
    except ObjectNotFound:
        return False


def seed_common_models() -> list[str]:
    """Make sure every common model exists, is stored and loads; returns those made now."""
    client = get_client()
    with translate_errors():
        if not client.bucket_exists(COMMON_BUCKET):
            client.make_bucket(COMMON_BUCKET)
    cache = Path(settings.VAR_DIR) / "common-models"
    seeded = []
    for name, (spec, build) in BUILDERS.items():
        existing = ModelVersion.objects.filter(model__is_common=True, model__name=name).first()
        if _stored(existing):
            continue
        folder = cache / name
        if not any(folder.glob("*")):
            folder.mkdir(parents=True, exist_ok=True)
            build(folder)
        prefix = f"models/{name}/1/"
        files = sorted(p for p in folder.iterdir() if p.is_file())
        with translate_errors():
            for path in files:
                client.fput_object(COMMON_BUCKET, prefix + path.name, str(path))
        target = files[0] if len(files) == 1 else folder
        with tempfile.TemporaryDirectory() as tmp:
            info = check_loads(target, spec.model_type, spec.fields, Path(tmp))
        with transaction.atomic():
            model, _ = Model.objects.update_or_create(
                is_common=True,
                name=name,
                defaults={
                    "project": None,
                    "description": spec.description,
                    "tags": list(spec.tags),
                },
            )
            ModelVersion.objects.update_or_create(
                model=model,
                version=1,
                defaults={
                    "model_type": spec.model_type,
                    "fields": spec.fields,
                    "path": f"bos://{COMMON_BUCKET}/{prefix}",
                    "source": Source.COMMON,
                    "source_detail": "trained on data bundled with scikit-learn",
                    "description": spec.description,
                    "info": info,
                    "size_bytes": sum(p.stat().st_size for p in files),
                },
            )
        seeded.append(name)
    return seeded
