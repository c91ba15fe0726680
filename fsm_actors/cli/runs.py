"""``fsm-actors runs`` / ``runs clean``: the runs a folder holds, and clearing what is left.

A resumable run keeps its checkpoint in ``<output folder>/.fsm_actors/checkpoints/<id>.ckpt``
and its staged parts in ``<output folder>/.fsm_actors/run-<id>/``; a run writes its output
through ``.<name>.<8 hex>.tmp`` beside it. ``runs`` walks the ``--dir`` folders (default: the
current one) for these and lists each run: id, kind, pipeline, state, records, output,
checkpoint. ``runs clean`` removes what no run will use again, listing each path: temp
files untouched for ``--older-than`` minutes, checkpoints of finished runs, staging folders
without a checkpoint, and (with ``--abandoned``) stopped runs not resumed for ``--days``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

SKIP = {".git", ".venv", "venv", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache"}
TEMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp|.+\.ckpt\.[^.]+\.tmp")


@dataclass
class Run:
    """One run found on disk."""

    run_id: str
    kind: str
    pipeline: str
    state: str
    records: int
    output: str
    checkpoint: Path | None
    staging: Path | None
    updated: float


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    import msgpack

    try:
        return msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
    except (OSError, ValueError, msgpack.UnpackException):
        return None


def find_runs(roots: list[Path], *, active_for: float = 600) -> tuple[list[Run], list[Path]]:
    """``(runs, temp files)`` under ``roots``. A run whose checkpoint changed in the last
    ``active_for`` seconds is taken as running."""
    runs: list[Run] = []
    temps: list[Path] = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP]
            temps += [Path(folder, f) for f in files if TEMP.fullmatch(f)]
            if os.path.basename(folder) == ".fsm_actors":
                runs += _runs_in(Path(folder), active_for)
    return runs, sorted(set(temps))


def _runs_in(state_dir: Path, active_for: float) -> list[Run]:
    found: dict[str, Run] = {}
    output = str(state_dir.parent)
    for ckpt in sorted((state_dir / "checkpoints").glob("*.ckpt")):
        doc = _read_checkpoint(ckpt) or {}
        run_id = str(doc.get("run_id") or ckpt.stem)
        meta = doc.get("meta") or {}
        settings = meta.get("settings") or {}
        records = sum(int((p.get("counts") or {}).get("read", 0))
                      for p in (doc.get("partitions") or {}).values() if isinstance(p, dict))
        updated = float(doc.get("updated") or ckpt.stat().st_mtime)
        state = str(doc.get("state") or "?")
        if state == "running":
            state = "running" if time.time() - updated < active_for else "stopped"
        elif state == "committed":
            state = "finished"
        staging = state_dir / f"run-{run_id}"
        found[run_id] = Run(
            run_id=run_id, kind=str(meta.get("kind") or settings.get("kind") or
                                    ("files" if "layout" in settings else "?")),
            pipeline=str(meta.get("pipeline") or "-"), state=state, records=records,
            output=str(settings.get("output") or output), checkpoint=ckpt,
            staging=staging if staging.is_dir() else None, updated=updated)
    for staging in sorted(state_dir.glob("run-*")):
        run_id = staging.name[4:]
        if staging.is_dir() and run_id not in found:
            found[run_id] = Run(run_id, "?", "-", "orphaned (no checkpoint)", 0, output, None,
                                staging, staging.stat().st_mtime)
    return list(found.values())


def _removable(runs: list[Run], temps: list[Path], *, older_than: float, abandoned: bool,
               days: float) -> list[Path]:
    now = time.time()
    paths = [t for t in temps if now - t.stat().st_mtime > older_than]
    for run in runs:
        if run.state == "finished" or run.state.startswith("orphaned") or (
                abandoned and run.state == "stopped" and now - run.updated > days * 86400):
            paths += [p for p in (run.checkpoint, run.staging) if p is not None]
    return paths


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


@click.group(invoke_without_command=True)
@click.option("--dir", "-C", "folders", multiple=True, type=click.Path(
    exists=True, file_okay=False, path_type=Path),
    help="A folder to look in (repeatable; default: the current one).")
@click.option("--active-minutes", type=float, default=10, show_default=True,
              help="A run whose checkpoint changed this recently is shown as running.")
@click.pass_context
def runs(ctx: click.Context, folders: tuple[Path, ...], active_minutes: float) -> None:
    """List the runs under --dir folders (default: here): id, kind, pipeline, state, records,
    output, checkpoint; and temp files left beside outputs."""
    if ctx.invoked_subcommand is not None:
        return
    found, temps = find_runs(list(folders) or [Path(".")], active_for=active_minutes * 60)
    if not found and not temps:
        click.echo("no runs (no checkpoints, staged parts or temp files) under "
                   + ", ".join(str(f) for f in folders or [Path(".")]))
        return
    if found:
        click.echo(f"{'ID':<24} {'KIND':<8} {'PIPELINE':<16} {'STATE':<10} {'RECORDS':>10}  "
                   "OUTPUT  CHECKPOINT")
    for run in sorted(found, key=lambda r: r.updated):
        click.echo(f"{run.run_id:<24} {run.kind:<8} {run.pipeline:<16} {run.state:<10} "
                   f"{run.records:>10,}  {run.output}  {run.checkpoint or '-'}")
    if temps:
        click.echo(f"temp files left beside outputs: {len(temps)}")
        for temp in temps:
            click.echo(f"  {temp} ({_size(temp):,} bytes)")
    if any(r.state in ("finished", "stopped") or r.state.startswith("orphaned")
           for r in found) or temps:
        click.echo("`fsm-actors runs clean` removes temp files and finished runs' checkpoints; "
                   "a stopped run resumes with the same command and --checkpoint-id")


@runs.command()
@click.option("--dir", "-C", "folders", multiple=True, type=click.Path(
    exists=True, file_okay=False, path_type=Path),
    help="A folder to look in (repeatable; default: the current one).")
@click.option("--older-than", type=float, default=10, show_default=True,
              help="Minutes a temp file must be untouched to count as left behind.")
@click.option("--abandoned", is_flag=True,
              help="Also remove stopped runs (checkpoint and staged parts) not resumed for "
              "--days.")
@click.option("--days", type=float, default=7, show_default=True)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def clean(folders: tuple[Path, ...], older_than: float, abandoned: bool, days: float,
          dry_run: bool) -> None:
    """Remove stale temp files, finished runs' checkpoints and orphaned staging folders
    under the --dir folders (default: here), listing each. A run's checkpoint that changed within
    --older-than minutes is left alone (the run may be going on)."""
    found, temps = find_runs(list(folders) or [Path(".")], active_for=older_than * 60)
    paths = _removable(found, temps, older_than=older_than * 60, abandoned=abandoned,
                       days=days)
    if not paths:
        click.echo("nothing to remove")
        return
    total = 0
    for path in paths:
        size = _size(path)
        total += size
        click.echo(f"{'would remove' if dry_run else 'removed'} {path} ({size:,} bytes)")
        if not dry_run:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    click.echo(f"{len(paths)} path(s), {total:,} bytes" + (" (dry run)" if dry_run else ""))
    kept = [r for r in found if r.state == "stopped" and r.checkpoint not in paths]
    if kept:
        click.echo(f"kept {len(kept)} stopped run(s) that can resume "
                   "(--abandoned removes those not resumed for --days)")
