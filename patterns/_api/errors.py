"""Errors of the API orchestration pattern: a bad configuration and a failed endpoint call.

Both are ``PatternError``s with ``pattern="api_orchestration"`` and an ``endpoint`` attribute;
a call error also carries the HTTP ``status`` (``None`` when no answer came) and ``reason``.
Messages never hold credentials: URLs are shown without user info and query string, and
secret values are scrubbed from any text taken from the network stack.
"""

from __future__ import annotations

from typing import Any

from patterns.errors import PatternError

PATTERN = "api_orchestration"


class APIConfigError(PatternError):
    """An orchestration config is wrong; the message names the endpoint and the field."""

    def __init__(self, message: str, *, endpoint: str | None = None, **context: Any) -> None:
        context.setdefault("pattern", PATTERN)
        super().__init__(message, **context)
        self.endpoint = endpoint

    def __reduce__(self):  # keep ``endpoint`` when Ray ships the error
        return (_rebuild_config, (self.__class__, self.message, self.endpoint, self.context()))


class APICallError(PatternError):
    """An endpoint call failed for good (retries spent, or an error that is not retried)."""

    def __init__(self, message: str, *, endpoint: str | None = None, status: int | None = None,
                 reason: str = "", attempts: int = 0, **context: Any) -> None:
        context.setdefault("pattern", PATTERN)
        super().__init__(message, **context)
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        self.attempts = attempts

    def __reduce__(self):
        return (_rebuild_call, (self.__class__, self.message, self.endpoint, self.status,
                                self.reason, self.attempts, self.context()))


def _rebuild_config(cls: type[APIConfigError], message: str, endpoint: str | None,
                    context: dict[str, Any]) -> APIConfigError:
    return cls(message, endpoint=endpoint, **context)


def _rebuild_call(cls: type[APICallError], message: str, endpoint: str | None,
                  status: int | None, reason: str, attempts: int,
                  context: dict[str, Any]) -> APICallError:
    return cls(message, endpoint=endpoint, status=status, reason=reason, attempts=attempts,
               **context)


class TransientCallError(Exception):
    """An attempt failed in a way worth retrying (5xx, 429, timeout, connection error).
    ``sent`` is false when the request never reached the server (a refused connection)."""

    def __init__(self, reason: str, status: int | None = None,
                 retry_after: float | None = None, *, sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.sent = sent
        if retry_after is not None:
            self.retry_after = retry_after


class PermanentCallError(Exception):
    """An attempt failed in a way that retrying does not fix (4xx, bad template, parsing)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
