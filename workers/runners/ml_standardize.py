"""Data standardization: the spec's first machine learning step. It turns the user's sample
files into the standardized folder every BML algorithm reads (see ml_data.py for the format).

Run by the job engine on each instance, with the workspace as cwd:

    python -m workers.runners.ml_standardize --params params.json

params.json: {"format": "DENSE" | "SPARSE_ID" | "SPARSE_ID_WEIGHT",
              "type": "classification" | "regression",
              "input": "train_data", "output_dir": "data"}

`input` is a file or a folder (its files, nested or not; names starting with "." or "_" are
left out). With several instances (WORLD_SIZE 2-4, RANK, MASTER_ADDR, MASTER_PORT as torchrun
sets them) each instance holds only its share of the files, or of their lines when there are
fewer files than instances (the engine stages whole lines cut from byte ranges; the line
numbers this instance reports then count from the start of its share): the feature and label
dictionaries are built over all shares (ml_dist), so every instance converts with the same ids.

Output under output_dir:
    preprocess_out/part-<rank:05d>   every instance, its converted samples (maybe empty)
    dataset.info, preprocess_dictionary/featureIDMap (+ labelIDMap for classification),
    preprocess_summary/feature_summary and label_summary: instance 0 only.
So the union of all instances' output_dir is the standardized data set.

Input lines are "No,label,..." (No may be empty; the line then starts with a comma); DENSE:
No,label,w1,...,wN (N from the first valid row); SPARSE_ID: No,label,f1,f2,... (weight 1);
SPARSE_ID_WEIGHT: No,label,f1 w1,f2 w2,... Quotes have no special meaning (the spec has fields
free of commas). Malformed rows are skipped and counted, with their first line numbers in the
log; dataset.info's skipped_num holds the total. If no row at all is valid the job fails
(message on stderr, exit code 1).

Decisions:
- SPARSE_ID keeps format SPARSE_ID in dataset.info; its lines are written "fid 1".
- Label ids (classification) follow ml_data.feature_sort_key over the original strings, so
  "0"->0, "1"->1; regression labels are written as given (they must be numbers).
- Numbers must be finite decimal numbers ([+-]digits[.digits][e[+-]digits]): text that both
  pyarrow (ml_data's dense reader) and Python's float() (its sparse reader) read the same way;
  "nan", "inf", "NA" and empty weights make a row malformed.
- DENSE rows are copied verbatim (no float is formatted again: the values ml_data reads are
  exactly the ones validated and summarized here). Classification labels are rewritten as ids
  in a second vectorised pass over the output, unless every label already reads as its own id
  ("0", "1", or SUSY's "0.000000000000000000e+00", "1.000000000000000000e+00"; ml_data reads
  the label as a number), which saves that pass.
- feature_summary's count is the number of times the feature occurs in the kept samples
  (every sample for DENSE; a sparse feature repeated in a row counts, and is kept, twice);
  avg/max/min are over those weights. No feature is filtered (flag 1).
- Regression: label_num 0, no labelIDMap, an empty label_summary.

No Django here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
import shutil
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from workers.runners import ml_data, ml_dist

BLOCK_BYTES = 8 << 20  # input is read, checked and written in blocks of whole lines
EXAMPLES = 5  # line numbers kept (and logged) per reason
PROGRESS_SECONDS = 3.0
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER.encode())
BOM = b"\xef\xbb\xbf"

SHAPES = {
    "DENSE": "No,label,weight1,...,weightN",
    "SPARSE_ID": "No,label,feature1,feature2,...",
    "SPARSE_ID_WEIGHT": "No,label,feature1 weight1,feature2 weight2,...",
}

# Why a row is skipped; codes index REASONS from 1 (0: kept, IGNORED: an empty line).
REASONS = [
    "too few fields",
    "wrong number of fields",
    "not UTF-8 text",
    "missing label",
    "label is not a number",
    "feature not written as 'feature weight'",
    "weight is not a number",
]
TOO_FEW, FIELD_COUNT, NOT_UTF8, NO_LABEL, BAD_LABEL, BAD_PAIR, BAD_WEIGHT = range(1, 8)
IGNORED = -1


class StandardizeFailed(Exception):
    """A problem with the parameters or the data: the job fails with this message."""


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Parameters and input files


@dataclass
class Params:
    format: str
    type: str
    input: Path
    output_dir: Path

    @classmethod
    def parse(cls, raw) -> Params:
        if not isinstance(raw, dict):
            raise StandardizeFailed("params.json must hold an object")
        if raw.get("format") not in ml_data.FORMATS:
            raise StandardizeFailed(
                f"unknown input data format {raw.get('format')!r}: use "
                + ", ".join(ml_data.FORMATS)
            )
        if raw.get("type") not in ml_data.TYPES:
            raise StandardizeFailed(
                f"unknown input data type {raw.get('type')!r}: use classification or regression"
            )
        for key in ("input", "output_dir"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise StandardizeFailed(f"params: {key} must be a path")
        return cls(raw["format"], raw["type"], Path(raw["input"]), Path(raw["output_dir"]))

    @property
    def regression(self) -> bool:
        return self.type == "regression"

    @property
    def dense(self) -> bool:
        return self.format == "DENSE"


def input_files(path: Path) -> list[Path]:
    """The non-empty files to read, sorted by path. A missing input is an empty share (an
    instance may receive no files); the run fails later if no instance has any row."""
    if path.is_file():
        return [path] if path.stat().st_size else []
    if not path.is_dir():
        return []
    return sorted(
        f
        for f in path.rglob("*")
        if f.is_file()
        and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)
        and f.stat().st_size
    )


def read_blocks(path: Path, size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The file in blocks of whole lines, each ending with a newline; CR LF and lone CR line
    ends become LF, a leading UTF-8 BOM is dropped."""
    with path.open("rb") as source:
        rest = source.read(len(BOM)).removeprefix(BOM)
        while chunk := source.read(size):
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                rest += chunk
                continue
            block = rest + memoryview(chunk)[:cut]
            rest = chunk[cut:]
            yield _unify_newlines(block)
        if rest:
            yield _unify_newlines(rest + b"\n")


