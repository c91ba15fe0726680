"""The engine against dataknobs-fsm 0.5.0 on 50 random network-form configs.

``compat_expected.json`` was generated once with the package by ``make_compat_expected.py``
(states, network-level arcs with inline-lambda conditions, priorities and transforms; lambdas
written both as ``lambda data:`` and ``lambda state: state.data[...]``). Each case's records
run here through the compiled machine and through ``SimpleFSM(local=True).process_batch``;
final state, data, success and path must equal the package's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsm_actors import SimpleFSM
from fsm_actors.engine import compile_machine

CASES = json.loads(Path(__file__).with_name("compat_expected.json").read_text())["cases"]
KEYS = ("final_state", "data", "success", "path")


def test_the_saved_cases_cover_successes_failures_and_long_paths():
    results = [r for case in CASES for r in case["expected"]]
    assert len(CASES) == 50
    assert {r["success"] for r in results} == {True, False}
    assert max(len(r["path"]) for r in results) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c["config"]["name"] for c in CASES])
def test_same_results_as_the_package(case):
    machine = compile_machine(case["config"])
    ours = [machine.run(record) for record in case["records"]]
    with SimpleFSM(case["config"], local=True) as fsm:
        batch = fsm.process_batch(case["records"])
    for got in (ours, batch):
        assert [{k: r[k] for k in KEYS} for r in got] == case["expected"]
