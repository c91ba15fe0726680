"""Authentication of endpoint calls: bearer token, HTTP basic, API key (header or query).

Secrets are held in ``Secret`` objects whose ``repr``/``str`` are ``'***'``; only ``apply``
reveals them, into the headers or query of an outgoing request. ``scrub`` removes secret
values from any text (an error message from the network stack) before it is shown.
Everything here is picklable, so an auth travels to worker actors with the config.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from patterns._api.errors import APIConfigError

MASK = "***"


class Secret:
    """A credential; shown as ``'***'`` everywhere except ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise APIConfigError("a credential must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        return (Secret, (self._value,))


@dataclass(frozen=True, repr=False)
class Auth:
    """How a request proves who sends it.

    ``kind`` is ``bearer`` (``Authorization: Bearer <token>``), ``basic`` (``username`` and
    ``password``) or ``api_key`` (``key`` in header ``header``, or in query parameter
    ``param`` when given).
    """

    kind: str
    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    key: Secret | None = None
    header: str = "X-API-Key"
    param: str | None = None

    def apply(self, headers: dict[str, str], params: dict[str, Any] | None) -> dict[str, Any] | None:
        """Add the credential to ``headers`` (in place) or to a copy of ``params``."""
        if self.kind == "bearer":
            headers["Authorization"] = f"Bearer {self.token.reveal()}"  # type: ignore[union-attr]
        elif self.kind == "basic":
            raw = f"{self.username}:{self.password.reveal()}".encode()  # type: ignore[union-attr]
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        elif self.param is not None:
            params = {**(params or {}), self.param: self.key.reveal()}  # type: ignore[union-attr]
        else:
            headers[self.header] = self.key.reveal()  # type: ignore[union-attr]
        return params

    def secrets(self) -> list[str]:
        """The secret strings, and the forms they take on the wire, for ``scrub``."""
        out = [s.reveal() for s in (self.token, self.password, self.key) if s is not None]
        if self.kind == "basic":
            raw = f"{self.username}:{self.password.reveal()}".encode()  # type: ignore[union-attr]
            out.append(base64.b64encode(raw).decode())
        return out

    def __repr__(self) -> str:
        if self.kind == "basic":
            return f"Auth(kind='basic', username={self.username!r}, password={MASK})"
        if self.kind == "api_key":
            where = f"param={self.param!r}" if self.param else f"header={self.header!r}"
            return f"Auth(kind='api_key', {where}, key={MASK})"
        return f"Auth(kind={self.kind!r}, token={MASK})"


def bearer(token: str) -> Auth:
    return Auth("bearer", token=Secret(token))


def basic(username: str, password: str) -> Auth:
    return Auth("basic", username=username, password=Secret(password))


def api_key(key: str, header: str = "X-API-Key", param: str | None = None) -> Auth:
    return Auth("api_key", key=Secret(key), header=header, param=param)


def to_auth(value: Any, where: str = "config") -> Auth | None:
    """An ``Auth`` from an ``Auth``, a bearer token string, or a mapping
    ``{"type": "bearer"|"basic"|"api_key", ...}``; ``APIConfigError`` names ``where``."""
    if value is None or isinstance(value, Auth):
        return value
    if isinstance(value, str | Secret):
        return Auth("bearer", token=value if isinstance(value, Secret) else Secret(value))
    if isinstance(value, Mapping):
        spec = dict(value)
        kind = str(spec.pop("type", spec.pop("kind", "bearer"))).lower().replace("-", "_")
        try:
            if kind == "bearer":
                return bearer(spec["token"])
            if kind == "basic":
                return basic(spec["username"], spec["password"])
            if kind in ("api_key", "apikey"):
                return api_key(spec["key"], spec.get("header", "X-API-Key"), spec.get("param"))
        except KeyError as exc:
            raise APIConfigError(f"{where}: auth of type {kind!r} needs {exc.args[0]!r}",
                                 endpoint=where) from None
        raise APIConfigError(f"{where}: unknown auth type {kind!r}; use bearer, basic or api_key",
                             endpoint=where)
    raise APIConfigError(f"{where}: auth must be an Auth, a token string or a mapping, "
                         f"not {type(value).__name__}", endpoint=where)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``'***'``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text
