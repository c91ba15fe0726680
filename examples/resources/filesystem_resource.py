"""Seed 003 (resource-management guide), section "Built-in Resource Adapters / File System
Resource".

    .venv/bin/python examples/resources/filesystem_resource.py

Changed from the seed: the import prefix (``dataknobs_fsm.resources`` -> ``resource_actors``)
and the two paths: ``base_path`` and ``temp_dir`` are fresh directories under the examples'
output directory (``examples/out/``) instead of ``/data/processing`` and ``/tmp/fsm``.
Defined first, as the seed assumes them: ``manager``, ``input.csv`` in the base directory and
``processed_data``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples._support import out  # noqa: E402


def fresh_dir(name: str) -> str:
    """An empty directory ``out(name)``."""
    path = out(name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return str(path)


def main() -> dict[str, Any]:
    """The directories, the text read, the temp file's path and whether it existed in use."""
    from resource_actors.manager import ResourceManager

    BASE_PATH, TEMP_DIR = fresh_dir("processing"), fresh_dir("fsm_tmp")
    Path(BASE_PATH, "input.csv").write_text("id,name\n1,ada\n")
    processed_data = {"rows": 1}
    manager = ResourceManager()
    try:
        # -- seed block: "File System Resource" --------------------------------------------
        from resource_actors.filesystem import FileSystemResourceAdapter
        # Create filesystem resource
        fs_resource = FileSystemResourceAdapter(
            name="data_fs",
            base_path=BASE_PATH,
            temp_dir=TEMP_DIR,
            auto_cleanup=True
        )
        manager.register_provider("filesystem", fs_resource)
        # Acquire and use
        with manager.resource_context("filesystem", "state_123") as fs:
            # Read file
            content = fs.read("input.csv")
            # Write file
            fs.write("output.json", processed_data)
            # Create temp file
            temp_path = fs.create_temp()
            # -- end of seed block ---------------------------------------------------------
            temp_existed = Path(temp_path).exists()
    finally:
        manager.close()
    print(f"read input.csv: {content!r}")
    print(f"wrote {Path(BASE_PATH, 'output.json')}: {Path(BASE_PATH, 'output.json').read_text()}")
    print(f"temp file {temp_path} existed while held: {temp_existed}, "
          f"after release: {Path(temp_path).exists()}")
    return {"base_path": BASE_PATH, "temp_dir": TEMP_DIR, "content": content,
            "temp_path": temp_path, "temp_existed": temp_existed}


if __name__ == "__main__":
    main()