def _unify_newlines(block: bytes) -> bytes:
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return block


def _is_number(text: bytes) -> bool:
    return bool(_NUMBER.match(text)) and math.isfinite(float(text))


def _fields(count: int) -> str:
    return f"{count} field" + ("" if count == 1 else "s")


def _preview(line: bytes, limit: int = 80) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


# ---------------------------------------------------------------------------------------------
# What is wrong with one line (Python; used for the first valid DENSE row and for the examples
# in the log; the blocks themselves are checked vectorised)


def dense_problem(line: bytes, n: int | None, regression: bool) -> tuple[int, str] | None:
    fields = line.split(b",")
    if len(fields) < 3:
        return TOO_FEW, (
            f"has {_fields(len(fields))}, expected {SHAPES['DENSE']}: is the separator a comma?"
        )
    if n is not None and len(fields) != n + 2:
        return FIELD_COUNT, (
            f"has {len(fields)} fields, expected {n + 2} (No, label and {n} weights, "
            "as on the first valid row)"
        )
    try:
        fields[0].decode()
        label = fields[1].decode()
    except UnicodeDecodeError:
        return NOT_UTF8, "is not UTF-8 text"
    if not label:
        return NO_LABEL, "has no label (the second field is empty)"
    if regression and not _is_number(fields[1]):
        return BAD_LABEL, f"has label {label!r}, not a number (the type is regression)"
    for index, weight in enumerate(fields[2:], 1):
        if not _is_number(weight):
            shown = weight.decode(errors="replace")
            return BAD_WEIGHT, f"has weight{index} = {shown!r}, not a number"
    return None


def sparse_problem(line: bytes, weighted: bool, regression: bool) -> tuple[int, str] | None:
    fmt = "SPARSE_ID_WEIGHT" if weighted else "SPARSE_ID"
    try:
        fields = line.decode().split(",")
    except UnicodeDecodeError:
        return NOT_UTF8, "is not UTF-8 text"
    if len(fields) < 2:
        return TOO_FEW, (
            f"has {_fields(len(fields))}, expected {SHAPES[fmt]}: is the separator a comma?"
        )
    if not fields[1]:
        return NO_LABEL, "has no label (the second field is empty)"
    if regression and not _is_number(fields[1].encode()):
        return BAD_LABEL, f"has label {fields[1]!r}, not a number (the type is regression)"
    if weighted:
        pairs = [pair.partition(" ") for pair in fields[2:] if pair]
        for name, space, weight in pairs:
            if not name or not space:
                return BAD_PAIR, (
                    f"has {name + space + weight!r}, expected 'feature weight' (one space between)"
                )
        for name, _, weight in pairs:
            if not _is_number(weight.strip().encode()):
                return BAD_WEIGHT, (
                    f"has feature {name!r} with weight {weight.strip()!r}, not a number"
                )
    return None


def first_dense_row(files: list[Path], regression: bool) -> tuple[int | None, tuple | None]:
    """N (the number of weights) of the first valid DENSE row (None if there is none) and,
    when there is none, the first line's problem as a Skips example."""
    first = None
    for index, path in enumerate(files):
        number = 0
        for block in read_blocks(path):
            for line in block.split(b"\n")[:-1]:
                number += 1
                if not line:
                    continue
                problem = dense_problem(line, None, regression)
                if problem is None:
                    return line.count(b",") - 1, None
                if first is None:
                    first = ((index, number), str(path), number, problem[1], _preview(line))
    return None, first


# ---------------------------------------------------------------------------------------------
# Skipped rows


@dataclass
class Skips:
    """Counts per reason and the first examples: (order, file, line, detail, text)."""

    counts: list[int] = field(default_factory=lambda: [0] * len(REASONS))
    examples: list[list[tuple]] = field(default_factory=lambda: [[] for _ in REASONS])

    @property
    def total(self) -> int:
        return sum(self.counts)

    def add_block(self, order: tuple, name: str, base: int, block: BlockSkips) -> None:
        for code, count in enumerate(block.counts):
            self.counts[code] += count
        for code, line, detail, text in block.examples:
            kept = self.examples[code - 1]
            if len(kept) < EXAMPLES:
                kept.append(((*order, base + line), name, base + line, detail, text))

    def merge(self, other: Skips) -> None:
        for code in range(len(REASONS)):
            self.counts[code] += other.counts[code]
            both = sorted(self.examples[code] + other.examples[code], key=lambda e: e[0])
            self.examples[code] = both[:EXAMPLES]

    def first(self) -> tuple | None:
        examples = [e for kept in self.examples for e in kept]
        return min(examples, key=lambda e: e[0]) if examples else None

    def report(self, rows: int, heading: str = "") -> list[str]:
        if not self.total:
            return []
        lines = [f"{heading}skipped {self.total:,} malformed rows ({rows:,} rows kept):"]
        for code, count in enumerate(self.counts):
            if not count:
                continue
            places: dict[str, list[str]] = {}
            for _, name, line, _, _ in self.examples[code]:
                places.setdefault(name, []).append(str(line))
            where = "; ".join(
                f"{name} line{'s' if len(nums) > 1 else ''} {', '.join(nums)}"
                for name, nums in places.items()
            )
            more = ", ..." if count > len(self.examples[code]) else ""
            lines.append(f"  {count:,} {REASONS[code]}: {where}{more}")
            if self.examples[code]:
                _, name, line, detail, text = self.examples[code][0]
                lines.append(f"    e.g. {name} line {line} {detail}; the line: {text}")
        return lines


