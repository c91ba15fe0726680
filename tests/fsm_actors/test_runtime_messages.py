"""A connection error is one line for the user: a Ray Client server's traceback quoted in
Ray's error is cut to what was raised (seen from `status --address ray://...` when the
client server died as it started)."""

from __future__ import annotations

import pytest
import ray

from fsm_actors.platform import runtime
from fsm_actors.platform.runtime import last_line

SEEN = ("Initialization failure from server:\nTraceback (most recent call last):\n  File "
        "\"/venv/lib/python3.11/site-packages/ray/util/client/server/proxier.py\", line 772, in "
        "Datapath\n    raise RuntimeError(\nRuntimeError: Starting Ray client server failed. "
        "See ray_client_server_23000.err for detailed logs.\n\n")


def test_a_quoted_server_traceback_becomes_its_last_line():
    line = last_line(ConnectionAbortedError(SEEN))
    assert line == ("Initialization failure from server: RuntimeError: Starting Ray client "
                    "server failed. See ray_client_server_23000.err for detailed logs.")
    assert "\n" not in line and "Traceback" not in line


def test_a_plain_error_keeps_its_words_on_one_line():
    assert last_line(TimeoutError("no answer\n  in 5 s")) == "no answer in 5 s"


ZOMBIE = ("Initialization failure from server:\nTraceback (most recent call last):\n  File "
          "\"/venv/lib/python3.11/site-packages/ray/util/client/server/proxier.py\", line 396, in "
          "start_specific_server\n    cmd = psutil_proc.cmdline()\npsutil.ZombieProcess: PID still "
          "exists but it's a zombie (pid=4719)\n")


@pytest.mark.parametrize("said", [SEEN, ZOMBIE])
def test_a_client_server_that_died_as_it_started_is_tried_again(monkeypatch, said):
    """Both ways Ray reports a per-connection server that died as it started (CI saw the
    zombie one on a connection made right after another): the next try gets a new server."""
    tries = []

    def init(**kw):
        tries.append(kw["address"])
        if len(tries) == 1:
            raise ConnectionError(said)
        return "connected"

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(runtime.time, "sleep", lambda s: None)
    assert runtime._init_attached("ray://127.0.0.1:10001", "ns", {}) == "connected"
    assert tries == ["ray://127.0.0.1:10001"] * 2


def test_other_connection_errors_are_not_tried_again(monkeypatch):
    tries = []

    def init(**kw):
        tries.append(1)
        raise ConnectionError("Authentication required: give RAY_AUTH_TOKEN")

    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(ConnectionError):
        runtime._init_attached("ray://127.0.0.1:10001", "ns", {})
    assert len(tries) == 1
