"""JSON Schema -> regular expression (survey §3.5.1: "constrain outputs that conform to a
specific JSON schema").

A schema without recursion describes a regular language once the layout is fixed.  We fix it to
``json.dumps``'s default layout, ``{"a": 1, "b": [true, false]}`` (separators ``", "`` and
``": "``, properties in the schema's order), and translate the supported subset:

* ``object``: ``properties`` in order, all of them ``required``, ``additionalProperties`` false
  or absent (absent allows extra properties in JSON Schema; we generate none, a subset of the
  valid outputs); nested objects are translated recursively;
* ``string``: ``enum`` / ``const``, or any JSON string with ``minLength`` / ``maxLength``
  (raw control characters and DEL excluded, escapes allowed; llguidance does the same);
* ``integer``: ``minimum`` / ``maximum`` (and the exclusive forms), exact ranges by `int_range`;
* ``number`` (no bounds), ``boolean``, ``null``;
* ``array``: ``items`` of any supported schema, ``minItems`` / ``maxItems``.

Anything else (``$ref``, ``anyOf``, ``pattern``, optional properties, ...) raises ValueError
naming the keyword, rather than silently producing a looser constraint.
"""
from __future__ import annotations

import json

from .regex import escape

ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment"}
STRING_CHAR = r'([^"\\\x00-\x1f\x7f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})'
NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
KNOWN = {"type", "enum", "const", "properties", "required", "additionalProperties", "items",
         "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
         "exclusiveMinimum", "exclusiveMaximum"}


def _check_keys(schema: dict, allowed: set, where: str):
    extra = set(schema) - allowed - ANNOTATIONS
    if extra:
        raise ValueError(f"schema at {where}: unsupported keyword(s) {sorted(extra)}")


def _alternatives(values) -> str:
    return "(" + "|".join(escape(json.dumps(v)) for v in values) + ")"


def _repeat(unit: str, lo: int, hi) -> str:
    return f"{unit}{{{lo},{'' if hi is None else hi}}}"


def _range_same_length(lo: str, hi: str) -> list:
    """Patterns for the digit strings of one length between ``lo`` and ``hi``."""
    if lo == hi:
        return [lo]
    if set(lo[1:]) <= {"0"} and set(hi[1:]) <= {"9"}:
        first = lo[0] if lo[0] == hi[0] else f"[{lo[0]}-{hi[0]}]"
        return [first + "[0-9]" * (len(lo) - 1)]
    if lo[0] == hi[0]:
        return [lo[0] + p for p in _range_same_length(lo[1:], hi[1:])]
    rest = len(lo) - 1
    lo_full, hi_full = set(lo[1:]) <= {"0"}, set(hi[1:]) <= {"9"}
    out = [] if lo_full else [lo[0] + p for p in _range_same_length(lo[1:], "9" * rest)]
    a, b = int(lo[0]) + (not lo_full), int(hi[0]) - (not hi_full)
    if a <= b:
        out.append((str(a) if a == b else f"[{a}-{b}]") + "[0-9]" * rest)
    return out + ([] if hi_full else [hi[0] + p for p in _range_same_length("0" * rest, hi[1:])])


def _natural_range(lo: int, hi) -> list:
    """Patterns for the natural numbers in [lo, hi] (``hi`` None: unbounded), no leading zeros."""
    out, length = [], len(str(lo))
    while hi is None or length <= len(str(hi)):
        a = max(lo, 10 ** (length - 1) if length > 1 else 0)
        if hi is None and a == 10 ** (length - 1) and length > 1:
            return out + [f"[1-9][0-9]{{{length - 1},}}"]
        b = 10 ** length - 1 if hi is None else min(hi, 10 ** length - 1)
        if a <= b:
            out += _range_same_length(str(a), str(b))
        length += 1
    return out


