"""Where a policy actor keeps its state across restarts: Ray's internal KV (in the GCS).

A snapshot is a cloudpickled dict (it may hold actor handles of lease holders, which stay
valid in a restarted actor). Only a restarted actor reads it: a freshly created one clears
what an earlier actor of the same name left.
"""

from __future__ import annotations

import logging
from typing import Any

import ray.cloudpickle as cloudpickle
from ray.experimental import internal_kv

log = logging.getLogger(__name__)

NAMESPACE = "fsm_actors_recovery"


class Journal:
    """The KV entry of one policy actor (``key`` = its actor name)."""

    def __init__(self, key: str) -> None:
        self.key = key.encode()

    def load(self) -> dict[str, Any] | None:
        raw = internal_kv._internal_kv_get(self.key, namespace=NAMESPACE)
        if not raw:
            return None
        try:
            return cloudpickle.loads(raw)
        except Exception:  # an unreadable journal must not keep the policy from starting
            log.exception("recovery journal %s unreadable; starting fresh", self.key.decode())
            return None

    def save(self, snapshot: dict[str, Any]) -> None:
        internal_kv._internal_kv_put(self.key, cloudpickle.dumps(snapshot), overwrite=True,
                                     namespace=NAMESPACE)

    def clear(self) -> None:
        internal_kv._internal_kv_del(self.key, namespace=NAMESPACE)