@dataclass
class BlockSkips:
    counts: list[int] = field(default_factory=lambda: [0] * len(REASONS))
    examples: list[tuple] = field(default_factory=list)  # (code, line in block, detail, text)

    @classmethod
    def from_codes(
        cls, codes: np.ndarray, line_text: Callable[[int], bytes], problem: Callable
    ) -> BlockSkips:
        skips = cls()
        found = codes > 0
        if not found.any():
            return skips
        skips.counts = np.bincount(codes[found], minlength=len(REASONS) + 1)[1:].tolist()
        for code in range(1, len(REASONS) + 1):
            for index in np.flatnonzero(codes == code)[:EXAMPLES]:
                text = line_text(int(index))
                found_problem = problem(text)
                detail = found_problem[1] if found_problem else REASONS[code - 1]
                skips.examples.append((code, int(index) + 1, detail, _preview(text)))
        return skips


# ---------------------------------------------------------------------------------------------
# Helpers on blocks


def _lines(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (the newline's position) of every line of a block ending with \\n."""
    ends = np.flatnonzero(arr == 10)
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return starts, ends


def _data_bytes(array: pa.Array) -> memoryview:
    """The values of a (large) string/binary array, back to back."""
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    dtype = (
        np.int64
        if pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type)
        else np.int32
    )
    _, offsets, data = array.buffers()
    if data is None:
        return memoryview(b"")
    bounds = np.frombuffer(offsets, dtype=dtype)[array.offset : array.offset + len(array) + 1]
    return memoryview(data)[int(bounds[0]) : int(bounds[-1])]


def _numbers(column) -> tuple[np.ndarray, np.ndarray]:
    """A binary/string column read as finite numbers: (values with 0 where invalid, valid)."""
    valid = pc.match_substring_regex(column, NUMBER)
    valid = valid.to_numpy(zero_copy_only=False)
    filled = pc.if_else(pa.array(valid), column, pa.scalar(b"0", column.type))
    # The pattern takes only spellings pyarrow reads (and Python's float(), ml_data's sparse
    # reader): the cast cannot fail.
    values = pc.cast(filled, pa.float64()).to_numpy(zero_copy_only=False)
    finite = np.isfinite(values)
    if not finite.all():
        values = np.where(finite, values, 0.0)
    return values, valid & finite


def _utf8_ok(column) -> np.ndarray:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    try:
        pc.cast(column, pa.large_string() if pa.types.is_large_binary(column.type) else pa.string())
        return np.ones(len(column), bool)
    except pa.ArrowInvalid:
        ok = np.ones(len(column), bool)
        for index, value in enumerate(column.to_pylist()):
            try:
                value.decode()
            except UnicodeDecodeError:
                ok[index] = False
        return ok


def _value_counts(column) -> dict[str, int]:
    counts = pc.value_counts(column)
    values = counts.field("values").to_pylist()
    values = [v.decode() if isinstance(v, bytes) else v for v in values]
    return dict(zip(values, counts.field("counts").to_pylist(), strict=True))


def _ordered(items: Iterable, work: Callable, workers: int) -> Iterator:
    """work(item) on a thread pool (pyarrow and numpy release the GIL), results in order, at
    most 2 x workers items in flight (bounded memory)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="standardize") as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


# ---------------------------------------------------------------------------------------------
# DENSE blocks


@dataclass
class DenseBlock:
    out: bytes  # the kept lines, verbatim
    lines: int
    rows: int
    skips: BlockSkips
    sums: np.ndarray
    maxs: np.ndarray
    mins: np.ndarray
    labels: dict  # classification: label -> count; regression: {"sum", "min", "max"}


def _dense_names(n: int) -> list[str]:
    return ["No", "label"] + [f"w{i}" for i in range(n)]


def _read_block(block: bytes, names: list[str], types: dict, invalid: list) -> pa.Table:
    def handler(row):
        invalid.append((row.number, row.actual_columns, row.text))
        return "skip"

    return pacsv.read_csv(
        pa.BufferReader(block),
        read_options=pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=max(1 << 20, len(block) + 1)
        ),
        parse_options=pacsv.ParseOptions(
            quote_char=False, ignore_empty_lines=False, invalid_row_handler=handler
        ),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
    )


def _label_summary(label_column, regression: bool, values: np.ndarray | None = None) -> dict:
    if not regression:
        return _value_counts(label_column)
    if values is None:
        values = label_column.to_numpy(zero_copy_only=False)
    if not len(values):
        return {"sum": 0.0, "min": math.inf, "max": -math.inf}
    return {"sum": float(values.sum()), "min": float(values.min()), "max": float(values.max())}


def dense_block(block: bytes, n: int, regression: bool) -> DenseBlock:
    """Check one block: the fast path takes a block whose every line is a valid row (written
    back as it is) or has another width (left out); any other block goes the robust way."""
    names = _dense_names(n)
    types = {name: pa.float64() for name in names[2:]}
    types["No"] = pa.string()
    types["label"] = pa.float64() if regression else pa.string()
    invalid: list = []
    try:
        table = _read_block(block, names, types, invalid)
    except pa.ArrowInvalid:  # a cell that does not convert
        return _dense_block_robust(block, n, regression)
    rows = table.num_rows  # with empty lines kept as rows, one per line
    if not rows or b'"' in block:
        return _dense_block_robust(block, n, regression)
    label = table.column("label")
    if label.null_count or (not regression and pc.min(pc.binary_length(label)).as_py() == 0):
        return _dense_block_robust(block, n, regression)
    # Per column (contiguous): a NaN or an infinity makes the sum non-finite.
    sums, maxs, mins = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        column = table.column(i + 2)
        if column.null_count:
            return _dense_block_robust(block, n, regression)
        extremes = pc.min_max(column)
        sums[i] = pc.sum(column).as_py()
        mins[i], maxs[i] = extremes["min"].as_py(), extremes["max"].as_py()
    if not np.isfinite(sums).all() or (regression and not math.isfinite(pc.sum(label).as_py())):
        return _dense_block_robust(block, n, regression)
    out, lines, skips = block, rows, BlockSkips()
    if invalid:  # only rows of another width: leave their lines out
        arr = np.frombuffer(block, np.uint8)
        starts, ends = _lines(arr)
        lines = len(ends)
        if rows + len(invalid) != lines:
            return _dense_block_robust(block, n, regression)
        codes = np.zeros(lines, np.int8)
        for number, actual, text in invalid:
            codes[number - 1] = IGNORED if not text else TOO_FEW if actual < 3 else FIELD_COUNT
        out = arr[np.repeat(codes == 0, ends - starts + 1)].tobytes()
        skips = BlockSkips.from_codes(
            codes,
            lambda i: block[starts[i] : ends[i]],
            lambda text: dense_problem(text, n, regression),
        )
    return DenseBlock(
        out=out,
        lines=lines,
        rows=rows,
        skips=skips,
        sums=sums,
        maxs=maxs,
        mins=mins,
        labels=_label_summary(label, regression),
    )


def _dense_block_robust(block: bytes, n: int, regression: bool) -> DenseBlock:
    """Every cell read as bytes; each line gets a code (kept, ignored or why it is skipped)."""
    arr = np.frombuffer(block, np.uint8)
    starts, ends = _lines(arr)
    names = _dense_names(n)
    invalid: list = []
    table = _read_block(block, names, dict.fromkeys(names, pa.binary()), invalid)
    codes = np.zeros(len(ends), np.int8)
    shape_ok = np.ones(len(ends), bool)
    for number, actual, text in invalid:
        shape_ok[number - 1] = False
        if not text:
            codes[number - 1] = IGNORED
        else:
            codes[number - 1] = TOO_FEW if actual < 3 else FIELD_COUNT
    row_line = np.flatnonzero(shape_ok)
    if len(row_line) != table.num_rows:
        raise RuntimeError(f"{table.num_rows} rows parsed from {len(row_line)} lines")
    row_codes = np.zeros(len(row_line), np.int8)

    def mark(bad: np.ndarray, code: int) -> None:
        row_codes[(row_codes == 0) & bad] = code

    mark(ends[row_line] == starts[row_line], IGNORED)  # empty line
    no, label = table.column("No").combine_chunks(), table.column("label").combine_chunks()
    mark(~(_utf8_ok(no) & _utf8_ok(label)), NOT_UTF8)
    mark(pc.binary_length(label).to_numpy(zero_copy_only=False) == 0, NO_LABEL)
    label_values = None
    if regression:
        label_values, label_ok = _numbers(label)
        mark(~label_ok, BAD_LABEL)
    weights = np.empty((table.num_rows, n))
    weights_ok = np.ones(table.num_rows, bool)
    for i in range(n):
        weights[:, i], ok = _numbers(table.column(i + 2).combine_chunks())
        weights_ok &= ok
    mark(~weights_ok, BAD_WEIGHT)
    codes[row_line] = row_codes

    keep_rows = row_codes == 0
    keep_lines = codes == 0
    out = arr[np.repeat(keep_lines, ends - starts + 1)].tobytes()
    if b'"' in out:
        out = _quote_no_fields(out)
    kept = weights[keep_rows]
    skips = BlockSkips.from_codes(
        codes,
        lambda i: block[starts[i] : ends[i]],
        lambda text: dense_problem(text, n, regression),
    )
    return DenseBlock(
        out=out,
        lines=len(ends),
        rows=int(keep_rows.sum()),
        skips=skips,
        sums=kept.sum(axis=0),
        maxs=kept.max(axis=0) if len(kept) else np.full(n, -np.inf),
        mins=kept.min(axis=0) if len(kept) else np.full(n, np.inf),
        labels=_label_summary(
            label.filter(pa.array(keep_rows)),
            regression,
            None if label_values is None else label_values[keep_rows],
        ),
    )


def _quote_no_fields(out: bytes) -> bytes:
    """ml_data reads DENSE parts as CSV, where a quote opens a quoted field: a No holding a
    quote is written quoted, with its quotes doubled, so that it reads back as it was."""
    lines = out.split(b"\n")
    for index, line in enumerate(lines):
        no, comma, rest = line.partition(b",")
        if b'"' in no:
            lines[index] = b'"' + no.replace(b'"', b'""') + b'"' + comma + rest
    return b"\n".join(lines)


def relabel_dense_block(block: bytes, value_set: pa.Array, ids: pa.Array) -> memoryview:
    """Replace the label (second field) of every line of a written DENSE part by its id, by
    cutting the block into alternating segments (text, label, text, label, ..., text)."""
    arr = np.frombuffer(block, np.uint8)
    starts, ends = _lines(arr)
    rows = len(ends)
    if not rows:
        return memoryview(block)
    commas = np.flatnonzero(arr == 44)
    first = np.searchsorted(commas, starts)
    if first[-1] + 1 >= len(commas) or (commas[first + 1] > ends).any():
        raise RuntimeError("a written DENSE line has fewer than 3 fields")
    offsets = np.empty(2 * rows + 2, np.int64)
    offsets[0], offsets[-1] = 0, len(block)
    offsets[1:-1:2] = commas[first] + 1
    offsets[2:-1:2] = commas[first + 1]
    segments = pa.Array.from_buffers(
        pa.large_binary(), 2 * rows + 1, [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    )
    labels = segments.take(pa.array(np.arange(1, 2 * rows, 2)))
    codes = pc.index_in(labels, value_set=value_set)
    if codes.null_count:
        raise RuntimeError("a written DENSE label is missing from the label map")
    picks = np.arange(2 * rows + 1)
    picks[1::2] = 2 * rows + 1 + codes.to_numpy()
    joined = pa.concat_arrays([segments, ids]).take(pa.array(picks))
    return _data_bytes(joined)


# ---------------------------------------------------------------------------------------------
# Sparse blocks


@dataclass
class SparseBlock:
    lines: int
    rows: int
    skips: BlockSkips
    names: pa.Array  # the distinct features of the kept rows
    counts: np.ndarray  # per name: samples, weight sum, max, min
    sums: np.ndarray
    maxs: np.ndarray
    mins: np.ndarray
    labels: dict
    # for the output (written once the global ids are known)
    numbers: pa.Array
    label_text: pa.Array
    row_sizes: np.ndarray
    codes: np.ndarray  # per kept feature, index into names
    weight_text: pa.Array | None


def sparse_block(block: bytes, weighted: bool, regression: bool) -> SparseBlock:
    arr = np.frombuffer(block, np.uint8)
    starts, ends = _lines(arr)
    rows = len(ends)
    offsets = np.empty(rows + 1, np.int64)
    offsets[0] = 0
    offsets[1:] = ends - np.arange(rows)
    data = arr[arr != 10]
    lines = pa.Array.from_buffers(
        pa.large_binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    codes = np.zeros(rows, np.int8)

    def mark(bad: np.ndarray, code: int, where: np.ndarray | None = None) -> None:
        if where is None:
            codes[(codes == 0) & bad] = code
        else:
            target = where[bad]
            target = target[codes[target] == 0]
            codes[target] = code

    mark(ends == starts, IGNORED)
    utf8 = _utf8_ok(lines)
    mark(~utf8, NOT_UTF8)
    if not utf8.all():
        lines = pc.if_else(pa.array(utf8), lines, pa.scalar(b"", pa.large_binary()))
    fields = pc.split_pattern(lines.cast(pa.large_string()), ",")
    mark(pc.list_value_length(fields).to_numpy() < 2, TOO_FEW)
    candidates = np.flatnonzero(codes == 0)
    fields = fields.take(pa.array(candidates))
    label = pc.list_element(fields, 1) if len(fields) else pa.array([], pa.large_string())
    mark(pc.binary_length(label).to_numpy(zero_copy_only=False) == 0, NO_LABEL, candidates)
    label_values = None
    if regression:
        label_values, label_ok = _numbers(label)
        mark(~label_ok, BAD_LABEL, candidates)
    features = pc.list_slice(fields, 2)
    entries = pc.list_flatten(features)
    parents = pc.list_parent_indices(features).to_numpy()
    present = pc.binary_length(entries).to_numpy(zero_copy_only=False) > 0
    if weighted:
        has_space = pc.match_substring(entries, " ").to_numpy(zero_copy_only=False)
        split = pc.split_pattern(
            _join(entries, " ", separator=""),
            " ",
            max_splits=1,
        )
        names = pc.list_element(split, 0)
        weight_text = pc.utf8_trim_whitespace(pc.list_element(split, 1))
        named = pc.binary_length(names).to_numpy(zero_copy_only=False) > 0
        bad_pair = present & ~(has_space & named)
        weights, weight_ok = _numbers(weight_text)
        bad_weight = present & ~bad_pair & ~weight_ok
        for bad, code in ((bad_pair, BAD_PAIR), (bad_weight, BAD_WEIGHT)):
            bad_rows = np.zeros(len(candidates), bool)
            bad_rows[parents[bad]] = True
            mark(bad_rows, code, candidates)
    else:
        names, weight_text = entries, None
        weights = np.ones(len(entries))
    keep_rows = codes[candidates] == 0
    kept = present & keep_rows[parents]
    names = names.filter(pa.array(kept))
    weights = weights[kept]
    distinct = pc.unique(names)
    index = pc.index_in(names, value_set=distinct).to_numpy().astype(np.int64)
    count = np.bincount(index, minlength=len(distinct))
    maxs = np.full(len(distinct), -np.inf)
    mins = np.full(len(distinct), np.inf)
    np.maximum.at(maxs, index, weights)
    np.minimum.at(mins, index, weights)
    row_sizes = np.bincount(np.cumsum(keep_rows)[parents[kept]] - 1, minlength=int(keep_rows.sum()))
    keep = pa.array(keep_rows)
    label_kept = label.filter(keep)
    skips = BlockSkips.from_codes(
        codes,
        lambda i: block[starts[i] : ends[i]],
        lambda text: sparse_problem(text, weighted, regression),
    )
    return SparseBlock(
        lines=rows,
        rows=int(keep_rows.sum()),
        skips=skips,
        names=distinct,
        counts=count.astype(np.float64),
        sums=np.bincount(index, weights=weights, minlength=len(distinct)),
        maxs=maxs,
        mins=mins,
        labels=_label_summary(
            label_kept, regression, None if label_values is None else label_values[keep_rows]
        ),
        numbers=(pc.list_element(fields, 0) if len(fields) else label).filter(keep),
        label_text=label_kept,
        row_sizes=row_sizes,
        codes=index,
        weight_text=None if weight_text is None else weight_text.filter(pa.array(kept)),
    )


def sparse_lines(
    numbers: pa.Array,
    labels: pa.Array,
    row_sizes: np.ndarray,
    feature_ids: np.ndarray,
    weight_text: pa.Array | None,
) -> memoryview:
    """Output lines "No,label,fid weight,fid weight,..." (no trailing comma when a sample has
    no feature: ml_data's reader would take the empty field for a feature)."""
    if not len(numbers):
        return memoryview(b"")
    ids = pc.cast(pa.array(feature_ids, pa.int64()), pa.large_string())
    entries = _join(ids, "1" if weight_text is None else weight_text, separator=" ")
    offsets = np.zeros(len(row_sizes) + 1, np.int64)
    np.cumsum(row_sizes, out=offsets[1:])
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array(offsets), entries), pa.scalar(",", entries.type)
    )
    joined = pc.if_else(pa.array(row_sizes > 0), joined, pa.scalar(None, joined.type))
    lines = _join(numbers, labels, joined, separator=",", null_handling="skip")
    return _data_bytes(_join(lines, "", separator="\n"))


