"""Streaming per-column statistics for the table import (see table_import.py).

Everything here is fed one Arrow record batch at a time and keeps bounded memory, so a data set
of any length can be described: moments are merged across batches with Chan's parallel formula,
distinct values are counted exactly while they are few and estimated with a K-minimum-values
sketch beyond that, and quartiles/histograms come from a bounded uniform sample of the rows
(exact when every row fits in it). No Django here: this runs inside the import worker process.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HISTOGRAM_BINS = 20
TOP_N = 10
# Numeric "top" lists only mean something for columns that look categorical.
TOP_WHEN_UNIQUE_AT_MOST = 1000
# Distinct values counted exactly per column, by number and (strings) by memory.
EXACT_DISTINCT_LIMIT = 65_536
EXACT_DISTINCT_BYTES = 16 << 20
# Smallest-hash sketch size: relative error of the estimate is about 1/sqrt(KMV_SIZE), 1.6 %.
KMV_SIZE = 4096
# Strings past the exact limit keep this many of their most frequent values for "top".
HEAVY_HITTERS = 10_000
SAMPLE_ROWS = 100_000
# Cap on sampled cells over all numeric columns (float64), so wide tables stay bounded too.
SAMPLE_CELLS = 8_000_000

_U64 = np.uint64
_HASH_GAMMA = _U64(0x9E3779B97F4A7C15)
_HASH_MUL1 = _U64(0xBF58476D1CE4E5B9)
_HASH_MUL2 = _U64(0x94D049BB133111EB)


def _mix64(keys: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: spreads any 64-bit keys uniformly over 64 bits."""
    shifted = np.empty_like(keys)  # one scratch array instead of a temporary per shift
    keys += _HASH_GAMMA
    for shift, multiplier in ((30, _HASH_MUL1), (27, _HASH_MUL2)):
        np.right_shift(keys, _U64(shift), out=shifted)
        keys ^= shifted
        keys *= multiplier
    np.right_shift(keys, _U64(31), out=shifted)
    keys ^= shifted
    return keys


def hash_numbers(values: pa.Array) -> np.ndarray:
    """64-bit hashes of non-null int/float/timestamp values, equal values -> equal hashes."""
    if pa.types.is_timestamp(values.type):
        values = values.view(pa.int64())
    array = values.to_numpy(zero_copy_only=False)
    if array.dtype.kind == "f":
        # Adding 0.0 turns -0.0 into 0.0 (one value for counting) and makes the copy we mix.
        keys = (array + 0.0).view(np.uint64)
    else:
        keys = array.astype(np.int64).view(np.uint64)
    return _mix64(keys)


def hash_strings(values: pa.Array) -> np.ndarray:
    """64-bit hashes of non-null strings: CRC-32 of the bytes and the length, splitmix-mixed.
    zlib's CRC runs at memory speed and is the same in every run (unlike Python's hash());
    32 bits of content are plenty for estimating up to ~10^8 distinct values."""
    as_bytes = values.cast(pa.large_binary())
    crcs = np.fromiter(map(zlib.crc32, as_bytes.to_pylist()), dtype=np.uint64, count=len(values))
    lengths = pc.binary_length(as_bytes).to_numpy(zero_copy_only=False).astype(np.uint64)
    return _mix64((lengths << _U64(32)) | crcs)


