"""``fsm-actors validate`` reports everything ``run`` would fail on that can be seen in the
files, every problem at its line: several mistakes in one FSM config, a ``kind: fsm`` job's
config file (missing, or with mistakes of its own), ``${...}`` references that cannot be
resolved or are never closed, and a missing key under its own name."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fsm_actors.cli.main import cli

THREE_MISTAKES = """name: three
states:
  - {name: start, is_start: true}
  - name: work
    transforms:
      - "lambda data, ctx: {**data, 'x': }"
  - {name: done, is_end: true}
arcs:
  - {from: start, to: work, condition: "data['a'] >"}
  - {from: work, to: nowhere}
"""


def _validate(path: Path, monkeypatch=None) -> list[str]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _expect_three(lines: list[str], fsm: Path) -> None:
    assert lines[0].startswith(f"{fsm}:6: states[1].transforms[0]: "), lines
    assert "column 31" in lines[0]
    assert lines[1].startswith(f"{fsm}:9: arcs[0].condition: invalid syntax"), lines
    assert lines[2] == (f"{fsm}:10: arcs[1].to: no state named 'nowhere' "
                        "(states: done, start, work)"), lines


def test_every_mistake_of_an_fsm_config_is_reported_at_its_line(tmp_path):
    fsm = _write(tmp_path / "three.yaml", THREE_MISTAKES)
    lines = _validate(fsm)
    assert len(lines) == 3, lines
    _expect_three(lines, fsm)


def test_a_kind_fsm_job_checks_its_config_file(tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    job = _write(tmp_path / "job.yaml", "kind: fsm\nconfig: missing.yaml\ninput: in.csv\n"
                 "output: out.jsonl\n")
    assert _validate(job) == [f"{job}:2: config: no FSM config file {tmp_path}/missing.yaml"]
    fsm = _write(tmp_path / "three.yaml", THREE_MISTAKES)
    job = _write(tmp_path / "job.yaml", "kind: fsm\nconfig: three.yaml\ninput: in.csv\n"
                 "output: out.jsonl\n")
    _expect_three(_validate(job), fsm)


def test_a_missing_input_of_a_kind_fsm_job_is_named_input(tmp_path):
    _write(tmp_path / "ok.yaml", "name: ok\nstates:\n  - {name: s, is_start: true, "
           "is_end: true}\n")
    job = _write(tmp_path / "job.yaml", "kind: fsm\nconfig: ok.yaml\noutput: out.jsonl\n")
    lines = _validate(job)
    assert any(": input: " in line for line in lines), lines
    assert not any("input_path" in line for line in lines), lines


def test_unset_and_unclosed_references_are_reported_at_their_lines(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOKUP_DB", raising=False)
    fsm = _write(tmp_path / "res.yaml", "name: res\nresources:\n"
                 "  - {name: lookup, type: database, config: {url: \"${LOOKUP_DB}\"}}\n"
                 "states:\n  - {name: s, is_start: true, is_end: true}\n")
    assert _validate(fsm) == [f"{fsm}:3: resources[0].config.url: environment variable "
                              "LOOKUP_DB is not set; export it before the run"]
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    etl = _write(tmp_path / "etl.yaml", "kind: etl\nsource: {type: file, path: in.csv}\n"
                 "target: \"${WAREHOUSE_DB\"\ntarget_table: t\nmode: upsert\n")
    lines = _validate(etl)
    assert lines[0] == (f"{etl}:3: target: '${{' is never closed in '${{WAREHOUSE_DB': "
                        "write ${NAME}"), lines
