"""The seed's file-processing blocks, as written there with only the import prefix changed
(``dataknobs_fsm.patterns`` -> ``patterns``).

    python examples/seed_file_processing.py [WORKDIR]

Writes ``data.csv`` (the demo orders) into WORKDIR (default: a new temp dir), then runs
1. ``FileProcessor(FileProcessingConfig(...))`` in STREAM mode -> processed.json
2. ``create_csv_processor(...)`` with a transformation and a filter -> output.json
and prints one JSON line per block with its result.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.make_orders import write_orders  # noqa: E402


def main(workdir: str) -> None:
    os.chdir(workdir)
    write_orders(Path("data.csv"), 5000)

    # -- seed block: "Create configuration" / "Create and execute processor" ----------------
    from patterns.file_processing import FileProcessingConfig, FileProcessor, ProcessingMode

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
    print(json.dumps({"block": "FileProcessor", "result": result}, default=str), flush=True)

    # -- seed block: "Using Multiple Factory Functions" / File Processing --------------------
    from patterns.file_processing import create_csv_processor

    csv_processor = create_csv_processor(
        input_file="data.csv",
        output_file="output.json",
        transformations=[lambda row: {**row, "status": "processed"}],
        filters=[lambda row: row.get("active") == True]  # noqa: E712 - as the seed writes it
    )
    result = asyncio.run(csv_processor.process())
    print(json.dumps({"block": "create_csv_processor", "result": result}, default=str),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fsm-actors-seed-"))
