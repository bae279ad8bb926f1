"""Every component, by name: the files under `components/` register themselves when
imported, and `load_all` imports them all (adding a component is adding a file)."""

from __future__ import annotations

import importlib
import pkgutil

from workers.runners.visual import base, components

_loaded = False


def load_all() -> dict[str, base.Component]:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(components.__path__):
            importlib.import_module(f"{components.__name__}.{module.name}")
        _loaded = True
    return base.registered()


def get(name: str) -> base.Component:
    components_by_name = load_all()
    if name not in components_by_name:
        raise base.ComponentError("component", f"unknown component '{name}'")
    return components_by_name[name]


def palette() -> list[dict]:
    """Every component described for the canvas, grouped in the spec's order."""
    order = {group: i for i, group in enumerate(base.GROUPS)}
    described = [c.describe() for c in load_all().values()]
    return sorted(described, key=lambda c: (order[c["group"]], c["label"]))
