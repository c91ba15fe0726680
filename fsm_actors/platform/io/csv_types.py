"""Column types of CSV text: inferred so that no value changes, or declared by the user.

A CSV column is read as text and given a type only when every value of the column (across
the whole file) reads back as the same text, so nothing is rewritten silently:

* ``int64`` when every value is an integer written the canonical way: ``00501`` (a zip
  code), ``+4917612345`` (a phone number), ``-0`` and integers beyond 64 bits stay text;
* ``float64`` when every value is a plain decimal number with at most 15 significant digits
  and no leading zeros or ``+`` (``2.50`` is ``2.5``; ``12345678901234567890`` stays text);
* ``bool`` for ``true``/``false`` in any case;
* ``null`` for a column with no values at all.

Empty fields and pyarrow's null spellings (``NA``, ``NULL``, ``null``, ``N/A``...) are nulls in
typed columns and stay as written in text columns. Dates and times stay text: declare them
(``column_types={"day": "date32"}``) to get Arrow dates. Declared types accept any Arrow type
name (``int64``, ``float32``, ``string``, ``bool``, ``date32``, ``timestamp[ms]``,
``decimal128(12,2)``...) or ``pa.DataType``; a value that does not fit its declared type
rejects its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io.errors import FormatError

NULL_SPELLINGS = pa.array(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"],
)  # fmt: skip
_FLOAT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?$|^-?\.[0-9]+$"
_ARROW = {
    "null": pa.null(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def column_kind(column: pa.Array, known: str = "null") -> str:
    """The narrowest kind (``null``, ``int``, ``float``, ``bool``, ``string``) every value of
    the text ``column`` fits without changing. ``known`` is the kind seen so far: only kinds
    that can unify with it are tried."""
    if known == "string":
        return "string"
    values = _non_null(column)
    if not len(values):
        return "null"
    sample = values.slice(0, _SAMPLE).to_pylist()
    for kind in _CANDIDATES[known]:
        # A cheap look at the first values spares the whole-column checks (a failed cast
        # of a long text column is slow).
        if all(_SAMPLE_RE[kind].match(v) for v in sample) and fits(values, kind):
            return kind
    return "string"


_SAMPLE = 64
_INT = r"^-?[1-9][0-9]{0,18}$|^0$"
_SAMPLE_RE = {
    "int": re.compile(_INT),
    "float": re.compile(_FLOAT),
    "bool": re.compile(r"^(?i:true|false)$"),
}
_CANDIDATES = {
    "null": ("int", "float", "bool"),
    "int": ("int", "float"),
    "float": ("float",),
    "bool": ("bool",),
}


def _non_null(column: pa.Array) -> pa.Array:
    nulls = pc.is_in(column, NULL_SPELLINGS)
    return column.filter(pc.invert(nulls)) if pc.any(nulls).as_py() else column


def fits(values: pa.Array, kind: str) -> bool:
    """Whether every (non-null) text value reads as ``kind`` and back unchanged."""
    if kind == "bool":
        return pc.all(pc.is_in(pc.utf8_lower(values), pa.array(["true", "false"]))).as_py()
    # Arrow's parse does the heavy check; a few prefix tests reject what it accepts but a
    # writer would not give back: "+1", "007", "-01", "inf", "nan".
    if not _casts(values, pa.int64() if kind == "int" else pa.float64()):
        return False
    if pc.any(pc.starts_with(values, "+")).as_py():
        return False
    unsigned = pc.utf8_ltrim(values, "-")
    leading_zero = pc.and_(pc.starts_with(unsigned, "0"), pc.greater(pc.utf8_length(unsigned), 1))
    if kind == "int":
        return not pc.any(pc.or_(leading_zero, pc.starts_with(values, "-0"))).as_py()
    leading_zero = pc.and_(leading_zero, pc.invert(pc.starts_with(unsigned, "0.")))
    if pc.any(leading_zero).as_py() or pc.any(pc.match_substring(values, "n")).as_py():
        return False  # "n": inf, nan, Infinity, NaN in any case but upper
    if pc.any(pc.match_substring(values, "N")).as_py():
        return False
    long = values.filter(pc.greater(pc.utf8_length(values), 15))
    if not len(long):
        return True
    mantissa = pc.replace_substring_regex(long, r"[eE].*$|[^0-9]", "")
    digits = pc.utf8_length(pc.replace_substring_regex(mantissa, r"^0+", ""))
    return pc.max(digits).as_py() <= 15


def _casts(values: pa.Array, kind: pa.DataType) -> bool:
    try:
        pc.cast(values, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def unify_kinds(a: str, b: str) -> str:
    """One kind for a column seen as ``a`` in one place and ``b`` in another."""
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "string"


def kind_type(kind: str) -> pa.DataType:
    """The Arrow type of an inferred kind."""
    return _ARROW[kind]


_PARAMS = re.compile(r"^(\w+)\((\d+)\s*,\s*(\d+)\)$")
_UNIT = re.compile(r"^(timestamp|time32|time64|duration)\[(\w+)(?:,\s*(.+))?\]$")


def arrow_type(spec: Any) -> pa.DataType:
    """``spec`` (an Arrow type, or its name: ``int64``, ``decimal128(12,2)``,
    ``timestamp[ms]``, ``text``) as an Arrow type; ``FormatError`` names a bad one."""
    if isinstance(spec, pa.DataType):
        return spec
    name = str(spec).strip().lower()
    name = {"text": "string", "str": "string", "int": "int64", "integer": "int64",
            "float": "float64", "double": "float64", "boolean": "bool", "date": "date32",
            "timestamp": "timestamp[us]"}.get(name, name)  # fmt: skip
    params = _PARAMS.match(name)
    unit = _UNIT.match(name)
    try:
        if params and params.group(1) in ("decimal128", "decimal256", "decimal"):
            maker = pa.decimal256 if params.group(1) == "decimal256" else pa.decimal128
            return maker(int(params.group(2)), int(params.group(3)))
        if unit:
            maker = getattr(pa, unit.group(1))
            return maker(unit.group(2), unit.group(3)) if unit.group(3) else maker(unit.group(2))
        made = getattr(pa, {"string": "string", "bool": "bool_"}.get(name, name))()
    except (AttributeError, TypeError, ValueError) as exc:
        raise FormatError(
            f"unknown column type {spec!r}: give an Arrow type name such as int64, float64, "
            "string, bool, date32, timestamp[ms] or decimal128(12,2)"
        ) from exc
    if not isinstance(made, pa.DataType):
        raise FormatError(f"unknown column type {spec!r}")
    return made


def declared_types(spec: Mapping[str, Any] | None) -> dict[str, pa.DataType]:
    """A ``column_types`` option as Arrow types."""
    return {str(k): arrow_type(v) for k, v in (spec or {}).items()}


def convert_column(column: pa.Array, kind: pa.DataType) -> tuple[pa.Array, list[int]]:
    """The text ``column`` as ``kind``, and the indices of the values that do not fit it
    (null in the result; bytes that are not UTF-8 do not fit any type but text). Null
    spellings are null in every type but text."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(kind) if not column.type.equals(kind) else column, []
    if pa.types.is_null(kind):
        return pa.nulls(len(column)), []
    try:
        nulls = pc.is_in(column, NULL_SPELLINGS)
        values = pc.if_else(nulls, None, column) if pc.any(nulls).as_py() else column
        if pa.types.is_boolean(kind):
            lowered = pc.utf8_lower(values)
            bad = pc.invert(pc.fill_null(pc.is_in(lowered, pa.array(["true", "false"])), True))
            return _with_bad(pc.equal(lowered, "true"), bad)
        return pc.cast(values, kind), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out: list[Any] = []
    bad_rows: list[int] = []
    spellings = set(NULL_SPELLINGS.to_pylist())
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):
        try:
            value = raw.decode("utf-8") if raw is not None else None
            if value is None or value in spellings:
                out.append(None)
            elif pa.types.is_boolean(kind):
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                out.append(value.lower() == "true")
            else:
                out.append(pc.cast(pa.array([value]), kind)[0].as_py())
        except (UnicodeDecodeError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            bad_rows.append(i)
    return pa.array(out, kind), bad_rows


def _with_bad(converted: pa.Array, bad: pa.Array) -> tuple[pa.Array, list[int]]:
    if not pc.any(bad).as_py():
        return converted, []
    rows = pc.indices_nonzero(bad).to_pylist()
    return pc.if_else(bad, None, converted), rows


def kinds_of(
    batch: pa.RecordBatch, known: Mapping[str, str], skip: Iterable[str] = ()
) -> dict[str, str]:
    """``known`` widened by the values of ``batch`` (every column but ``skip``)."""
    skipped = set(skip)
    out = dict(known)
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if name in skipped:
            continue
        seen = out.get(name, "null")
        out[name] = unify_kinds(seen, column_kind(column, seen))
    return out
