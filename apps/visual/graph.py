"""The graph of an experiment and its checks.

    {"nodes": [{"id": "n1", "component": "split", "x": 40, "y": 80, "params": {...},
                "package": <resource package id or null>}],
     "edges": [{"from": "n1", "from_port": "train", "to": "n2", "to_port": "table"}]}

Two levels of checking, both naming the node and the rule:
- structure (`check_structure`): known components, ports that exist and are of one kind,
  one edge per input, no cycle, every required input connected, data sets of this project
  (or public; another project's is a 404). A save is refused unless this holds.
- settings (`check_settings`): each component's own rules on its parameters and on the
  schemas flowing in, in topological order. A run is refused unless this holds too; the
  canvas shows these problems as the user edits (the check endpoint).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.http import Http404

from workers.runners.visual import base, registry

NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_NODES = 200
NODE_KEYS = {"id", "component", "label", "x", "y", "params", "package"}
EDGE_KEYS = {"from", "from_port", "to", "to_port"}


class GraphError(ValidationError):
    """A rule the graph breaks; `node` is the node's id (None for the graph as a whole)."""

    def __init__(self, message: str, node: str | None = None, field: str | None = None):
        super().__init__({"graph": message})
        self.node = node
        self.field = field
        self.text = message


def node_name(node: dict) -> str:
    component = registry.load_all().get(node.get("component"))
    label = node.get("label") or (component.label if component else node.get("component"))
    return f"node '{label}' ({node.get('id')})"


@dataclass
class NodeCheck:
    inputs: dict[str, dict] = field(default_factory=dict)  # port -> upstream schema
    outputs: dict[str, dict] = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # cleaned
    error: dict | None = None  # {field, rule, message}
    dataset_version: object = None  # the DatasetVersion a data set node reads


@dataclass
class CheckedGraph:
    graph: dict
    order: list[str]
    nodes: dict[str, NodeCheck]

    def errors(self) -> list[dict]:
        return [
            {"node": node_id, **check.error}
            for node_id, check in self.nodes.items()
            if check.error is not None
        ]

    def upstream(self, node_id: str) -> dict[str, tuple[str, str]]:
        """input port -> (upstream node id, its output port)"""
        return {
            e["to_port"]: (e["from"], e["from_port"])
            for e in self.graph["edges"]
            if e["to"] == node_id
        }


# -- structure -----------------------------------------------------------------------------


def _number(value, what: str, node: dict) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise GraphError(f"{node_name(node)}: {what} must be a number", node.get("id"))
    return float(value)


