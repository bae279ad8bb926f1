"""Data set import: CSV/TSV/TXT files -> parquet parts plus column statistics.

Run by the worker supervisor as a user-level process, with the workspace as cwd:

    python -m workers.runners.table_import --params params.json

params.json: inputs (files, or folders standing for the files in them), previous_parts
(optional), separator, header, encoding, abnormal ("skip" | "fill" | "fail"), columns
([{"name", "type"}], types int/float/string/bool/datetime) and output_dir. On success
output_dir holds part-00000.parquet... (the new rows) and summary.json; on failure error.json
({"error", "lines"}), the message on stderr, exit code 1. Line numbers are the file's own,
1-based, the header line included.

Reading is two-speed. The fast path lets pyarrow's multithreaded CSV reader convert every
column to its declared type directly. A file only leaves it when pyarrow meets a row it cannot
take (a wrong field count or a cell that does not convert); the file is then re-read from its
start by the robust path, which reads every column as text, converts batch by batch, finds the
offending cells and applies the user's rule. Rows the fast path already delivered are skipped
on the second read, so nothing is written twice.

The web process imports preview(), column_name_problem() and validate_columns() from here:
this module must never import Django.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import json
import os
import re
import resource
import signal
import sys
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from workers.runners.table_stats import TableStats

ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("us"),
}
RULES = ("skip", "fill", "fail")
# What "fill" puts in a cell that cannot be converted (NaN is no use to a model: 0.0).
FILL_VALUES = {
    "int": pa.scalar(0, pa.int64()),
    "float": pa.scalar(0.0, pa.float64()),
    "string": pa.scalar("", pa.string()),
    "bool": pa.scalar(False, pa.bool_()),
    "datetime": pa.scalar(0, pa.timestamp("us")),
}
# Missing values in non-string columns (pandas' list). String columns keep the text as is.
NULL_SPELLINGS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
TRUE_SPELLINGS = ["true", "True", "TRUE", "1", "yes", "Yes", "YES"]
FALSE_SPELLINGS = ["false", "False", "FALSE", "0", "no", "No", "NO"]
# Datetimes: ISO 8601 (date, optional time with "T" or a space, fractions) or these.
DATETIME_FORMATS = ["%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"]
# Text shaped like a value of the type, as pyarrow's parser accepts it (checked against it):
# only a few shaped values still fail (an int beyond int64, February 30th).
TYPE_SHAPES = {
    "int": r"^-?[0-9]+$",
    "float": r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$",
    "datetime": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?)?$",
}
# Other text pyarrow also takes (checked value by value, so they must be few and spelled alike).
OTHER_SPELLINGS = {"float": r"(?i)^[+-]?(inf|infinity|nan)$"}
SLASH_DATE_SHAPE = r"^[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}( [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?$"

# pyarrow's reader reads ahead up to ~32 blocks, so the block size sets its memory: 4 MB blocks
# keep it near 300 MB. A row must fit in one block; a longer one is retried with 16 MB blocks,
# the line limit.
BLOCK_SIZE = 4 << 20
LINE_LIMIT = 16 << 20
# Parquet layout: big row groups (fast scans), a new part file every ~1 GB.
ROW_GROUP_BYTES = 64 << 20
ROW_GROUP_ROWS = 500_000
PART_BYTES = 1 << 30
# Measured on 5M rows x 19 floats: snappy 3.4 s, zstd 4.0 s for files 6 % smaller.
COMPRESSION = "snappy"
PROGRESS_EVERY = 500_000
MAX_LINES = 20
MAX_EXAMPLES = 10
MAX_NAME_LENGTH = 128
PREVIEW_ROWS = 10


class ImportFailed(Exception):
    """A problem with the parameters or the user's data: reported in error.json."""

    def __init__(self, message: str, lines: list[int] | None = None):
        super().__init__(message)
        self.lines = (lines or [])[:MAX_LINES]


# ---------------------------------------------------------------------------------------------
# Column names and types (shared with the web side)


