"""The common models every install has (the spec: "several sample models provided by the
platform"), ready to deploy: an iris classifier (scikit-learn, skops) and a small digit image
classifier (TorchScript, the built-in image classification type) that reads digits drawn or
printed white on black, both trained here with nothing downloaded: scikit-learn's bundled data
and, for the digits, printed digits rendered from the system's fonts (Debian's
fonts-dejavu-core and fonts-liberation, which `make system` installs; a missing font is skipped
and Pillow's own font is always there).

Each common model has a revision, the version number it is stored as: a change to a builder
raises it, and the next start builds the model again and adds it as that version, leaving the
older versions in place for the services that use them. The trained files are cached under
var/common-models/<name>/<revision>/, stored in a bucket of the appliance's own, and checked by
loading them like any import."""

import math
import shutil
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
FONT_DIR = Path("/usr/share/fonts/truetype")
# The fonts the digits model learns printed digits from: all from fonts-dejavu-core and
# fonts-liberation, so every install trains on the same ones. tests/warehouse/
# test_digits_rendered.py reads digits in fonts left out here (and in Pillow's own font).
DIGITS_FONTS = (
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSansMono.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSerif.ttf",
    "dejavu/DejaVuSerif-Bold.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSans-Italic.ttf",
    "liberation/LiberationSerif-Regular.ttf",
    "liberation/LiberationSerif-Bold.ttf",
    "liberation/LiberationSerif-BoldItalic.ttf",
    "liberation/LiberationMono-Regular.ttf",
    "liberation/LiberationMono-Italic.ttf",
)


@dataclass(frozen=True)
class CommonModel:
    name: str
    model_type: str
    fields: dict
    description: str
    tags: tuple[str, ...]
    revision: int = 1  # the version it is stored as: raise it when its builder changes
    source_detail: str = "trained on data bundled with scikit-learn"


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
    "A small CNN reading one digit, drawn or printed, white on black (an image of any size, "
    "read at 32x32): a base64 image -> the digit. Trained on scikit-learn's handwritten 8x8 "
    "digits and digits rendered from fonts, at many sizes, positions, stroke widths and "
    "slants.",
    ("sample", "image"),
    revision=2,  # 1: scikit-learn's 8x8 digits only, which read every drawn digit as a 4
    source_detail="trained on scikit-learn's bundled digits and digits rendered from the "
    "system's fonts",
)


def _build_iris(folder: Path) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target_names[data.target])
    sio.dump(model, folder / "iris_classifier.skops")


# ---- digits --------------------------------------------------------------------------------
# Each digit to learn from is a glyph centred in a 64x64 canvas (twice the model's input), its
# longer side 48 pixels; every training step draws new variants of them: scaled, squeezed,
# rotated, sheared and moved anywhere in the frame, strokes thinned or thickened, then
# downsampled to 32x32 as PIL does, dimmed, blurred or noised. The model sees what the
# image_classification loader feeds it (workers/runners/model_loaders.py, image_batch):
# the grey image as RGB at 32x32, ImageNet-normalised.

_CANVAS, _BOX = 64, 48
_DIGITS_STEPS, _DIGITS_BATCH = 500, 128


