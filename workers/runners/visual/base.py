"""What every component is: ports, parameters, the static check that infers output schemas,
and the run. No Django import (the control plane and the runner share it).

Schemas travel between nodes before anything runs, so a graph can be checked (and the
fields tab can offer the upstream columns) without data:

- a table port's schema: {"kind": "table", "columns": [{"name": str, "type": str}, ...]}
  with types from COLUMN_TYPES (the data sets' own types); a table schema with
  "dynamic": true may gain columns at run time (one-hot encoding): downstream column checks
  on names it lacks are deferred to the run;
- a model port's: {"kind": "model", "algorithm": str, "task": TASKS, "features": [names],
  "label": name | None, "classes": [..] | None};
- a report port's: {"kind": "report", "task": TASKS}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

COLUMN_TYPES = ("int", "float", "string", "bool", "datetime")
NUMERIC_TYPES = ("int", "float", "bool")
PORT_KINDS = ("table", "model", "report")
TASKS = ("binary", "multiclass", "regression", "clustering")
GROUPS = ("Data", "Preprocessing", "Training", "Prediction", "Evaluation")
PARAM_TYPES = ("int", "float", "bool", "string", "choice", "column", "columns", "expression")
COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


class ComponentError(ValueError):
    """A parameter or an input breaks a rule. `field` names the parameter (or input port);
    the message is the rule, for a user. The control plane adds the node's name."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class Port:
    name: str
    kind: str  # one of PORT_KINDS: only ports of one kind connect
    label: str
    required: bool = True

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "required": self.required,
        }


@dataclass(frozen=True)
class Param:
    """One setting. `column`/`columns` pick from the table schema of input port `input`
    (the fields tab), restricted to `column_types` when given; the others are the
    parameters tab. `expression` is a row filter in pandas' query syntax."""

    name: str
    label: str
    type: str
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    input: str = "table"
    column_types: tuple[str, ...] = ()
    help: str = ""

    @property
    def tab(self) -> str:
        return "fields" if self.type in ("column", "columns") else "parameters"

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices),
            "input": self.input,
            "column_types": list(self.column_types),
            "help": self.help,
            "tab": self.tab,
        }


@dataclass
class RunContext:
    """What the runner gives a component besides its inputs."""

    workspace: str
    seed: int = 0
    # A test run on a small sample: sources read only their first `sample_rows` rows.
    sample_rows: int | None = None
    # Extra facts for the control plane (shown on the node, kept with the run): counts,
    # timings, warnings. JSON values only.
    facts: dict = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(message, flush=True)


class Component:
    name: str = ""
    label: str = ""
    group: str = ""
    description: str = ""
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    params: tuple[Param, ...] = ()
    # False for components the control plane resolves without a process (a data set's
    # parquet parts are its output as they are).
    runs_as_job: bool = True
    # The control plane gives check() the data set version's schema as inputs["dataset"]
    # and stages its parquet parts as the output (components/dataset.py).
    reads_dataset: bool = False
    # Trains a model (release needs one of these and a prediction to have succeeded).
    is_algorithm: bool = False
    is_prediction: bool = False
    # Modules run() will import (scikit-learn's alone is ~1 s): a segment imports them in a
    # background thread from its start, overlapping the reading and the nodes before.
    imports: tuple[str, ...] = ()
    # Its tables are stored as parquet even where a view would do (a written data set's
    # parts are its output's files).
    materializes: bool = False

    # -- the control plane's side ---------------------------------------------------------

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "group": self.group,
            "description": self.description,
            "inputs": [p.describe() for p in self.inputs],
            "outputs": [p.describe() for p in self.outputs],
            "params": [p.describe() for p in self.params],
        }

    def validate(self, params: dict, inputs: dict[str, dict]) -> tuple[dict, dict[str, dict]]:
        """Clean `params` by their specs, then the component's own rules. `inputs` maps
        each connected input port to its upstream schema. Returns (cleaned params, output
        schemas by port). Raises ComponentError."""
        for port in self.inputs:
            if port.required and port.name not in inputs:
                raise ComponentError(port.name, f"the input '{port.label}' must be connected")
        cleaned = clean_params(self.params, params or {}, inputs)
        return cleaned, self.check(cleaned, inputs)

    def check(self, params: dict, inputs: dict[str, dict]) -> dict[str, dict]:
        """The component's own rules; returns the output schema of every output port."""
        raise NotImplementedError

    # -- the runner's side ------------------------------------------------------------------

    def run(self, params: dict, inputs: dict[str, Any], context: RunContext) -> dict[str, Any]:
        """`inputs`/the result map port names to values by kind: table -> tables.Table,
        model -> models.ModelArtifact, report -> dict (JSON).

        Two rules the runner relies on: a run is deterministic for its settings and inputs
        (seeded: an output's content id is derived from the node's cache key, so the same
        key must make the same content), and it never changes an input in place (tables
        pass between nodes in memory; they get copy-on-write copies, models do not)."""
        raise NotImplementedError


