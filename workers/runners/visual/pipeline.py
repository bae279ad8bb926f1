"""Fitted preprocessing steps: what a component learnt from its input (means, categories,
fill values) as a JSON dict, so prediction on a test table and the serving loader on raw
request rows repeat exactly the same change. No Django import; pandas is imported inside
the functions that need it (components import this module for `step` and `schema_after`).

A step is {"op": ..., "columns": ..., "id": <sha256 of its canonical JSON without id, the
first 16 hex>}; the ops:

- standardize {"columns": {name: {"mean", "std"}}}: (x - mean) / std (std 0 -> / 1), float;
- normalize {"columns": {name: {"min", "max"}}}: (x - min) / (max - min) (range 0 -> 0), float;
- fill_missing {"columns": {name: value}}: missing cells get the value, whose JSON type is
  the column's type afterwards (an int fills an int column read back as float with NaN);
- cast {"columns": {name: type}}: int | float | string | bool, a value that cannot convert
  is a ValueError naming the column and the value;
- one_hot {"columns": {name: [categories]}}: `<col>_<category>` int columns (0/1) in category
  order where the column was, the column dropped; an unknown or missing value -> all zeros;
- select {"columns": [...]} keeps those columns in that order; drop {"columns": [...]}.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

OPS = ("standardize", "normalize", "fill_missing", "cast", "one_hot", "select", "drop")
CAST_TYPES = ("int", "float", "string", "bool")
TRUE_TEXT = ("true", "1", "yes", "t", "y")
FALSE_TEXT = ("false", "0", "no", "f", "n")


def step_id(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "id"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def step(op: str, **payload) -> dict:
    """A step with its id: `step("standardize", columns={"x": {"mean": 1.0, "std": 2.0}})`."""
    if op not in OPS:
        raise ValueError(f"unknown preprocessing step '{op}'")
    body = {"op": op, **payload}
    body = json.loads(json.dumps(body, allow_nan=False))  # JSON values only, as stored
    return {**body, "id": step_id(body)}


def category_key(value) -> str | None:
    """The text a value is known by among a one-hot column's categories (None: missing):
    booleans as True/False, integral floats as integers (an int column read back as float
    because it has missing values keeps its categories)."""
    if value is None:
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "True" if value else "False"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return str(value)


def one_hot_name(column: str, category: str) -> str:
    """`<col>_<category>` with anything but letters, digits and underscores as `_` (the data
    sets' column-name rule, and names a filter expression can use)."""
    return f"{column}_" + re.sub(r"[^\w]", "_", category)


def schema_after(schema: dict, op: str, columns) -> dict:
    """The static effect of a step on a table schema (what check() predicts). one_hot's new
    columns depend on the data: they are left out and the schema is marked "dynamic"."""
    cols = [dict(c) for c in schema.get("columns", [])]
    out = {"kind": "table", "columns": cols}
    if schema.get("dynamic"):
        out["dynamic"] = True
    names = set(columns)
    if op in ("standardize", "normalize"):
        for c in cols:
            if c["name"] in names:
                c["type"] = "float"
    elif op == "cast":
        for c in cols:
            if c["name"] in names:
                c["type"] = columns[c["name"]]
    elif op == "one_hot":
        out["columns"] = [c for c in cols if c["name"] not in names]
        out["dynamic"] = True
    elif op == "select":
        by_name = {c["name"]: c for c in cols}
        out["columns"] = [by_name[n] for n in columns if n in by_name]
    elif op == "drop":
        out["columns"] = [c for c in cols if c["name"] not in names]
    return out


# -- applying steps ------------------------------------------------------------------------


def apply_steps(frame, steps: list[dict], lenient: bool = False):
    """Repeat `steps` on `frame` (a pandas DataFrame; a new one is returned). lenient: a
    per-column op skips columns the frame lacks (the label at serving time) instead of
    failing."""
    frame = frame.copy()
    for one in steps:
        frame = apply_step(frame, one, lenient)
    return frame


def apply_step(frame, one: dict, lenient: bool = False):
    op, columns = one.get("op"), one.get("columns")
    if op not in OPS:
        raise ValueError(f"unknown preprocessing step '{op}'")
    if op == "select":
        if not lenient:
            _require(frame, columns)
        return frame[[c for c in columns if c in frame.columns]]
    if op == "drop":
        if not lenient:
            _require(frame, columns)
        return frame.drop(columns=[c for c in columns if c in frame.columns])
    present = [c for c in columns if c in frame.columns]
    if not lenient:
        _require(frame, columns)
    if op == "one_hot":
        return _one_hot(frame, {c: columns[c] for c in present})
    for name in present:
        frame[name] = _COLUMN_OPS[op](frame[name], columns[name], name)
    return frame


def _require(frame, names) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"column '{missing[0]}' is missing: the preprocessing steps need it")


