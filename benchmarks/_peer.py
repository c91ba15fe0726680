"""The peer package (dataknobs-fsm 0.5.0) in a scratch venv, for side-by-side benchmarks.

The venv lives in ``.bench/peer-venv`` (python3.12; the peer needs >= 3.12). If it cannot be
set up, ``peer_python()`` returns None and says why, and the benchmark skips that baseline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "peer-venv"
PEER_SPEC = ["dataknobs-fsm[http]==0.5.0", "dataknobs-data[sqlite]==0.11.0"]


def peer_python() -> Path | None:
    """Path of the peer venv's python, creating the venv on first use; None if impossible."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    base = _python312()
    if base is None:
        print("peer skipped: python3.12 not found (dataknobs-fsm 0.5.0 needs it)", file=sys.stderr)
        return None
    try:
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_SPEC], check=True)
    except subprocess.CalledProcessError as exc:
        print(f"peer skipped: could not install {PEER_SPEC}: {exc}", file=sys.stderr)
        shutil.rmtree(VENV, ignore_errors=True)
        return None
    return python


def _python312() -> str | None:
    """A python3.12 that really runs (a pyenv shim may exist without an active version)."""
    candidates = [shutil.which("python3.12"), *sorted(
        str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def run_peer(script: str, *args: str, timeout: float = 1800) -> dict | None:
    """Run ``script`` (Python source) in the peer venv; it must print one JSON line last."""
    python = peer_python()
    if python is None:
        return None
    proc = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        print(f"peer run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])