def _join(*parts, separator: str, **options) -> pa.Array:
    """Element-wise a + separator + b + ... (arrays or str), as large_string."""
    parts = [
        pa.scalar(part, pa.large_string())
        if isinstance(part, str)
        else part.cast(pa.large_string())
        for part in parts
    ]
    return pc.binary_join_element_wise(*parts, pa.scalar(separator, pa.large_string()), **options)


# ---------------------------------------------------------------------------------------------
# The local pass (this instance's files)


class Progress:
    def __init__(self, total_bytes: int):
        self.total_bytes = total_bytes
        self.done_bytes = 0
        self.rows = 0
        self.started = time.monotonic()
        self._last = self.started

    def add(self, rows: int, block_bytes: int) -> None:
        self.rows += rows
        self.done_bytes += block_bytes
        now = time.monotonic()
        if now - self._last >= PROGRESS_SECONDS:
            self._last = now
            share = (
                f", {100 * self.done_bytes / self.total_bytes:.0f} %" if self.total_bytes else ""
            )
            seconds = now - self.started
            say(
                f"read {self.rows:,} rows ({self.done_bytes / 1e6:,.0f} MB{share}) in "
                f"{seconds:.1f} s, {self.rows / seconds:,.0f} rows/s ..."
            )


@dataclass
class Local:
    """What one instance found: sent to every other instance."""

    rows: int = 0
    lines: int = 0
    skips: Skips = field(default_factory=Skips)
    labels: dict = field(default_factory=dict)
    # features: DENSE -> n columns; sparse -> the local vocabulary (names in local id order)
    names: list[str] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sums: np.ndarray = field(default_factory=lambda: np.zeros(0))
    maxs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    files: int = 0


