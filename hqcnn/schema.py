"""Strict reading of the JSON files a user uploads: a bounded parse, then a schema checked field by field.

A model's metrics.json, an experiment's results.json and their parts come from browsers. `parse`
refuses what costs without bound or cannot be shown (too many bytes, nesting deeper than any file
this project writes, NaN or infinite numbers); a schema built from the functions below then
checks every field: its type, its range, the length of its text, the number of its items, and
that no field is unknown. What passes holds only finite numbers and bounded text, so a page can
format it without further checks. A failure is a plain message naming the field by its path in the
file ("metrics.json: 'test.n' must be a whole number from 0 to 100,000,000."), never echoing a
value from the file at length.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from hqcnn.errors import HQCNNError

MAX_DEPTH = 12  # deeper than any file written here (metrics.json's ROC curves are 4 deep)
BIG = 1e12  # the largest magnitude of a number from a file (seconds, counts): far beyond any real one
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # a field name the project writes
_HARMLESS = re.compile(r"[^\w .-]")

Check = Callable[[Any, str], Any]  # (value, its path in the file) → the value, checked and normalised


class Invalid(Exception):
    """A field does not fit its schema: `path` in the file, and what it should be in words."""

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(path, expected)
        self.path, self.expected = path, expected


def shown_name(name: object, limit: int = 40) -> str:
    """A name from a file, quoted in a message: letters, digits and `_ .-` only, at most `limit` characters."""
    text = str(name)
    return _HARMLESS.sub("?", text[:limit]) + ("…" if len(text) > limit else "")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "1e999" parses as infinity
        raise ValueError("a number too large to be finite")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse(
    blob: bytes | str, source: str, max_bytes: int, error: type[HQCNNError] = HQCNNError, max_depth: int = MAX_DEPTH
) -> Any:
    """JSON from a user, bounded: at most `max_bytes`, `max_depth` levels, finite numbers only.

    `source` names the file in messages ("The uploaded file", "metrics.json"); failures raise `error`.
    """
    size = len(blob)
    if size > max_bytes:
        raise error(f"{source} is too large ({size / 2**20:.1f} MB; at most {max_bytes / 2**20:.0f} MB).")
    try:
        text = blob.decode("utf-8") if isinstance(blob, bytes) else blob
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnicodeDecodeError as err:
        raise error(f"{source} is not valid JSON (it is not UTF-8 text).") from err
    except RecursionError as err:  # "[[[[…" thousands deep: the parser's own limit
        raise error(f"{source} is not valid here: its contents are nested too deeply.") from err
    except ValueError as err:  # JSONDecodeError, NaN/Infinity, a number with thousands of digits
        reason = f" (line {err.lineno}, column {err.colno})" if isinstance(err, json.JSONDecodeError) else ""
        raise error(f"{source} is not valid JSON{reason}, or holds a number that is not finite.") from err
    if _depth(value) > max_depth:
        raise error(f"{source} is not valid here: its contents are nested too deeply.")
    return value


def validate(value: Any, check: Check, source: str, error: type[HQCNNError] = HQCNNError) -> Any:
    """`value` checked by `check`; a failure raises `error` with a plain message naming the field."""
    try:
        return check(value, "")
    except Invalid as err:
        where = f"'{err.path}'" if err.path else "its contents"
        raise error(f"{source}: {where} {err.expected}. Was it written by another program, or edited?") from None


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{shown_name(key)}" if path else shown_name(key)


# --- the building blocks ---------------------------------------------------------------------------


def number(low: float = -BIG, high: float = BIG, *, integer: bool = False) -> Check:
    """A finite number (a whole one with `integer`) from `low` to `high`, as it is (a whole number stays an int)."""
    kind = "a whole number" if integer else "a number"
    expected = f"must be {kind} from {low:,g} to {high:,g}"

    def check(value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise Invalid(path, expected)
        if not (low <= value <= high and math.isfinite(value)):  # compared first: a huge int has no float
            raise Invalid(path, expected)
        return value

    return check


def count(high: int = 10**9) -> Check:
    """A whole number from 0 to `high`."""
    return number(0, high, integer=True)


PROBABILITY = number(0.0, 1.0)


def text(max_chars: int = 200, *, pattern: re.Pattern[str] | None = None, what: str = "") -> Check:
    """A string of at most `max_chars` characters (matching `pattern` if given)."""
    expected = f"must be text of at most {max_chars:,} characters" + (f" ({what})" if what else "")

    def check(value: Any, path: str) -> Any:
        if not isinstance(value, str) or len(value) > max_chars or (pattern is not None and not pattern.search(value)):
            raise Invalid(path, expected)
        return value

    return check


def boolean(value: Any, path: str) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise Invalid(path, "must be true or false")
    return value


def optional(check: Check) -> Check:
    """None (JSON null) or what `check` accepts."""

    def checked(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)

    return checked


def one_of(*checks: Check, expected: str) -> Check:
    """The first of `checks` that accepts the value; else `expected` (in words) is the message."""

    def check(value: Any, path: str) -> Any:
        for candidate in checks:
            try:
                return candidate(value, path)
            except Invalid:
                continue
        raise Invalid(path, expected)

    return check


def scalar(max_chars: int = 200) -> Check:
    """null, true/false, a finite number or a short text: one cell of a table."""
    return one_of(
        optional(boolean),
        number(),
        text(max_chars),
        expected=f"must be a number or a text of at most {max_chars} characters",
    )


def list_of(item: Check, max_items: int, min_items: int = 0) -> Check:
    """A JSON list of `min_items` to `max_items` items, each checked by `item`."""
    expected = (
        f"must be a list of exactly {max_items:,} items"
        if min_items == max_items
        else f"must be a list of {min_items:,} to {max_items:,} items"
    )

    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise Invalid(path, expected)
        return [item(v, _join(path, i)) for i, v in enumerate(value)]

    return check


def fields(required: Mapping[str, Check], optional_fields: Mapping[str, Check] | None = None) -> Check:
    """A JSON object with every `required` field, any of `optional_fields`, and nothing else."""
    known = {**required, **(optional_fields or {})}

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(path, "must be a set of named values (a JSON object)")
        unknown = [k for k in value if k not in known]
        if unknown:
            raise Invalid(_join(path, unknown[0]), "is not an entry this app writes")
        missing = [k for k in required if k not in value]
        if missing:
            raise Invalid(_join(path, missing[0]), "is missing")
        return {k: known[k](v, _join(path, k)) for k, v in value.items()}

    return check


def mapping(value_check: Check, max_items: int, key: re.Pattern[str] = _NAME) -> Check:
    """A JSON object of at most `max_items` entries whose names match `key`, each value checked."""

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict) or len(value) > max_items:
            raise Invalid(path, f"must be a set of at most {max_items} named values")
        for name in value:
            if not key.match(name):
                raise Invalid(_join(path, name), "is not a name this app writes")
        return {k: value_check(v, _join(path, k)) for k, v in value.items()}

    return check


# The record of how a run was computed (threads, CPU capability, kernel settings, versions), which
# metrics.json, results.json and provenance.json may carry: short names to scalars, or to one level
# of short names to text.
COMPUTE = mapping(
    one_of(
        scalar(500),
        mapping(optional(text(500)), 64),
        expected="must be a number, a short text, or a set of short texts",
    ),
    64,
)
