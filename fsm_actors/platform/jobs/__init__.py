"""The job layer: one driver for every job that moves many records.

Plain cores (``model``, ``state``, ``files``, ``file_step``, ``file_kind``, ``parts``,
``commit``, ``prefetch``, ``progress``) and a thin Ray part (``driver``, ``worker``).
``run_job`` is imported lazily, so importing the cores never imports Ray.
"""

from __future__ import annotations

from typing import Any

from fsm_actors.platform.jobs.errors import JobError, ThresholdExceeded
from fsm_actors.platform.jobs.file_kind import FileJobKind
from fsm_actors.platform.jobs.file_step import FileStep, FileStepSpec, RecordStage, StageOutput
from fsm_actors.platform.jobs.files import FileJobSpec, Plan, make_plan, resolve_inputs
from fsm_actors.platform.jobs.model import (
    COUNT_KEYS,
    DoneSet,
    JobKind,
    PartitionTotal,
    Step,
    StepContext,
    StepSpec,
    Task,
    TaskResult,
    result_record,
)
from fsm_actors.platform.jobs.progress import JobProgress

__all__ = [
    "COUNT_KEYS",
    "DoneSet",
    "FileJobKind",
    "FileJobSpec",
    "FileStep",
    "FileStepSpec",
    "JobError",
    "JobKind",
    "JobProgress",
    "PartitionTotal",
    "Plan",
    "RecordStage",
    "StageOutput",
    "Step",
    "StepContext",
    "StepSpec",
    "Task",
    "TaskResult",
    "ThresholdExceeded",
    "make_plan",
    "resolve_inputs",
    "result_record",
    "run_job",
]


async def run_job(kind: JobKind, **kwargs: Any) -> dict[str, Any]:
    """``fsm_actors.platform.jobs.driver.run_job`` (imported on first use: it needs Ray)."""
    from fsm_actors.platform.jobs.driver import run_job as _run_job

    return await _run_job(kind, **kwargs)