def _merge_labels(total: dict, part: dict, regression: bool) -> None:
    if not regression:
        for label, count in part.items():
            total[label] = total.get(label, 0) + count
    elif part:
        total["sum"] = total.get("sum", 0.0) + part["sum"]
        total["min"] = min(total.get("min", math.inf), part["min"])
        total["max"] = max(total.get("max", -math.inf), part["max"])


def _blocks(files: list[Path]) -> Iterator[tuple[int, bytes]]:
    for index, path in enumerate(files):
        say(f"reading {path} ({path.stat().st_size / 1e6:,.1f} MB) ...")
        for block in read_blocks(path):
            yield index, block


def dense_pass(files: list[Path], n: int, params: Params, out_path: Path, order: int) -> Local:
    local = Local(counts=np.zeros(n), sums=np.zeros(n))
    local.maxs, local.mins = np.full(n, -np.inf), np.full(n, np.inf)
    progress = Progress(sum(p.stat().st_size for p in files))
    regression = params.regression

    def work(item):
        index, block = item
        return index, len(block), dense_block(block, n, regression)

    current, base = -1, 0
    with out_path.open("wb") as out:
        for index, size, result in _ordered(_blocks(files), work, _workers()):
            if index != current:
                current, base = index, 0
            local.skips.add_block((order, index), str(files[index]), base, result.skips)
            base += result.lines
            out.write(result.out)
            local.rows += result.rows
            local.sums += result.sums
            np.maximum(local.maxs, result.maxs, out=local.maxs)
            np.minimum(local.mins, result.mins, out=local.mins)
            _merge_labels(local.labels, result.labels, regression)
            progress.add(result.rows, size)
    local.counts[:] = local.rows
    return local


