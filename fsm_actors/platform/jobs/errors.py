"""Errors of the job layer (plain core)."""

from __future__ import annotations

from typing import Any

from fsm_actors.platform.errors import FSMError


class JobError(FSMError):
    """A job could not start, resume or finish.

    Context attributes: ``run_id``, ``file`` (an input or the checkpoint) and ``error_file``
    (where rejected records were written), each ``None`` when not known.
    """

    def __init__(
        self,
        message: str = "",
        *,
        run_id: str | None = None,
        file: str | None = None,
        error_file: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, source=context.pop("source", None), **context)
        self.run_id = run_id
        self.file = file
        self.error_file = error_file

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            **super()._init_kwargs(),
            "run_id": self.run_id,
            "file": self.file,
            "error_file": self.error_file,
        }


class ThresholdExceeded(JobError):
    """More records were rejected than the job's ``error_threshold`` allows."""
