"""The ``fsm-actors`` command: run, validate and describe pipelines; operate clusters."""

from __future__ import annotations

import os
import sys

try:  # importing Ray takes a moment: a Ctrl-C in it is an interrupt like any other
    import click

    from fsm_actors.cli.cluster import down, up
    from fsm_actors.cli.graph import graph
    from fsm_actors.cli.interrupts import InterruptibleGroup
    from fsm_actors.cli.jobs import jobs, logs, stop, submit
    from fsm_actors.cli.redrive import redrive
    from fsm_actors.cli.run import run, schema, validate
    from fsm_actors.cli.runs import runs
    from fsm_actors.cli.status import status
    from fsm_actors.cli.trace import trace
except KeyboardInterrupt:
    sys.stderr.write("\nfsm-actors: interrupted while starting\n")
    os._exit(130)


@click.group(cls=InterruptibleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fsm-actors")
def cli() -> None:
    """Run finite-state-machine pipelines on Ray actors (local or on a cluster)."""


for _command in (run, validate, schema, up, down, submit, jobs, logs, stop, status, graph, runs, trace,
                 redrive):
    cli.add_command(_command)


if __name__ == "__main__":
    cli()
