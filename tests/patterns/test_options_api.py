"""``options:`` and ``error_handling:`` of ``kind: api`` pipeline files take effect.

Each test writes a pipeline file as a user would, runs it through ``run_pipeline_file``
against an aiohttp server on 127.0.0.1, and checks what the server saw and what was written.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_actors.cli.main import cli
from patterns.errors import PatternError
from patterns.pipeline import load_pipeline, run_pipeline_file
from tests.patterns.api_servers import APITestServer


@pytest.fixture(scope="module")
def server():
    s = APITestServer().start()
    yield s
    s.stop()


def _job(tmp_path: Path, server: APITestServer, endpoints: list[str], body: str = "",
         mode: str = "sequential", name: str = "api.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        f"kind: api\nbase_url: {server.url}\nmode: {mode}\ncircuit_breaker_threshold: null\n"
        "endpoints:\n" + "".join(f"  - {e}\n" for e in endpoints)
        + "output: out/api.json\n" + body)
    return path


def _most_at_once(calls) -> int:
    """The most calls that were in flight together."""
    edges = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_parallel_workers_is_max_concurrent_in_the_in_process_modes(server, tmp_path):
    tag = uuid.uuid4().hex[:8]
    endpoints = [f"{{name: e{i}, url: '/slow/{tag}-{i}?delay=0.2'}}" for i in range(6)]
    run_pipeline_file(_job(tmp_path, server, endpoints, "options: {parallel_workers: 1}\n",
                           mode="parallel"))
    assert _most_at_once(server.calls_to(f"/slow/{tag}")) == 1
    tag2 = uuid.uuid4().hex[:8]
    endpoints = [f"{{name: e{i}, url: '/slow/{tag2}-{i}?delay=0.2'}}" for i in range(6)]
    run_pipeline_file(_job(tmp_path, server, endpoints, "options: {parallel_workers: 3}\n",
                           mode="parallel", name="three.yaml"))
    assert 1 < _most_at_once(server.calls_to(f"/slow/{tag2}")) <= 3


def test_batch_size_and_parallel_workers_size_a_fanout(ray_session, server, tmp_path):
    path = _job(tmp_path, server, ["{name: item, url: '/items/{item}'}"],
                "options: {batch_size: 10, parallel_workers: 2}\n"
                f"input: {json.dumps(list(range(40)))}\n", mode="fanout")
    assert load_pipeline(path).jobs[0].config.batch_size == 10
    result = run_pipeline_file(path)
    metrics = result["results"]["_metrics"]
    assert metrics["workers"] == 2 and result["errors"] == 0
    assert len(result["results"]["item"]) == 40
    bad = _job(tmp_path, server, ["{name: a, url: /items/1}"], "options: {batch_size: 10}\n",
               name="bad.yaml")
    out = CliRunner().invoke(cli, ["validate", str(bad)])
    assert out.exit_code == 1 and "items per task of a FANOUT run" in out.output


def test_error_handling_retries_an_endpoint_that_gives_no_retry(server, tmp_path):
    key = uuid.uuid4().hex[:8]
    flaky = f"{{name: f, url: '/flaky/{key}?fail=3&status=503'}}"
    # without a policy the endpoint's default (3 attempts) gives up on the third 503
    plain = run_pipeline_file(_job(tmp_path, server, [flaky], "", name="plain.yaml"))
    assert plain["errors"] == 1
    key = uuid.uuid4().hex[:8]
    flaky = f"{{name: f, url: '/flaky/{key}?fail=3&status=503'}}"
    result = run_pipeline_file(_job(
        tmp_path, server, [flaky],
        "error_handling: {strategy: fixed, max_retries: 4, initial_delay: 0.01}\n"))
    assert result["errors"] == 0 and server.hits[f"/flaky/{key}"] == 4
    saved = json.loads((tmp_path / "out" / "api.json").read_text())
    assert saved["f"] == {"ok": key}


def test_error_handling_keeps_an_endpoints_own_retry(server, tmp_path):
    key = uuid.uuid4().hex[:8]
    own = f"{{name: f, url: '/flaky/{key}?fail=3&status=503', retry_count: 0}}"
    result = run_pipeline_file(_job(
        tmp_path, server, [own],
        "error_handling: {max_retries: 4, initial_delay: 0.01, on_failure: skip}\n"))
    assert result["errors"] == 1 and server.hits[f"/flaky/{key}"] == 1


def test_error_handling_timeout_is_the_per_attempt_timeout(server, tmp_path):
    tag = uuid.uuid4().hex[:8]
    slow = f"{{name: s, url: '/slow/{tag}?delay=2'}}"
    result = run_pipeline_file(_job(
        tmp_path, server, [slow],
        "error_handling: {timeout: 0.3, max_retries: 1, initial_delay: 0, on_failure: skip}\n"))
    assert result["errors"] == 1 and len(server.calls_to(f"/slow/{tag}")) == 2
    assert "timed out after 0.3s" in json.dumps(result["results"]["errors"])


def test_on_failure_skip_writes_the_failed_calls_to_the_error_file(server, tmp_path):
    endpoints = ["{name: good, url: /items/7}", "{name: bad, url: /status/404}"]
    result = run_pipeline_file(_job(tmp_path, server, endpoints,
                                    "error_handling: {max_retries: 0, on_failure: skip}\n"))
    saved = json.loads((tmp_path / "out" / "api.json").read_text())
    assert saved["good"] == {"id": "7", "q": None} and "bad" not in saved
    lines = [json.loads(x) for x in Path(result["error_file"]).read_text().splitlines()]
    assert [(x["endpoint"], x["status"]) for x in lines] == [("bad", 404)]


def test_on_failure_fail_stops_the_job_without_output(server, tmp_path):
    endpoints = ["{name: good, url: /items/7}", "{name: bad, url: /status/404}"]
    with pytest.raises(PatternError, match="'bad'.*on_failure: fail"):
        run_pipeline_file(_job(tmp_path, server, endpoints, "error_handling: {max_retries: 0}\n"))
    assert not (tmp_path / "out" / "api.json").exists()


def test_on_failure_compensate_calls_the_named_function(server, tmp_path):
    note = tmp_path / "undone.txt"
    endpoints = ["{name: good, url: /items/7}", "{name: bad, url: /status/404}"]
    body = ("error_handling:\n  max_retries: 0\n  on_failure: compensate\n"
            f"  compensation: \"lambda info: open(r'{note}', 'w').write(info['name'] + ': ' "
            "+ info['error'])\"\n")
    with pytest.raises(PatternError, match="compensated: ran"):
        run_pipeline_file(_job(tmp_path, server, endpoints, body))
    assert note.read_text().startswith("api: 1 call(s) failed")


def test_on_failure_compensate_removes_a_fanout_sink(ray_session, server, tmp_path):
    sink = tmp_path / "items.jsonl"
    path = _job(tmp_path, server, ["{name: item, url: '/status/{item}'}"],
                f"sink: {sink}\nerror_handling: {{max_retries: 0, on_failure: compensate}}\n"
                "input: [200, 404, 200]\n", mode="fanout")
    with pytest.raises(PatternError, match="compensated: removed"):
        run_pipeline_file(path)
    assert not sink.exists()


def test_what_an_api_job_cannot_honour_is_refused_with_the_reason(server, tmp_path):
    path = _job(tmp_path, server, ["{name: a, url: /items/1}"], "options: {stream: true}\n")
    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 1 and "reads no input file" in out.output
    seed = _job(tmp_path, server, ["{name: a, url: /items/1}"],
                "options: {parallel_workers: 4}\nerror_handling: {strategy: "
                "exponential_backoff, max_retries: 3, timeout: 30, on_failure: compensate}\n",
                name="seed.yaml")
    out = CliRunner().invoke(cli, ["validate", str(seed)])
    assert out.exit_code == 0, out.output
