"""A Ctrl-C that Python drops in a finalizer is not lost (``cli.interrupts.interrupts_kept``).

Seen in a pseudo-terminal: Ctrl-C while an embedded Ray started landed in a weakref callback,
Python printed "Exception ignored in ... KeyboardInterrupt" with a traceback, and the run went
on to the end and exited 0."""

from __future__ import annotations

import signal
import weakref

import pytest

from fsm_actors.cli.interrupts import interrupts_kept


class _Thing:
    pass


@pytest.fixture(autouse=True)
def _ctrl_c_handled_as_in_a_terminal():
    """Python's own Ctrl-C handler, as in a terminal (a CI runner may start the tests with
    SIGINT ignored); put back afterwards."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _ctrl_c_in_a_finalizer() -> None:
    thing = _Thing()
    keep = weakref.ref(thing, lambda ref: signal.raise_signal(signal.SIGINT))
    del thing  # the callback runs now; its KeyboardInterrupt is "ignored" by Python
    assert keep() is None


def test_a_ctrl_c_dropped_by_a_finalizer_is_raised_when_the_block_ends(capfd):
    went_on = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with interrupts_kept():
            _ctrl_c_in_a_finalizer()
            went_on.append(True)
    assert went_on == [True]  # (Python did drop it inside the block)
    assert "Traceback" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the handler before it, restored


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_without_it_python_drops_that_ctrl_c():
    """What the block guards against, shown: the same Ctrl-C is lost without it."""
    _ctrl_c_in_a_finalizer()  # no KeyboardInterrupt reaches here


def test_a_ctrl_c_outside_a_finalizer_stops_the_block_at_once():
    went_on = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_kept():
            signal.raise_signal(signal.SIGINT)
            went_on.append(True)
    assert went_on == []


def test_an_ignored_ctrl_c_stays_ignored():
    """A command started with SIGINT ignored (``cmd &`` in a script) is not made
    interruptible by the guard."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_kept():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