class _Vocabulary:
    """This instance's features in first-seen order, with their statistics."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.counts = np.zeros(1024)
        self.sums = np.zeros(1024)
        self.maxs = np.full(1024, -np.inf)
        self.mins = np.full(1024, np.inf)

    def add(self, block: SparseBlock) -> np.ndarray:
        ids = self.ids
        local = np.fromiter(
            (ids.setdefault(name, len(ids)) for name in block.names.to_pylist()),
            np.int64,
            len(block.names),
        )
        if len(ids) > len(self.counts):
            size = max(len(ids), 2 * len(self.counts))
            grow = size - len(self.counts)
            self.counts = np.concatenate([self.counts, np.zeros(grow)])
            self.sums = np.concatenate([self.sums, np.zeros(grow)])
            self.maxs = np.concatenate([self.maxs, np.full(grow, -np.inf)])
            self.mins = np.concatenate([self.mins, np.full(grow, np.inf)])
        self.counts[local] += block.counts
        self.sums[local] += block.sums
        self.maxs[local] = np.maximum(self.maxs[local], block.maxs)
        self.mins[local] = np.minimum(self.mins[local], block.mins)
        return local


def sparse_pass(files: list[Path], params: Params, spill_path: Path, order: int) -> Local:
    """Check and count; the kept rows go to a spill file (pickled pyarrow/numpy blocks with
    local feature ids) until the global ids are known."""
    local = Local()
    vocabulary = _Vocabulary()
    progress = Progress(sum(p.stat().st_size for p in files))
    weighted, regression = params.format == "SPARSE_ID_WEIGHT", params.regression

    def work(item):
        index, block = item
        return index, len(block), sparse_block(block, weighted, regression)

    current, base = -1, 0
    with spill_path.open("wb") as spill:
        for index, size, result in _ordered(_blocks(files), work, _workers()):
            if index != current:
                current, base = index, 0
            local.skips.add_block((order, index), str(files[index]), base, result.skips)
            base += result.lines
            local_ids = vocabulary.add(result)
            local.rows += result.rows
            _merge_labels(local.labels, result.labels, regression)
            if result.rows:
                pickle.dump(
                    (
                        result.numbers,
                        result.label_text,
                        result.row_sizes,
                        local_ids[result.codes],
                        result.weight_text,
                    ),
                    spill,
                    protocol=5,
                )
            progress.add(result.rows, size)
    size = len(vocabulary.ids)
    local.names = list(vocabulary.ids)
    local.counts, local.sums = vocabulary.counts[:size], vocabulary.sums[:size]
    local.maxs, local.mins = vocabulary.maxs[:size], vocabulary.mins[:size]
    return local


def _spilled(path: Path) -> Iterator[tuple]:
    with path.open("rb") as spill:
        while True:
            try:
                yield pickle.load(spill)
            except EOFError:
                return


# ---------------------------------------------------------------------------------------------
# The whole job


@dataclass
class Dictionary:
    """The global maps, built identically on every instance from all instances' Locals."""

    features: list[str]
    counts: np.ndarray
    sums: np.ndarray
    maxs: np.ndarray
    mins: np.ndarray
    labels: list[str]
    label_counts: list[int]
    regression_labels: dict
    rows: int
    skips: Skips


