"""Byte-level scans of a CSV file (numpy, bounded memory), used only to report problems
precisely: where pyarrow's row numbers start as physical lines, the first record longer than a
limit, and a quote that is never closed. The scans work on bytes, so only for codecs that spell
separators, quotes and newlines as ASCII does (table_encodings.ascii_compatible()).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
