"""What the web side asks before an import: column name rules (column_name_problem(),
validate_columns(), suggest_names()) and preview(), which splits a file's first bytes into rows
and guesses each column's name and type. The splitting is also what the import's own checks on
a file's start use (table_reading.py).

The web process imports this module (through table_import.py): it must never import Django.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter

from workers.runners.table_encodings import (
    codec_name,
    encoding_advice,
    encoding_label,
    first_undecodable_line,
)
from workers.runners.table_types import (
    ARROW_TYPES,
    FALSE_SPELLINGS,
    NULL_SPELLINGS,
    SLASH_DATE_SHAPE,
    TRUE_SPELLINGS,
    TYPE_SHAPES,
)

MAX_NAME_LENGTH = 128
MAX_COLUMNS = 4096  # a table's columns: the preview's work and the import's stay bounded
PREVIEW_ROWS = 10


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
    if len(columns) > MAX_COLUMNS:
        raise ValueError(f"{len(columns):,} columns: a table has at most {MAX_COLUMNS:,} columns")
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
    next_suffix: dict[str, int] = {}
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
        unique, key = name, name.casefold()
        if key in taken:
            # The next free suffix of this name, remembered: a header of 32,768 equal cells
            # costs 32,768 steps, not half its square (the same names as counting from 2).
            counter = next_suffix.get(key, 2)
            while (unique := f"{name}_{counter}").casefold() in taken:
                counter += 1
            next_suffix[key] = counter + 1
        taken.add(unique.casefold())
        suggested.append(unique)
    return suggested


# ---------------------------------------------------------------------------------------------
# Splitting text into rows (preview and the checks before an import)


def separator_problem(separator) -> str | None:
    if not isinstance(separator, str) or len(separator) != 1:
        return f"separator must be one character, not {separator!r}"
    if separator in '"\r\n' or ord(separator) > 127:
        return f"separator {separator!r} cannot be used: choose e.g. ',', tab, ';', '|' or space"
    return None


def split_rows(text: str, separator: str) -> list[tuple[int, list[str]]]:
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


def modal_width(rows: list[tuple[int, list[str]]]) -> int:
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


def preview(sample: bytes, *, separator: str, header: bool | None, encoding: str) -> dict:
    """Columns (header name, a valid suggested name, a guessed type) and the first rows of a
    file, from its first bytes (~64 KB, possibly cut mid-line), with whether the first line
    looks like a header (`header_guess`). `header=None` reads the file as that guess says
    (`header` in the answer is the setting used). ValueError for an empty sample, bytes the
    encoding cannot decode, or rows whose field counts disagree too much."""
    problem = separator_problem(separator)
    if problem:
        raise ValueError(problem)
    codec = codec_name(encoding)
    if not sample or not sample.strip():
        raise ValueError("the file is empty")
    # The sample may end mid-line (even mid-character): rows come from complete lines, and the
    # piece after the last newline only counts if it decodes and has the usual field count.
    cut = sample.rfind(b"\n") + 1
    body, tail = (sample[:cut], sample[cut:]) if cut else (sample, b"")
    whole_lines = bool(cut)  # else one long line, maybe ending in part of a character
    bad = first_undecodable_line(body, codec, complete=whole_lines)
    if bad:
        line, raw = bad
        raise ValueError(
            f"the file is not valid {encoding_label(codec)} (line {line}). "
            + encoding_advice(codec, raw)
        )
    text = codecs.getincrementaldecoder(codec)().decode(body, final=whole_lines)
    # pyarrow skips a UTF-8 byte order mark; so does the preview, or it would start a name.
    rows = split_rows(text.removeprefix("\ufeff"), separator)
    try:
        tail_rows = split_rows(codecs.decode(tail, codec), separator) if tail else []
    except UnicodeDecodeError:
        tail_rows = []
    if rows and tail_rows and len(tail_rows[0][1]) == modal_width(rows):
        line = body.count(b"\n") + 1
        rows.append((line, tail_rows[0][1]))
    if not rows:
        raise ValueError("the file is empty")
    widest = max(len(fields) for _, fields in rows)
    if widest > MAX_COLUMNS:
        line = next(line for line, fields in rows if len(fields) == widest)
        raise ValueError(
            f"line {line} has {widest:,} fields: a table has at most {MAX_COLUMNS:,} columns"
            f" (is the separator {separator!r} right?)"
        )
    header_guess = guess_header(rows)
    if header is None:
        header = header_guess
    warnings: list[str] = []
    header_row = rows[0][1] if header else None
    data = rows[1:] if header else rows
    width = modal_width(data or rows)
    odd = [(line, len(fields)) for line, fields in data if len(fields) != width]
    if len(odd) > max(1, len(data) // 10):
        counts = Counter(len(fields) for _, fields in data)
        described = ", ".join(
            f"{plural(n, 'line')} with {plural(w, 'field')}" for w, n in counts.most_common(3)
        )
        raise ValueError(
            f"the lines do not have the same number of fields ({described}): "
            f"is the separator {separator!r} right?"
        )
    for line, count in odd[:5]:
        warnings.append(
            f"line {line} has {plural(count, 'field')}, not {width}: "
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
        "header": bool(header),
        "header_guess": header_guess,
    }


def guess_header(rows: list[tuple[int, list[str]]]) -> bool:
    """Whether the first row is a header: its cells are non-empty, unique (ignoring case)
    text, none of which reads as a number, true/false or a date, above rows that have such
    values in at least one column. A file of text only gives no evidence: no header."""
    if len(rows) < 2:
        return False
    first, below = rows[0][1], rows[1:]
    width = modal_width(below)
    cells = [cell.strip() for cell in first]
    if len(cells) != width or any(cell == "" for cell in cells):
        return False
    if len({cell.casefold() for cell in cells}) != width:
        return False
    if any(_guess_type([cell]) != "string" or cell in NULL_SPELLING_SET for cell in cells):
        return False
    return any(
        _guess_type([fields[i] for _, fields in below if i < len(fields)]) != "string"
        for i in range(width)
    )


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


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")