def _fit_glyph(image):
    """The bright part of a grey PIL image scaled into the box, centred in a canvas."""
    import numpy as np
    from PIL import Image

    bbox = image.getbbox()
    if bbox is None:
        return None
    glyph = image.crop(bbox)
    ratio = _BOX / max(glyph.size)
    size = (max(1, round(glyph.width * ratio)), max(1, round(glyph.height * ratio)))
    glyph = glyph.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("L", (_CANVAS, _CANVAS))
    canvas.paste(glyph, ((_CANVAS - glyph.width) // 2, (_CANVAS - glyph.height) // 2))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _digit_fonts() -> list:
    from PIL import ImageFont

    fonts = []
    for name in DIGITS_FONTS:
        try:
            fonts.append(ImageFont.truetype(str(FONT_DIR / name), 96))
        except OSError:  # not installed: learn from the others
            continue
    try:
        fonts.append(ImageFont.load_default(size=96))  # Pillow's own (needs FreeType)
    except (ImportError, OSError, TypeError):
        fonts.append(ImageFont.load_default())
    return fonts


def _printed_digits():
    """(glyphs [N, 64, 64], labels [N]): 0-9 in each font."""
    import numpy as np
    from PIL import Image, ImageDraw

    glyphs, labels = [], []
    for font in _digit_fonts():
        for digit in range(10):
            image = Image.new("L", (192, 192))
            ImageDraw.Draw(image).text((48, 24), str(digit), fill=255, font=font)
            glyph = _fit_glyph(image)
            if glyph is not None:
                glyphs.append(glyph)
                labels.append(digit)
    return np.stack(glyphs), np.array(labels)


def _handwritten_digits():
    """(glyphs [1797, 64, 64], labels): scikit-learn's 8x8 digits, each a whole frame."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    glyphs = []
    for pixels in digits.images:
        image = Image.fromarray((pixels / 16 * 255).astype("uint8"))
        canvas = Image.new("L", (_CANVAS, _CANVAS))
        margin = (_CANVAS - _BOX) // 2
        canvas.paste(image.resize((_BOX, _BOX), Image.Resampling.BICUBIC), (margin, margin))
        glyphs.append(np.asarray(canvas, dtype=np.float32) / 255.0)
    return np.stack(glyphs), digits.target


def _dilate(x, radius: int):
    """Grey dilation of [N, 1, H, W] by a square of side 2 * radius + 1; erosion when
    radius < 0 (shifted maxima: far cheaper than a max pool with stride 1)."""
    from torch.nn import functional as F

    if radius < 0:
        return -_dilate(-x, -radius)
    size = x.shape[-1]
    padded = F.pad(x, (radius,) * 4)  # outside is background either way
    rows = padded[..., :, :size]
    for i in range(1, 2 * radius + 1):
        rows = rows.maximum(padded[..., :, i : i + size])
    out = rows[..., :size, :]
    for i in range(1, 2 * radius + 1):
        out = out.maximum(rows[..., i : i + size, :])
    return out


def _augment(glyphs, generator):
    """[N, 1, 64, 64] glyphs -> [N, 1, 32, 32] grey images in 0..1, each a new variant."""
    import torch
    from torch.nn import functional as F

    n = len(glyphs)

    def uniform(low, high):
        return low + (high - low) * torch.rand(n, generator=generator)

    # The affine map from the glyph to the frame (coordinates -1..1): rotation @ shear @
    # scale, then a shift that keeps the digit in the frame (centred or anywhere off centre).
    scale = uniform(0.5, 1.35)  # the box is 0.375-1 of the frame
    aspect = torch.exp(uniform(math.log(0.75), math.log(1.3)))
    angle, shear = uniform(-15, 15) * math.pi / 180, uniform(-0.3, 0.3)
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    cos, sin = angle.cos(), angle.sin()
    forward = torch.stack(
        [
            torch.stack([cos * sx, (cos * shear - sin) * sy], -1),
            torch.stack([sin * sx, (sin * shear + cos) * sy], -1),
        ],
        -2,
    )
    room_x = (1 - 0.75 * 0.8 * sx).clamp(min=0)  # digits are narrower than tall
    room_y = (1 - 0.75 * sy).clamp(min=0)
    shift = torch.stack([uniform(-1, 1) * room_x, uniform(-1, 1) * room_y], -1)
    inverse = torch.linalg.inv(forward)  # affine_grid maps the output back to the input
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(-1))], -1)
    grid = F.affine_grid(theta, [n, 1, _CANVAS, _CANVAS], align_corners=False)
    x = F.grid_sample(glyphs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Stroke width: thinner by 1, as is, or thicker by 1-3 pixels (of 64), small digits by
    # less so they keep their holes.
    odds = torch.tensor([0.15, 0.3, 0.25, 0.2, 0.1])
    radius = torch.multinomial(odds, n, replacement=True, generator=generator) - 1
    radius = radius.minimum((scale * 2.5).floor().long())
    for r in (-1, 1, 2, 3):
        chosen = radius == r
        if chosen.any():
            x[chosen] = _dilate(x[chosen], r)
    x = F.interpolate(
        x, size=DIGITS_IMAGE_SIZE, mode="bilinear", antialias=True, align_corners=False
    )  # as PIL's bilinear resize of a larger image
    x = (x * uniform(0.8, 2.5).view(n, 1, 1, 1)).clamp(0, 1)  # soft or crisp edges
    blurred = torch.rand(n, generator=generator) < 0.2
    if blurred.any():
        kernel = torch.tensor([0.25, 0.5, 0.25])
        kernel = (kernel[:, None] * kernel[None, :]).view(1, 1, 3, 3)
        x[blurred] = F.conv2d(x[blurred], kernel, padding=1)
    dim = torch.rand(n, generator=generator) < 0.3
    peak = torch.where(dim, uniform(0.5, 1.0), torch.ones(n))
    grey = torch.rand(n, generator=generator) < 0.2
    background = torch.where(grey, uniform(0.0, 0.15), torch.zeros(n))
    x = background.view(n, 1, 1, 1) + (peak - background).view(n, 1, 1, 1) * x
    noise = torch.randn(x.shape, generator=generator) * uniform(0, 0.04).view(n, 1, 1, 1)
    return (x + noise).clamp(0, 1)


def _as_loaded(x):
    """Grey [N, 1, H, W] in 0..1 -> what the image loader feeds: RGB, ImageNet-normalised."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x.repeat(1, 3, 1, 1) - mean) / std


def _build_digits(folder: Path) -> None:
    import torch
    from torch import nn

    # One thread: on a small shared machine two threads spent four times the CPU (spinning)
    # for the same model; this takes ~45 s of one core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(0)
        sets = [_printed_digits(), _handwritten_digits()]
        sets = [(torch.from_numpy(g).unsqueeze(1), torch.from_numpy(y)) for g, y in sets]
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(16),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(32),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(64),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * (DIGITS_IMAGE_SIZE // 8) ** 2, 10),
        )  # fmt: skip
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=4e-3, total_steps=_DIGITS_STEPS, pct_start=0.15
        )
        model.train()
        for _ in range(_DIGITS_STEPS):  # each batch half printed, half handwritten
            picks = [
                torch.randint(len(y), (_DIGITS_BATCH // 2,), generator=generator) for _, y in sets
            ]
            glyphs = torch.cat([g[i] for (g, _), i in zip(sets, picks, strict=True)])
            labels = torch.cat([y[i] for (_, y), i in zip(sets, picks, strict=True)])
            images = _as_loaded(_augment(glyphs, generator))
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images), labels, label_smoothing=0.05)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        with warnings.catch_warnings():  # torch 2.14 marks torch.jit deprecated; it still works
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.trace(model, images[:1]), folder / "model.pt")
    finally:
        torch.set_num_threads(threads)
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