def column_name_problem(name) -> str | None:
    """Why a column name is not allowed, or None when it is fine. Names are letters (any
    script, so Chinese names work), digits and underscores, not starting with a digit: they
    become parquet columns and pandas attributes."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    for char in name:
        if not (char == "_" or char.isalpha() or "0" <= char <= "9"):
            shown = "a space" if char == " " else repr(char)
            return f"contains {shown}: use only letters, digits and underscores"
    if "0" <= name[0] <= "9":
        return "starts with a digit"
    return None


def validate_columns(columns) -> None:
    """Raise ValueError naming the first column that is wrong and what is wrong with it."""
    if not isinstance(columns, list) or not columns:
        raise ValueError("columns must be a non-empty list of {name, type}")
    seen: dict[str, int] = {}
    for number, column in enumerate(columns, start=1):
        if not isinstance(column, dict):
            raise ValueError(f"column {number} must be an object with a name and a type")
        name, type_name = column.get("name"), column.get("type")
        problem = column_name_problem(name)
        if problem:
            raise ValueError(f"column {number} name {name!r} {problem}")
        if type_name not in ARROW_TYPES:
            raise ValueError(
                f"column {name!r} has unknown type {type_name!r}: use one of "
                + ", ".join(ARROW_TYPES)
            )
        # Case-blind: downstream SQL engines and file systems often fold case.
        key = name.casefold()
        if key in seen:
            raise ValueError(
                f"column name {name!r} is used twice (columns {seen[key]} and {number}); "
                "names must be unique, ignoring case"
            )
        seen[key] = number


def suggest_names(raw_names: list[str]) -> list[str]:
    """Valid, unique column names close to the given ones (header cells)."""
    suggested: list[str] = []
    taken: set[str] = set()
    for number, raw in enumerate(raw_names, start=1):
        name = (raw or "").strip()
        if column_name_problem(name):
            # Runs of other characters become one underscore: "sepal length (cm)" ->
            # "sepal_length_cm".
            pieces = [c if c == "_" or c.isalpha() or "0" <= c <= "9" else " " for c in name]
            name = "_".join("".join(pieces).split())[:MAX_NAME_LENGTH]
            if not name:
                name = f"col_{number}"
            elif "0" <= name[0] <= "9":
                name = f"c_{name}"[:MAX_NAME_LENGTH]
        unique, counter = name, 2
        while unique.casefold() in taken:
            unique, counter = f"{name}_{counter}", counter + 1
        taken.add(unique.casefold())
        suggested.append(unique)
    return suggested


# ---------------------------------------------------------------------------------------------
# Encodings


def _codec_name(encoding) -> str:
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValueError(
            f"unknown encoding {encoding!r}: use e.g. utf-8, gbk, gb18030 or latin-1"
        ) from None


def _encoding_label(codec: str) -> str:
    labels = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
    return labels.get(codec, "Latin-1" if codec == "iso8859-1" else codec.upper())


def _ascii_compatible(codec: str) -> bool:
    """Whether separators, quotes and newlines are the same bytes as in ASCII (not UTF-16...),
    which the byte-level scans below rely on."""
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


def _encoding_advice(codec: str, data: bytes) -> str:
    suggestion = _suggest_encoding(data, codec)
    if suggestion == "gb18030":
        return (
            "It looks like GBK/GB18030 (Chinese text saved on Windows): "
            "choose that encoding (GB18030 covers GBK) and import again."
        )
    if suggestion:
        return f"It may be {_encoding_label(suggestion)}: choose that encoding and import again."
    return "Choose the encoding the file was saved in and import again."


def _first_undecodable_line(
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


# ---------------------------------------------------------------------------------------------
# Splitting text into rows (preview and the checks before an import)


def _separator_problem(separator) -> str | None:
    if not isinstance(separator, str) or len(separator) != 1:
        return f"separator must be one character, not {separator!r}"
    if separator in '"\r\n' or ord(separator) > 127:
        return f"separator {separator!r} cannot be used: choose e.g. ',', tab, ';', '|' or space"
    return None


def _split_rows(text: str, separator: str) -> list[tuple[int, list[str]]]:
    """(first line number, fields) for each non-blank row, quotes handled as pyarrow does."""
    reader = csv.reader(io.StringIO(text), delimiter=separator, quotechar='"', doublequote=True)
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for fields in reader:
            if fields and fields != [""]:
                rows.append((line, fields))
            line = reader.line_num + 1
    except csv.Error:
        pass  # an unterminated quote at the end of a sample: keep the rows before it
    return rows


def _modal_width(rows: list[tuple[int, list[str]]]) -> int:
    return Counter(len(fields) for _, fields in rows).most_common(1)[0][0]


def _guess_type(values: list[str]) -> str:
    """The type a column's values fit (as the import will read them), else string."""
    present = [v for v in (value.strip() for value in values) if v not in NULL_SPELLING_SET]
    if not present:
        return "string"
    if all(re.match(TYPE_SHAPES["int"], v) for v in present):
        # Beyond int64 the file can still be read as float.
        return "int" if all(len(v.lstrip("-")) < 19 for v in present) else "float"
    if all(re.match(TYPE_SHAPES["float"], v) for v in present):
        return "float"
    if all(v in BOOL_SPELLING_SET for v in present):
        return "bool"
    if all(re.match(TYPE_SHAPES["datetime"], v) or re.match(SLASH_DATE_SHAPE, v) for v in present):
        return "datetime"
    return "string"


NULL_SPELLING_SET = frozenset(NULL_SPELLINGS)
BOOL_SPELLING_SET = frozenset(TRUE_SPELLINGS + FALSE_SPELLINGS)


def preview(sample: bytes, *, separator: str, header: bool, encoding: str) -> dict:
    """Columns (header name, a valid suggested name, a guessed type) and the first rows of a
    file, from its first bytes (~64 KB, possibly cut mid-line). ValueError for an empty sample,
    bytes the encoding cannot decode, or rows whose field counts disagree too much."""
    problem = _separator_problem(separator)
    if problem:
        raise ValueError(problem)
    codec = _codec_name(encoding)
    if not sample or not sample.strip():
        raise ValueError("the file is empty")
    # The sample may end mid-line (even mid-character): rows come from complete lines, and the
    # piece after the last newline only counts if it decodes and has the usual field count.
    cut = sample.rfind(b"\n") + 1
    body, tail = (sample[:cut], sample[cut:]) if cut else (sample, b"")
    whole_lines = bool(cut)  # else one long line, maybe ending in part of a character
    bad = _first_undecodable_line(body, codec, complete=whole_lines)
    if bad:
        line, raw = bad
        raise ValueError(
            f"the file is not valid {_encoding_label(codec)} (line {line}). "
            + _encoding_advice(codec, raw)
        )
    text = codecs.getincrementaldecoder(codec)().decode(body, final=whole_lines)
    # pyarrow skips a UTF-8 byte order mark; so does the preview, or it would start a name.
    rows = _split_rows(text.removeprefix("\ufeff"), separator)
    try:
        tail_rows = _split_rows(codecs.decode(tail, codec), separator) if tail else []
    except UnicodeDecodeError:
        tail_rows = []
    if rows and tail_rows and len(tail_rows[0][1]) == _modal_width(rows):
        line = body.count(b"\n") + 1
        rows.append((line, tail_rows[0][1]))
    if not rows:
        raise ValueError("the file is empty")
    warnings: list[str] = []
    header_row = rows[0][1] if header else None
    data = rows[1:] if header else rows
    width = _modal_width(data or rows)
    odd = [(line, len(fields)) for line, fields in data if len(fields) != width]
    if len(odd) > max(1, len(data) // 10):
        counts = Counter(len(fields) for _, fields in data)
        described = ", ".join(
            f"{_plural(n, 'line')} with {_plural(w, 'field')}" for w, n in counts.most_common(3)
        )
        raise ValueError(
            f"the lines do not have the same number of fields ({described}): "
            f"is the separator {separator!r} right?"
        )
    for line, count in odd[:5]:
        warnings.append(
            f"line {line} has {_plural(count, 'field')}, not {width}: "
            "such rows follow the rule for abnormal rows"
        )
    if width == 1:
        others = [s for s in (",", "\t", ";", "|") if s != separator and s in body.decode(codec)]
        if others:
            warnings.append(
                f"every line is one column: is the separator {separator!r} right? "
                f"The lines contain {others[0]!r}"
            )
    names = [f"col_{i}" for i in range(1, width + 1)]
    if header_row is not None:
        if len(header_row) != width:
            warnings.append(f"the header has {len(header_row)} names but rows have {width} fields")
        names = [header_row[i] if i < len(header_row) else names[i] for i in range(width)]
    suggested = suggest_names(names)
    columns = []
    for index in range(width):
        values = [fields[index] for _, fields in data if index < len(fields)]
        columns.append(
            {
                "index": index,
                "name": names[index],
                "suggested_name": suggested[index],
                "type": _guess_type(values),
            }
        )
    _warn_about_header(header_row, data, width, warnings)
    return {
        "columns": columns,
        "rows": [fields for _, fields in data[:PREVIEW_ROWS]],
        "warnings": warnings,
    }


def _warn_about_header(header_row, data, width: int, warnings: list[str]) -> None:
    """A header switch set the wrong way shows as a first row unlike the rows below it: text
    above numbers, or numbers where names should be."""
    first, below = (header_row, data) if header_row is not None else (data[0][1], data[1:])
    if not below:
        return
    numeric = [
        i
        for i in range(min(width, len(first)))
        if _guess_type([f[i] for _, f in below if i < len(f)]) in ("int", "float")
    ]
    if not numeric:
        return
    first_is_text = [_guess_type([first[i]]) == "string" and first[i] != "" for i in numeric]
    if header_row is None and all(first_is_text):
        warnings.append("the first line looks like a header: set 'header' if it is one")
    elif header_row is not None and not any(first_is_text):
        warnings.append("the header line looks like data: clear 'header' if it is not a header")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


# ---------------------------------------------------------------------------------------------
# Parameters


@dataclass
class Params:
    inputs: list[Path]
    previous_parts: list[Path]
    separator: str
    header: bool
    codec: str
    abnormal: str
    columns: list[dict]
    output_dir: Path

    @classmethod
    def parse(cls, raw) -> Params:
        if not isinstance(raw, dict):
            raise ImportFailed("params.json must hold an object")

        def paths(key: str, required: bool) -> list[Path]:
            value = raw.get(key, [] if not required else None)
            if not isinstance(value, list) or (required and not value):
                raise ImportFailed(f"params: {key} must be a non-empty list of file paths")
            if not all(isinstance(item, str) and item for item in value):
                raise ImportFailed(f"params: {key} must hold file paths")
            return [Path(item) for item in value]

        problem = _separator_problem(raw.get("separator"))
        if problem:
            raise ImportFailed(problem)
        if not isinstance(raw.get("header"), bool):
            raise ImportFailed("params: header must be true or false")
        if raw.get("abnormal") not in RULES:
            raise ImportFailed(
                f"unknown rule for abnormal rows {raw.get('abnormal')!r}: use skip, fill or fail"
            )
        try:
            codec = _codec_name(raw.get("encoding", "utf-8"))
            validate_columns(raw.get("columns"))
        except ValueError as error:
            raise ImportFailed(str(error)) from None
        output_dir = raw.get("output_dir")
        if not isinstance(output_dir, str) or not output_dir:
            raise ImportFailed("params: output_dir must be a folder path")
        return cls(
            inputs=paths("inputs", required=True),
            previous_parts=paths("previous_parts", required=False),
            separator=raw["separator"],
            header=raw["header"],
            codec=codec,
            abnormal=raw["abnormal"],
            columns=[{"name": c["name"], "type": c["type"]} for c in raw["columns"]],
            output_dir=Path(output_dir),
        )

    @property
    def names(self) -> list[str]:
        return [column["name"] for column in self.columns]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c["name"], ARROW_TYPES[c["type"]]) for c in self.columns])


