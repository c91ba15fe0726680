"""Diagrams of a compiled machine: Mermaid and Graphviz DOT, drawn from the same ``Machine``
the engine runs (so what is drawn is what runs).

Every network is a box of its states; a state shows its name, whether it is the start or an
end (and whether an end emits), its pre-validators, validators, schema, transforms and
resources; an arc shows its condition, priority (when not 0), name and transforms; a push arc
is drawn twice: dashed to the sub-network state it calls, solid to the state the record
continues at. With ``counts`` (``SimpleFSM.stats()``, or a run result holding ``states`` and
``arcs``) each state is labelled with its counts and filled by its share of failures (white:
none, red: all), and each arc with the transitions taken.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from fsm_actors.engine.graph import Arc, Network, State
from fsm_actors.engine.machine import Machine

TEXT_LIMIT = 48


def _text(ref: Any) -> str:
    """A function reference as short text: its name, or its inline code (cut)."""
    if ref is None:
        return ""
    text = ref if isinstance(ref, str) else (getattr(ref, "name", None) or
                                             getattr(ref, "code", None) or str(ref))
    text = " ".join(str(text).split())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _node_id(index: int, state: str) -> str:
    """A unique, stable node id that still reads as the state's name."""
    return f"s{index}_" + re.sub(r"\W", "_", state)


class _View:
    """What both formats draw: the labelled states and arcs of each network."""

    def __init__(self, machine: Machine, counts: Mapping[str, Any] | None) -> None:
        self.machine = machine
        self.networks: dict[str, Network] = machine.networks
        self.main = machine.config.main_network
        self.states_counts: Mapping[str, Any] = (counts or {}).get("states") or {}
        self.arc_counts: Mapping[str, Any] = (counts or {}).get("arcs") or {}
        self.with_counts = counts is not None
        pairs = [(n.name, s.name) for n in self.networks.values() for s in n.states.values()]
        self._ids = {pair: _node_id(i, pair[1]) for i, pair in enumerate(pairs)}

    def node(self, state: State) -> str:
        return self._ids[(state.network, state.name)]

    def state_lines(self, state: State, network: Network) -> list[str]:
        """The label of a state, line by line (its name first)."""
        marks = []
        if state is network.start:
            marks.append("start")
        if state.is_end:
            marks.append("end" if state.emit else "end, not emitted")
        if state.run_on_failure:
            marks.append("on failure")
        lines = [state.name + (f" ({', '.join(marks)})" if marks else "")]
        for role, functions in (("pre-validate", state.pre_validators),
                                ("validate", state.validators),
                                ("transform", state.transforms)):
            lines += [f"{role}: {_text(f.name)}" for f in functions]
        if state.schema is not None:
            lines.append("schema: " + _text(", ".join(sorted(
                (state.config.data_schema or {}).get("properties", {}))) or "yes"))
        if state.config.resources:
            lines.append("resources: " + ", ".join(state.resources or state.config.resources))
        if self.with_counts:
            lines.append(self.count_line(state.name))
        return lines

    def count_line(self, name: str) -> str:
        row = self.states_counts.get(name) or {}
        entered, failed = row.get("entered", 0), row.get("failed", 0)
        text = f"in {entered} · ended {row.get('ended', 0)} · failed {failed}"
        if failed and entered:
            text += f" ({failed / entered:.1%})"
        errors = row.get("errors") or {}
        if errors:
            text += " · " + ", ".join(f"{k} {v}" for k, v in errors.items())
        if row.get("seconds"):
            text += f" · {row['seconds']:.3g} s"
        return text

    def failure_fill(self, name: str) -> str | None:
        """A fill colour from white (no failures) to red (every entry failed)."""
        if not self.with_counts:
            return None
        row = self.states_counts.get(name) or {}
        entered, failed = row.get("entered", 0), row.get("failed", 0)
        if not entered:
            return "#eeeeee"
        share = min(1.0, failed / entered)
        if not failed:
            return "#e8f5e9"
        share = max(share, 0.15)  # any failure shows
        g = int(255 - 200 * share)
        return f"#ff{g:02x}{g:02x}"

    def arc_lines(self, arc: Arc, several: bool) -> list[str]:
        config = arc.config
        lines = []
        if config.name:
            lines.append(config.name)
        if config.condition is not None:
            lines.append(f"if {_text(config.condition)}")
        elif several:
            lines.append("else")
        if config.priority:
            lines.append(f"priority {config.priority}")
        lines += [f"transform: {_text(f.name)}" for f in arc.transforms]
        if arc.resources:
            lines.append("resources: " + ", ".join(arc.resources))
        if self.with_counts:
            taken = self.arc_counts.get(f"{arc.source}->{self.target(arc).name}", 0)
            lines.append(f"taken {taken}")
        return lines

    def target(self, arc: Arc) -> State:
        """Where the record goes next: the called state for a push, else the next state."""
        return arc.push.start if arc.push is not None else arc.next_state  # type: ignore[return-value]

    def arcs(self) -> Iterator[tuple[State, Arc, bool]]:
        for net in self.networks.values():
            for state in net.states.values():
                for arc in state.arcs:
                    yield state, arc, len(state.arcs) > 1