def _json_number(value):
    """A JSON-safe Python number: NaN and infinities become None (JSON has neither)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class DistinctCounter:
    """Distinct values of one column: exact value counts while the values are few (so "unique"
    and "top" are exact for categorical-looking columns), and a K-minimum-values sketch over
    64-bit hashes to estimate larger counts.

    Numbers hash cheaply (vectorised), so their sketch runs from the start and tells early
    that a column has far too many values to count exactly. Strings cost more to hash: their
    sketch starts when exact counting stops, seeded with the distinct values seen so far."""

    def __init__(self, hash_values, keep_top_when_inexact: int = 0, sketch_early: bool = True):
        self._hash_values = hash_values
        self._sketch_early = sketch_early
        # Past the exact limit, strings still keep their most frequent values for "top".
        self._keep_top = keep_top_when_inexact
        self.exact = True
        self._sketch = np.empty(0, dtype=np.uint64)  # the KMV_SIZE smallest distinct hashes
        self._values: pa.Array | None = None  # merged value counts
        self._counts: pa.Array | None = None
        # Per-batch value counts not merged yet: merging is the costly step, done rarely.
        self._pending: list[pa.StructArray] = []
        self._pending_size = 0
        self._pending_bytes = 0

    def update(self, values: pa.Array) -> None:
        """Add non-null values."""
        if not len(values):
            return
        if self._sketch_early or not self.exact:
            self._add_to_sketch(self._hash_values(values))
        if not (self.exact or self._keep_top):
            return
        counted = pc.value_counts(values)
        self._pending.append(counted)
        self._pending_size += len(counted)
        self._pending_bytes += counted.nbytes
        if not self.exact:
            if self._pending_size > 4 * self._keep_top:
                self._merge(prune_to=self._keep_top)
        elif (
            self._pending_size + self._size() > EXACT_DISTINCT_LIMIT
            or self._pending_bytes + self._bytes() > EXACT_DISTINCT_BYTES
        ):
            # Clearly too many (the estimate is within a few %): no need to merge to know it.
            if self._sketch_early and self.estimate() > EXACT_DISTINCT_LIMIT * 1.05:
                self._stop_counting_exactly()
            else:
                self._merge()
                if self._size() > EXACT_DISTINCT_LIMIT or self._bytes() > EXACT_DISTINCT_BYTES:
                    self._stop_counting_exactly()

    def estimate(self) -> int:
        if len(self._sketch) < KMV_SIZE:
            return len(self._sketch)  # fewer distinct hashes than the sketch holds: all of them
        # The k-th smallest of n uniform hashes sits near k/n of the hash range.
        return round((KMV_SIZE - 1) * 2.0**64 / (float(self._sketch[-1]) + 1.0))

    def unique(self) -> int:
        if self.exact:
            self._merge()
            return self._size()
        return self.estimate()

    def top(self, n: int = TOP_N) -> list[tuple[object, int]]:
        """The n most frequent values with their counts (ties: smaller value first, so the
        answer does not depend on hash-table order)."""
        self._merge(prune_to=0 if self.exact else self._keep_top)
        if not self._size():
            return []
        counts = self._counts.to_numpy()
        candidates = np.arange(len(counts))
        if len(counts) > n:
            nth_largest = np.partition(counts, len(counts) - n)[len(counts) - n]
            candidates = np.flatnonzero(counts >= nth_largest)
        values = self._values.take(pa.array(candidates)).to_pylist()
        pairs = zip(values, counts[candidates].tolist(), strict=True)
        return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))[:n]

    def _size(self) -> int:
        return 0 if self._values is None else len(self._values)

    def _bytes(self) -> int:
        return 0 if self._values is None else self._values.nbytes

    def _stop_counting_exactly(self) -> None:
        self.exact = False
        if not self._sketch_early:
            self._merge()
            self._add_to_sketch(self._hash_values(self._values))
        if self._keep_top:
            self._merge(prune_to=self._keep_top)
        else:
            self._values = self._counts = None
            self._pending, self._pending_size, self._pending_bytes = [], 0, 0

    def _merge(self, prune_to: int = 0) -> None:
        """Fold the pending per-batch value counts into the running ones."""
        if self._pending:
            values = [piece.field("values") for piece in self._pending]
            counts = [piece.field("counts") for piece in self._pending]
            if self._values is not None:
                values.append(self._values)
                counts.append(self._counts)
            self._pending, self._pending_size, self._pending_bytes = [], 0, 0
            if len(values) == 1:
                self._values, self._counts = values[0], counts[0]
            else:
                merged = (
                    pa.table({"v": pa.concat_arrays(values), "c": pa.concat_arrays(counts)})
                    .group_by("v")
                    .aggregate([("c", "sum")])
                )
                self._values = merged["v"].combine_chunks()
                self._counts = merged["c_sum"].combine_chunks()
        if prune_to and self._size() > prune_to:
            kept = np.argpartition(-self._counts.to_numpy(), prune_to)[:prune_to]
            self._values, self._counts = self._values.take(kept), self._counts.take(kept)

    def _add_to_sketch(self, hashes: np.ndarray) -> None:
        if len(self._sketch) >= KMV_SIZE:
            # Once full, only hashes below the current k-th smallest can change the sketch.
            hashes = hashes[hashes < self._sketch[-1]]
        if len(hashes):
            # Few hashes get this far once the sketch is warm: a sort of the near-sorted merge
            # is far cheaper than np.union1d's hashing on every batch.
            merged = np.concatenate([self._sketch, hashes])
            merged.sort()
            distinct = np.empty(len(merged), dtype=bool)
            distinct[0] = True
            np.not_equal(merged[1:], merged[:-1], out=distinct[1:])
            self._sketch = merged[distinct][:KMV_SIZE]


class RowSample:
    """A uniform sample of rows (bottom-k by random priority), kept for numeric columns only.

    Each row gets a random priority; the sample is the rows with the smallest priorities, which
    is uniform over everything seen and cheap to maintain: once warm, few rows per batch can beat
    the current threshold. Holds every row (so results are exact) while rows <= capacity."""

    def __init__(self, numeric_columns: list[int], capacity: int, seed: int = 0):
        self.capacity = capacity
        self.rows_seen = 0
        self._columns = numeric_columns
        self._rng = np.random.default_rng(seed)
        # Rows with priority >= cut can never make the sample: cut is the capacity-th smallest
        # priority at the last shrink, an upper bound of the true one ever since.
        self._cut = 1.0
        # Pieces per batch, joined when the sample is pruned (fewer copies than joining always).
        self._priority: list[np.ndarray] = [np.empty(0)]
        self._values: list[list[np.ndarray]] = [[np.empty(0)] for _ in numeric_columns]
        self._pending = 0

    @property
    def exact(self) -> bool:
        return self.rows_seen <= self.capacity

    def update(self, batch: pa.RecordBatch) -> None:
        if not self._columns or not batch.num_rows:
            return
        self.rows_seen += batch.num_rows
        priority = self._rng.random(batch.num_rows)
        picked = np.flatnonzero(priority < self._cut)
        if not len(picked):
            return
        self._priority.append(priority[picked])
        taken = batch.select(self._columns).take(pa.array(picked))
        for slot, column in enumerate(taken.columns):
            # Cast ints to float64 too: the sample only feeds quantiles and histograms.
            self._values[slot].append(column.cast(pa.float64()).to_numpy(zero_copy_only=False))
        self._pending += len(picked)
        if self._pending >= 2 * self.capacity:
            self._shrink()

    def values(self, column: int) -> np.ndarray:
        """The sampled non-null finite values of a numeric column."""
        self._shrink()
        values = self._values[self._columns.index(column)][0]
        return values[np.isfinite(values)]

    def _shrink(self) -> None:
        """Keep the capacity rows of smallest priority; pieces are joined here, not per batch."""
        priority = np.concatenate(self._priority)
        values = [np.concatenate(pieces) for pieces in self._values]
        if len(priority) > self.capacity:
            kept = np.argpartition(priority, self.capacity - 1)[: self.capacity]
            kept.sort()
            priority, values = priority[kept], [column[kept] for column in values]
            self._cut = float(priority.max())
        self._priority, self._values = [priority], [[column] for column in values]
        self._pending = len(priority)


class ColumnStats:
    """Common part: counts and the output layout (every key present, None where not relevant)."""

    def __init__(self, name: str, type_name: str):
        self.name, self.type_name = name, type_name
        self.count = 0
        self.missing = 0

    def update(self, array: pa.Array) -> None:
        nulls = array.null_count
        self.missing += nulls
        values = array.drop_null() if nulls else array
        self.count += len(values)
        if len(values):
            self._add(values)

    def _add(self, values: pa.Array) -> None:
        raise NotImplementedError

    def wants_dictionary(self) -> bool:
        """Whether parquet dictionary encoding will pay off (few distinct values)."""
        return False

    def result(self, sample: RowSample | None) -> dict:
        return {
            "name": self.name,
            "type": self.type_name,
            "count": self.count,
            "missing": self.missing,
            "unique": 0,
            "unique_exact": True,
            "mean": None,
            "variance": None,
            "std": None,
            "min": None,
            "max": None,
            "q1": None,
            "median": None,
            "q3": None,
            "quantiles_exact": None,
            "histogram": None,
            "top": [],
        }


class OrderedStats(ColumnStats):
    """Common part of int, float and datetime columns: distinct values (hashed as numbers) and
    extremes."""

    def __init__(self, name: str, type_name: str):
        super().__init__(name, type_name)
        self.distinct = DistinctCounter(hash_numbers)
        self.low = self.high = None

    def _widen(self, low, high) -> None:
        """Take a batch's extremes into the column's."""
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def wants_dictionary(self) -> bool:
        return self.distinct.exact


class NumericStats(OrderedStats):
    """int and float columns: moments, extremes, distinct values, quartiles, histogram."""

    def __init__(self, name: str, type_name: str, index: int):
        super().__init__(name, type_name)
        self.index = index
        self.finite = 0  # values that enter the moments (inf/-inf cannot)
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean

    def _add(self, values: pa.Array) -> None:
        self.distinct.update(values)
        array = values.to_numpy(zero_copy_only=False)
        as_float = array.astype(np.float64, copy=False)
        total = as_float.sum()
        if not math.isfinite(total):  # an inf (or overflow) somewhere: describe the finite part
            finite = np.isfinite(as_float)
            array, as_float = array[finite], as_float[finite]
            total = as_float.sum()
        n = len(as_float)
        if not n:
            return
        batch_mean = total / n
        deviations = as_float - batch_mean
        batch_m2 = float(deviations @ deviations)
        # Chan et al.: combine (n, mean, M2) of the rows so far with those of this batch.
        combined = self.finite + n
        delta = batch_mean - self.mean
        self.mean += delta * n / combined
        self.m2 += batch_m2 + delta * delta * self.finite * n / combined
        self.finite = combined
        self._widen(array.min().item(), array.max().item())

    def result(self, sample: RowSample | None) -> dict:
        out = super().result(sample)
        unique = self.distinct.unique()
        variance = self.m2 / (self.finite - 1) if self.finite > 1 else None
        out.update(
            unique=unique,
            unique_exact=self.distinct.exact,
            mean=_json_number(self.mean) if self.finite else None,
            variance=_json_number(variance),
            std=_json_number(math.sqrt(variance)) if variance is not None else None,
            min=_json_number(self.low),
            max=_json_number(self.high),
            top=[
                [_json_number(v), c]
                for v, c in (self.distinct.top() if unique <= TOP_WHEN_UNIQUE_AT_MOST else [])
            ],
        )
        if sample is not None:
            values = sample.values(self.index)
            if len(values):
                q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
                out.update(
                    q1=_json_number(q1),
                    median=_json_number(median),
                    q3=_json_number(q3),
                    quantiles_exact=sample.exact,
                    histogram=self._histogram(values),
                )
        return out

    def _histogram(self, values: np.ndarray) -> dict | None:
        if self.low is None:
            return None
        low, high = float(self.low), float(self.high)
        if low == high:  # one value: centre it in a unit-wide range, as numpy does
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        counts, _ = np.histogram(np.clip(values, low, high), bins=edges)
        return {"edges": [_json_number(e) for e in edges], "counts": _scale(counts, self.count)}


def _scale(counts: np.ndarray, total: int) -> list[int]:
    """Scale sample counts to a total, in integers that add up to it exactly (largest
    remainders get the leftover units), so the histogram reads as counts of the whole column."""
    sampled = int(counts.sum())
    if sampled == 0 or sampled == total:
        return [int(c) for c in counts]
    scaled = counts * (total / sampled)
    whole = np.floor(scaled).astype(np.int64)
    leftover = total - int(whole.sum())
    whole[np.argsort(-(scaled - whole), kind="stable")[:leftover]] += 1
    return [int(c) for c in whole]


class StringStats(ColumnStats):
    def __init__(self, name: str):
        super().__init__(name, "string")
        self.distinct = DistinctCounter(
            hash_strings, keep_top_when_inexact=HEAVY_HITTERS, sketch_early=False
        )

    def _add(self, values: pa.Array) -> None:
        self.distinct.update(values)

    def wants_dictionary(self) -> bool:
        return self.distinct.exact

    def result(self, sample: RowSample | None) -> dict:
        out = super().result(sample)
        top = self.distinct.top()
        if not self.distinct.exact and top and top[0][1] == 1:
            top = []  # all seen once (ids, free text): any ten of them would mean nothing
        out.update(
            unique=self.distinct.unique(),
            unique_exact=self.distinct.exact,
            top=[[value, count] for value, count in top],
        )
        return out


class BoolStats(ColumnStats):
    def __init__(self, name: str):
        super().__init__(name, "bool")
        self.true = 0

    def _add(self, values: pa.Array) -> None:
        self.true += pc.sum(values).as_py() or 0

    def result(self, sample: RowSample | None) -> dict:
        out = super().result(sample)
        counts = [(True, self.true), (False, self.count - self.true)]
        # Ties: False first, as for other columns' values (smaller value first).
        top = sorted([pair for pair in counts if pair[1]], key=lambda pair: (-pair[1], pair[0]))
        out.update(unique=len(top), top=[list(pair) for pair in top])
        return out


class DatetimeStats(OrderedStats):
    def __init__(self, name: str):
        super().__init__(name, "datetime")

    def _add(self, values: pa.Array) -> None:
        as_int = values.view(pa.int64())
        self.distinct.update(as_int)
        extremes = pc.min_max(as_int)
        self._widen(extremes["min"].as_py(), extremes["max"].as_py())

    def result(self, sample: RowSample | None) -> dict:
        out = super().result(sample)
        unique = self.distinct.unique()
        top = self.distinct.top() if unique <= TOP_WHEN_UNIQUE_AT_MOST else []
        out.update(
            unique=unique,
            unique_exact=self.distinct.exact,
            min=_iso(self.low),
            max=_iso(self.high),
            top=[[_iso(value), count] for value, count in top],
        )
        return out


def _iso(microseconds: int | None) -> str | None:
    """ISO 8601 text of a timestamp[us] value (the unit the import writes)."""
    if microseconds is None:
        return None
    return pa.scalar(microseconds, pa.timestamp("us")).as_py().isoformat()


class TableStats:
    """Statistics for every column of a table with a fixed schema, fed batch by batch."""

    def __init__(self, columns: list[tuple[str, str]]):
        self.columns: list[ColumnStats] = []
        numeric: list[int] = []
        for index, (name, type_name) in enumerate(columns):
            if type_name in ("int", "float"):
                numeric.append(index)
                self.columns.append(NumericStats(name, type_name, index))
            elif type_name == "string":
                self.columns.append(StringStats(name))
            elif type_name == "bool":
                self.columns.append(BoolStats(name))
            elif type_name == "datetime":
                self.columns.append(DatetimeStats(name))
            else:
                raise ValueError(f"no statistics for type {type_name!r}")
        capacity = min(SAMPLE_ROWS, max(1000, SAMPLE_CELLS // max(1, len(numeric))))
        self.sample = RowSample(numeric, capacity)
        self.rows = 0

    def update(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for stats, array in zip(self.columns, batch.columns, strict=True):
            stats.update(array)
        self.sample.update(batch)

    def dictionary_columns(self) -> list[str]:
        return [stats.name for stats in self.columns if stats.wants_dictionary()]

    def results(self) -> list[dict]:
        return [stats.result(self.sample) for stats in self.columns]
