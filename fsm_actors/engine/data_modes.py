"""The copy functions behind each ``DataHandlingMode``."""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from fsm_actors.config.models import DataHandlingMode

_IMMUTABLE = frozenset({
    str, int, float, bool, bytes, type(None), complex,
    _dt.date, _dt.datetime, _dt.time, _dt.timedelta, decimal.Decimal, uuid.UUID,
})


def fast_copy(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` that shares nothing mutable with it, cheap for flat records."""
    for value in data.values():
        if type(value) not in _IMMUTABLE:
            return deepcopy(data)
    return data.copy()


def _same(data: dict[str, Any]) -> dict[str, Any]:
    return data


_COPIERS: dict[DataHandlingMode, Callable[[dict[str, Any]], dict[str, Any]]] = {
    DataHandlingMode.COPY: fast_copy,
    DataHandlingMode.REFERENCE: dict.copy,
    DataHandlingMode.DIRECT: _same,
}


def copier_for(mode: DataHandlingMode | str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The function that prepares the caller's record for a run in ``mode``."""
    return _COPIERS[DataHandlingMode(mode)]
