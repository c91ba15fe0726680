"""The extension registry: how a higher package plugs into a lower one without an upward import.

A package registers named hooks (``register("fsm_resources", module)``) when it is imported;
a lower layer looks them up with ``lookup(name)``. A lookup that finds nothing first loads
the ``fsm_actors.extensions`` entry points (``pyproject.toml``), each of which imports one
package so that it registers itself; then it fails with a message naming the hook and the
package that provides it. Kinds of pipeline files register the same way (``kinds``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

GROUP = "fsm_actors.extensions"

_hooks: dict[str, Any] = {}
_loaded = False
_lock = threading.RLock()

#: What each hook is and which distribution package provides it (for error messages).
PROVIDERS = {
    "fsm_resources": "resource_actors",
    "pipeline_files": "patterns",
}


def register(name: str, hook: Any) -> None:
    """Make ``hook`` the implementation of ``name`` (the last registration wins)."""
    with _lock:
        _hooks[name] = hook


def load_entry_points() -> None:
    """Import every package named by the ``fsm_actors.extensions`` entry points, once."""
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        for point in entry_points(group=GROUP):
            import_module(point.value.split(":", 1)[0])


def lookup(name: str) -> Any:
    """The hook registered under ``name``; raises ``LookupError`` saying what to install."""
    hook = _hooks.get(name)
    if hook is None:
        load_entry_points()
        hook = _hooks.get(name)
    if hook is None:
        package = PROVIDERS.get(name, "the package that provides it")
        raise LookupError(f"no {name!r} is registered: import {package} (installed with "
                          "fsm-actors) before using this feature")
    return hook


def extension_packages() -> Iterator[str]:
    """Top-level names of the packages that extend the platform (for shipping to a cluster)."""
    yield "fsm_actors"
    seen = {"fsm_actors"}
    for point in entry_points(group=GROUP):
        top = point.value.split(":", 1)[0].split(".", 1)[0]
        if top not in seen:
            seen.add(top)
            yield top
