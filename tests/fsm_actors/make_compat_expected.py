"""Generate ``compat_expected.json``: random network-form configs run through dataknobs-fsm 0.5.0.

Run ONCE, with the peer package's interpreter (a scratch venv, see shared/PEER-NOTES.md):

    python3.12 -m venv /tmp/peer && /tmp/peer/bin/pip install dataknobs-fsm==0.5.0
    /tmp/peer/bin/python tests/fsm_actors/make_compat_expected.py

It writes, next to itself, each config, its input records and the package's results
(final_state, data, success, path); ``test_compat_differential.py`` runs the same configs
through this project and compares. The configs avoid the package's known defects
(raising functions, non-comparison inline conditions, max_transitions): every condition and
transform is a lambda that cannot raise on the generated records, and graphs are acyclic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("compat_expected.json")
SEED = 20
CONFIGS = 50
KEYS = ("x", "y", "z")


def _condition(rng: random.Random) -> str:
    key, bound = rng.choice(KEYS), rng.randint(-5, 15)
    op = rng.choice([">", ">=", "<", "<=", "==", "!="])
    style = rng.choice(["state", "data", "both"])
    if style == "state":
        return f"lambda state: state.data['{key}'] {op} {bound}"
    if style == "data":
        return f"lambda data: data['{key}'] {op} {bound}"
    other = rng.choice(KEYS)
    return f"lambda state: state.data['{key}'] {op} {bound} and state['{other}'] % 2 == 0"


def _transform(rng: random.Random, index: int) -> str:
    key, amount = rng.choice(KEYS), rng.randint(-3, 7)
    style = rng.choice(["state", "data", "tag"])
    if style == "state":
        return f"lambda state: {{**state.data, '{key}': state.data['{key}'] + {amount}}}"
    if style == "data":
        return f"lambda data: {{**data, '{key}': data['{key}'] * 2 - {amount}}}"
    return f"lambda state: {{**state.data, 'seen': state.data.get('seen', 0) + {index}}}"


def make_config(rng: random.Random, number: int) -> dict:
    """States s0..sN (s0 start, the last two or three end states), forward arcs only."""
    count = rng.randint(4, 9)
    ends = rng.randint(1, 3)
    names = [f"s{i}" for i in range(count)]
    states = [
        {"name": name, **({"is_start": True} if i == 0 else {}),
         **({"is_end": True} if i >= count - ends else {})}
        for i, name in enumerate(names)
    ]
    arcs = []
    for i in range(count - ends):
        for _ in range(rng.randint(1, 3)):
            arc: dict = {"from": names[i], "to": names[rng.randint(i + 1, count - 1)]}
            if rng.random() < 0.8:
                arc["condition"] = {"type": "inline", "code": _condition(rng)}
            if rng.random() < 0.6:
                arc["priority"] = rng.randint(0, 3)
            if rng.random() < 0.5:
                arc["transform"] = {"type": "inline", "code": _transform(rng, len(arcs) + 1)}
            arcs.append(arc)
        if rng.random() < 0.7:  # usually a catch-all, sometimes a dead end on purpose
            arcs.append({"from": names[i], "to": names[rng.randint(i + 1, count - 1)]})
    return {
        "name": f"compat_{number}",
        "main_network": "main",
        "networks": [{"name": "main", "states": states, "arcs": arcs}],
    }


def main() -> None:
    from dataknobs_fsm.api.simple import SimpleFSM  # the peer package: scratch venv only

    rng = random.Random(SEED)
    cases = []
    for number in range(CONFIGS):
        config = make_config(rng, number)
        records = [{k: rng.randint(-5, 15) for k in KEYS} for _ in range(6)]
        fsm = SimpleFSM(config)
        results = []
        for record in records:
            out = fsm.process(dict(record))
            results.append({key: out.get(key) for key in ("final_state", "data", "success", "path")})
        cases.append({"config": config, "records": records, "expected": results})
    lines = ",\n".join(json.dumps(case, separators=(",", ":")) for case in cases)
    OUT.write_text(f'{{"generator":"dataknobs-fsm 0.5.0","seed":{SEED},"cases":[\n{lines}\n]}}\n')
    print(f"wrote {len(cases)} configs to {OUT}")


if __name__ == "__main__":
    main()
