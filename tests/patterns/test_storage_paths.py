"""Path rules of the storage layer: submitted outputs, local paths on a cluster, redaction."""

from __future__ import annotations

import re

import pytest

from fsm_actors.platform.io import storage


def test_relative_output_of_a_job_submitted_to_a_head_on_this_machine_lands_where_submitted(
    tmp_path,
):
    out = storage.resolve_output_for_submit(
        "results/out.parquet", submit_dir=str(tmp_path), head_is_local=True
    )
    assert out == str(tmp_path / "results" / "out.parquet")


def test_relative_output_for_a_remote_head_is_refused_naming_a_uri(tmp_path):
    with pytest.raises(storage.SubmitPathError) as err:
        storage.resolve_output_for_submit(
            "./results/out.parquet", submit_dir=str(tmp_path), head_is_local=False
        )
    assert "s3://YOUR-BUCKET/results/out.parquet" in str(err.value)


@pytest.mark.parametrize("path", ["s3://b/out.parquet", "/abs/out.csv", "file:///x/y.csv", None])
def test_uris_and_absolute_outputs_are_kept_for_any_head(path, tmp_path):
    for local in (True, False):
        assert storage.resolve_output_for_submit(
            path, submit_dir=str(tmp_path), head_is_local=local
        ) == path


def test_local_paths_on_a_cluster_with_other_nodes_are_named_with_what_to_use(monkeypatch):
    monkeypatch.delenv(storage.SHARED_FS_ENV, raising=False)
    notice = storage.local_paths_notice(
        ["/data/in.csv", "s3://b/out.parquet"], ["10.0.0.7 (abcd1234)"]
    )
    assert notice is not None
    assert "/data/in.csv" in notice and "10.0.0.7" in notice and "s3://" in notice
    assert "s3://b/out.parquet" not in notice.split("use")[0]
    assert storage.local_paths_notice(["/data/in.csv"], []) is None  # one-node cluster
    assert storage.local_paths_notice(["s3://b/in.csv"], ["n2"]) is None
    assert storage.local_paths_notice(["/data/in.csv"], ["n2"], shared=True) is None
    monkeypatch.setenv(storage.SHARED_FS_ENV, "1")
    assert storage.local_paths_notice(["/data/in.csv"], ["n2"]) is None


def test_redact_drops_credentials_a_uri_carries():
    shown = storage.redact("abfs://user:s3cret@acct.dfs.core.windows.net/c/x?sig=TOKEN")
    assert "s3cret" not in shown and "TOKEN" not in shown
    assert shown == "abfs://acct.dfs.core.windows.net/c/x"
    assert storage.redact("/local/path.csv") == "/local/path.csv"


def test_glob_wildcards_stay_within_one_segment_unless_double_star():
    one = re.compile(storage._glob_regex("s3://b/in/*.csv"))
    assert one.match("s3://b/in/a.csv") and not one.match("s3://b/in/sub/a.csv")
    deep = re.compile(storage._glob_regex("s3://b/in/**/*.csv"))
    assert deep.match("s3://b/in/a.csv") and deep.match("s3://b/in/x/y/a.csv")
    assert not deep.match("s3://b/other/a.csv")


def test_output_base_of_a_submitted_pipeline_file(tmp_path, monkeypatch):
    """FSM_ACTORS_OUTPUT_BASE (what `fsm-actors submit` would set for a head on this
    machine): relative outputs resolve against it, inputs against the uploaded file."""
    from fsm_actors.platform.io.storage import OUTPUT_BASE_ENV
    from patterns.pipeline import load_pipeline

    uploaded, here = tmp_path / "uploaded", tmp_path / "here"
    (uploaded / "data").mkdir(parents=True)
    (uploaded / "data" / "in.csv").write_text("x\n1\n")
    job = uploaded / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: data/in.csv\n"
                   "output_path: out/r.jsonl\n")
    etl = uploaded / "etl.yaml"
    etl.write_text("kind: etl\nsource: {type: file, path: data/in.csv}\n"
                   "target: {type: file, path: out/e.jsonl}\n"
                   "transformations: ['lambda r: r']\n")
    plain = load_pipeline(job).jobs[0].spec
    assert plain["output_path"] == str(uploaded / "out" / "r.jsonl")
    monkeypatch.setenv(OUTPUT_BASE_ENV, str(here))
    spec = load_pipeline(job).jobs[0].spec
    assert spec["input_path"] == str(uploaded / "data" / "in.csv")
    assert spec["output_path"] == str(here / "out" / "r.jsonl")
    spec = load_pipeline(etl).jobs[0].spec
    assert spec["source"]["path"] == str(uploaded / "data" / "in.csv")
    assert spec["target"]["path"] == str(here / "out" / "e.jsonl")
