"""Column types of CSV text: inferred so that no value changes, or declared by the user.

A CSV column is read as text and given a type only when every value of the column (across
the whole file) reads back as the same text, so nothing is rewritten silently:

* ``int64`` when every value is an integer written the canonical way: ``00501`` (a zip
  code), ``+4917612345`` (a phone number), ``-0`` and integers beyond 64 bits stay text;
* ``float64`` when every value is a plain decimal number (no leading zeros, ``+``, ``inf``
  or ``nan``) that its double prints back as: any with up to 15 significant digits
  (``2.50`` is ``2.5``), and longer ones as ``repr``/pandas (``-352334.4703336753``) or
  ``%.17g`` write them; ``12345678901234567890`` and ``1e400`` stay text;
* ``bool`` for ``true``/``false`` in any case;
* ``null`` for a column with no values at all.

Empty fields and pyarrow's null spellings (``NA``, ``NULL``, ``null``, ``N/A``...) are nulls in
typed columns (bool included) and stay as written in text columns. ``fits`` (the inference)
and ``convert_column`` (the conversion) agree: a column inferred as a kind converts without
a rejected row. Dates and times stay text: declare them
(``column_types={"day": "date32"}``) to get Arrow dates. Declared types accept any Arrow type
name (``int64``, ``float32``, ``string``, ``bool``, ``date32``, ``timestamp[ms]``,
``decimal128(12,2)``...) or ``pa.DataType``; a value that does not fit its declared type
rejects its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
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
    parsed = _cast(values, pa.int64() if kind == "int" else pa.float64())
    if parsed is None:
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
    return _prints_back(values, parsed)


def _prints_back(texts: pa.Array, doubles: pa.Array) -> bool:
    """Whether the double of each decimal text prints back as that text: the text is the
    double's shortest form (what ``repr`` and pandas write) or the double rounded to the
    text's own number of significant digits (``%.17g``), trailing fraction zeros and
    exponent form aside. Up to 15 significant digits always do; a text past the double's
    range (``1e400``, or ``1e-400`` read as 0) never does."""
    if pc.any(pc.is_inf(doubles)).as_py():
        return False
    # Only a text longer than 15 characters can hold more than 15 significant digits.
    wide = pc.greater(pc.utf8_length(texts), 15)
    zero = pc.equal(doubles, 0.0)
    if pc.any(zero).as_py():
        wide = pc.or_(wide, zero)  # 1e-400: no digits may be lost to underflow
    if not pc.any(wide).as_py():
        return True
    texts, doubles = texts.filter(wide), doubles.filter(wide)
    # Arrow prints a double's shortest form; most long texts are exactly that.
    rest = pc.invert(pc.equal(texts, pc.cast(doubles, pa.string())))
    if not pc.any(rest).as_py():
        return True
    texts, doubles = texts.filter(rest), doubles.filter(rest)
    digits = _digits(pc.replace_substring_regex(texts, r"(\.[0-9]*?)0+([eE].*)?$", r"\1"))
    lengths = pc.utf8_length(digits)
    if pc.any(pc.and_(pc.equal(doubles, 0.0), pc.greater(lengths, 0))).as_py():
        return False
    long = pc.greater(lengths, 15)
    if not pc.any(long).as_py():
        return True
    texts, doubles, digits = texts.filter(long), doubles.filter(long), digits.filter(long)
    # Other spellings of the shortest form (1.0e5): equal digits are the same number, as
    # both lie within one unit of the double's last place.
    shortest = _digits(pc.cast(doubles, pa.string()))
    rest = pc.invert(pc.equal(pc.utf8_rtrim(digits, "0"), pc.utf8_rtrim(shortest, "0")))
    if not pc.any(rest).as_py():
        return True
    return all(
        Decimal(format(value, f".{len(sig)}g")) == Decimal(text)
        for text, value, sig in zip(
            texts.filter(rest).to_pylist(),
            doubles.filter(rest).to_pylist(),
            digits.filter(rest).to_pylist(),
            strict=True,
        )
    )


def _digits(texts: pa.Array) -> pa.Array:
    """The mantissa digits of decimal texts, without sign, point and leading zeros."""
    digits = pc.replace_substring_regex(texts, r"[eE].*$|[^0-9]", "")
    return pc.replace_substring_regex(digits, r"^0+", "")


def _cast(values: pa.Array, kind: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(values, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


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
            # ``is_in`` of a null is false, not null: only present values can misfit.
            lowered = pc.utf8_lower(values)
            known = pc.is_in(lowered, pa.array(["true", "false"]))
            bad = pc.and_(pc.is_valid(lowered), pc.invert(known))
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