# -- Mermaid --------------------------------------------------------------------------------

def _mermaid_text(lines: list[str]) -> str:
    text = "<br/>".join(
        line.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
        .replace(">", "#gt;").replace("|", "#124;")
        for line in lines
    )
    return f'"{text}"'


def to_mermaid(machine: Machine, counts: Mapping[str, Any] | None = None) -> str:
    """A Mermaid ``flowchart`` of ``machine`` (see the module); ``counts`` overlays counts."""
    view = _View(machine, counts)
    out = ["flowchart TD",
           "  classDef start stroke:#1565c0,stroke-width:3px",
           "  classDef endstate stroke:#2e7d32,stroke-width:3px,stroke-dasharray:0",
           "  classDef quiet stroke:#9e9e9e,stroke-dasharray:4 2"]
    for net in view.networks.values():
        title = f"network {net.name}" + (" (main)" if net.name == view.main else "")
        out.append(f'  subgraph {view.node(net.start)}_net[{_mermaid_text([title])}]')
        for state in net.states.values():
            node = view.node(state)
            text = _mermaid_text(view.state_lines(state, net))
            shape = f"([{text}])" if state is net.start else (
                f"[[{text}]]" if state.is_end else f"[{text}]")
            out.append(f"    {node}{shape}")
            if state is net.start:
                out.append(f"    class {node} start")
            elif state.is_end:
                out.append(f"    class {node} {'endstate' if state.emit else 'quiet'}")
        out.append("  end")
    for state, arc, several in view.arcs():
        label = _mermaid_text(view.arc_lines(arc, several))
        source = view.node(state)
        if arc.push is not None:
            out.append(f"  {source} -. {_mermaid_text(['call ' + arc.push.start.network])} .-> "
                       f"{view.node(arc.push.start)}")
            out.append(f"  {source} -- {label} --> {view.node(arc.next_state)}")  # type: ignore[arg-type]
        else:
            out.append(f"  {source} -- {label} --> {view.node(arc.next_state)}")  # type: ignore[arg-type]
    if view.with_counts:
        for net in view.networks.values():
            for state in net.states.values():
                fill = view.failure_fill(state.name)
                out.append(f"  style {view.node(state)} fill:{fill}")
    return "\n".join(out) + "\n"


# -- Graphviz DOT ---------------------------------------------------------------------------

def _dot_text(lines: list[str]) -> str:
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    return '"' + "\\n".join(escaped) + '"'


def to_dot(machine: Machine, counts: Mapping[str, Any] | None = None) -> str:
    """A Graphviz ``digraph`` of ``machine`` (see the module); ``counts`` overlays counts.
    Render it with ``dot -Tsvg``."""
    view = _View(machine, counts)
    out = [
        f"digraph {_dot_text([machine.name])} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", fontsize=11, labeljust=l];',
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica",'
        " fontsize=10];",
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for i, net in enumerate(view.networks.values()):
        title = f"network {net.name}" + (" (main)" if net.name == view.main else "")
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f'    label={_dot_text([title])}; style="rounded"; color="#90a4ae";')
        entry = f"{view.node(net.start)}_entry"
        out.append(f'    {entry} [shape=point, width=0.12, fillcolor="#1565c0", label=""];')
        for state in net.states.values():
            attrs = [f"label={_dot_text(view.state_lines(state, net))}"]
            if state is net.start:
                attrs.append('penwidth=2, color="#1565c0"')
            if state.is_end:
                attrs.append("peripheries=2" + ("" if state.emit else ', color="#9e9e9e"'))
            fill = view.failure_fill(state.name)
            if fill:
                attrs.append(f'fillcolor="{fill}"')
            out.append(f"    {view.node(state)} [{', '.join(attrs)}];")
        out.append(f"    {entry} -> {view.node(net.start)};")
        out.append("  }")
    for state, arc, several in view.arcs():
        label = _dot_text(view.arc_lines(arc, several))
        source = view.node(state)
        if arc.push is not None:
            out.append(f"  {source} -> {view.node(arc.push.start)} "
                       f"[style=dashed, label={_dot_text(['call ' + arc.push.start.network])}];")
        out.append(f"  {source} -> {view.node(arc.next_state)} [label={label}];")  # type: ignore[arg-type]
    out.append("}")
    return "\n".join(out) + "\n"
