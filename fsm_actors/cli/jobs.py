"""``fsm-actors submit`` / ``jobs`` / ``logs`` / ``stop``: pipelines as Ray Jobs.

A job's entrypoint is ``python -m fsm_actors.cli.main run FILE ...`` on the cluster; its
runtime env carries the working dir (``--working-dir``) and this project's packages as
``py_modules`` directories, so the cluster needs only Ray and the project's dependencies.
The address may be given in any of Ray's forms (``fsm_actors.cli.address``); the jobs
are sent to the cluster's dashboard, which each command names on stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from fsm_actors.cli.address import HELP as ADDRESS_HELP
from fsm_actors.cli.address import Cluster, dashboard_url, find
from fsm_actors.cli.documents import UserError
from fsm_actors.cli.upload import PACKAGING_LOGGERS, excluded_by
from fsm_actors.platform import runtime

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def job_client(address: str | None, *, announce: bool = True) -> tuple[Any, Cluster]:
    """A ``JobSubmissionClient`` for the cluster ``address`` names (any form, see
    ``fsm_actors.cli.address``), authenticating the way the cluster wants; the cluster is
    named on stderr unless ``announce`` is false."""
    from ray.job_submission import JobSubmissionClient

    cluster = find(address)
    url = dashboard_url(cluster)
    # Ray's job SDK logs every package it uploads and every closed log stream at INFO
    for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        runtime.use_cluster_auth(url, cluster.source)
        client = JobSubmissionClient(url)
    except runtime.RuntimeConnectError as exc:
        raise UserError(str(exc)) from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"cannot reach the Ray dashboard of {cluster.describe()}: {exc}"
                        ) from None
    if announce:
        click.echo(f"cluster {cluster.describe()}", err=True)
    return client, cluster


def job_runtime_env(working_dir: Path | None) -> dict[str, Any]:
    """The runtime env of a submitted job: the working dir and this project's packages."""
    extra: dict[str, Any] = {}
    if working_dir is not None:
        extra["working_dir"] = str(working_dir)
    return runtime.project_runtime_env(extra)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--address", default=None, help=ADDRESS_HELP)
@click.option("--working-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Directory uploaded with the job (FILE must be inside it); "
              "without it FILE and its inputs are read by path on the cluster.")
@click.option("--wait", is_flag=True, help="Follow the job's logs; exit with its outcome.")
@click.option("--job-id", "submission_id", default=None, help="Id for the job (default: <pipeline name>-<8 hex>).")
@click.option("--verbose", is_flag=True, help="Show Ray's lines about packaging and uploading.")
def submit(file: Path, run_args: tuple[str, ...], address: str | None,
           working_dir: Path | None, wait: bool, submission_id: str | None,
           verbose: bool) -> None:
    """Submit FILE (a pipeline file or an FSM config) to a cluster as a Ray Job.

    Arguments after FILE go to `fsm-actors run` on the cluster, e.g.
    `fsm-actors submit orders_fsm.yaml --wait -- -i in.csv -o out.jsonl`.
    """
    if working_dir is not None:
        try:
            target = str(file.resolve().relative_to(working_dir.resolve()))
        except ValueError:
            raise UserError(f"{file} is not inside --working-dir {working_dir}") from None
        check_upload(file, run_args, working_dir)
    else:
        target = str(file.resolve())
    if not verbose:
        for name in PACKAGING_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    client, cluster = job_client(address, announce=False)
    run_args, env_vars, outputs = submit_outputs(file, run_args, _head_is_local(cluster))
    entrypoint = shlex.join(["python", "-m", "fsm_actors.cli.main", "run", target,
                             "--no-progress", *run_args])
    metadata = job_metadata(file)
    if submission_id is None:  # the Jobs list names the pipeline, not raysubmit_<n>
        submission_id = f"{_id_part(metadata['pipeline'])}-{uuid.uuid4().hex[:8]}"
    env = job_runtime_env(working_dir)
    if env_vars:
        env["env_vars"] = {**env.get("env_vars", {}), **env_vars}
    job_id = _submit(client, entrypoint, env, submission_id, metadata=metadata)
    click.echo(job_id)
    click.echo(f"submitted to {cluster.describe()}: {entrypoint}\n"
               f"  fsm-actors logs {job_id} --follow | fsm-actors stop {job_id}", err=True)
    if wait:
        code = _follow(client, job_id)
        if code == 0 and outputs:
            click.echo(f"output: {', '.join(outputs)}", err=True)
        sys.exit(code)


