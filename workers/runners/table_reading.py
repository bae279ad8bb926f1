"""Reading one input file of the table import (see table_import.py) into converted record
batches, and the report of its abnormal rows.

Reading is two-speed. The fast path lets pyarrow's multithreaded CSV reader convert every
column to its declared type directly. A file only leaves it when pyarrow meets a row it cannot
take (a wrong field count or a cell that does not convert); the file is then re-read from its
start by the robust path, which reads every column as text, converts batch by batch, finds the
offending cells and applies the user's rule. Rows the fast path already delivered are skipped
on the second read, so nothing is written twice. No Django here.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from workers.runners.table_encodings import (
    ascii_compatible,
    encoding_advice,
    encoding_label,
    find_undecodable_line,
    first_undecodable_line,
)
from workers.runners.table_preview import modal_width, plural, split_rows
from workers.runners.table_scan import find_long_record, record_lines, unclosed_quote_line
from workers.runners.table_types import (
    DATETIME_FORMATS,
    FALSE_SPELLINGS,
    FILL_VALUES,
    NULL_SPELLINGS,
    TRUE_SPELLINGS,
    convert_cells,
)

if TYPE_CHECKING:
    from workers.runners.table_import import Params

# pyarrow's reader reads ahead up to ~32 blocks, so the block size sets its memory: 4 MB blocks
# keep it near 300 MB. A row must fit in one block; a longer one is retried with 16 MB blocks,
# the line limit.
BLOCK_SIZE = 4 << 20
LINE_LIMIT = 16 << 20
MAX_LINES = 20
MAX_EXAMPLES = 10


class ImportFailed(Exception):
    """A problem with the parameters or the user's data: reported in error.json."""

    def __init__(self, message: str, lines: list[int] | None = None):
        super().__init__(message)
        self.lines = (lines or [])[:MAX_LINES]


def say(message: str) -> None:
    print(message, flush=True)


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
        self.ascii_compatible = ascii_compatible(params.codec)
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
        bad = first_undecodable_line(sample, self.params.codec, complete)
        if bad:
            raise self._encoding_error(*bad)
        # Whole lines only: the last one may be cut off by the sample's end.
        cut = len(sample) if complete else sample.rfind(b"\n") + 1
        rows = split_rows(codecs.decode(sample[:cut], self.params.codec), self.params.separator)
        data = rows[self.header_rows :][:200]
        if not data:
            return  # no complete data row in the sample: the reader tells what is wrong
        width, declared = modal_width(data), len(self.params.columns)
        if width != declared:
            hint = f" (is the separator {self.params.separator!r} right?)" if width == 1 else ""
            raise ImportFailed(
                f"file {self.name} has {plural(width, 'column')} but {declared} "
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
        label = encoding_label(self.params.codec)
        where = f" (line {line})" if line else ""
        return ImportFailed(
            f"file {self.name} is not valid {label}{where}. "
            + encoding_advice(self.params.codec, raw),
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
