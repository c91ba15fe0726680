"""A config's own ``resources:`` section, turned into what the runner registers.

Each entry ``{name, type, config}`` becomes the provider dict ``{"type": type, **config}``
that ``resources=`` also accepts. Credentials stay out of config files: a string value
``${VAR}`` (or one containing ``${VAR}``) is read from the environment when the FSM is
built, and a variable that is not set is an error naming it. Resources given to the runner
in ``resources=`` take precedence over a declaration of the same name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from fsm_actors.config.models import FSMConfig
from fsm_actors.platform.errors import FSMConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def needed_resources(config: FSMConfig) -> list[str]:
    """Every resource name a state, network or arc of ``config`` uses, in first-use order."""
    names: list[str] = []
    for network in config.networks:
        for state in network.states:
            if state.resources:
                names += [*state.resources, *network.resources]
            for arc in state.arcs:
                names += list(arc.resources.values() if isinstance(arc.resources, dict)
                              else arc.resources)
    return list(dict.fromkeys(names))


def resolve_resources(config: FSMConfig, given: Mapping[str, Any] | None,
                      elsewhere: Callable[[list[str]], set[str]] | None = None) -> dict[str, Any]:
    """``{name: provider or provider dict}`` for the runner to register: the config's own
    declarations (environment variables expanded) with ``given`` on top. ``elsewhere(names)``
    answers which of the remaining names are registered already (with the cluster's
    ``ResourceManager``): states reach those by name. Raises ``FSMConfigError`` for a resource
    that is used but neither declared, given nor registered, and for an unset environment
    variable."""
    given = dict(given or {})
    resolved: dict[str, Any] = {}
    for index, definition in enumerate(config.resources):
        if definition.name in given:
            continue
        where = f"resources[{index}].config"
        spec = _expand(definition.config, where, definition.name, config.source)
        resolved[definition.name] = {"type": definition.type, **spec}
    resolved.update(given)
    missing = [name for name in needed_resources(config) if name not in resolved]
    if missing and elsewhere is not None:
        found = elsewhere(missing)
        missing = [name for name in missing if name not in found]
    if missing:
        example = ", ".join(f"'{n}': {{'type': 'database', 'backend': 'sqlite', ...}}"
                            for n in missing[:1])
        raise FSMConfigError(
            f"the FSM uses resource(s) {', '.join(map(repr, missing))}, which neither the "
            "config's 'resources:' section declares nor resources= gives (nor, on the "
            "cluster, a ResourceManager registered); declare them under 'resources:' (name, "
            "type, config; credentials as ${ENV_VAR}), pass SimpleFSM(config, "
            f"resources={{{example}}}), or register them first with "
            "ResourceManager().register_provider(name, provider)",
            key_path="resources",
            source=config.source,
        )
    return resolved


def _expand(value: Any, where: str, resource: str, source: str | None) -> Any:
    if isinstance(value, str):
        def env(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise FSMConfigError(
                    f"resource '{resource}' reads the environment variable {name}, which is "
                    f"not set; export {name}=... before building the FSM, or pass the "
                    "resource in resources=",
                    key_path=where,
                    source=source,
                )
            return os.environ[name]

        return _VAR.sub(env, value)
    if isinstance(value, Mapping):
        return {k: _expand(v, f"{where}.{k}", resource, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", resource, source) for i, v in enumerate(value)]
    return value
