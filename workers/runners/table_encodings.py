"""Text encodings for the table import: codec names, which codecs the byte-level scans can
work with, finding the first line a codec rejects, and advice on the encoding to choose
instead. Shared by the preview (table_preview.py) and the import of a file (table_reading.py).
No Django here: the web process imports this through the preview.
"""

from __future__ import annotations

import codecs
from pathlib import Path


def codec_name(encoding) -> str:
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValueError(
            f"unknown encoding {encoding!r}: use e.g. utf-8, gbk, gb18030 or latin-1"
        ) from None


def encoding_label(codec: str) -> str:
    labels = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
    return labels.get(codec, "Latin-1" if codec == "iso8859-1" else codec.upper())


def ascii_compatible(codec: str) -> bool:
    """Whether separators, quotes and newlines are the same bytes as in ASCII (not UTF-16...),
    which the byte-level scans (table_scan.py) rely on."""
    try:
        return codecs.encode('\n",;|\t a', codec) == b'\n",;|\t a'
    except UnicodeError:
        return False


def _suggest_encoding(data: bytes, exclude: str) -> str | None:
    """The first of UTF-8, GB18030, Latin-1 that decodes the bytes (Latin-1 always does)."""
    for candidate in ("utf-8", "gb18030", "iso8859-1"):
        if candidate == exclude:
            continue
        try:
            data.decode(candidate)
        except UnicodeDecodeError:
            continue
        return candidate
    return None


def encoding_advice(codec: str, data: bytes) -> str:
    suggestion = _suggest_encoding(data, codec)
    if suggestion == "gb18030":
        return (
            "It looks like GBK/GB18030 (Chinese text saved on Windows): "
            "choose that encoding (GB18030 covers GBK) and import again."
        )
    if suggestion:
        return f"It may be {encoding_label(suggestion)}: choose that encoding and import again."
    return "Choose the encoding the file was saved in and import again."


def first_undecodable_line(
    data: bytes, codec: str, complete: bool = True
) -> tuple[int, bytes] | None:
    """(1-based line, that line's bytes) of the first bytes the codec rejects in data; with
    complete=False a character cut off at the end is not an error (a sample of a file)."""
    try:
        codecs.getincrementaldecoder(codec)().decode(data, final=complete)
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line_end = data.find(b"\n", error.start)
        line = data[line_start : line_end if line_end >= 0 else len(data)]
        return data.count(b"\n", 0, error.start) + 1, line
    return None


def find_undecodable_line(path: Path, codec: str) -> tuple[int, bytes] | None:
    """(line, its bytes) of the first bytes the codec rejects, reading newline-cut pieces so
    that the line count is exact (ASCII-compatible codecs never put a 0x0A inside a char)."""
    lines_before = 0
    carry = b""
    with open(path, "rb") as file:
        while True:
            data = file.read(16 << 20)
            piece = carry + data
            cut = piece.rfind(b"\n") + 1 if data else len(piece)
            piece, carry = piece[:cut], piece[cut:]
            bad = first_undecodable_line(piece, codec)
            if bad:
                return lines_before + bad[0], bad[1]
            lines_before += piece.count(b"\n")
            if not data:
                return None
