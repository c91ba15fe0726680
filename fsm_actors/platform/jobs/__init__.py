"""The job layer: one driver for every job that moves many records.

Plain cores (``model``, ``checkpoint``, ``files``, ``file_step``, ``file_kind``, ``parts``
(part files and their commit), ``progress``) and a thin Ray part (``driver``, ``worker``), which
imports Ray only inside its functions, so importing this package never imports Ray.
"""

from __future__ import annotations

from fsm_actors.platform.jobs.driver import run_job
from fsm_actors.platform.jobs.errors import JobError, ThresholdExceeded
from fsm_actors.platform.jobs.file_kind import (
    FileJobKind,
    FileJobSpec,
    Plan,
    make_plan,
    resolve_inputs,
)
from fsm_actors.platform.jobs.file_step import FileStep, FileStepSpec, RecordStage, StageOutput
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