def _built(spec: CommonModel, build, cache: Path) -> Path:
    """The folder of the model's files at its revision, built now if not cached (into a
    temporary folder first, so an interrupted build leaves nothing that looks done)."""
    folder = cache / spec.name / str(spec.revision)
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{spec.revision}-", dir=folder.parent))
    try:
        build(building)
        building.chmod(0o755)  # mkdtemp's 0700 would hide it from the sandboxed load check
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        try:
            building.rename(folder)
        except OSError:  # another appliance sharing the cache finished first: take its build
            if not (folder.is_dir() and any(folder.iterdir())):
                raise
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return folder


def seed_common_models() -> list[str]:
    """Make sure every common model exists at its revision, is stored and loads; returns
    those made now. An older latest version stays as it is, the revision is added beside it;
    a newer one (stored by a later release) is left alone."""
    client = get_client()
    with translate_errors():
        if not client.bucket_exists(COMMON_BUCKET):
            client.make_bucket(COMMON_BUCKET)
    cache = Path(settings.COMMON_MODELS_CACHE)
    seeded = []
    for name, (spec, build) in BUILDERS.items():
        latest = ModelVersion.objects.filter(model__is_common=True, model__name=name).first()
        if latest is not None and (
            latest.version > spec.revision or (latest.version == spec.revision and _stored(latest))
        ):
            continue
        folder = _built(spec, build, cache)
        prefix = f"models/{name}/{spec.revision}/"
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
                version=spec.revision,
                defaults={
                    "model_type": spec.model_type,
                    "fields": spec.fields,
                    "path": f"bos://{COMMON_BUCKET}/{prefix}",
                    "source": Source.COMMON,
                    "source_detail": spec.source_detail,
                    "description": spec.description,
                    "info": info,
                    "size_bytes": sum(p.stat().st_size for p in files),
                },
            )
        seeded.append(name)
    return seeded
