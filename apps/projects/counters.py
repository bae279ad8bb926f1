"""Per-project running/total counts shown in the project list (the spec's three modules).

Modules register a counter when they exist; until then the list shows zeros, which is
the truth: nothing of that kind can be running.
"""

from collections.abc import Callable

MODULES = ("notebooks", "jobs", "services")
_counters: dict[str, Callable] = {}


def register(module: str, count: Callable):
    """`count(project_ids)` returns {project_id: (running, total)}."""
    if module not in MODULES:
        raise ValueError(f"unknown module {module!r}; expected one of {MODULES}")
    _counters[module] = count


def counts_for(project_ids) -> dict[int, dict[str, dict[str, int]]]:
    project_ids = list(project_ids)
    result = {pid: {m: {"running": 0, "total": 0} for m in MODULES} for pid in project_ids}
    for module, count in _counters.items():
        for pid, (running, total) in count(project_ids).items():
            result[pid][module] = {"running": running, "total": total}
    return result
