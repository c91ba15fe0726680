"""Seed 000 (integration patterns), "Quick Start", 2. Direct Class Instantiation.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``). The block uses
``asyncio`` imported by the seed's previous block: this file imports it. It runs in a fresh
directory ``examples/out/quick_start_file_processor/`` holding ``data.csv`` (5,000 demo orders
from ``examples/make_orders.py``), so the block's relative paths are used as written.

    .venv/bin/python examples/patterns/quick_start_file_processor.py
"""

# ruff: noqa: I001 - the seed's import lines are kept as written
from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from examples._support import workdir  # noqa: E402
from examples.make_orders import write_orders  # noqa: E402

ORDERS = 5000


def main() -> dict[str, Any]:
    """Run the block in its directory; returns its result and the directory."""
    work = workdir("quick_start_file_processor")
    with contextlib.chdir(work):
        write_orders(Path("data.csv"), ORDERS)
        # -- the seed's block -----------------------------------------------------------------
        from patterns.file_processing import FileProcessor, FileProcessingConfig, ProcessingMode

        # Create configuration
        config = FileProcessingConfig(
            input_path="data.csv",
            output_path="processed.json",
            mode=ProcessingMode.STREAM,
            transformations=[
                lambda record: {**record, "processed": True}
            ]
        )

        # Create and execute processor
        processor = FileProcessor(config)
        result = asyncio.run(processor.process())
        # -------------------------------------------------------------------------------------
    print(f"wrote {result['records_written']} records to {work / 'processed.json'}")
    return {"result": result, "workdir": work}


if __name__ == "__main__":
    main()
