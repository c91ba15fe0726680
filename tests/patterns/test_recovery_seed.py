"""The seed's error-recovery blocks, run from their example files: "Monitoring and Metrics"
(``examples/patterns/monitoring_metrics.py``) here; the Pattern Composition block's retried
file step is ``pattern_composition.py`` (tests/patterns/test_etl_actors.py). Plus: a
processor that fails once is retried by the same workflow."""

from __future__ import annotations

import asyncio

import pytest

from examples._support import run_example


def test_seed_monitoring_and_metrics_block(capsys):
    out = run_example("patterns", "monitoring_metrics.py")
    metrics = out["metrics"]
    assert out["calls"] == [(20, 22), (20, 22)]     # the first call failed, the retry ran
    assert metrics["total_attempts"] == 2
    assert metrics["success_rate"] == 1.0 and metrics["avg_retry_count"] == 1.0
    assert metrics["name"] == "monitored_workflow" and metrics["strategies"] == ["retry"]
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["Total attempts: 2", "Success rate: 1.0", "Average retry count: 1.0"]


@pytest.mark.ray
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
