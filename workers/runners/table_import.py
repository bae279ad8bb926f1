"""Data set import: CSV/TSV/TXT files -> parquet parts plus column statistics.

Run by the worker supervisor as a user-level process, with the workspace as cwd:

    python -m workers.runners.table_import --params params.json

params.json: inputs (files, or folders standing for the files in them), previous_parts
(optional), separator, header, encoding, abnormal ("skip" | "fill" | "fail"), columns
([{"name", "type"}], types int/float/string/bool/datetime) and output_dir. On success
output_dir holds part-00000.parquet... (the new rows) and summary.json; on failure error.json
({"error", "lines"}), the message on stderr, exit code 1. Line numbers are the file's own,
1-based, the header line included.

This module holds the parameters, the import as a whole, the parquet part writer, progress and
the command line. The rest, by concept:
- table_reading.py: reading one file (the fast path and the robust path) and the abnormal rows;
- table_types.py: the column types, their spellings and the conversion of text cells;
- table_scan.py: byte-level scans that turn row numbers into line numbers;
- table_encodings.py: codecs, undecodable lines and encoding advice;
- table_preview.py: column name rules and the preview;
- table_stats.py: the per-column statistics.

The web process imports preview(), column_name_problem() and validate_columns() from here
(they live in table_preview.py): none of these modules may ever import Django.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workers.runners.table_encodings import codec_name
from workers.runners.table_preview import (
    column_name_problem,
    preview,
    separator_problem,
    validate_columns,
)
from workers.runners.table_reading import AbnormalReport, FileImport, ImportFailed, say
from workers.runners.table_stats import TableStats
from workers.runners.table_types import ARROW_TYPES

__all__ = [
    "ImportFailed",
    "Params",
    "column_name_problem",
    "main",
    "preview",
    "run_import",
    "validate_columns",
]

RULES = ("skip", "fill", "fail")
# Parquet layout: big row groups (fast scans), a new part file every ~1 GB.
ROW_GROUP_BYTES = 64 << 20
ROW_GROUP_ROWS = 500_000
PART_BYTES = 1 << 30
# Measured on 5M rows x 19 floats: snappy 3.4 s, zstd 4.0 s for files 6 % smaller.
COMPRESSION = "snappy"
PROGRESS_EVERY = 500_000


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

        problem = separator_problem(raw.get("separator"))
        if problem:
            raise ImportFailed(problem)
        if not isinstance(raw.get("header"), bool):
            raise ImportFailed("params: header must be true or false")
        if raw.get("abnormal") not in RULES:
            raise ImportFailed(
                f"unknown rule for abnormal rows {raw.get('abnormal')!r}: use skip, fill or fail"
            )
        try:
            codec = codec_name(raw.get("encoding", "utf-8"))
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
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written and closed by now; the interpreter's teardown is skipped because
    # pyarrow's thread pools, torn down at exit, now and then abort it ("terminate called
    # without an active exception", apache/arrow#34314), failing a finished conversion.
    os._exit(code)