def normalize(graph) -> dict:
    """The graph as stored: known keys only, ids and components checked."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes", []), list):
        raise GraphError("The graph must be an object with a list of nodes and a list of edges.")
    nodes_in, edges_in = graph.get("nodes") or [], graph.get("edges") or []
    if not isinstance(edges_in, list):
        raise GraphError("The graph's edges must be a list.")
    if len(nodes_in) > MAX_NODES:
        raise GraphError(f"A graph has at most {MAX_NODES} nodes.")
    components = registry.load_all()
    nodes, seen = [], set()
    for node in nodes_in:
        if not isinstance(node, dict):
            raise GraphError("Each node must be an object.")
        node_id = node.get("id")
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            raise GraphError(f"Node id {node_id!r}: 1-32 letters, digits, '_' or '-'.")
        if node_id in seen:
            raise GraphError(f"Two nodes have the id '{node_id}'.", node_id)
        seen.add(node_id)
        if node.get("component") not in components:
            raise GraphError(
                f"{node_name(node)}: unknown component '{node.get('component')}'",
                node_id,
                "component",
            )
        params = node.get("params") or {}
        if not isinstance(params, dict):
            raise GraphError(f"{node_name(node)}: params must be an object", node_id, "params")
        package = node.get("package")
        if package is not None and (isinstance(package, bool) or not isinstance(package, int)):
            raise GraphError(f"{node_name(node)}: package must be a resource package id", node_id)
        label = node.get("label") or ""
        if not isinstance(label, str) or len(label) > 60:
            raise GraphError(
                f"{node_name(node)}: a label is text of at most 60 characters", node_id
            )
        nodes.append(
            {
                "id": node_id,
                "component": node["component"],
                "label": label,
                "x": _number(node.get("x", 0), "x", node),
                "y": _number(node.get("y", 0), "y", node),
                "params": params,
                "package": package,
            }
        )
    by_id = {n["id"]: n for n in nodes}
    edges, taken = [], set()
    for edge in edges_in:
        if not isinstance(edge, dict) or set(edge) - EDGE_KEYS or set(EDGE_KEYS) - set(edge):
            raise GraphError("Each edge is {from, from_port, to, to_port}.")
        source, target = by_id.get(edge["from"]), by_id.get(edge["to"])
        if source is None or target is None:
            missing = edge["from"] if source is None else edge["to"]
            raise GraphError(f"An edge names node '{missing}', which is not in the graph.")
        out_port = _port(components[source["component"]].outputs, edge["from_port"])
        in_port = _port(components[target["component"]].inputs, edge["to_port"])
        if out_port is None:
            raise GraphError(
                f"{node_name(source)} has no output '{edge['from_port']}'", source["id"]
            )
        if in_port is None:
            raise GraphError(f"{node_name(target)} has no input '{edge['to_port']}'", target["id"])
        if out_port.kind != in_port.kind:
            raise GraphError(
                f"{node_name(target)}: its input '{in_port.label}' takes a {in_port.kind}, "
                f"not the {out_port.kind} of {node_name(source)}",
                target["id"],
                in_port.name,
            )
        if (target["id"], in_port.name) in taken:
            raise GraphError(
                f"{node_name(target)}: its input '{in_port.label}' is connected twice",
                target["id"],
                in_port.name,
            )
        taken.add((target["id"], in_port.name))
        edges.append({k: edge[k] for k in ("from", "from_port", "to", "to_port")})
    return {"nodes": nodes, "edges": edges}


def _port(ports, name):
    return next((p for p in ports if p.name == name), None)


def topological_order(graph: dict) -> list[str]:
    ids = [n["id"] for n in graph["nodes"]]
    incoming = {i: 0 for i in ids}
    children = {i: [] for i in ids}
    for edge in graph["edges"]:
        incoming[edge["to"]] += 1
        children[edge["from"]].append(edge["to"])
    ready = deque(i for i in ids if incoming[i] == 0)
    order = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for child in children[node_id]:
            incoming[child] -= 1
            if incoming[child] == 0:
                ready.append(child)
    if len(order) != len(ids):
        stuck = next(n for n in graph["nodes"] if incoming[n["id"]] > 0)
        raise GraphError(
            f"The graph has a cycle through {node_name(stuck)}: a graph must be acyclic (a DAG).",
            stuck["id"],
        )
    return order


def descendants(graph: dict, node_id: str) -> set[str]:
    return _reach(graph, node_id, "from", "to")


def ancestors(graph: dict, node_id: str) -> set[str]:
    return _reach(graph, node_id, "to", "from")


def _reach(graph: dict, start: str, near: str, far: str) -> set[str]:
    found, todo = set(), [start]
    while todo:
        current = todo.pop()
        for edge in graph["edges"]:
            if edge[near] == current and edge[far] not in found:
                found.add(edge[far])
                todo.append(edge[far])
    return found


def check_structure(user, project, graph) -> CheckedGraph:
    graph = normalize(graph)
    order = topological_order(graph)
    components = registry.load_all()
    by_id = {n["id"]: n for n in graph["nodes"]}
    connected = {(e["to"], e["to_port"]) for e in graph["edges"]}
    checked = CheckedGraph(graph, order, {})
    for node_id in order:
        node = by_id[node_id]
        component = components[node["component"]]
        for port in component.inputs:
            if port.required and (node_id, port.name) not in connected:
                raise GraphError(
                    f"{node_name(node)}: its input '{port.label}' must be connected "
                    "(a required input is dangling)",
                    node_id,
                    port.name,
                )
        checked.nodes[node_id] = NodeCheck()
        if getattr(component, "reads_dataset", False):
            _resolve_dataset(user, project, node, checked.nodes[node_id])
    return checked


def _resolve_dataset(user, project, node: dict, check: NodeCheck) -> None:
    """A data set node's version: the project's or a public data set; another project's
    (or one that does not exist) is a 404, as everywhere else."""
    from apps.datasets import selectors as datasets

    dataset_id = node["params"].get("dataset")
    if dataset_id in (None, ""):
        return  # the settings check says "choose a data set"
    dataset = datasets.get_dataset(user, dataset_id)
    if not dataset.is_public and dataset.project_id != project.pk:
        raise Http404(f"No such data set: {node_name(node)} names data set {dataset_id}.")
    version = datasets.get_version(dataset, node["params"].get("version"))
    check.dataset_version = version


def check_settings(user, project, graph, *, strict: bool) -> CheckedGraph:
    """Structure, then every node's settings against the schemas flowing in. `strict`
    raises the first problem (a run); otherwise problems are collected per node, and a
    node downstream of a problem is checked no further (its inputs are unknown)."""
    checked = check_structure(user, project, graph)
    components = registry.load_all()
    by_id = {n["id"]: n for n in checked.graph["nodes"]}
    for node_id in checked.order:
        node, check = by_id[node_id], checked.nodes[node_id]
        component = components[node["component"]]
        blocked = False
        for port, (source, source_port) in checked.upstream(node_id).items():
            schema = checked.nodes[source].outputs.get(source_port)
            if schema is None:
                blocked = True
            else:
                check.inputs[port] = schema
        if blocked:
            continue
        inputs = dict(check.inputs)
        if getattr(component, "reads_dataset", False) and check.dataset_version is not None:
            version = check.dataset_version
            if version.status != "succeeded" or not version.parts:
                check.error = _error(node, "dataset", "the data set has no converted data yet")
                if strict:
                    raise GraphError(check.error["message"], node_id, "dataset")
                continue
            inputs["dataset"] = {"kind": "table", "columns": list(version.columns)}
        try:
            check.params, check.outputs = component.validate(node["params"], inputs)
        except base.ComponentError as exc:
            check.error = _error(node, exc.field, exc.rule)
            if strict:
                raise GraphError(check.error["message"], node_id, exc.field) from None
    return checked


def _error(node: dict, field_name: str, rule: str) -> dict:
    return {
        "field": field_name,
        "rule": rule,
        "message": f"{node_name(node)}: {field_name}: {rule}",
    }
