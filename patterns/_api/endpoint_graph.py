"""The endpoint graph of a config: unique names, known dependencies, no cycle, and a listed
order that the ordered modes can keep (plain core)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from patterns._api.errors import APIConfigError

if TYPE_CHECKING:
    from patterns._api.config import APIEndpoint

#: modes that run the endpoints in their listed order
ORDERED = ("sequential", "pipeline", "conditional")


def check_graph(endpoints: Sequence[APIEndpoint], mode: str) -> None:
    """Names unique; every dependency known; no cycle; the listed order respects the
    dependencies in the ordered modes; PARALLEL has none. ``mode`` is the mode's value."""
    seen: dict[str, int] = {}
    for index, endpoint in enumerate(endpoints):
        if endpoint.name in seen:
            raise APIConfigError(f"endpoint {endpoint.name!r} is listed twice (positions "
                                 f"{seen[endpoint.name]} and {index}); names must be unique",
                                 endpoint=endpoint.name)
        seen[endpoint.name] = index
    dependent = [e for e in endpoints if e.depends_on]
    if not dependent:  # nothing to resolve, no cycle, any order
        return
    for endpoint in dependent:
        for dep in endpoint.depends_on:
            if dep not in seen:
                raise APIConfigError(
                    f"endpoint {endpoint.name!r}: depends_on names an unknown endpoint "
                    f"{dep!r}; known: {sorted(seen)}", endpoint=endpoint.name)
            if dep == endpoint.name:
                raise APIConfigError(f"endpoint {endpoint.name!r} depends on itself",
                                     endpoint=endpoint.name)
    cycle = find_cycle({e.name: tuple(e.depends_on) for e in dependent})
    if cycle:
        raise APIConfigError(f"endpoint {cycle[0]!r}: depends_on forms a cycle "
                             f"{' -> '.join(cycle)}", endpoint=cycle[0])
    if mode == "parallel":
        first = dependent[0]
        raise APIConfigError(
            f"endpoint {first.name!r}: depends_on has no effect in PARALLEL mode "
            "(everything starts at once); use HYBRID", endpoint=first.name)
    elif mode in ORDERED:
        for endpoint in dependent:
            for dep in endpoint.depends_on:
                if seen[dep] > seen[endpoint.name]:
                    raise APIConfigError(
                        f"endpoint {endpoint.name!r}: depends on {dep!r}, which is listed "
                        f"after it; in {mode.upper()} mode list {dep!r} first or use "
                        "HYBRID", endpoint=endpoint.name)


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """A dependency cycle as ``[a, b, ..., a]``, or ``[]``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []

