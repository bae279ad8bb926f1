"""The spec's rules for AutoDL training photos ("AutoDL Job": Image Sorting - Transfer
Learning and Image Sorting - ENAS), as data (`DataRules`, one per method) and as checks: one
photo at a time (`photo_refusal`) and over the classes (`class_rule_errors`,
`balance_warning`). No Django import; used by workers/runners/autodl_data.py.

Per-photo rules refuse the photo; class and data-set rules are hard errors (the job fails
before training). Every refusal and error names its rule:

    file_size, not_an_image, corrupt_image, pixel_limit, shortest_side, longest_side,
    aspect_ratio                                        (per photo)
    class_name, class_count, photos_per_class, total_photos   (hard errors)
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

METHODS = ("transfer", "enas")
CLASS_NAME = re.compile(r"[A-Za-z0-9_]+")
IMAGE_FORMATS = ("JPEG", "PNG")


@dataclass(frozen=True)
class DataRules:
    """The spec's limits for one method. The per-photo size rules are None where the spec
    says "temporarily unlimited" (transfer learning). Sides are exclusive, as the spec
    words them: longest side < max_long_side, shortest side > min_short_side."""

    method: str
    min_per_class: int
    min_classes: int = 2
    max_classes: int = 200
    max_total: int = 100_000
    max_archives: int = 10
    min_file_bytes: int | None = None
    max_file_bytes: int | None = None
    max_aspect_ratio: float | None = None
    max_long_side: int | None = None
    min_short_side: int | None = None
    # Pillow's own default MAX_IMAGE_PIXELS (about 89 megapixels, 0.25 GiB as RGB): above
    # any camera photo people train on, below what a decompression bomb asks for.
    pixel_limit: int = 89_478_485
    # The spec only says classes "should be balanced". Past 10:1 a classifier trained on
    # the plain loss learns to ignore the small class, so that is where we warn.
    balance_warning_ratio: float = 10.0


def rules_for(method: str) -> DataRules:
    if method == "transfer":
        return DataRules(method="transfer", min_per_class=20)
    if method == "enas":
        # "100k <= photo size <= 3M": read leniently, refusing only what both the decimal
        # and the binary reading refuse (under 100,000 bytes or over 3 MiB).
        return DataRules(
            method="enas",
            min_per_class=50,
            min_file_bytes=100_000,
            max_file_bytes=3 << 20,
            max_aspect_ratio=3.0,
            max_long_side=4096,
            min_short_side=30,
        )
    raise ValueError(f"unknown AutoDL method {method!r}: one of {', '.join(METHODS)}")


def photo_refusal(path: Path, size: int, rules: DataRules) -> tuple[str, str] | None:
    """(rule, reason) for a photo that breaks a per-photo rule, None for a good one."""
    return _size_refusal(size, rules) or _decode_refusal(path, rules)


def _size_refusal(size: int, rules: DataRules) -> tuple[str, str] | None:
    if rules.min_file_bytes is not None and size < rules.min_file_bytes:
        return "file_size", f"{size:,} bytes, under the {rules.min_file_bytes:,} bytes minimum"
    if rules.max_file_bytes is not None and size > rules.max_file_bytes:
        return "file_size", f"{size:,} bytes, over the {rules.max_file_bytes:,} bytes maximum"
    return None


def _decode_refusal(path: Path, rules: DataRules) -> tuple[str, str] | None:
    """Decode the whole photo (a trainer would choke on any photo that fails here), but
    read its size from the header first and never decode past the pixel limit."""
    with warnings.catch_warnings():
        # Pillow warns between its limit and twice its limit, and raises above: both are
        # refusals here, never a crash nor a 0.25 GiB allocation.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > rules.pixel_limit:
                    return _pixel_refusal(width, height, rules)
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            return "pixel_limit", str(exc)
        except UnidentifiedImageError:
            return "not_an_image", "not a JPEG or PNG image"
        except Exception as exc:  # noqa: BLE001 - any decoder failure on user data is a refusal
            return "corrupt_image", f"cannot be decoded: {exc}"
    return _dimension_refusal(width, height, rules)


def _pixel_refusal(width: int, height: int, rules: DataRules) -> tuple[str, str]:
    return (
        "pixel_limit",
        f"{width}x{height} px is over the {rules.pixel_limit:,} pixel limit",
    )


def _dimension_refusal(width: int, height: int, rules: DataRules) -> tuple[str, str] | None:
    longest, shortest = max(width, height), min(width, height)
    if rules.min_short_side is not None and shortest <= rules.min_short_side:
        return "shortest_side", f"shortest side {shortest} px, must be over {rules.min_short_side}"
    if rules.max_long_side is not None and longest >= rules.max_long_side:
        return "longest_side", f"longest side {longest} px, must be under {rules.max_long_side}"
    if rules.max_aspect_ratio is not None and longest > rules.max_aspect_ratio * shortest:
        return (
            "aspect_ratio",
            f"{width}x{height} px, length-width ratio over {rules.max_aspect_ratio:g}:1",
        )
    return None


def class_rule_errors(counts: Mapping[str, int], rules: DataRules) -> list[dict]:
    """Hard errors over the classes; counts maps every class to its kept photos."""
    errors = [
        _finding(
            "class_name",
            f"class {name!r}: class names may hold only letters, digits and _ "
            "(no Chinese characters, no spaces)",
        )
        for name in sorted(counts)
        if not CLASS_NAME.fullmatch(name)
    ]
    if not rules.min_classes <= len(counts) <= rules.max_classes:
        errors.append(
            _finding(
                "class_count",
                f"{len(counts)} classes; between {rules.min_classes} and {rules.max_classes} "
                "are needed",
            )
        )
    errors.extend(
        _finding(
            "photos_per_class",
            f"class {name!r} has {count} usable photos; each class needs at least "
            f"{rules.min_per_class}",
        )
        for name, count in sorted(counts.items())
        if count < rules.min_per_class
    )
    total = sum(counts.values())
    if total > rules.max_total:
        errors.append(
            _finding("total_photos", f"{total:,} photos; at most {rules.max_total:,} are allowed")
        )
    return errors


def balance_warning(counts: Mapping[str, int], rules: DataRules) -> dict | None:
    present = {name: count for name, count in counts.items() if count}
    if len(present) < 2:
        return None
    largest = max(present, key=present.get)
    smallest = min(present, key=present.get)
    ratio = present[largest] / present[smallest]
    if ratio <= rules.balance_warning_ratio:
        return None
    return _finding(
        "class_balance",
        f"class {largest!r} has {present[largest]} photos and {smallest!r} only "
        f"{present[smallest]} ({ratio:.1f}:1); balanced classes give a better model",
    )


def _finding(rule: str, message: str) -> dict:
    return {"rule": rule, "message": message}
