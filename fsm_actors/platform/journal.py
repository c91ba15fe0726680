"""Where an actor keeps its state across restarts: one entry of Ray's internal KV (in the GCS).

``Journal(key, namespace, codec)``: ``save(record)``, ``load()`` (``None`` when absent or
unreadable: an unreadable journal must not keep an actor from starting), ``clear()``.
``codec="pickle"`` (cloudpickle: records may hold actor handles, valid in a restarted
actor) or ``"json"``. The one journal of the project: the policy actors of
``patterns.error_recovery`` and the provider actors of ``resource_actors`` use it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import ray.cloudpickle as cloudpickle
from ray.experimental import internal_kv

log = logging.getLogger(__name__)

NAMESPACE = "fsm_actors"


class Journal:
    """The KV entry ``key`` in ``namespace``."""

    def __init__(self, key: str, namespace: str = NAMESPACE,
                 codec: Literal["pickle", "json"] = "pickle") -> None:
        self.key = key.encode()
        self.namespace = namespace
        self._dumps = cloudpickle.dumps if codec == "pickle" else (
            lambda record: json.dumps(record).encode())
        self._loads = cloudpickle.loads if codec == "pickle" else json.loads

    def load(self) -> Any:
        raw = internal_kv._internal_kv_get(self.key, namespace=self.namespace)
        if not raw:
            return None
        try:
            return self._loads(raw)
        except Exception:
            log.exception("journal %s unreadable; starting fresh", self.key.decode())
            return None

    def save(self, record: Any) -> None:
        internal_kv._internal_kv_put(self.key, self._dumps(record), overwrite=True,
                                     namespace=self.namespace)

    def clear(self) -> None:
        internal_kv._internal_kv_del(self.key, namespace=self.namespace)
