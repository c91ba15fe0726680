"""The repository's examples as the ops tests run them: a copy with demo data, one run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.ops.ray_heads import REPO


def copy_examples(root: Path, rows: int = 2000) -> Path:
    """A copy of examples/ under ``root`` with ``rows`` demo orders (so runs write under
    ``root``); returns ``root``."""
    shutil.copytree(REPO / "examples", root / "examples",
                    ignore=shutil.ignore_patterns("data", "__pycache__"))
    subprocess.run([sys.executable, str(REPO / "examples" / "make_orders.py"), "--rows", str(rows),
                    "--out", str(root / "examples" / "data" / "orders.csv")], check=True,
                   capture_output=True)
    return root


def run_example(path: Path, address: str) -> dict[str, Any]:
    """``run_pipeline_file(path)`` on the Ray at ``address``."""
    from patterns.pipeline import run_pipeline_file

    return run_pipeline_file(path, address=address)