def int_range(lo=None, hi=None) -> str:
    """A regex for the integers in [lo, hi], either bound optional, written as JSON writes them.

    Split the range at 0 (negatives are "-" followed by a natural-number range), then at powers
    of ten (all numbers of one length), then digit by digit: e.g. 18..99 is ``1[8-9]|[2-9][0-9]``.
    """
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"integer range is empty: minimum {lo} > maximum {hi}")
    parts = []
    if hi is None or hi >= 0:                       # the non-negative part
        parts += _natural_range(max(lo, 0) if lo is not None else 0, hi)
    if lo is None or lo < 0:                        # the negative part, mirrored
        top = -lo if lo is not None else None
        bottom = max(1, -hi) if hi is not None else 1
        parts += ["-" + p for p in _natural_range(bottom, top)]
    return "(" + "|".join(parts) + ")"


def _integer(schema: dict, where: str) -> str:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if "exclusiveMinimum" in schema:
        lo = schema["exclusiveMinimum"] + 1
    if "exclusiveMaximum" in schema:
        hi = schema["exclusiveMaximum"] - 1
    for name, v in (("minimum", lo), ("maximum", hi)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ValueError(f"schema at {where}: integer {name} must be an integer, got {v!r}")
    return int_range(lo, hi)


def schema_to_regex(schema: dict, where: str = "$") -> str:
    """The regex of the JSON texts that follow ``schema`` in ``json.dumps``'s layout."""
    if not isinstance(schema, dict):
        raise ValueError(f"schema at {where} must be a dict, got {type(schema).__name__}")
    _check_keys(schema, KNOWN, where)
    if "enum" in schema or "const" in schema:
        _check_keys(schema, {"type", "enum", "const"}, where)
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(values, list) or not values:
            raise ValueError(f"schema at {where}: enum must be a non-empty list")
        return _alternatives(values)
    kind = schema.get("type")
    if kind == "object":
        _check_keys(schema, {"type", "properties", "required", "additionalProperties"}, where)
        props = schema.get("properties", {})
        missing = [k for k in props if k not in schema.get("required", [])]
        if missing:
            raise ValueError(f"schema at {where}: optional properties are not supported "
                             f"({missing}); list every property in 'required'")
        unknown = [k for k in schema.get("required", []) if k not in props]
        if unknown:
            raise ValueError(f"schema at {where}: required properties {unknown} have no schema")
        if schema.get("additionalProperties", False) is not False:
            raise ValueError(f"schema at {where}: additionalProperties must be false")
        body = ", ".join(escape(json.dumps(k)) + ": " + schema_to_regex(v, f"{where}.{k}")
                         for k, v in props.items())
        return r"\{" + body + r"\}"
    if kind == "array":
        _check_keys(schema, {"type", "items", "minItems", "maxItems"}, where)
        if "items" not in schema:
            raise ValueError(f"schema at {where}: arrays need an 'items' schema")
        item = schema_to_regex(schema["items"], f"{where}[]")
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if lo < 0 or (hi is not None and hi < lo):
            raise ValueError(f"schema at {where}: need 0 <= minItems <= maxItems")
        if hi == 0:
            return r"\[\]"
        more = _repeat(f"(, {item})", max(lo - 1, 0), None if hi is None else hi - 1)
        inner = f"{item}{more}"
        return r"\[" + (f"({inner})?" if lo == 0 else inner) + r"\]"
    if kind == "string":
        _check_keys(schema, {"type", "minLength", "maxLength"}, where)
        return '"' + _repeat(STRING_CHAR, schema.get("minLength", 0),
                             schema.get("maxLength")) + '"'
    if kind == "integer":
        _check_keys(schema, {"type", "minimum", "maximum", "exclusiveMinimum",
                             "exclusiveMaximum"}, where)
        return _integer(schema, where)
    if kind == "number":
        _check_keys(schema, {"type"}, where)
        return NUMBER
    if kind == "boolean":
        _check_keys(schema, {"type"}, where)
        return "(true|false)"
    if kind == "null":
        _check_keys(schema, {"type"}, where)
        return "null"
    raise ValueError(f"schema at {where}: unsupported type {kind!r} (use object, array, string, "
                     "integer, number, boolean, null, or an enum)")