# ---------------------------------------------------------------------------------------------
# Robust conversion: text cells -> typed values, and which cells cannot be converted


def _converts(text: str, target: pa.DataType) -> bool:
    try:
        pc.cast(pa.array([text], pa.string()), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _failing_positions(text: pa.Array, target: pa.DataType, offset: int = 0) -> list[int]:
    """Positions of the cells that do not cast, by bisection (cast is all-or-nothing); only
    used for the rare cells that look right but still fail, e.g. an int beyond int64."""
    try:
        pc.cast(text, target)
        return []
    except pa.ArrowInvalid:
        if len(text) == 1:
            return [offset]
    half = len(text) // 2
    return _failing_positions(text.slice(0, half), target, offset) + _failing_positions(
        text.slice(half), target, offset + half
    )


def _cast_finding_failures(text: pa.Array, type_name: str) -> tuple[pa.Array, np.ndarray]:
    """Cast text (nulls for missing values) to the type; cells that fail become null and are
    flagged. Cast is all-or-nothing, so: text of the wrong shape is bad, shaped text is cast in
    bulk (bisecting in the rare case that fails), and the other spellings pyarrow takes ("inf")
    are tried one distinct value at a time. "Valid" thus means what the fast path accepts."""
    target = ARROW_TYPES[type_name]
    shaped = pc.fill_null(pc.match_substring_regex(text, TYPE_SHAPES[type_name]), False)
    odd = pc.and_(pc.is_valid(text), pc.invert(shaped))
    bad = odd.to_numpy(zero_copy_only=False)
    if type_name in OTHER_SPELLINGS and bad.any():
        spelled = pc.and_(odd, pc.match_substring_regex(text, OTHER_SPELLINGS[type_name]))
        taken = [v for v in pc.unique(text.filter(spelled)).to_pylist() if _converts(v, target)]
        if taken:
            bad &= ~pc.is_in(text, pa.array(taken, pa.string())).to_numpy(zero_copy_only=False)
    shaped_at = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    if len(shaped_at):
        for position in _failing_positions(text.take(pa.array(shaped_at)), target):
            bad[shaped_at[position]] = True
    cleaned = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), text) if bad.any() else text
    return pc.cast(cleaned, target), bad


def convert_cells(raw: pa.Array, type_name: str) -> tuple[pa.Array, np.ndarray | None]:
    """Typed values of one column of text cells, and a mask of the cells that cannot be
    converted (None when all can). Missing-value spellings become null, as in the fast path."""
    if type_name == "string":
        return raw, None
    # " 1.5" (a file written with ", " between values) is a number too. The fast path rejects
    # it, so such files take this path, slower but without abnormal rows.
    raw = pc.utf8_trim_whitespace(raw)
    is_missing = pc.fill_null(pc.is_in(raw, pa.array(NULL_SPELLINGS)), True)
    text = pc.if_else(is_missing, pa.scalar(None, pa.string()), raw)
    if type_name == "bool":
        true = pc.is_in(text, pa.array(TRUE_SPELLINGS))
        false = pc.is_in(text, pa.array(FALSE_SPELLINGS))
        bad = pc.and_(pc.is_valid(text), pc.invert(pc.or_(true, false)))
        values = pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        bad_mask = bad.to_numpy(zero_copy_only=False)
        return values, bad_mask if bad_mask.any() else None
    try:
        return pc.cast(text, ARROW_TYPES[type_name]), None  # the usual case: all cells convert
    except pa.ArrowInvalid:
        pass
    if type_name != "datetime":
        values, bad = _cast_finding_failures(text, type_name)
        return values, bad
    # Datetimes: the slash formats via strptime (as pyarrow's CSV timestamp_parsers do),
    # everything else must be ISO 8601.
    slashed = None
    for fmt in DATETIME_FORMATS:
        parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
        slashed = parsed if slashed is None else pc.coalesce(slashed, parsed)
    rest = pc.if_else(pc.is_valid(slashed), pa.scalar(None, pa.string()), text)
    iso, bad = _cast_finding_failures(rest, "datetime")
    return pc.coalesce(slashed, iso), bad


