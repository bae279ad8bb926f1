"""The common digits model reads digits as people give them (issue 18: the first model, trained
on scikit-learn's 8x8 digits only, answered "4" for every digit drawn in a 32x32 image): digits
printed in fonts it never learnt from and drawn with strokes, at several sizes, positions and
stroke widths, white on black, read through the real image classification loader."""

import base64
import io
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from apps.warehouse.common import DIGITS, DIGITS_FONTS, FONT_DIR, seed_common_models
from workers.runners import model_loaders

# None of these is in DIGITS_FONTS. fonts-liberation (make system) has the first five; the
# others come with fonts-dejavu-extra, read where installed. Pillow's own font is always here.
HELD_OUT_FONTS = (
    "liberation/LiberationSansNarrow-Regular.ttf",
    "liberation/LiberationSansNarrow-Bold.ttf",
    "liberation/LiberationSerif-Italic.ttf",
    "liberation/LiberationMono-Bold.ttf",
    "liberation/LiberationSans-BoldItalic.ttf",
    "dejavu/DejaVuSansCondensed.ttf",
    "dejavu/DejaVuSerifCondensed-Bold.ttf",
    "dejavu/DejaVuSerif-Italic.ttf",
    "dejavu/DejaVuSansMono-Oblique.ttf",
    "dejavu/DejaVuSans-ExtraLight.ttf",
)
# (canvas, digit height, offset of the centre, stroke width): 32x32 centred with margins, big
# and small, bold, off centre; larger canvases the loader scales down.
PRINTED = [
    (32, 22, (0, 0), 0),
    (32, 18, (0, 0), 0),
    (32, 14, (0, 0), 0),
    (32, 26, (0, 0), 0),
    (32, 18, (0, 0), 1),
    (32, 14, (-6, -5), 0),
    (32, 16, (6, 5), 0),
    (32, 18, (5, -4), 1),
    (128, 80, (0, 0), 0),
    (128, 70, (0, 0), 4),
    (128, 60, (-20, 18), 2),
]
# Digits as drawn with a mouse or a finger: polylines and ellipses in a unit box (y down).
STROKES = {
    0: [("ellipse", (0.18, 0.05, 0.82, 0.95))],
    1: [("line", [(0.3, 0.22), (0.55, 0.05), (0.55, 0.95)])],
    2: [("line", [(0.2, 0.3), (0.3, 0.12), (0.5, 0.05), (0.7, 0.12), (0.78, 0.3), (0.7, 0.5),
                  (0.2, 0.95), (0.85, 0.95)])],
    3: [("line", [(0.2, 0.15), (0.5, 0.05), (0.75, 0.18), (0.72, 0.38), (0.45, 0.5),
                  (0.75, 0.6), (0.8, 0.8), (0.5, 0.95), (0.2, 0.85)])],
    4: [("line", [(0.62, 0.95), (0.62, 0.05), (0.15, 0.65), (0.85, 0.65)])],
    5: [("line", [(0.8, 0.05), (0.27, 0.05), (0.22, 0.45), (0.5, 0.38), (0.76, 0.52),
                  (0.78, 0.78), (0.5, 0.95), (0.2, 0.88)])],
    6: [("line", [(0.7, 0.05), (0.4, 0.25), (0.22, 0.6), (0.3, 0.9), (0.55, 0.95),
                  (0.78, 0.78), (0.7, 0.55), (0.45, 0.5), (0.24, 0.62)])],
    7: [("line", [(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)])],
    8: [("ellipse", (0.25, 0.05, 0.75, 0.5)), ("ellipse", (0.2, 0.5, 0.8, 0.95))],
    9: [("ellipse", (0.2, 0.05, 0.8, 0.5)), ("line", [(0.8, 0.28), (0.72, 0.95)])],
}  # fmt: skip
# (canvas, digit height, offset, line width): a 32x32 drawing, a 280x280 canvas, one between.
DRAWN = [
    (32, 22, (0, 0), 2),
    (32, 18, (0, 0), 1),
    (32, 24, (0, 0), 3),
    (32, 16, (-6, 5), 2),
    (280, 200, (0, 0), 18),
    (280, 160, (40, -30), 12),
    (280, 180, (0, 0), 28),
    (64, 40, (0, 0), 4),
]


def png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def font_at(path: Path | None, size: int):
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size=size)


def printed(path: Path | None, digit: int, canvas: int, height: int, offset, stroke: int) -> str:
    left, top, right, bottom = font_at(path, 100).getbbox("0")
    font = font_at(path, max(6, round(100 * height / (bottom - top))))
    image = Image.new("RGB", (canvas, canvas))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font, stroke_width=stroke)
    x = (canvas - (right - left)) // 2 - left + offset[0]
    y = (canvas - (bottom - top)) // 2 - top + offset[1]
    draw.text((x, y), str(digit), fill="white", font=font, stroke_width=stroke, stroke_fill="white")
    return png(image)


def drawn(digit: int, canvas: int, height: int, offset, width: int) -> str:
    image = Image.new("RGB", (canvas, canvas))
    draw = ImageDraw.Draw(image)
    box_width = height * 0.7
    x0, y0 = (canvas - box_width) / 2 + offset[0], (canvas - height) / 2 + offset[1]

    def at(point):
        return (x0 + point[0] * box_width, y0 + point[1] * height)

    for kind, shape in STROKES[digit]:
        if kind == "line":
            draw.line([at(p) for p in shape], fill="white", width=width, joint="curve")
        else:
            draw.ellipse([at(shape[:2]), at(shape[2:])], outline="white", width=width)
    return png(image)


def held_out_fonts() -> list[Path | None]:
    return [FONT_DIR / name for name in HELD_OUT_FONTS if (FONT_DIR / name).is_file()] + [None]


@pytest.fixture
def digits_model(db):
    seed_common_models()
    folder = Path(settings.COMMON_MODELS_CACHE) / DIGITS.name / str(DIGITS.revision)
    return model_loaders.load("image_classification", folder, {"image_size": 32})


def read(model, cases: list[tuple[int, str]]) -> tuple[float, Counter, list]:
    answers = model.predict([{"data": data} for _, data in cases])
    labels = [answer[0]["label"] for answer in answers]
    right = Counter(digit for (digit, _), label in zip(cases, labels, strict=True)
                    if label == str(digit))  # fmt: skip
    wrong = [(digit, label) for (digit, _), label in zip(cases, labels, strict=True)
             if label != str(digit)]  # fmt: skip
    return sum(right.values()) / len(cases), right, wrong


def test_it_reads_digits_printed_in_fonts_it_never_saw(digits_model):
    assert not set(HELD_OUT_FONTS) & set(DIGITS_FONTS)
    cases = [
        (digit, printed(font, digit, *variant))
        for font in held_out_fonts()
        for variant in PRINTED
        for digit in range(10)
    ]
    accuracy, right, wrong = read(digits_model, cases)
    assert accuracy >= 0.9, wrong
    per_digit = len(cases) // 10
    assert min(right[d] for d in range(10)) >= 0.8 * per_digit, right  # no digit is lost


def test_it_reads_drawn_digits(digits_model):
    cases = [(digit, drawn(digit, *variant)) for variant in DRAWN for digit in range(10)]
    accuracy, right, wrong = read(digits_model, cases)
    assert accuracy >= 0.9, wrong
    assert len(right) == 10, right  # every digit is read at least sometimes
