"""Reading and checking AutoDL training photos (workers/runners/autodl_data.py and its
autodl_archive / autodl_rules parts): real zip packages of real (tiny) Pillow images built in
a temporary folder, extracted and decoded for real; hostile packages built byte by byte.

No Django and no database: also runs with `pytest tests/workers/test_autodl_data.py -p no:django`.
"""

from __future__ import annotations

import io
import json
import os
import random
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

from PIL import Image

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from workers.runners.autodl_archive import ArchiveLimits
from workers.runners.autodl_data import check_training_data
from workers.runners.autodl_rules import photo_refusal, rules_for

REPO = Path(__file__).resolve().parents[2]
_colours = iter(range(1, 1 << 24))


def png(size=(32, 32), colour: int | None = None) -> bytes:
    """A distinct flat-coloured PNG (a fresh colour per call unless one is given)."""
    colour = next(_colours) if colour is None else colour
    rgb = (colour >> 16, (colour >> 8) & 255, colour & 255)
    return _encode(Image.new("RGB", size, rgb), "PNG")


def noisy_png(size: tuple[int, int], seed: int = 0) -> bytes:
    """Incompressible grey noise: the file is about width x height bytes."""
    pixels = random.Random(seed).randbytes(size[0] * size[1])
    return _encode(Image.frombytes("L", size, pixels), "PNG")


def jpeg(size=(32, 32)) -> bytes:
    return _encode(Image.new("RGB", size, (200, 10, 10)), "JPEG")


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def class_photos(counts: dict[str, int], prefix: str = "") -> dict[str, bytes]:
    return {
        f"{prefix}{name}/{index}.png": png()
        for name, count in counts.items()
        for index in range(count)
    }


def check(tmp_path: Path, entries: dict[str, bytes], method="transfer", **kwargs):
    archive = write_zip(tmp_path / "train.zip", entries)
    return check_training_data(archive, tmp_path / "work" / "data", method, **kwargs)


def refused_rules(report: dict) -> dict[str, str]:
    return {refusal["member"]: refusal["rule"] for refusal in report["refused"]}


def error_rules(report: dict) -> list[str]:
    return [error["rule"] for error in report["errors"]]


# --- the spec's rules ------------------------------------------------------------------------


def test_a_good_transfer_learning_set_keeps_every_photo_by_class(tmp_path):
    result = check(tmp_path, class_photos({"cat": 20, "dog_2": 21}))

    assert result.ok and result.report["ok"]
    assert result.report["classes"] == {"cat": 20, "dog_2": 21}
    assert result.report["total_photos"] == 41
    pairs = result.labelled_paths()
    assert sorted({label for _, label in pairs}) == ["cat", "dog_2"]
    dest = (tmp_path / "work" / "data").resolve()
    for path, _ in pairs:
        assert path.is_relative_to(dest)
        assert Image.open(path).size == (32, 32)
    json.dumps(result.report)  # the report is plain JSON


def test_too_few_classes_is_a_hard_error(tmp_path):
    result = check(tmp_path, class_photos({"cat": 25}))

    assert not result.ok
    assert error_rules(result.report) == ["class_count"]
    assert "1 classes" in result.report["errors"][0]["message"]


def test_a_class_under_twenty_photos_fails_transfer_learning_and_under_fifty_fails_enas(
    tmp_path,
):
    result = check(tmp_path, class_photos({"cat": 20, "dog": 19}))
    assert error_rules(result.report) == ["photos_per_class"]
    message = result.report["errors"][0]["message"]
    assert "'dog'" in message and "19" in message and "20" in message

    enas = replace(rules_for("enas"), min_file_bytes=None)
    result = check_training_data(tmp_path / "train.zip", tmp_path / "enas", rules=enas)
    assert [e["message"].split(" has ")[0] for e in result.report["errors"]] == [
        "class 'cat'",
        "class 'dog'",
    ]


