"""How record batches cross the actor boundary: pickled bytes, unpacked with the GC paused.

Unpickling 10k small dicts allocates 30k+ containers, and each allocation burst triggers
CPython's cyclic garbage collector over everything the process holds: measured here, 2.9 us
per record with the collector on, 0.8 us with it paused. Records hold no reference cycles, so
pausing it for the duration of one ``loads`` is safe.
"""

from __future__ import annotations

import pickle
from itertools import repeat
from typing import Any

from fsm_actors.platform.gc_pause import gc_paused


def pack(obj: Any) -> bytes:
    """Pickle ``obj``; objects plain pickle refuses (lambdas, local classes) use cloudpickle."""
    try:
        return pickle.dumps(obj, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):
        from ray import cloudpickle  # only then: the wire format itself needs no Ray

        return cloudpickle.dumps(obj, protocol=5)


def unpack(payload: bytes) -> Any:
    """Unpickle ``payload`` with the cyclic GC paused (restored afterwards)."""
    with gc_paused():
        return pickle.loads(payload)


def pack_results(results: list[dict[str, Any]]) -> bytes:
    """Run results, packed column-wise: the records' data, their final states (one if all
    are alike), one path per distinct path (records share a handful; no per-record ids when
    there is one), and ``{index: (success, error)}`` for the records that did not simply
    succeed. Measured here on 12.5k results of a 3-state FSM:
    pickling the result dicts took 15 ms, these columns 2.5 ms (the pickle memo tracks 3
    containers per record there, 1 here), and the driver rebuilds the dicts in 2 ms."""
    n = len(results)
    datas = [r["data"] for r in results]
    states = [r["final_state"] for r in results]
    keys = [tuple(r["path"]) for r in results]
    # the common case, every record ending alike, travels as one state and one path
    if n and states.count(states[0]) == n:
        states = states[:1]
    path_ids: list[int] | None = None
    if n and keys.count(keys[0]) == n:
        paths = keys[:1]
    else:
        index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        paths, path_ids = list(index), [index[key] for key in keys]
    odd: dict[int, tuple[bool, Any]] = {}
    if [r["success"] for r in results].count(True) != n or [
        r["error"] for r in results
    ].count(None) != n:
        odd = {
            i: (r["success"], r["error"])
            for i, r in enumerate(results)
            if r["error"] is not None or not r["success"]
        }
    return pack((datas, states, path_ids, paths, odd))


def unpack_results(payload: bytes) -> list[dict[str, Any]]:
    """The result dicts ``pack_results`` packed (each with its own ``path`` list)."""
    with gc_paused():
        datas, states, path_ids, paths, odd = pickle.loads(payload)
        n = len(datas)
        # each record's own path list, made by C-level maps (no Python call per record)
        ids = repeat(0, n) if path_ids is None else path_ids
        fresh = list(map(list, map(paths.__getitem__, ids)))
        if len(states) != n:  # every record ended in the one state sent
            states = repeat(states[0], n)
        out = [
            {"final_state": s, "data": d, "path": p, "success": True, "error": None}
            for d, s, p in zip(datas, states, fresh, strict=True)
        ]
        for index, (success, error) in odd.items():
            out[index]["success"] = success
            out[index]["error"] = error
        return out
