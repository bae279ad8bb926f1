"""Column types for the table import: what each declared type is in Arrow, which text spells a
value of it (missing values, booleans, datetimes, the shape of a number), and the robust
conversion of text cells to typed values that also tells which cells cannot be converted.

The spellings are given to pyarrow's CSV reader on the fast path (table_reading.py) and
followed by the robust conversion here and by the preview's type guessing, so all three agree
on what a valid value is. No Django here: the web process imports this through the preview.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("us"),
}
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