# ---------------------------------------------------------------------------------------------
# Byte-level scans of a file (numpy, bounded memory): used only to report problems precisely


@dataclass
class _Records:
    """Records (rows) that end in one chunk of a file: byte offsets and 1-based line numbers."""

    starts: np.ndarray
    ends: np.ndarray  # offset of the terminating newline (file size for a last, open record)
    start_lines: np.ndarray
    end_lines: np.ndarray
    blank: np.ndarray  # empty lines, which pyarrow skips without counting them as rows
    open_quote: bool = False  # the file ends inside a quoted value that started in this record


def _scan_records(path: Path, separator: str, chunk_size: int = 16 << 20) -> Iterator[_Records]:
    """The records of a CSV file in order, quote-aware: a newline inside a quoted value does
    not end a record. A quote opens a value when it follows a separator or line start and
    closes one when a separator or line end follows; quotes elsewhere (12" screen) are text."""
    sep = ord(separator)
    state = 0  # 1 while inside a quoted value
    record_start, record_line = 0, 1
    base, lines_before, previous = 0, 0, 10  # the file start behaves like a line start
    with open(path, "rb") as file:
        chunk = file.read(chunk_size)
        while chunk:
            following = file.read(chunk_size)
            buf = np.frombuffer(chunk, dtype=np.uint8)
            toggles, state_after = _quote_toggles(buf, sep, state, previous, following[:1])
            newlines = np.flatnonzero(buf == 10)
            inside = (state + np.searchsorted(toggles, newlines)) & 1
            ends_here = np.flatnonzero(inside == 0)  # indexes into newlines
            ends = newlines[ends_here]
            if len(ends):
                starts = np.concatenate(([record_start], base + ends[:-1] + 1))
                start_lines = np.concatenate(([record_line], lines_before + ends_here[:-1] + 2))
                end_lines = lines_before + ends_here + 1
                lengths = base + ends - starts
                last_bytes = np.where(ends > 0, buf[np.maximum(ends - 1, 0)], previous)
                blank = (lengths == 0) | ((lengths == 1) & (last_bytes == 13))
                yield _Records(starts, base + ends, start_lines, end_lines, blank)
                record_start, record_line = int(base + ends[-1] + 1), int(end_lines[-1] + 1)
            state = state_after
            lines_before += len(newlines)
            base += len(buf)
            previous = int(buf[-1])
            chunk = following
    if record_start < base:  # a last record without a newline
        one = np.array([record_start])
        yield _Records(
            one, np.array([base]), np.array([record_line]), np.array([lines_before + 1]),
            np.array([False]), open_quote=state == 1,
        )  # fmt: skip


def _quote_toggles(buf, sep, state, previous, following) -> tuple[np.ndarray, int]:
    """Positions in buf where the inside-quotes state flips, and the state after buf."""
    quotes = np.flatnonzero(buf == 34)
    if not len(quotes):
        return quotes, state
    before = np.where(quotes > 0, buf[np.maximum(quotes - 1, 0)], previous)
    next_default = following[0] if following else 10  # the end of the file ends a line
    after = np.where(quotes + 1 < len(buf), buf[np.minimum(quotes + 1, len(buf) - 1)], next_default)
    opening = (before == sep) | (before == 10) | (before == 13)
    closing = ~opening & ((after == sep) | (after == 10) | (after == 13))
    kinds = opening[opening | closing].astype(np.int8)  # 1 opens, 0 closes
    positions = quotes[opening | closing]
    # Only alternating events change the state: keep the first of each run, relative to the
    # state carried in (an opening quote inside a value or a closing one outside is text).
    changed = kinds != np.concatenate(([state], kinds[:-1]))
    toggles = positions[changed]
    return toggles, (state + len(toggles)) & 1


def record_lines(path: Path, separator: str, records: list[int]) -> dict[int, int]:
    """Physical line numbers (1-based) where the given pyarrow row numbers start. pyarrow counts
    rows (the header too), not lines: blank lines and quoted newlines make them differ."""
    wanted = sorted(set(records))
    found: dict[int, int] = {}
    if not wanted:
        return found
    counted = 0
    for chunk in _scan_records(path, separator):
        numbers = counted + np.cumsum(~chunk.blank)
        hits = np.searchsorted(numbers, wanted)  # numbers is non-decreasing
        for record, hit in zip(wanted, hits, strict=True):
            if hit < len(numbers) and numbers[hit] == record and not chunk.blank[hit]:
                found.setdefault(record, int(chunk.start_lines[hit]))
        counted = int(numbers[-1]) if len(numbers) else counted
        if counted >= wanted[-1]:
            break
    return found


def find_long_record(path: Path, separator: str, limit: int) -> tuple[int, int] | None:
    """(first line, number of lines) of the first record longer than limit bytes."""
    for chunk in _scan_records(path, separator):
        long = np.flatnonzero(chunk.ends - chunk.starts > limit)
        if len(long):
            first = long[0]
            return int(chunk.start_lines[first]), int(
                chunk.end_lines[first] - chunk.start_lines[first] + 1
            )
    return None


def unclosed_quote_line(path: Path, separator: str) -> int | None:
    """The line where the last row starts if the file ends inside a quoted value."""
    last = None
    for last in _scan_records(path, separator):  # noqa: B007 - only the last chunk matters
        pass
    return int(last.start_lines[-1]) if last is not None and last.open_quote else None


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
            bad = _first_undecodable_line(piece, codec)
            if bad:
                return lines_before + bad[0], bad[1]
            lines_before += piece.count(b"\n")
            if not data:
                return None


# ---------------------------------------------------------------------------------------------
# Abnormal rows