def build_dictionary(locals_: list[Local], params: Params, n: int | None) -> Dictionary:
    skips = Skips()
    labels: dict = {}
    for local in locals_:
        skips.merge(local.skips)
        _merge_labels(labels, local.labels, params.regression)
    rows = sum(local.rows for local in locals_)
    if params.dense:
        features = [str(i) for i in range(n)]
        counts = np.full(n, float(rows))
        sums = np.sum([local.sums for local in locals_], axis=0)
        maxs = np.max([local.maxs for local in locals_], axis=0)
        mins = np.min([local.mins for local in locals_], axis=0)
    else:
        union = {name for local in locals_ for name in local.names}
        features = sorted(union, key=ml_data.feature_sort_key)
        ids = {name: i for i, name in enumerate(features)}
        counts, sums = np.zeros(len(features)), np.zeros(len(features))
        maxs, mins = np.full(len(features), -np.inf), np.full(len(features), np.inf)
        for local in locals_:
            if not local.names:
                continue
            where = np.fromiter((ids[name] for name in local.names), np.int64, len(local.names))
            counts[where] += local.counts
            sums[where] += local.sums
            maxs[where] = np.maximum(maxs[where], local.maxs)
            mins[where] = np.minimum(mins[where], local.mins)
    label_names = [] if params.regression else sorted(labels, key=ml_data.feature_sort_key)
    return Dictionary(
        features=features,
        counts=counts,
        sums=sums,
        maxs=maxs,
        mins=mins,
        labels=label_names,
        label_counts=[labels[name] for name in label_names],
        regression_labels=labels if params.regression else {},
        rows=rows,
        skips=skips,
    )


def _agree(step: str, work: Callable):
    """Run this instance's part of a step; every instance learns whether all succeeded (so
    that none waits forever for a peer that failed) and gets all instances' results."""
    try:
        value, error = work(), None
    except StandardizeFailed as failure:
        value, error = None, str(failure)
    except Exception as exc:  # noqa: BLE001 - reported to the peers, then raised as a failure
        traceback.print_exc()
        value, error = None, f"{step} failed unexpectedly: {exc}"
    results = ml_dist.allgather((value, error))
    errors = [(rank, e) for rank, (_, e) in enumerate(results) if e]
    if errors:
        if ml_dist.world() == 1:
            raise StandardizeFailed(errors[0][1])
        raise StandardizeFailed("; ".join(f"instance {rank}: {e}" for rank, e in errors))
    return [v for v, _ in results]


def _no_rows_message(params: Params, skips: Skips, total_files: int) -> str:
    what = f"no valid {params.format} rows"
    if not total_files:
        return f"{what}: {params.input} holds no non-empty files"
    first = skips.first()
    if first is None:
        return f"{what} in {params.input}: its files hold only empty lines"
    _, name, line, detail, text = first
    where = name if total_files == 1 else f"the {total_files} files of {params.input} ({name})"
    return f"{what} in {where}: line {line} {detail} (line {line}: {text})"


