"""Pipeline files of kind ``api``: loaded from YAML, functions resolved, secrets from env."""

from __future__ import annotations

import pytest
import yaml

from patterns._api.pipeline import load_api_pipeline, run_api_pipeline
from patterns.api_orchestration import APIConfigError
from tests.patterns.api_servers import TOKEN, APITestServer


@pytest.fixture(scope="module")
def server():
    srv = APITestServer().start()
    yield srv
    srv.stop()


def test_a_pipeline_file_runs_with_functions_and_an_env_secret(server, tmp_path, monkeypatch):
    monkeypatch.setenv("API_TEST_TOKEN", TOKEN)
    path = tmp_path / "job.yaml"
    path.write_text(f"""
kind: api
name: pipe
mode: hybrid
base_url: {server.url}
auth: {{type: bearer, token_env: API_TEST_TOKEN}}
endpoints:
  - {{name: login, path: /auth, method: POST, body: {{user: "{{user}}"}}}}
  - name: secret
    path: /secret/bearer
    depends_on: [login]
    transform: "lambda r: r['secret']"
input: {{user: ann}}
""")
    result = run_api_pipeline(yaml.safe_load(path.read_text()), path)
    assert result["login"] == {"token": "tok-ann"}
    assert result["secret"] == "ok"
    config, _ = load_api_pipeline(yaml.safe_load(path.read_text()), path)
    assert TOKEN not in repr(config) + repr(config.auth)


def test_items_come_from_input_path_lazily_and_sinks_are_relative(tmp_path):
    (tmp_path / "ids.txt").write_text("a\nb\nc\n")
    spec = {"kind": "api", "mode": "fanout", "base_url": "http://127.0.0.1:9",
            "endpoints": [{"name": "i", "path": "/items/{item}"}], "input_path": "ids.txt",
            "sink": "out/res.jsonl"}
    config, items = load_api_pipeline(spec, tmp_path / "job.yaml")
    assert list(items) == ["a", "b", "c"]
    assert config.sink == str(tmp_path / "out" / "res.jsonl")


@pytest.mark.parametrize("spec,words", [
    ({"endpoints": [{"name": "a", "path": "/x", "transform": "lambda r: r["}]},
     "endpoints[0].transform"),
    ({"endpoints": [{"name": "a", "path": "/x", "retries": 2}]}, "endpoints[0]: endpoint 'a'"),
    ({"auth": {"type": "bearer", "token_env": "NOPE_NOT_SET_9"}, "endpoints": [
        {"name": "a", "path": "/x"}]}, "NOPE_NOT_SET_9"),
    ({"endpoints": []}, "non-empty list"),
])
def test_pipeline_mistakes_name_the_file_and_key(tmp_path, spec, words):
    with pytest.raises(APIConfigError) as info:
        load_api_pipeline({"kind": "api", "base_url": "http://h", **spec}, tmp_path / "j.yaml")
    assert "j.yaml" in str(info.value) and words in str(info.value), str(info.value)