@dataclass
class _Finding:
    path: Path
    record: int  # pyarrow's row number; the line number is found when reporting
    reason: str
    line: int = 0


class AbnormalReport:
    """Counts abnormal rows and keeps the first ones found, with reasons, for the summary."""

    def __init__(self, rule: str):
        self.rule = rule
        self.count = 0
        self.first: list[_Finding] = []

    def add(self, findings: list[_Finding]) -> None:
        self.count += len(findings)
        room = MAX_LINES - len(self.first)
        if room > 0:
            self.first.extend(findings[:room])

    def locate(self, path: Path, separator: str, ascii_compatible: bool) -> None:
        """Turn the row numbers of this file's findings into line numbers (one scan)."""
        todo = [f for f in self.first if f.path == path and not f.line]
        lines = record_lines(path, separator, [f.record for f in todo]) if ascii_compatible else {}
        for finding in todo:
            finding.line = lines.get(finding.record, finding.record)

    def as_json(self) -> dict:
        return {
            "rule": self.rule,
            "count": self.count,
            "lines": [f.line for f in self.first],
            "examples": [
                {"line": f.line, "file": f.path.name, "reason": f.reason}
                for f in self.first[:MAX_EXAMPLES]
            ],
        }


# ---------------------------------------------------------------------------------------------
# Output


class PartWriter:
    """New rows -> part-00000.parquet, part-00001.parquet, ...: batches are gathered into big
    row groups (pyarrow's stream gives ~20k-row batches, slow to scan as row groups), and a
    new part starts once one passes PART_BYTES on disk."""

    def __init__(self, directory: Path, schema: pa.Schema, dictionary_columns: Callable):
        self.directory = directory
        self.schema = schema
        self.parts: list[str] = []
        self.rows = 0
        self._dictionary_columns = dictionary_columns
        self._use_dictionary = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0
        self._file: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def close(self) -> list[str]:
        self._flush()
        self._close_part()
        return self.parts

    def discard(self) -> None:
        """Remove every part written (after a failure: no partial data set is left behind)."""
        try:
            self._close_part()
        except Exception:  # noqa: BLE001 - cleaning up after another error
            pass
        for name in self.parts:
            (self.directory / name).unlink(missing_ok=True)

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            if self._use_dictionary is None:
                # Dictionary pages only pay for columns with few distinct values; on the others
                # pyarrow would build one and give up on every row group (~30 % slower).
                self._use_dictionary = self._dictionary_columns() or False
            name = f"part-{len(self.parts):05d}.parquet"
            self.parts.append(name)
            self._file = pa.OSFile(str(self.directory / name), "wb")
            self._writer = pq.ParquetWriter(
                self._file, self.schema, compression=COMPRESSION,
                use_dictionary=self._use_dictionary,
            )  # fmt: skip
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        if self._file.tell() >= PART_BYTES:
            self._close_part()

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._file.close()
            self._writer = self._file = None