def standardize(params: Params) -> dict:
    """Convert this instance's share; instance 0 also writes the dictionaries and summaries.
    Returns a summary (the same numbers on every instance)."""
    started = time.monotonic()
    rank, world = ml_dist.rank(), ml_dist.world()
    output = params.output_dir
    part_dir = output / ml_data.OUT_DIR
    part = part_dir / f"part-{rank:05d}"
    work_dir = output / f".standardize-{rank}"

    def setup():
        if rank == 0:
            for stale in (ml_data.INFO_FILE, ml_data.DICTIONARY_DIR, ml_data.SUMMARY_DIR):
                target = output / stale
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        part_dir.mkdir(parents=True, exist_ok=True)
        part.unlink(missing_ok=True)
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir()
        files = input_files(params.input)
        if not files:
            say(f"{params.input}: no non-empty input files on this instance")
        if params.dense:
            return (files, *first_dense_row(files, params.regression))
        return files, None, None

    try:
        found = _agree("listing the input", setup)
        files = found[rank][0]
        n = next((c for _, c, _ in found if c is not None), None) if params.dense else None
        if params.dense and n is None:
            ranked = [(r, f) for r, (_, _, f) in enumerate(found) if f]
            first = min(ranked, key=lambda rf: (rf[0], rf[1][0]))[1] if ranked else None
            skips = Skips()
            if first:
                skips.examples[0].append(first)
            raise StandardizeFailed(
                _no_rows_message(params, skips, sum(len(f) for f, _, _ in found))
            )
        if params.dense:
            say(f"DENSE rows have {n} weights (No, label and {n} weights: {n + 2} fields)")
        spill = work_dir / "rows.pickle"

        def local_pass() -> Local:
            if params.dense:
                local = dense_pass(files, n, params, part, rank)
            else:
                local = sparse_pass(files, params, spill, rank)
            local.files = len(files)
            return local

        locals_ = _agree("reading the input", local_pass)
        local = locals_[rank]
        for line in local.skips.report(local.rows, f"instance {rank}: " if world > 1 else ""):
            say(line)
        dictionary = build_dictionary(locals_, params, n)
        if not dictionary.rows:
            raise StandardizeFailed(
                _no_rows_message(params, dictionary.skips, sum(x.files for x in locals_))
            )
        _agree(
            "writing the converted rows",
            lambda: _write_part(params, dictionary, part, spill, local.names),
        )
        if rank == 0:
            _agree("writing the dictionaries", lambda: write_metadata(params, dictionary, output))
        else:
            _agree("writing the dictionaries", lambda: None)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    seconds = time.monotonic() - started
    summary = {
        "sample_num": dictionary.rows,
        "feature_num": len(dictionary.features),
        "label_num": len(dictionary.labels),
        "skipped_num": dictionary.skips.total,
        "instance_rows": local.rows,
        "seconds": round(seconds, 3),
    }
    if world > 1 and rank == 0:
        for line in dictionary.skips.report(dictionary.rows, "all instances: "):
            say(line)
    if params.regression and dictionary.regression_labels:
        labels = dictionary.regression_labels
        say(
            f"labels: min {labels['min']:.10g}, mean {labels['sum'] / dictionary.rows:.10g}, "
            f"max {labels['max']:.10g}"
        )
    elif not params.regression:
        shown = ", ".join(
            f"{name!r}->{i} ({count:,})"
            for i, (name, count) in enumerate(
                zip(dictionary.labels[:10], dictionary.label_counts[:10], strict=True)
            )
        )
        more = ", ..." if len(dictionary.labels) > 10 else ""
        say(f"{len(dictionary.labels)} labels: {shown}{more}")
    say(
        f"standardized {dictionary.rows:,} samples ({local.rows:,} on this instance), "
        f"{len(dictionary.features):,} features, skipped {dictionary.skips.total:,} malformed "
        f"rows, in {seconds:.1f} s ({local.rows / max(seconds, 1e-9):,.0f} rows/s)"
    )
    return summary


def labels_read_as_ids(labels: list[str]) -> bool:
    """Whether every label already reads as its own id ("0", "1", or SUSY's
    "0.000000000000000000e+00", "1.000000000000000000e+00"): the DENSE rows then keep them."""
    return all(_is_number(label.encode()) and float(label) == i for i, label in enumerate(labels))


def _write_part(
    params: Params, dictionary: Dictionary, part: Path, spill: Path, local_names: list[str]
) -> None:
    if params.dense:
        if params.regression or labels_read_as_ids(dictionary.labels):
            return  # the first pass wrote the final part
        say("writing label ids ...")
        value_set = pa.array([s.encode() for s in dictionary.labels], pa.large_binary())
        ids = pa.array([str(i).encode() for i in range(len(dictionary.labels))], pa.large_binary())
        temporary = spill.with_name("relabeled")  # in the work folder, removed in any case
        with temporary.open("wb") as out:
            # One thread: this pass is memory-bound, and two threads measured slower.
            for block in read_blocks(part):
                out.write(relabel_dense_block(block, value_set, ids))
        os.replace(temporary, part)
        return
    ids = {name: i for i, name in enumerate(dictionary.features)}
    global_ids = np.fromiter((ids[name] for name in local_names), np.int64, len(local_names))
    label_set = pa.array(dictionary.labels, pa.large_string())
    with part.open("wb") as out:
        for numbers, labels, row_sizes, local_ids, weight_text in _spilled(spill):
            if not params.regression:
                labels = pc.cast(
                    pc.index_in(labels.cast(pa.large_string()), value_set=label_set),
                    pa.large_string(),
                )
            out.write(sparse_lines(numbers, labels, row_sizes, global_ids[local_ids], weight_text))


def _number(value: float) -> str:
    return f"{value:.10g}"


def write_metadata(params: Params, dictionary: Dictionary, output: Path) -> None:
    info = {
        "sample_num": dictionary.rows,
        "feature_num": len(dictionary.features),
        "label_num": len(dictionary.labels),
        "format": params.format,
        "type": params.type,
        "skipped_num": dictionary.skips.total,
    }
    ml_data.write_info(output, info)
    dictionary_dir = output / ml_data.DICTIONARY_DIR
    ml_data.write_id_map(dictionary_dir / ml_data.FEATURE_MAP, dictionary.features)
    if not params.regression:
        ml_data.write_id_map(dictionary_dir / ml_data.LABEL_MAP, dictionary.labels)
    summary_dir = output / ml_data.SUMMARY_DIR
    summary_dir.mkdir(parents=True, exist_ok=True)
    with (summary_dir / "feature_summary").open("w") as out:
        for i in range(len(dictionary.features)):
            count = dictionary.counts[i]
            average = dictionary.sums[i] / count if count else 0.0
            maximum = dictionary.maxs[i] if count else 0.0
            minimum = dictionary.mins[i] if count else 0.0
            out.write(
                f"1 {i} {int(count)} {_number(average)} {_number(maximum)} {_number(minimum)}\n"
            )
    with (summary_dir / "label_summary").open("w") as out:
        for i, count in enumerate(dictionary.label_counts):
            out.write(f"1 {i} {count}\n")


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", required=True, help="path of params.json")
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        try:
            raw = json.loads(Path(args.params).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return _fail(f"cannot read {args.params}: {error}")
        try:
            params = Params.parse(raw)
        except StandardizeFailed as failure:
            return _fail(str(failure))
        ml_dist.init()
        try:
            standardize(params)
        except StandardizeFailed as failure:
            ml_dist.finish()  # every instance fails at the same step: they leave together
            return _fail(str(failure))
        ml_dist.finish()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(message: str) -> int:
    print(f"data standardization failed: {message}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    ml_dist.exit(main())