def _head_is_local(cluster: Cluster) -> bool:
    """Whether the cluster's head runs on this machine (its address is a loopback or one
    of this machine's addresses)."""
    import socket
    from urllib.parse import urlsplit

    main = cluster.dashboard or cluster.gcs or cluster.client or cluster.given
    host = urlsplit(main if "://" in main else f"//{main}").hostname or ""
    if host in ("localhost", "") or host.startswith("127.") or host == "::1":
        return True
    try:
        mine = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        mine = set()
    return host in mine


def submit_outputs(file: Path, run_args: tuple[str, ...], head_is_local: bool
                   ) -> tuple[tuple[str, ...], dict[str, str], list[str]]:
    """``(run args, env vars, outputs)`` of a job about to be submitted: a relative output
    (``-o`` of an FSM config, else the pipeline file's) lands where ``fsm-actors run`` on
    this machine would write it (``storage.resolve_output_for_submit``: for a head here the
    submitting directory, or the file's folder for paths in the file); for a remote head it
    is refused with a URI to use instead. ``outputs`` are the paths the job writes."""
    from fsm_actors.cli.documents import FSM_KEYS, read_document
    from fsm_actors.cli.outputs import OUTPUT_KEYS
    from fsm_actors.cli.run import _job_mapping
    from fsm_actors.platform.io import storage

    def resolve(path: str, base: Path) -> str:
        try:
            done = storage.resolve_output_for_submit(path, submit_dir=str(base),
                                                     head_is_local=head_is_local)
        except storage.SubmitPathError as exc:
            raise UserError(f"{file}: {exc}") from None
        return str(done)

    args = list(run_args)
    spec = read_document(file)
    if any(key in spec for key in FSM_KEYS):
        for flag in ("-o", "--output"):
            if flag in args[:-1]:
                at = args.index(flag) + 1
                args[at] = resolve(args[at], Path.cwd())
                return tuple(args), {}, [storage.redact(args[at])]
        return tuple(args), {}, []
    kind, mapping, _ = _job_mapping(spec)
    values = [mapping.get(k) for k in OUTPUT_KEYS.get(kind, ())[:1]]
    target = mapping.get("target")
    if kind == "etl" and isinstance(target, dict) and target.get("type") == "file":
        values.append(target.get("path"))
    base = file.resolve().parent
    outputs = [resolve(os.fspath(v), base) for v in values
               if isinstance(v, str | os.PathLike) and "${" not in os.fspath(v)]
    relative = any(not storage.is_remote(os.fspath(v)) and not os.path.isabs(os.fspath(v))
                   for v in values if isinstance(v, str | os.PathLike))
    env = {storage.OUTPUT_BASE_ENV: str(base)} if relative and head_is_local else {}
    return tuple(args), env, [storage.redact(o) for o in outputs]


def _named_files(file: Path, run_args: tuple[str, ...], working_dir: Path
                 ) -> list[tuple[str, Path]]:
    """``(what names it, path)`` of the files a job reads that sit in ``working_dir``."""
    from fsm_actors.cli.documents import FSM_KEYS, read_document
    from fsm_actors.cli.run import _inputs, _job_mapping

    named = [("the job's file", file)]
    spec = read_document(file)
    if any(key in spec for key in FSM_KEYS):
        args = list(run_args)
        for flag in ("-i", "--input"):
            if flag in args[:-1]:
                named.append((flag, working_dir / args[args.index(flag) + 1]))
        return named
    kind, mapping, _ = _job_mapping(spec)
    key = {"fsm": "input"}.get(kind, "input_path")
    named += [(key, Path(p)) for p in _inputs(file, spec)]
    if kind == "fsm" and isinstance(mapping.get("config"), str):
        named.append(("config", file.parent / mapping["config"]))
    source = mapping.get("source")
    if kind == "etl" and isinstance(source, dict) and isinstance(source.get("path"), str):
        named.append(("source.path", file.parent / source["path"]))
    return named


