"""``fsm-actors up`` keeps every port of its head on this machine unless ``--host`` says
otherwise, says which address to use and how to get the dashboard's token; ``down`` leaves
no process behind."""

from __future__ import annotations

import json

from fsm_actors.cli.cluster import session_processes
from tests.fsm_actors.test_cli_person import cli
from tests.ops.ray_heads import is_loopback, listening_addresses
from tests.servers import free_port


def test_up_binds_every_port_to_the_loopback_and_says_how_to_get_the_token(tmp_path):
    home = {"FSM_ACTORS_HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "token"}
    done = cli("up", "--num-cpus", "1", "--port", str(free_port()), "--dashboard-port",
               str(free_port()), "--client-port", str(free_port()), cwd=tmp_path, **home)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        head = json.loads((tmp_path / "home" / "head.json").read_text())
        listening = listening_addresses(session_processes(head["pid"]))
        assert any(a.endswith(f":{head['address'].rpartition(':')[2]}") for a in listening)
        assert listening and all(is_loopback(a) for a in listening), listening
        assert f"address:   {head['address']}" in done.stdout
        assert head["address"].startswith("127.0.0.1:")
        assert "`ray get-auth-token` prints it" in done.stdout, done.stdout
        assert "this machine only (127.0.0.1)" in done.stdout
        # a driver on this machine attaches to the loopback-only head (run, status)
        (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(300)))
        (tmp_path / "job.yaml").write_text("kind: file_processing\ninput_path: in.csv\n"
                                           "output_path: out.jsonl\n")
        ran = cli("run", "job.yaml", "--no-progress", cwd=tmp_path, timeout=180, **home)
        assert ran.returncode == 0, ran.stderr
        assert "done: 300 records in, 300 written" in ran.stderr
        shown = cli("status", cwd=tmp_path, timeout=180, **home)
        assert shown.returncode == 0, shown.stderr
        assert f"GCS {head['address']}; from `fsm-actors up`" in shown.stdout
    finally:
        down = cli("down", cwd=tmp_path, **home)
    assert down.returncode == 0, down.stderr
    assert not session_processes(head["pid"])
