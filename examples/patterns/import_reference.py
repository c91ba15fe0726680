"""Seed 000 (integration patterns), "Import Reference".

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``). The LLM imports
(``dataknobs_llm``) are left out: that package is out of scope (see examples/README.md).
``main()`` prints each imported name with what it is.

    .venv/bin/python examples/patterns/import_reference.py
"""

# ruff: noqa: I001, E402 - the seed's import lines are kept as written
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

# -- the seed's block -------------------------------------------------------------------------
# ETL Pattern
from patterns.etl import (
    DatabaseETL, ETLConfig, ETLMode,
    create_etl_pipeline, create_database_sync,
    create_data_migration, create_data_warehouse_load
)

# File Processing Pattern
from patterns.file_processing import (
    FileProcessor, FileProcessingConfig, ProcessingMode, FileFormat,
    create_csv_processor, create_json_processor,
    create_log_analyzer, create_batch_file_processor
)

# API Orchestration Pattern
from patterns.api_orchestration import (
    APIOrchestrator, APIOrchestrationConfig, OrchestrationMode,
    APIEndpoint, create_rest_api_orchestrator, create_graphql_orchestrator
)

# LLM Workflow Pattern - in the dataknobs-llm package: out of scope here

# Error Recovery Pattern
from patterns.error_recovery import (
    ErrorRecoveryWorkflow, ErrorRecoveryConfig, RecoveryStrategy,
    BackoffStrategy, create_retry_workflow, create_circuit_breaker_workflow,
    create_resilient_workflow
)
# ---------------------------------------------------------------------------------------------

IMPORTED = {
    "patterns.etl": [DatabaseETL, ETLConfig, ETLMode, create_etl_pipeline, create_database_sync,
                     create_data_migration, create_data_warehouse_load],
    "patterns.file_processing": [FileProcessor, FileProcessingConfig, ProcessingMode, FileFormat,
                                 create_csv_processor, create_json_processor,
                                 create_log_analyzer, create_batch_file_processor],
    "patterns.api_orchestration": [APIOrchestrator, APIOrchestrationConfig, OrchestrationMode,
                                   APIEndpoint, create_rest_api_orchestrator,
                                   create_graphql_orchestrator],
    "patterns.error_recovery": [ErrorRecoveryWorkflow, ErrorRecoveryConfig, RecoveryStrategy,
                                BackoffStrategy, create_retry_workflow,
                                create_circuit_breaker_workflow, create_resilient_workflow],
}


def main() -> dict[str, list[Any]]:
    """Print every name the block imports, by module, with its kind; returns them."""
    for module, names in IMPORTED.items():
        kinds = ", ".join(f"{obj.__name__} ({'class' if isinstance(obj, type) else 'function'})"
                          for obj in names)
        print(f"{module}: {kinds}")
    return IMPORTED


if __name__ == "__main__":
    main()
