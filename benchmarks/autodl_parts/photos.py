"""The photos of benchmarks/autodl.py: 5 classes of rendered shapes, offline and
deterministic (`generate`); `generate_large` makes them as PNGs of at least 100 KB, which
the spec's ENAS rules ask for."""

import io
import math
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star", "ring")
ENAS_MIN_BYTES = 100_000


def render(shape: str, rng: np.random.Generator, side: int) -> Image.Image:
    """One shape on a noisy background. The shape stays inside the middle 80 % (a centre
    crop of 224/256 never cuts it) and is 30-65 % of the side."""
    corners = rng.integers(0, 256, (2, 3))
    ramp = np.linspace(0, 1, side)[:, None, None]
    background = corners[0] * (1 - ramp) + corners[1] * ramp
    if rng.random() < 0.5:
        background = background.transpose(1, 0, 2)
    image = Image.fromarray(np.broadcast_to(background, (side, side, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):  # distractors: thin lines and small dots
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.line([tuple(rng.uniform(0, side, 2)) for _ in range(2)], colour, 1)
        else:
            x, y, r = *rng.uniform(0, side, 2), rng.uniform(1, side * 0.03)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    mean = background.reshape(-1, 3).mean(0)
    colour = rng.integers(0, 256, 3)
    while np.abs(colour - mean).sum() < 150:  # visible, but not always by much
        colour = rng.integers(0, 256, 3)
    colour = tuple(int(c) for c in colour)
    radius = side * rng.uniform(0.15, 0.325)
    cx, cy = (rng.uniform(side * 0.1 + radius, side * 0.9 - radius) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    width = max(2, round(radius * rng.uniform(0.15, 0.3)))
    # some polygons drawn as outlines (an outlined circle would be a ring)
    outline = shape not in ("circle", "ring") and rng.random() < 0.25

    def polygon(points: int, step: int = 1, inner: float | None = None) -> list:
        corners = []
        for k in range(points * (2 if inner else 1)):
            r = radius * (inner if inner and k % 2 else 1)
            a = angle + k * math.pi * 2 / (points * (2 if inner else 1)) * step
            corners.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        return corners

    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape in ("circle", "ring"):
        if shape == "ring" or outline:
            draw.ellipse(box, outline=colour, width=width)
        else:
            draw.ellipse(box, fill=colour)
    else:
        corners = {
            "square": lambda: polygon(4),
            "triangle": lambda: polygon(3),
            "star": lambda: polygon(5, inner=0.42),
        }[shape]()
        if outline:
            draw.line([*corners, corners[0]], fill=colour, width=width, joint="curve")
        else:
            draw.polygon(corners, fill=colour)
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0, rng.uniform(4, 16), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def generate(path: Path, per_class: int, side: int, seed: int = 22) -> Path:
    """The job's input: one folder per class of JPEG photos, zipped."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(per_class):  # classes interleaved: no class is drawn all at once
            for shape in SHAPES:
                image = render(shape, rng, side)
                with archive.open(f"{shape}/{shape}_{index:04d}.jpg", "w") as out:
                    image.save(out, "JPEG", quality=int(rng.integers(70, 95)))
    return path


def render_bold(shape: str, rng: np.random.Generator, side: int) -> Image.Image:
    """For ENAS's small inputs (32 px): one filled (or thick) shape of 25-60 % of the side
    over a plain background with a few thin lines and camera-like grain. The transfer set's
    outlines, dots and gradients shrink to a pixel or two at 32 px."""
    image = Image.new("RGB", (side, side), tuple(int(c) for c in rng.integers(120, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):
        colour = tuple(int(c) for c in rng.integers(60, 200, 3))
        draw.line(
            [tuple(rng.uniform(0, side, 2)) for _ in range(2)], colour, int(rng.integers(1, 4))
        )
    radius = side * rng.uniform(0.125, 0.3)
    cx, cy = (rng.uniform(radius + 4, side - radius - 4) for _ in range(2))
    colour = tuple(int(c) for c in rng.integers(0, 111, 3))
    angle, width = rng.uniform(0, math.pi), max(4, round(radius / 3))
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "ring":
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius), outline=colour, width=width
        )
    else:
        points = {"square": 4, "triangle": 3, "star": 5}[shape]
        step = 2 if shape == "star" else 1  # a pentagram: every second corner
        corners = [
            (cx + radius * math.cos(angle + 2 * math.pi * k * step / points),
             cy + radius * math.sin(angle + 2 * math.pi * k * step / points))
            for k in range(points)
        ]  # fmt: skip
        if shape == "star":
            draw.line([*corners, corners[0]], fill=colour, width=width)
        else:
            draw.polygon(corners, fill=colour)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-24, 25, (side, side, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def generate_large(path: Path, per_class: int, side: int = 224, seed: int = 23) -> Path:
    """`render_bold` photos as PNG; one that compresses under the ENAS minimum (100 KB) gets
    more of the same grain until it does not (camera photos of that size weigh more)."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(per_class):
            for shape in SHAPES:
                image = render_bold(shape, rng, side)
                data = png(image)
                while len(data) < ENAS_MIN_BYTES:
                    pixels = np.asarray(image, dtype=np.float32)
                    pixels += rng.normal(0, 6, pixels.shape)
                    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
                    data = png(image)
                archive.writestr(f"{shape}/{shape}_{index:04d}.png", data)
    return path


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
