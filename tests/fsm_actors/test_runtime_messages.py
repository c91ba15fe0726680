"""A connection error is one line for the user: a Ray Client server's traceback quoted in
Ray's error is cut to what was raised (seen from `status --address ray://...` when the
client server died as it started)."""

from __future__ import annotations

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