def check_upload(file: Path, run_args: tuple[str, ...], working_dir: Path) -> None:
    """``UserError`` naming each file the job reads that Ray's upload of ``working_dir``
    would leave out, with the rule that leaves it out."""
    root = Path(os.path.abspath(working_dir))
    missing = []
    for what, path in _named_files(file, run_args, working_dir):
        full = Path(os.path.abspath(path))
        if root not in full.parents:
            continue  # read by its path on the cluster
        why = excluded_by(root, full)
        if why:
            missing.append(f"  {full.relative_to(root)} ({what}): {why}")
    if missing:
        raise UserError(
            f"{file}: the job reads files that --working-dir {working_dir} would not upload "
            "(Ray leaves out what .gitignore and .rayignore name):\n" + "\n".join(missing)
            + "\nMove them to a folder that is not ignored, or set "
            "RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1 to upload .gitignored files too.")


def job_metadata(file: Path) -> dict[str, str]:
    """What the dashboard's Jobs tab shows of a submitted job: ``pipeline`` (the file's
    ``name``, else its stem), ``kind`` and the ``file``."""
    from fsm_actors.cli.documents import document_kind, read_document

    try:
        spec = read_document(file)
        kind = document_kind(file, spec)
    except UserError:
        spec, kind = {}, "?"
    name = spec.get("name") if isinstance(spec.get("name"), str) else None
    return {"pipeline": name or file.stem, "kind": str(kind), "file": file.name,
            "submitted_by": "fsm-actors submit"}


def _id_part(name: str) -> str:
    """``name`` as a job id prefix (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "job"


def _submit(client: Any, entrypoint: str, env: dict[str, Any], submission_id: str | None,
            timeout: float = 60, metadata: dict[str, str] | None = None) -> str:
    """Submit; a head that has just started has no job agent for some seconds: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.submit_job(entrypoint=entrypoint, runtime_env=env,
                                     submission_id=submission_id, metadata=metadata)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise UserError(f"the cluster refused the job: {exc}") from None
            time.sleep(1)


def _follow(client: Any, job_id: str) -> int:
    """Print the job's logs as they come; 0 when it succeeded, 1 otherwise."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            click.echo(chunk, nl=False)

    try:
        asyncio.run(tail())
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; the job runs on (fsm-actors stop {job_id})", err=True)
        return 130
    status = _final_status(client, job_id)
    click.echo(f"job {job_id}: {status}", err=True)
    return 0 if status == "SUCCEEDED" else 1


def _final_status(client: Any, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    status = str(client.get_job_status(job_id))
    while status.split(".")[-1] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        status = str(client.get_job_status(job_id))
    return status.split(".")[-1]


@click.command()
@click.option("--address", default=None, help=ADDRESS_HELP)
def jobs(address: str | None) -> None:
    """List the cluster's jobs (newest last)."""
    client, _ = job_client(address)
    listed = sorted((j for j in client.list_jobs() if j.submission_id),  # not plain drivers
                    key=lambda j: j.start_time or 0)
    if not listed:
        click.echo("no jobs")
        return
    for job in listed:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((job.start_time or 0) / 1000))
        status = str(job.status).split(".")[-1]
        pipeline = (job.metadata or {}).get("pipeline") or "-"
        click.echo(f"{job.submission_id:<28} {status:<10} {started}  {pipeline:<16} "
                   f"{job.entrypoint}")


@click.command()
@click.argument("job_id")
@click.option("--address", default=None, help=ADDRESS_HELP)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs(job_id: str, address: str | None, follow: bool) -> None:
    """Print a job's logs."""
    client, _ = job_client(address)
    try:
        if follow:
            sys.exit(_follow(client, job_id))
        click.echo(client.get_job_logs(job_id), nl=False)
    except RuntimeError as exc:
        raise UserError(f"job {job_id}: {exc}") from None


@click.command()
@click.argument("job_id")
@click.option("--address", default=None, help=ADDRESS_HELP)
def stop(job_id: str, address: str | None) -> None:
    """Stop a running job and wait until it has stopped."""
    client, _ = job_client(address)
    try:
        client.stop_job(job_id)
    except RuntimeError as exc:
        raise UserError(f"job {job_id}: {exc}") from None
    status = _final_status(client, job_id, timeout=60)
    click.echo(f"job {job_id}: {status}")