def _numbers(values, name: str):
    import pandas as pd

    if values.dtype == bool or values.dtype == object and _all_bool(values):
        values = values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & numbers.isna()
    if bad.any():
        raise ValueError(f"column '{name}': {values[bad].iloc[0]!r} is not a number")
    return numbers


def _all_bool(values) -> bool:
    return all(isinstance(v, bool) for v in values.dropna())


def _standardize(values, fitted: dict, name: str):
    std = fitted["std"] or 1.0
    return (_numbers(values, name) - fitted["mean"]) / std


def _normalize(values, fitted: dict, name: str):
    numbers = _numbers(values, name)
    span = fitted["max"] - fitted["min"]
    if not span:
        return numbers * 0.0  # missing stays missing
    return (numbers - fitted["min"]) / span


def _fill(values, value, name: str):
    import pandas as pd

    if isinstance(value, bool):
        filled = values.astype(object).where(values.notna(), value)
        return filled.astype(bool) if filled.notna().all() else filled
    if isinstance(value, int):
        filled = _numbers(values, name).fillna(value)
        return filled.astype("int64") if (filled == filled.round()).all() else filled
    if isinstance(value, float):
        return _numbers(values, name).fillna(value)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.fillna(pd.Timestamp(value))
    return values.astype(object).where(values.notna(), value).astype("str")


def _cast(values, to: str, name: str):
    import pandas as pd

    if to not in CAST_TYPES:
        raise ValueError(f"column '{name}': cannot cast to '{to}'")
    present = values.notna()
    if to == "string":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            text = values.map(lambda v: v.isoformat() if not pd.isna(v) else None)
        else:
            text = values.map(lambda v: category_key(v) if not _missing(v) else None)
        return text.astype("str")
    if to in ("int", "bool") and not present.all():
        raise ValueError(
            f"column '{name}' has missing values (row {int((~present).values.argmax())}): "
            f"fill them before casting to {to}"
        )
    if to == "bool":
        return values.map(lambda v: _to_bool(v, name)).astype(bool)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        raise ValueError(f"column '{name}' is datetime: it can only be cast to string")
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    else:
        numbers = values.astype("float64")
    bad = present & numbers.isna()
    if to == "int":
        bad |= present & numbers.notna() & (numbers != numbers.round())
    if bad.any():
        raise ValueError(f"column '{name}': cannot cast {values[bad].iloc[0]!r} to {to}")
    return numbers.astype("int64") if to == "int" else numbers


def _missing(value) -> bool:
    return category_key(value) is None


def _to_bool(value, name: str) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    text = category_key(value)
    if text is not None and text.strip().lower() in TRUE_TEXT:
        return True
    if text is not None and text.strip().lower() in FALSE_TEXT:
        return False
    raise ValueError(f"column '{name}': cannot cast {value!r} to bool")


def _one_hot(frame, columns: dict):
    import pandas as pd

    pieces = []
    for name in frame.columns:
        if name not in columns:
            pieces.append(frame[[name]])
            continue
        keys = frame[name].map(category_key)
        names = [one_hot_name(name, category) for category in columns[name]]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"column '{name}': two categories both make column '{twice}'")
        encoded = {
            one_hot_name(name, category): (keys == category).astype("int64")
            for category in columns[name]
        }
        clash = [n for n in encoded if n in frame.columns and n not in columns]
        if clash:
            raise ValueError(f"one-hot column '{clash[0]}' of '{name}' is already a column")
        pieces.append(pd.DataFrame(encoded, index=frame.index))
    return pd.concat(pieces, axis=1) if pieces else frame


_COLUMN_OPS = {
    "standardize": _standardize,
    "normalize": _normalize,
    "fill_missing": _fill,
    "cast": _cast,
}