class Progress:
    """Short progress lines on stdout for the user watching the log."""

    def __init__(self, total_bytes: int):
        self.total_bytes = total_bytes
        self.done_bytes = 0  # of finished files
        self.rows = 0
        self._next = PROGRESS_EVERY
        self._started = time.monotonic()

    def rows_added(self, rows: int, current_file_position: int) -> None:
        self.rows += rows
        if self.rows >= self._next:
            self._next = (self.rows // PROGRESS_EVERY + 1) * PROGRESS_EVERY
            read = min(self.total_bytes, self.done_bytes + current_file_position)
            share = f", {100 * read / self.total_bytes:.0f} %" if self.total_bytes else ""
            say(
                f"converted {self.rows:,} rows ({read / 1e6:,.0f} MB read{share}) "
                f"in {time.monotonic() - self._started:.1f} s ..."
            )


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Converting one file


class _Unconvertible(Exception):
    """The fast path met a row it cannot take: re-read the file on the robust path."""


class _RowTooLong(Exception):
    """A row does not fit in one read block."""


class FileImport:
    """Reads one input file and hands its rows, converted, to `deliver`."""

    def __init__(self, path: Path, params: Params, report: AbnormalReport, deliver, progress):
        self.path = path
        self.name = path.name
        self.params = params
        self.report = report
        self.deliver = deliver
        self.progress = progress
        self.header_rows = 1 if params.header else 0
        # Rows (pyarrow's numbering, header included) up to here are done: delivered, dropped
        # or reported. A re-read skips them.
        self.frontier = self.header_rows
        self.rows_read = 0  # data rows seen, good or not (to tell a file with no rows)
        self.ascii_compatible = _ascii_compatible(params.codec)
        self._stream: pa.NativeFile | None = None
        self._last_row: pa.RecordBatch | None = None  # the file's last row as read

    def run(self) -> str | None:
        """Read the file; returns why it gave no rows, if it gave none."""
        self._check_start()
        typed, block_size = True, BLOCK_SIZE
        while True:
            try:
                if typed:
                    self._read_fast(block_size)
                else:
                    self._read_robust(block_size)
                break
            except _Unconvertible as why:
                say(f"{self.name}: {why}; reading it again cell by cell ({self.params.abnormal})")
                typed = False
            except _RowTooLong:
                if block_size >= LINE_LIMIT:
                    raise self._too_long() from None
                block_size = LINE_LIMIT
            finally:
                self._close_stream()
        self._check_quotes_closed()
        self.report.locate(self.path, self.params.separator, self.ascii_compatible)
        if self.rows_read:
            return None
        if self.params.header:
            return f"file {self.name} has a header line but no data rows"
        return f"file {self.name} has no data rows"

    # -- checks -----------------------------------------------------------------------------------

    def _check_quotes_closed(self) -> None:
        """A quote that is never closed makes pyarrow read the rest of the file into one value
        of the last row, silently when that row still has the right field count. Such a row
        has a value with a newline: only then is the file scanned to be sure."""
        row = self._last_row
        if row is None or not any(
            pa.types.is_string(column.type) and "\n" in (column[0].as_py() or "")
            for column in row.columns
        ):
            return
        line = unclosed_quote_line(self.path, self.params.separator)
        if line is not None:
            raise self._unclosed_quote(line)

    def _unclosed_quote(self, line: int) -> ImportFailed:
        return ImportFailed(
            f'file {self.name}: the quote (") opened on line {line} is never closed, '
            "so the rest of the file would be read as one value; fix the quoting",
            [line],
        )

    def _check_start(self) -> None:
        """Cheap checks on the first 64 KB that give clearer errors than pyarrow would."""
        if not self.path.is_file():
            raise ImportFailed(f"file {self.path} was not found")
        with open(self.path, "rb") as file:
            sample = file.read(1 << 16)
        if not sample.strip():
            raise ImportFailed(f"file {self.name} is empty")
        complete = len(sample) < 1 << 16
        bad = _first_undecodable_line(sample, self.params.codec, complete)
        if bad:
            raise self._encoding_error(*bad)
        # Whole lines only: the last one may be cut off by the sample's end.
        cut = len(sample) if complete else sample.rfind(b"\n") + 1
        rows = _split_rows(codecs.decode(sample[:cut], self.params.codec), self.params.separator)
        data = rows[self.header_rows :][:200]
        if not data:
            return  # no complete data row in the sample: the reader tells what is wrong
        width, declared = _modal_width(data), len(self.params.columns)
        if width != declared:
            hint = f" (is the separator {self.params.separator!r} right?)" if width == 1 else ""
            raise ImportFailed(
                f"file {self.name} has {_plural(width, 'column')} but {declared} "
                f"{'is' if declared == 1 else 'are'} declared{hint}",
                [line for line, fields in data if len(fields) == width][:1],
            )

    # -- the fast path ---------------------------------------------------------------------------

    def _read_fast(self, block_size: int) -> None:
        ragged = []  # one entry per row with the wrong field count

        def on_invalid_row(row) -> str:
            # With threads pyarrow gives no row number; the robust path will find it.
            ragged.append(True)
            return "skip"

        p = self.params
        convert = pacsv.ConvertOptions(
            column_types=dict(zip(p.names, p.schema.types, strict=True)),
            null_values=NULL_SPELLINGS,
            true_values=TRUE_SPELLINGS,
            false_values=FALSE_SPELLINGS,
            timestamp_parsers=[pacsv.ISO8601, *DATETIME_FORMATS],
            strings_can_be_null=False,
        )
        skip = self.frontier - self.header_rows  # delivered by an earlier try (none ragged)
        with closing(self._batches(True, block_size, convert, on_invalid_row)) as batches:
            for batch in batches:
                if ragged:  # in this batch or one read ahead: a row with a wrong field count
                    raise _Unconvertible("a row has the wrong number of fields")
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                batch, skip = batch.slice(skip), 0
                self._last_row = batch.slice(batch.num_rows - 1)
                self.rows_read += batch.num_rows
                self.frontier += batch.num_rows
                self._deliver(batch)
        if ragged:
            raise _Unconvertible("a row has the wrong number of fields")

    # -- the robust path -------------------------------------------------------------------------

    def _read_robust(self, block_size: int) -> None:
        p = self.params
        ragged: list[tuple[int, str, int]] = []  # (row number, text, field count) not handled
        ragged_numbers: list[int] = []  # of all ragged rows so far, in order

        def on_invalid_row(row) -> str:
            ragged.append((row.number, row.text, row.actual_columns))
            ragged_numbers.append(row.number)
            return "skip"

        convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in p.names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        first_row = self.header_rows + 1
        emitted = 0  # rows pyarrow gave us on this read
        # For the i-th ragged row: how many good rows come before it. Row k (0-based) of the
        # good ones is then row number first_row + k + (ragged rows with gap <= k).
        gaps = np.empty(0, dtype=np.int64)
        with closing(self._batches(False, block_size, convert, on_invalid_row)) as batches:
            for batch in batches:
                # All ragged rows up to this batch's end are known: a block is parsed before it
                # is converted, and a serial read parses no further ahead.
                new = np.array(ragged_numbers[len(gaps) :], dtype=np.int64)
                before = np.arange(len(gaps), len(gaps) + len(new))
                gaps = np.concatenate([gaps, new - first_row - before])
                index = np.arange(emitted, emitted + batch.num_rows)
                numbers = first_row + index + np.searchsorted(gaps, index, side="right")
                emitted += batch.num_rows
                last = int(numbers[-1]) if len(numbers) else self.frontier
                fresh = [r for r in ragged if r[0] <= last]
                del ragged[: len(fresh)]  # texts are only kept until handled
                if batch.num_rows:
                    self._last_row = batch.slice(batch.num_rows - 1)
                self._robust_batch(batch, numbers, fresh)
        self._robust_batch(None, np.empty(0, dtype=np.int64), ragged)

    def _robust_batch(self, batch, numbers: np.ndarray, ragged: list[tuple[int, str, int]]):
        """Convert one batch of text rows (plus the ragged rows among them) and apply the rule."""
        p = self.params
        ragged = [r for r in ragged if r[0] > self.frontier]
        for number, text, _ in ragged:
            if "\n" in text and text.count('"') % 2:
                raise self._unclosed_quote(self._lines([number]).get(number, number))
        if batch is not None:
            fresh = numbers > self.frontier
            if not fresh.all():
                batch, numbers = batch.filter(pa.array(fresh)), numbers[fresh]
        self.rows_read += (batch.num_rows if batch is not None else 0) + len(ragged)
        findings: dict[int, str] = {}
        for number, _, count in ragged:
            findings[number] = f"expected {len(p.columns)} columns, got {count}"
        if ragged and p.abnormal == "fill":
            batch, numbers = self._with_ragged_rows(batch, numbers, ragged)
        if batch is None or not batch.num_rows:
            self._settle(findings, 0, numbers)
            return
        arrays, bad_rows = [], np.zeros(batch.num_rows, dtype=bool)
        for column, raw in zip(p.columns, batch.columns, strict=True):
            values, bad = convert_cells(raw, column["type"])
            if bad is not None:
                for row in np.flatnonzero(bad & ~bad_rows)[: MAX_LINES + 1]:
                    shown = str(raw[int(row)].as_py())
                    shown = shown if len(shown) <= 40 else shown[:37] + "..."
                    findings.setdefault(
                        int(numbers[row]),
                        f"column {column['name']}: {shown!r} is not {_a_type(column['type'])}",
                    )
                bad_rows |= bad
                if p.abnormal == "fill":
                    values = pc.if_else(pa.array(bad), FILL_VALUES[column["type"]], values)
            arrays.append(values)
        # Counted, not only listed: rows beyond the first few listed still count.
        extra = int(np.count_nonzero(bad_rows & ~np.isin(numbers, list(findings))))
        self._settle(findings, extra, numbers)
        converted = pa.RecordBatch.from_arrays(arrays, schema=p.schema)
        if p.abnormal == "skip" and bad_rows.any():
            converted = converted.filter(pa.array(~bad_rows))
        self._deliver(converted)

    def _settle(self, findings: dict[int, str], extra: int, numbers: np.ndarray) -> None:
        """Record this batch's abnormal rows; with rule 'fail', stop with the first of them."""
        if numbers is not None and len(numbers):
            self.frontier = max(self.frontier, int(numbers[-1]))
        if findings:
            self.frontier = max(self.frontier, max(findings))
        ordered = [_Finding(self.path, n, findings[n]) for n in sorted(findings)]
        if self.params.abnormal == "fail" and ordered:
            shown = ordered[:MAX_LINES]
            lines = self._lines([f.record for f in shown])
            line_numbers = [lines.get(f.record, f.record) for f in shown]
            listed = ", ".join(map(str, line_numbers))
            raise ImportFailed(
                f"file {self.name}: line {line_numbers[0]} is abnormal ({shown[0].reason}) and "
                f"the rule for abnormal rows is 'fail'. Abnormal lines found: {listed}"
                f"{' ...' if len(ordered) > len(shown) or extra else ''}. Fix the file, or "
                "choose 'skip' or 'fill' to import it anyway.",
                line_numbers,
            )
        self.report.add(ordered)
        self.report.count += extra

    def _with_ragged_rows(self, batch, numbers, ragged):
        """Rule 'fill': ragged rows padded with nulls (or cut) to the column count, put back
        in their place among the batch's rows."""
        width = len(self.params.columns)
        columns: list[list[str | None]] = [[] for _ in range(width)]
        for _, text, _ in ragged:
            fields = next(csv.reader(io.StringIO(text), delimiter=self.params.separator), [])
            fields = (fields + [None] * width)[:width]
            for column, value in zip(columns, fields, strict=True):
                column.append(value)
        extra = pa.RecordBatch.from_arrays(
            [pa.array(c, pa.string()) for c in columns], names=self.params.names
        )
        extra_numbers = np.array([number for number, _, _ in ragged], dtype=np.int64)
        if batch is None or not batch.num_rows:
            return extra, extra_numbers
        combined = pa.Table.from_batches([batch, extra]).combine_chunks().to_batches()[0]
        all_numbers = np.concatenate([numbers, extra_numbers])
        order = np.argsort(all_numbers, kind="stable")
        return combined.take(pa.array(order)), all_numbers[order]

    # -- reading and errors ------------------------------------------------------------------------

    def _batches(self, typed: bool, block_size: int, convert, on_invalid_row):
        """pyarrow's record batches, with its errors turned into ours."""
        p = self.params
        read = pacsv.ReadOptions(
            use_threads=typed,  # the robust path needs row numbers: only a serial read has them
            block_size=block_size,
            skip_rows=self.header_rows,
            column_names=p.names,
            encoding="utf8" if p.codec in ("utf-8", "utf-8-sig") else p.codec,
        )
        parse = pacsv.ParseOptions(
            delimiter=p.separator,
            newlines_in_values=True,
            invalid_row_handler=on_invalid_row,
        )
        try:
            self._stream = pa.OSFile(str(self.path))
            reader = pacsv.open_csv(self._stream, read, parse, convert)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch
        except pa.ArrowInvalid as error:
            raise self._reading_error(str(error)) from None
        except UnicodeDecodeError:
            bad = find_undecodable_line(self.path, p.codec)
            raise self._encoding_error(*(bad or (0, b""))) from None

    def _reading_error(self, message: str) -> Exception:
        if "invalid UTF8" in message:
            bad = find_undecodable_line(self.path, "utf-8")
            return self._encoding_error(*(bad or (0, b"")))
        if "conversion error" in message:
            found = re.search(r"column #(\d+).*invalid value '(.*)'", message, re.S)
            if not found:
                return _Unconvertible("a value does not convert")
            column = self.params.columns[int(found[1])]
            shown = found[2] if len(found[2]) <= 40 else found[2][:37] + "..."
            return _Unconvertible(
                f"{shown!r} in column {column['name']} is not {_a_type(column['type'])}"
            )
        if "straddling object" in message:
            return _RowTooLong()
        if "Empty CSV file" in message:
            return ImportFailed(f"file {self.name} is empty")
        return ImportFailed(f"file {self.name} could not be read: {message}")

    def _encoding_error(self, line: int, raw: bytes) -> ImportFailed:
        label = _encoding_label(self.params.codec)
        where = f" (line {line})" if line else ""
        return ImportFailed(
            f"file {self.name} is not valid {label}{where}. "
            + _encoding_advice(self.params.codec, raw),
            [line] if line else [],
        )

    def _too_long(self) -> ImportFailed:
        limit = f"{LINE_LIMIT >> 20} MB"
        found = find_long_record(self.path, self.params.separator, LINE_LIMIT)
        if found is None:
            return ImportFailed(f"file {self.name} has a row longer than {limit}")
        line, spans = found
        if spans > 1:
            return ImportFailed(
                f"file {self.name}: the row starting on line {line} is longer than {limit} "
                f'({spans:,} lines): is a closing quote (") missing?',
                [line],
            )
        return ImportFailed(
            f"file {self.name}: line {line} is longer than {limit}; "
            "lines that long are not supported (is this really a table of text?)",
            [line],
        )

    def _lines(self, records: list[int]) -> dict[int, int]:
        if not self.ascii_compatible:
            return {}
        return record_lines(self.path, self.params.separator, records)

    def _deliver(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.deliver(batch)
            position = self._stream.tell() if self._stream is not None else 0
            self.progress.rows_added(batch.num_rows, position)

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _a_type(type_name: str) -> str:
    return {
        "int": "an int",
        "float": "a float",
        "bool": "a bool (true/false)",
        "datetime": "a datetime (YYYY-MM-DD hh:mm:ss)",
    }[type_name]


# ---------------------------------------------------------------------------------------------
# The whole import


def run_import(params: Params, started: float | None = None) -> dict:
    """Convert the inputs and describe old + new rows; returns summary.json's content."""
    started = time.monotonic() if started is None else started
    output = params.output_dir
    inputs = input_files(params.inputs)
    for path in params.previous_parts:
        if path.resolve().parent == output.resolve():
            # The new parts are named part-00000... too: they would overwrite the old ones.
            raise ImportFailed(f"previous part {path} is in output_dir: use another output_dir")
    output.mkdir(parents=True, exist_ok=True)
    for stale in [*output.glob("part-*.parquet"), output / "summary.json", output / "error.json"]:
        stale.unlink(missing_ok=True)  # left by an earlier attempt into the same folder
    convert_started = time.monotonic()
    stats = TableStats([(c["name"], c["type"]) for c in params.columns])
    report = AbnormalReport(params.abnormal)
    writer = PartWriter(output, params.schema, stats.dictionary_columns)
    progress = Progress(sum(path.stat().st_size for path in inputs))
    stats_seconds = 0.0
    warnings: list[str] = []

    def consume(batch: pa.RecordBatch) -> None:
        nonlocal stats_seconds
        before = time.monotonic()
        stats.update(batch)
        stats_seconds += time.monotonic() - before
        writer.write(batch)

    background = _InOrderWorker(consume)
    try:
        for path in inputs:
            say(f"reading {path} ...")
            no_rows = FileImport(path, params, report, background.submit, progress).run()
            if no_rows:
                # An empty part of a split export is no reason to fail; nothing at all is.
                warnings.append(no_rows)
                say(f"{no_rows}: nothing to add from it")
            progress.done_bytes += path.stat().st_size
        background.finish()
        parts = writer.close()
        convert_seconds = time.monotonic() - convert_started
        if not writer.rows and report.count:
            raise ImportFailed(
                f"no rows to import: all {report.count:,} rows are abnormal and the rule "
                f"is '{params.abnormal}'",
                [f.line for f in report.first],
            )
        if not writer.rows:
            raise ImportFailed("; ".join(warnings[:3]) or "no rows to import")
        say(
            f"converted {writer.rows:,} rows into {len(parts)} part(s) in {convert_seconds:.1f} s "
            f"(statistics {stats_seconds:.1f} s); abnormal rows: {report.count:,}"
        )
        previous_rows = _add_previous_parts(params, stats)
    except BaseException:
        background.abandon()
        writer.discard()
        raise
    return {
        "rows": writer.rows + previous_rows,
        "new_rows": writer.rows,
        "columns": params.columns,
        "parts": parts,
        "abnormal": report.as_json(),
        "warnings": warnings,
        "stats": stats.results(),
        "seconds": {
            "convert": round(convert_seconds, 3),
            "stats": round(stats_seconds, 3),
            "total": round(time.monotonic() - started, 3),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def input_files(paths: list[Path]) -> list[Path]:
    """The files to read, in order. A folder (the web side stages an upload as one) stands for
    the files under it, sorted by path; hidden files, Hadoop/Spark markers such as _SUCCESS
    and empty files are left out there. A file named directly must exist and is always read."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)
            )
            non_empty = [f for f in found if f.stat().st_size > 0]
            if not non_empty:
                if len(found) == 1:
                    raise ImportFailed(f"file {found[0].name} is empty")
                raise ImportFailed(f"folder {path} has no {'non-empty ' if found else ''}files")
            files.extend(non_empty)
        else:
            raise ImportFailed(f"file {path} was not found")
    return files


class _InOrderWorker:
    """Runs a function on each submitted item, in order, on one background thread: statistics
    and parquet writing then overlap pyarrow's reading, whose serial chunking leaves a core
    partly idle (numpy, pyarrow compute and the parquet writer release the GIL)."""

    def __init__(self, work: Callable, depth: int = 4):
        self._work = work
        self._depth = depth  # items queued at most: bounds the memory held in the queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._queued: deque[Future] = deque()

    def submit(self, item) -> None:
        self._queued.append(self._executor.submit(self._work, item))
        while len(self._queued) > self._depth or (self._queued and self._queued[0].done()):
            self._queued.popleft().result()  # re-raises the worker's error here

    def finish(self) -> None:
        while self._queued:
            self._queued.popleft().result()
        self._executor.shutdown()

    def abandon(self) -> None:
        for future in self._queued:
            future.cancel()
        self._executor.shutdown(wait=True)


def _add_previous_parts(params: Params, stats: TableStats) -> int:
    """Supplement mode: the previous version's parts are not rewritten, only fed through the
    statistics so that they describe old and new rows together."""
    rows = 0
    for path in params.previous_parts:
        say(f"adding {path} to the statistics ...")
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid) as error:
            raise ImportFailed(f"previous part {path} cannot be read: {error}") from None
        found = [(f.name, f.type) for f in parquet.schema_arrow]
        expected = [(f.name, f.type) for f in params.schema]
        if found != expected:
            raise ImportFailed(
                f"previous part {path} has columns {_describe(found)} but this import "
                f"declares {_describe(expected)}"
            )
        for batch in parquet.iter_batches(batch_size=1 << 16):
            stats.update(batch)
            rows += batch.num_rows
    return rows


def _describe(fields) -> str:
    return ", ".join(f"{name} ({arrow_type})" for name, arrow_type in fields)


def _write_json(path: Path, content: dict) -> None:
    """Write then rename, so the web side never reads half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(content, ensure_ascii=False, allow_nan=False))
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", required=True, help="path of params.json")
    args = parser.parse_args(argv)
    # Cancelled by the supervisor: unwind normally, so that partial parts are removed.
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return _main(args, started)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _main(args: argparse.Namespace, started: float) -> int:
    output_dir = Path("output")
    try:
        try:
            raw = json.loads(Path(args.params).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ImportFailed(f"cannot read {args.params}: {error}") from None
        if isinstance(raw, dict) and isinstance(raw.get("output_dir"), str):
            output_dir = Path(raw["output_dir"])
        summary = run_import(Params.parse(raw), started)
    except ImportFailed as failure:
        return _fail(output_dir, str(failure), failure.lines)
    except MemoryError:
        return _fail(output_dir, "the import ran out of memory", [])
    except Exception as error:  # noqa: BLE001 - whatever it is, the web side needs error.json
        traceback.print_exc()
        return _fail(output_dir, f"the import failed unexpectedly: {error}", [])
    _write_json(output_dir / "summary.json", summary)
    say(f"done: {summary['rows']:,} rows, summary in {output_dir / 'summary.json'}")
    return 0


def _fail(output_dir: Path, message: str, lines: list[int]) -> int:
    print(f"import failed: {message}", file=sys.stderr, flush=True)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        _write_json(output_dir / "error.json", {"error": message, "lines": lines})
    except OSError as error:
        print(f"could not write error.json: {error}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