# -- parameters ----------------------------------------------------------------------------


def table_columns(inputs: dict[str, dict], port: str) -> dict[str, str]:
    schema = inputs.get(port)
    if not schema or schema.get("kind") != "table":
        return {}
    return {c["name"]: c["type"] for c in schema["columns"]}


def _dynamic(inputs: dict[str, dict], port: str) -> bool:
    return bool((inputs.get(port) or {}).get("dynamic"))


def _number(spec: Param, value, kind):
    if isinstance(value, bool) or value is None or value == "":
        raise ComponentError(
            spec.name, f"must be a number ({'an integer' if kind is int else 'a decimal'})"
        )
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ComponentError(
            spec.name, f"must be {'an integer' if kind is int else 'a number'}"
        ) from None
    if kind is int and isinstance(value, float) and value != number:
        raise ComponentError(spec.name, "must be an integer")
    if number != number or number in (float("inf"), float("-inf")):
        raise ComponentError(spec.name, "must be a finite number")
    if spec.min is not None and number < spec.min:
        raise ComponentError(spec.name, f"must be at least {spec.min:g}")
    if spec.max is not None and number > spec.max:
        raise ComponentError(spec.name, f"must be at most {spec.max:g}")
    return number


def _column(spec: Param, value, columns: dict[str, str], dynamic: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ComponentError(spec.name, "must name a column")
    if value not in columns and dynamic:
        return value  # a column the input may gain at run time: the run checks it
    if value not in columns:
        known = ", ".join(columns) or "none"
        raise ComponentError(spec.name, f"no column '{value}' in the input (columns: {known})")
    if spec.column_types and columns[value] not in spec.column_types:
        raise ComponentError(
            spec.name,
            f"column '{value}' is {columns[value]}; it must be {' or '.join(spec.column_types)}",
        )
    return value


def clean_params(specs: tuple[Param, ...], params: dict, inputs: dict[str, dict]) -> dict:
    if not isinstance(params, dict):
        raise ComponentError("params", "must be an object of settings")
    known = {spec.name for spec in specs}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ComponentError(
            unknown[0], f"unknown setting (known: {', '.join(sorted(known)) or 'none'})"
        )
    cleaned = {}
    for spec in specs:
        value = params.get(spec.name)
        if value is None or value == "" or value == []:
            if spec.required:
                raise ComponentError(spec.name, "is required")
            cleaned[spec.name] = spec.default
            continue
        if spec.type == "int":
            cleaned[spec.name] = _number(spec, value, int)
        elif spec.type == "float":
            cleaned[spec.name] = _number(spec, value, float)
        elif spec.type == "bool":
            if not isinstance(value, bool):
                raise ComponentError(spec.name, "must be true or false")
            cleaned[spec.name] = value
        elif spec.type == "choice":
            if value not in spec.choices:
                raise ComponentError(
                    spec.name, f"must be one of {', '.join(map(str, spec.choices))}"
                )
            cleaned[spec.name] = value
        elif spec.type in ("string", "expression"):
            if not isinstance(value, str) or len(value) > 2000:
                raise ComponentError(spec.name, "must be text of at most 2,000 characters")
            cleaned[spec.name] = value.strip()
        elif spec.type == "column":
            cleaned[spec.name] = _column(
                spec, value, table_columns(inputs, spec.input), _dynamic(inputs, spec.input)
            )
        elif spec.type == "columns":
            if not isinstance(value, list):
                raise ComponentError(spec.name, "must be a list of column names")
            columns = table_columns(inputs, spec.input)
            dynamic = _dynamic(inputs, spec.input)
            picked = [_column(spec, v, columns, dynamic) for v in value]
            if len(set(picked)) != len(picked):
                raise ComponentError(spec.name, "names a column twice")
            cleaned[spec.name] = picked
        else:  # a component's own mistake, not the user's
            raise TypeError(f"parameter {spec.name} has unknown type {spec.type}")
    return cleaned


# -- the registry ----------------------------------------------------------------------------

_registry: dict[str, Component] = {}


def register(cls: type[Component]) -> type[Component]:
    """Class decorator: one instance per component, by name."""
    component = cls()
    if not COMPONENT_NAME.match(component.name) or component.group not in GROUPS:
        raise TypeError(f"{cls.__name__}: a name like 'split' and a group of {GROUPS}")
    if component.name in _registry and type(_registry[component.name]) is not cls:
        raise TypeError(f"two components named {component.name}")
    for port in component.inputs + component.outputs:
        if port.kind not in PORT_KINDS:
            raise TypeError(f"{cls.__name__}: port {port.name} has unknown kind {port.kind}")
    for spec in component.params:
        if spec.type not in PARAM_TYPES:
            raise TypeError(f"{cls.__name__}: parameter {spec.name} has unknown type {spec.type}")
    _registry[component.name] = component
    return cls


def registered() -> dict[str, Component]:
    return _registry
