"""What the format layer reports: a bad row it skipped, or a file it cannot read at all."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fsm_actors.platform.errors import FSMError


@dataclass(frozen=True)
class RowError:
    """One malformed record, skipped by a reader or rejected later in a pipeline.

    ``line`` is the 1-based line (CSV: row, header included) in the file when the reader knows
    it; ``record`` the 1-based ordinal of the record among the file's good records when that is
    what is known instead. ``raw`` is the offending text (decoded with backslash escapes if it
    was not valid in the file's encoding), cut to a few KB; for a CSV row, the record as
    written (quoting kept), which parses back to the same fields. ``stage`` says where it was
    rejected (parse, validate, filter, transform, fsm, load); ``function`` names the user
    function and ``state`` the FSM state that rejected it, when one did. This is the one
    error-file schema of every job.
    """

    file: str | None
    reason: str
    raw: str | None = None
    line: int | None = None
    record: int | None = None
    stage: str = "parse"
    function: str | None = None
    state: str | None = None
    path: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the error sink's line format); ``path`` (the FSM states a
        record visited, ``state`` being where it stopped) only for FSM records."""
        out = asdict(self)
        if out["path"] is None:
            del out["path"]
        return out


class FormatError(FSMError, ValueError):
    """A file cannot be read or written in the requested or detected format.

    ``file`` names the file; the message says what was expected and how to fix it.
    """

    def __init__(self, message: str, file: str | None = None) -> None:
        super().__init__(message, source=file)
        self.file = file

    def __reduce__(self):  # keep ``file`` when Ray ships the error
        return (self.__class__, (str(self), self.file))


class CorruptStreamError(FormatError):
    """The bytes of a file stopped being readable part-way (a truncated or corrupt gzip/zstd
    stream). Readers report it as the file's last ``RowError``, after the records before it."""


class MalformedRecordError(FormatError):
    """Raised by a reader that was given no ``on_error`` callback when it meets a bad record."""

    def __init__(self, error: RowError) -> None:
        where = f"line {error.line}" if error.line else f"record {error.record}"
        super().__init__(f"{error.file}: {where}: {error.reason}", error.file)
        self.error = error

    def __reduce__(self):
        return (self.__class__, (self.error,))


RAW_LIMIT = 4096


def raw_text(data: bytes | str | None, encoding: str = "utf-8") -> str | None:
    """``data`` as text for an error record: undecodable bytes become escapes, long text is cut."""
    if data is None:
        return None
    text = data if isinstance(data, str) else data.decode(encoding, errors="backslashreplace")
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "..."
