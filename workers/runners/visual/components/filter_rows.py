"""Filter rows by a condition over columns, e.g. `age >= 18 and country == "FR"`. Only
column names, numbers, text, comparisons, arithmetic, and/or/not and parentheses are
accepted (checked on Python's syntax tree, evaluated here on the columns: no pandas eval,
no calls, no attributes). Rows only: no fitted step."""

from __future__ import annotations

import ast
import operator

from workers.runners.visual.base import (
    Component,
    ComponentError,
    Param,
    Port,
    register,
    table_columns,
)

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.BitAnd: operator.and_,  # pandas' spelling of and/or: (a > 1) & (b < 2)
    ast.BitOr: operator.or_,
}
_CONDITIONS = (ast.Compare, ast.BoolOp)
RULE = "use column names, numbers, text in quotes, comparisons, and/or/not and parentheses"


@register
class FilterRows(Component):
    name = "filter_rows"
    label = "Filter rows"
    group = "Preprocessing"
    description = "Keep the rows where a condition holds, e.g. age >= 18 and city == 'Paris'."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("table", "table", "Table"),)
    params = (Param("expression", "Condition", "expression", required=True),)

    def check(self, params, inputs):
        schema = inputs["table"]
        parse(params["expression"], table_columns(inputs, "table"), schema.get("dynamic"))
        return {"table": schema}

    def run(self, params, inputs, context):
        table = inputs["table"]
        frame = table.frame
        tree = parse(params["expression"], {name: "" for name in frame.columns}, False)
        try:
            mask = _evaluate(tree.body, frame)
        except TypeError as exc:
            raise ValueError(f"expression: cannot compare these values ({exc})") from None
        try:
            mask = _truth(mask)  # a bool column with missing values: missing is false
        except ValueError:
            mask = None
        if not hasattr(mask, "dtype"):
            raise ValueError("expression: must be a condition (true or false for each row)")
        kept = table.take_rows(mask.to_numpy())
        rows = len(kept.frame)
        context.facts["rows"] = {"kept": rows, "dropped": len(frame) - rows}
        return {"table": kept}


def parse(expression: str, columns: dict, dynamic: bool = False) -> ast.Expression:
    """The expression's syntax tree, or ComponentError("expression", rule)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ComponentError("expression", f"is not a valid condition: {RULE}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in columns and not dynamic:
                known = ", ".join(columns) or "none"
                raise ComponentError(
                    "expression", f"no column '{node.id}' in the input (columns: {known})"
                )
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, str, bool):
                raise ComponentError("expression", f"{node.value!r} is not allowed: {RULE}")
        elif not isinstance(
            node,
            (
                ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Load,
                ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert,
                *_COMPARE, *_ARITHMETIC,
            ),
        ):  # fmt: skip
            raise ComponentError(
                "expression", f"'{_shown(node, expression)}' is not allowed: {RULE}"
            )
    body = tree.body
    is_condition = (
        isinstance(body, _CONDITIONS)
        or (isinstance(body, ast.UnaryOp) and isinstance(body.op, (ast.Not, ast.Invert)))
        or (isinstance(body, ast.BinOp) and isinstance(body.op, (ast.BitAnd, ast.BitOr)))
    )
    if isinstance(body, ast.Name) and columns.get(body.id) in ("bool", ""):
        is_condition = True
    if not is_condition:
        raise ComponentError("expression", "must be a condition, e.g. age >= 18")
    return tree


def _shown(node, expression: str) -> str:
    return ast.get_source_segment(expression, node) or type(node).__name__


def _evaluate(node, frame):
    if isinstance(node, ast.Name):
        if node.id not in frame.columns:
            raise ValueError(f"expression: no column '{node.id}' in the input")
        return frame[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Compare):
        left, result = _evaluate(node.left, frame), None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, frame)
            part = _COMPARE[type(op)](left, right)
            result = part if result is None else result & part
            left = right
        return result
    if isinstance(node, ast.BoolOp):
        values = [_truth(_evaluate(v, frame)) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = result & value if isinstance(node.op, ast.And) else result | value
        return result
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, frame)
        if isinstance(node.op, (ast.Not, ast.Invert)):
            return ~_truth(value)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, frame), _evaluate(node.right, frame)
        if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            left, right = _truth(left), _truth(right)
        return _ARITHMETIC[type(node.op)](left, right)
    raise ValueError(f"expression: {type(node).__name__} is not allowed")


def _truth(value):
    if hasattr(value, "dtype"):
        if value.dtype == bool:
            return value
        if value.dtype == object and all(isinstance(v, bool) for v in value.dropna()):
            return value.fillna(False).astype(bool)
        raise ValueError("expression: and/or/not need conditions on both sides")
    if isinstance(value, bool):
        return value
    raise ValueError("expression: and/or/not need conditions on both sides")
