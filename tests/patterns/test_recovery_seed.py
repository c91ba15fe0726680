"""The seed's Pattern Composition block, step 1 (file processing under a retry workflow),
literally; a processor that fails once is retried by the same workflow."""

from __future__ import annotations

import asyncio
import json

import pytest

pytestmark = pytest.mark.ray


def test_seed_pattern_composition_file_step_with_retry(ray_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw_data.csv").write_text(
        "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 51)))
    # -- the seed's block (step 1), import prefix changed only --
    from patterns.error_recovery import create_retry_workflow
    from patterns.file_processing import create_csv_processor

    async def complex_workflow():
        """Compose multiple patterns in a workflow."""

        # Step 1: Process CSV file with retry logic
        csv_processor = create_csv_processor(
            input_file="raw_data.csv",
            output_file="processed.json",
            transformations=[lambda row: {**row, "validated": True}]
        )

        retry_wrapper = create_retry_workflow(
            max_attempts=3,
            backoff_strategy="exponential"
        )

        # Execute with retry
        file_result = await retry_wrapper.execute(
            csv_processor.process
        )
        return {"file_processing": file_result, "metrics": retry_wrapper.get_metrics()}

    result = asyncio.run(complex_workflow())
    # --
    assert result["file_processing"]["records_written"] == 50
    assert result["metrics"]["total_attempts"] == 1 and result["metrics"]["attempts"] == 0
    text = (tmp_path / "processed.json").read_text()
    rows = json.loads(text) if text.lstrip().startswith("[") else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    assert len(rows) == 50 and all(r["validated"] for r in rows)


def test_a_failing_processor_is_retried(ray_session, tmp_path):
    from patterns.error_recovery import create_retry_workflow
    from patterns.file_processing import create_csv_processor

    source = tmp_path / "late.csv"
    processor = create_csv_processor(input_file=str(source),
                                     output_file=str(tmp_path / "out.json"))

    def arrive(attempt, error, delay):
        source.write_text("id\n1\n2\n")  # the input shows up before the second attempt

    workflow = create_retry_workflow(max_attempts=3, initial_delay=0.05, on_retry=arrive)
    result = asyncio.run(workflow.execute(processor.process))
    assert result["records_written"] == 2
    assert workflow.get_metrics()["total_attempts"] == 2
