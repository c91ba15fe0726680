"""What ``submit --working-dir DIR`` uploads: Ray's rules, checked before submitting.

Ray packs the working dir leaving out what its ``.gitignore`` and ``.rayignore`` files name
(each file applies to its folder and below; ``RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1`` turns the
``.gitignore`` part off) and its default excludes (``.git``, ``.venv``, ``__pycache__``…).
An input the job names that would be left out is found here, with the rule that leaves it
out, instead of as a missing file on the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Ray's loggers that narrate packaging and uploading (shown with ``--verbose``)
PACKAGING_LOGGERS = ("ray._private.runtime_env.packaging", "ray.dashboard.modules.dashboard_sdk",
                     "ray.dashboard.modules.job.sdk", "ray._private.runtime_env.working_dir")


def _spec(lines: list[str]):
    from ray._private.thirdparty.pathspec import PathSpec

    return PathSpec.from_lines("gitwildmatch", lines)


def _rule(folder: Path, name: str, relative: str) -> str | None:
    """The line of ``folder/name`` that leaves ``relative`` out, or None."""
    path = folder / name
    if not path.is_file():
        return None
    lines = path.read_text(errors="replace").splitlines()
    if not _spec(lines).match_file(relative):
        return None
    for number in range(len(lines), 0, -1):
        line = lines[number - 1].strip()
        if line and not line.startswith(("#", "!")) and _spec([line]).match_file(relative):
            return f"it matches {line!r} in {path} (line {number})"
    return f"{path} leaves it out"


def excluded_by(working_dir: Path, path: Path) -> str | None:
    """Why Ray's upload of ``working_dir`` leaves out ``path`` (a file inside it), or None."""
    from ray._private.ray_constants import get_runtime_env_default_excludes

    root = Path(os.path.abspath(working_dir))
    relative = Path(os.path.abspath(path)).relative_to(root)
    names = [".rayignore"]
    if os.environ.get("RAY_RUNTIME_ENV_IGNORE_GITIGNORE", "0") != "1":
        names.insert(0, ".gitignore")
    defaults = _spec(get_runtime_env_default_excludes())
    folders = [root]
    for depth in range(1, len(relative.parts) + 1):
        current = root.joinpath(*relative.parts[:depth])
        sub = str(current.relative_to(root))
        if defaults.match_file(sub):
            return f"it is under {sub!r}, which Ray never uploads (its default excludes)"
        for folder in folders:
            for name in names:
                why = _rule(folder, name, str(current.relative_to(folder)))
                if why:
                    return why
        folders.append(current)
    return None
