"""The base exception of the patterns package, with the context a person needs to act."""

from __future__ import annotations

from typing import Any

from fsm_actors.platform.errors import FSMActorsError

_CONTEXT = ("pattern", "run_id", "file", "line", "record", "error_file")


class PatternError(FSMActorsError):
    """A pattern run could not start or had to stop.

    Context attributes (each ``None`` when not known): ``pattern`` (``file_processing``,
    ``etl`` ...), ``run_id``, ``file`` and ``line`` or ``record`` (where in the input), and
    ``error_file`` (where the rejected records were written). The message says what was wrong
    and what to do.
    """

    def __init__(
        self,
        message: str,
        *,
        pattern: str | None = None,
        run_id: str | None = None,
        file: str | None = None,
        line: int | None = None,
        record: int | None = None,
        error_file: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pattern = pattern
        self.run_id = run_id
        self.file = file
        self.line = line
        self.record = record
        self.error_file = error_file

    def context(self) -> dict[str, Any]:
        """The context attributes as a dict."""
        return {name: getattr(self, name) for name in _CONTEXT}

    def __reduce__(self):  # keep the context attributes when Ray ships the error
        return (_rebuild, (self.__class__, self.message, self.context()))


def _rebuild(cls: type[PatternError], message: str, context: dict[str, Any]) -> PatternError:
    return cls(message, **context)


class ErrorThresholdExceeded(PatternError):
    """More records were rejected than the run's ``error_threshold`` allows."""
