"""The engine's JSON-schema validator: ``compile_schema`` of ``fsm_actors.config.schema``
(it lives with the config so a config whose schema is malformed fails when it loads)."""

from fsm_actors.config.schema import compile_schema

__all__ = ["compile_schema"]