def test_class_names_allow_letters_digits_and_underscore_only(tmp_path):
    result = check(tmp_path, class_photos({"dog cat": 20, "猫": 20, "ok_1": 20}))

    assert error_rules(result.report) == ["class_name", "class_name"]
    messages = " ".join(error["message"] for error in result.report["errors"])
    assert "'dog cat'" in messages and "'猫'" in messages
    assert "ok_1" not in messages


def test_only_jpg_jpeg_and_png_are_used_whatever_their_case(tmp_path):
    entries = class_photos({"cat": 20, "dog": 19})
    entries |= {
        "dog/big.JPG": jpeg(),
        "dog/readme.txt": b"hello",
        "dog/anim.gif": b"GIF89a",
        "dog/.DS_Store": b"\0",
        "__MACOSX/dog/._1.png": b"\0",
    }
    result = check(tmp_path, entries)

    assert result.ok
    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert refused_rules(result.report) == {
        "dog/readme.txt": "extension",
        "dog/anim.gif": "extension",
        "dog/.DS_Store": "os_metadata",
        "__MACOSX/dog/._1.png": "os_metadata",
    }
    assert result.report["refused_by_rule"] == {"extension": 2, "os_metadata": 2}


def test_classes_of_the_same_name_merge_across_packages(tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    write_zip(folder / "a.zip", class_photos({"cat": 12, "dog": 20}))
    write_zip(folder / "b.ZIP", class_photos({"cat": 8}))
    (folder / "notes.txt").write_text("not a package")

    result = check_training_data(folder, tmp_path / "data", "transfer")

    assert result.ok
    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert result.report["archives"] == [
        {"name": "a.zip", "photos": 32},
        {"name": "b.ZIP", "photos": 8},
    ]


def test_only_the_first_ten_packages_by_name_are_used_and_subfolders_are_not(tmp_path):
    folder = tmp_path / "input"
    (folder / "sub").mkdir(parents=True)
    for number in range(10):
        write_zip(folder / f"part{number:02d}.zip", class_photos({"cat": 2, "dog": 2}))
    write_zip(folder / "part10.zip", class_photos({"late": 20}))
    write_zip(folder / "sub" / "deep.zip", class_photos({"deep": 20}))

    result = check_training_data(folder, tmp_path / "data", "transfer")

    assert result.ok
    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert result.report["archives_ignored"] == ["part10.zip"]
    assert [w["rule"] for w in result.report["warnings"]] == ["max_archives"]


def test_a_wrapper_folder_around_the_class_folders_is_tolerated(tmp_path):
    entries = class_photos({"cat": 20, "dog": 20}, prefix="cifar10/")
    entries |= {"cifar10/loose.png": png(), "cifar10/dog/old/1.png": png()}
    result = check(tmp_path, entries)

    assert result.ok
    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert refused_rules(result.report) == {
        "cifar10/loose.png": "not_in_class_folder",
        "cifar10/dog/old/1.png": "nested_folder",
    }


def test_enas_refuses_photos_by_file_size_sides_and_aspect_ratio(tmp_path):
    # The spec's 100 KB - 3 MB would need megabytes of test photos: the byte limits are
    # scaled down, the side and ratio limits are the spec's own.
    rules = replace(rules_for("enas"), min_per_class=2, min_file_bytes=2_000, max_file_bytes=20_000)
    entries = {
        "cat/ok1.png": noisy_png((60, 60), seed=1),
        "cat/ok2.png": noisy_png((40, 120), seed=2),  # exactly 3:1 is within 3:1
        "dog/ok1.png": noisy_png((60, 50), seed=3),
        "dog/ok2.png": noisy_png((50, 60), seed=4),
        "dog/small.png": noisy_png((20, 20), seed=5),
        "dog/large.png": noisy_png((200, 200), seed=6),
        "dog/narrow.png": noisy_png((30, 100), seed=7),
        "dog/wide.png": noisy_png((121, 40), seed=8),
    }
    result = check(tmp_path, entries, rules=rules)

    assert result.ok, result.report["errors"]
    assert result.report["classes"] == {"cat": 2, "dog": 2}
    assert refused_rules(result.report) == {
        "dog/small.png": "file_size",
        "dog/large.png": "file_size",
        "dog/narrow.png": "shortest_side",
        "dog/wide.png": "aspect_ratio",
    }


def test_enas_longest_side_must_be_under_4096_pixels(tmp_path):
    rules = replace(rules_for("enas"), min_file_bytes=None)
    for width, expected in ((4095, None), (4096, "longest_side")):
        path = tmp_path / f"{width}.png"
        path.write_bytes(png((width, 1400)))
        broken = photo_refusal(path, path.stat().st_size, rules)
        assert (broken[0] if broken else None) == expected


def test_transfer_learning_has_no_photo_size_rule(tmp_path):
    result = check(tmp_path, {"a/1.png": png((4, 4)), "b/1.png": noisy_png((300, 300))})
    assert result.report["refused"] == []
    assert result.report["classes"] == {"a": 1, "b": 1}


# --- photos that cannot be decoded -----------------------------------------------------------


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels; a few dozen bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def test_decompression_bombs_corrupt_photos_and_impostors_are_refused(tmp_path):
    entries = class_photos({"cat": 20, "dog": 20})
    entries |= {
        "cat/bomb.png": bomb_png(100_000, 100_000),
        "cat/just_over.png": bomb_png(9_500, 9_500),  # between Pillow's warning and error
        "cat/truncated.jpg": jpeg((64, 64))[:300],
        "cat/random.jpg": os.urandom(500),
        "cat/gif_in_disguise.png": _encode(Image.new("P", (8, 8)), "GIF"),
    }
    result = check(tmp_path, entries)

    assert result.ok
    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert refused_rules(result.report) == {
        "cat/bomb.png": "pixel_limit",
        "cat/just_over.png": "pixel_limit",
        "cat/truncated.jpg": "corrupt_image",
        "cat/random.jpg": "not_an_image",
        "cat/gif_in_disguise.png": "not_an_image",
    }
    # refused photos do not stay in the data folder handed to the trainer
    assert len(list((tmp_path / "work" / "data").rglob("*.*"))) == 40


def test_the_pixel_limit_is_checked_before_decoding(tmp_path):
    rules = replace(rules_for("transfer"), pixel_limit=1_000, min_per_class=1)
    result = check(tmp_path, {"a/big.png": png((40, 40)), "b/ok.png": png((20, 20))}, rules=rules)
    assert refused_rules(result.report) == {"a/big.png": "pixel_limit"}
    assert "40x40" in result.report["refused"][0]["reason"]


# --- duplicates ----------------------------------------------------------------------------


def test_the_same_file_twice_in_a_class_is_kept_once_and_reported(tmp_path):
    twin = png()
    entries = class_photos({"cat": 20, "dog": 20}) | {"cat/a.png": twin, "cat/b.png": twin}
    result = check(tmp_path, entries)

    assert result.report["classes"] == {"cat": 21, "dog": 20}
    [duplicate] = result.report["duplicates"]
    assert duplicate["class"] == "cat"
    assert duplicate["kept"] == {"archive": "train.zip", "member": "cat/a.png"}
    assert duplicate["dropped"] == [{"archive": "train.zip", "member": "cat/b.png"}]
    assert len(list((tmp_path / "work" / "data").rglob("*.png"))) == 41


def test_the_same_photo_in_two_classes_is_kept_and_warned_about(tmp_path):
    shared = png()
    entries = class_photos({"cat": 20, "dog": 20}) | {"cat/x.png": shared, "dog/y.png": shared}
    result = check(tmp_path, entries)

    assert result.ok
    assert result.report["classes"] == {"cat": 21, "dog": 21}
    [cross] = result.report["cross_class_duplicates"]
    assert {(f["class"], f["member"]) for f in cross["files"]} == {
        ("cat", "cat/x.png"),
        ("dog", "dog/y.png"),
    }
    assert "same_image_in_two_classes" in [w["rule"] for w in result.report["warnings"]]


def test_unbalanced_classes_are_warned_about(tmp_path):
    rules = replace(rules_for("transfer"), min_per_class=1)
    result = check(tmp_path, class_photos({"cat": 22, "dog": 2}), rules=rules)

    assert result.ok
    [warning] = result.report["warnings"]
    assert warning["rule"] == "class_balance" and "11.0:1" in warning["message"]


# --- hostile packages ----------------------------------------------------------------------


def entry(name: str, data: bytes, *, mode: int | None = None) -> tuple:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.create_system = 3  # Unix, so external_attr carries a Unix mode
        info.external_attr = mode << 16
    return info, data


def write_raw_zip(path: Path, entries: list[tuple]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def files_outside(root: Path, dest: Path, inputs: set[Path]) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if (path.is_file() or path.is_symlink())
        and path not in inputs
        and not path.resolve().is_relative_to(dest.resolve())
    ]


def test_hostile_entries_are_refused_and_nothing_is_written_outside_dest(tmp_path):
    good = [entry(name, data) for name, data in class_photos({"cat": 20, "dog": 20}).items()]
    hostile = [
        entry("../evil.png", png()),
        entry("cat/../../evil2.png", png()),
        entry("cat\\..\\..\\evil3.png", png()),
        entry("/tmp/absolute.png", png()),
        entry("C:/windows.png", png()),
        entry("cat/link.png", b"/etc/passwd", mode=stat.S_IFLNK | 0o777),
        entry("cat/fifo.png", b"", mode=stat.S_IFIFO | 0o644),
        entry("cat/inner.zip", (tmp_path / "x").name.encode()),
        entry("cat/photos.tar.gz", b"\x1f\x8b"),
        entry("cat/secret.png", png()),
    ]
    archive = write_raw_zip(tmp_path / "in.zip", good + hostile)
    # zipfile clears the flags it writes: mark the entry encrypted afterwards
    archive.write_bytes(patch_header(archive.read_bytes(), "cat/secret.png", "flags", 0x1))
    dest = tmp_path / "work" / "data"

    result = check_training_data(archive, dest, "transfer")

    assert result.ok
    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert refused_rules(result.report) == {
        "../evil.png": "path_traversal",
        "cat/../../evil2.png": "path_traversal",
        "cat\\..\\..\\evil3.png": "path_traversal",
        "/tmp/absolute.png": "absolute_path",
        "C:/windows.png": "absolute_path",
        "cat/link.png": "symlink",
        "cat/fifo.png": "special_file",
        "cat/inner.zip": "nested_archive",
        "cat/photos.tar.gz": "nested_archive",
        "cat/secret.png": "encrypted",
    }
    assert files_outside(tmp_path, dest, {archive}) == []
    assert not any(path.is_symlink() for path in dest.rglob("*"))
    assert not Path("/tmp/absolute.png").exists()


def patch_header(data: bytes, name: str, field: str, value: int) -> bytes:
    """Rewrite one field of an entry's central directory record (where zipfile reads sizes
    and flags), and of its local header too for the flags."""
    central = data.rfind(name.encode()) - 46
    assert data[central : central + 4] == b"PK\x01\x02"
    offset, fmt = {"flags": (8, "<H"), "file_size": (24, "<I")}[field]
    data = _put(data, central + offset, fmt, value)
    if field == "flags":
        local = data.find(name.encode()) - 30
        assert data[local : local + 4] == b"PK\x03\x04"
        data = _put(data, local + 6, fmt, value)
    return data


def _put(data: bytes, at: int, fmt: str, value: int) -> bytes:
    packed = struct.pack(fmt, value)
    return data[:at] + packed + data[at + len(packed) :]


def test_entries_that_lie_about_their_size_are_refused(tmp_path):
    photo = noisy_png((40, 40))
    entries = class_photos({"cat": 20, "dog": 20}) | {
        "cat/shrunk.png": photo,
        "cat/swollen.png": photo[::-1],
    }
    archive = write_zip(tmp_path / "lies.zip", entries)
    data = patch_header(archive.read_bytes(), "cat/shrunk.png", "file_size", 100)
    data = patch_header(data, "cat/swollen.png", "file_size", len(photo) + 500)
    archive.write_bytes(data)
    dest = tmp_path / "data"

    result = check_training_data(archive, dest, "transfer")

    assert result.report["classes"] == {"cat": 20, "dog": 20}
    assert refused_rules(result.report) == {
        "cat/shrunk.png": "integrity",
        "cat/swollen.png": "integrity",
    }
    # what was streamed before the lie showed is gone, and never more than declared + 1
    assert len(list(dest.rglob("*.png"))) == 40


def test_expansion_bombs_are_refused_by_ratio_member_size_and_total(tmp_path):
    entries = class_photos({"cat": 20, "dog": 20}) | {
        "cat/zeros.png": b"\0" * 3_000_000,  # deflates about 1000 times
        "cat/noise.png": noisy_png((100, 100)),  # about 10 KB, barely deflates
    }
    result = check(tmp_path, entries)
    assert result.ok
    assert refused_rules(result.report) == {"cat/zeros.png": "compression_ratio"}
    assert result.report["classes"] == {"cat": 21, "dog": 20}

    result = check_training_data(
        tmp_path / "train.zip", tmp_path / "capped", limits=ArchiveLimits(max_member_bytes=5_000)
    )
    assert refused_rules(result.report)["cat/noise.png"] == "member_too_large"
    assert max(p.stat().st_size for p in (tmp_path / "capped").rglob("*.png")) <= 5_000

    result = check_training_data(
        tmp_path / "train.zip", tmp_path / "small", limits=ArchiveLimits(max_total_bytes=2_000)
    )
    assert error_rules(result.report)[0] == "expansion_total"
    assert sum(p.stat().st_size for p in (tmp_path / "small").rglob("*") if p.is_file()) <= 2_000


def test_packages_that_are_not_usable_are_hard_errors(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    result = check_training_data(tmp_path / "broken.zip", tmp_path / "d1")
    assert error_rules(result.report)[0] == "not_a_zip"

    (tmp_path / "data.tar").write_bytes(b"")
    result = check_training_data(tmp_path / "data.tar", tmp_path / "d2")
    assert error_rules(result.report) == ["input", "class_count"]

    (tmp_path / "empty").mkdir()
    result = check_training_data(tmp_path / "empty", tmp_path / "d3")
    assert "no .zip" in result.report["errors"][0]["message"]

    archive = write_zip(tmp_path / "many.zip", class_photos({"cat": 20, "dog": 20}))
    result = check_training_data(archive, tmp_path / "d4", limits=ArchiveLimits(max_entries=39))
    assert error_rules(result.report)[0] == "too_many_entries"


# --- the command line ---------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.runners.autodl_data", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_line_fails_on_a_hard_error_and_writes_the_report(tmp_path):
    good = write_zip(tmp_path / "good.zip", class_photos({"cat": 20, "dog": 20}))
    bad = write_zip(tmp_path / "bad.zip", class_photos({"cat": 20, "dog": 3}))

    ok = run_cli(
        "--method",
        "transfer",
        "--input",
        str(good),
        "--dest",
        str(tmp_path / "d1"),
        "--report",
        str(tmp_path / "good.json"),
    )
    failed = run_cli(
        "--method",
        "transfer",
        "--input",
        str(bad),
        "--dest",
        str(tmp_path / "d2"),
        "--report",
        str(tmp_path / "bad.json"),
    )

    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "good.json").read_text())["classes"] == {"cat": 20, "dog": 20}
    assert failed.returncode == 1
    assert "photos_per_class" in failed.stderr and "'dog' has 3" in failed.stderr
    assert json.loads((tmp_path / "bad.json").read_text())["ok"] is False

    again = run_cli(
        "--method",
        "enas",
        "--input",
        str(good),
        "--dest",
        str(tmp_path / "d1"),
        "--report",
        str(tmp_path / "again.json"),
    )
    assert again.returncode == 2 and "not empty" in again.stderr
