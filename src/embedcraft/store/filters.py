"""Metadata filters: one small language for the library, the CLI and both storage backends.

A filter is a mapping from metadata key to a condition: a plain value means equality, and a
mapping of operators (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`) combines with
AND, as do the keys. For example ``{"lang": "en", "year": {"$gte": 2000, "$lt": 2010},
"tag": {"$in": ["a", "b"]}}``. `parse_filter` checks it once, into `Condition`s that each
backend compiles to SQL; `parse_where` reads the CLI's ``key=value`` / ``key>=value`` forms.

`parse_filter` is the one gate every entry point (library, CLI, HTTP server) and both backends
pass through, so it also keeps a filter within what the databases can run: integers must fit in
64 bits (SQLite's INTEGER; larger ones would be compared inexactly, so they are refused, not
rounded), and a filter has at most `MAX_CONDITIONS` conditions and `MAX_VALUES` $in/$nin values
(SQLite refuses expressions nested about 1,000 deep and PostgreSQL statements with more than
65,535 parameters).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InputError

__all__ = ["MAX_CONDITIONS", "MAX_VALUES", "Condition", "Filter", "parse_filter", "parse_where"]

Operator = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]
Scalar = str | int | float | bool
Filter = Mapping[str, Any]

_OPERATORS: tuple[str, ...] = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_ORDERED = ("$gt", "$gte", "$lt", "$lte")
_SQL_COMPARE = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
_INT64 = (-(2**63), 2**63 - 1)

MAX_CONDITIONS = 100
"""Most conditions (key/operator pairs) in one filter."""
MAX_VALUES = 10_000
"""Most values in all the $in/$nin lists of one filter together."""


@dataclass(frozen=True)
class Condition:
    """One checked test on one metadata key: `key op value` (value a tuple for $in/$nin)."""

    key: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]


def _check_scalar(key: str, op: str, value: Any) -> Scalar:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InputError(
                f"filter on {key!r}: {op} integer {_short(value)} is outside the 64-bit "
                "range (-2**63 to 2**63-1) that metadata integers can hold; write it as a float "
                "(e.g. 1e19) to compare approximately"
            )
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise InputError(
        f"filter on {key!r}: {op} needs a string, number or boolean, got {_shown(value)}"
    )


def _shown(value: Any, limit: int = 80) -> str:
    """A value for a message: its repr, cut to `limit` characters; never fails (a huge int or a
    deeply nested value has no repr)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: int) -> str:
    """An integer for a message: in full when short, else its number of digits (str() of a
    huge int is slow, and refused beyond 4,300 digits)."""
    if abs(value) < 10**30:
        return str(value)
    return f"of about {int(value.bit_length() * 0.30103) + 1} digits"


def _conditions(key: str, spec: Any) -> Iterable[Condition]:
    if not isinstance(key, str) or not _KEY.match(key):
        raise InputError(
            f"filter key {_shown(key)}: use letters, digits, '_', '-' or '.', "
            "starting with a letter"
        )
    if not isinstance(spec, Mapping):
        yield Condition(key, "$eq", _check_scalar(key, "$eq", spec))
        return
    if not spec:
        raise InputError(f"filter on {key!r}: an empty condition {{}}")
    for op, value in spec.items():
        if op not in _OPERATORS:
            raise InputError(
                f"filter on {key!r}: unknown operator {_shown(op)}; "
                f"use one of {', '.join(_OPERATORS)}"
            )
        if op in ("$in", "$nin"):
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | set):
                raise InputError(
                    f"filter on {key!r}: {op} needs a list of values, got {_shown(value)}"
                )
            if len(value) > MAX_VALUES:
                raise InputError(_too_many_values(key, len(value)))
            items = tuple(_check_scalar(key, op, v) for v in value)
            if not items:
                raise InputError(f"filter on {key!r}: {op} needs at least one value")
            _value_kind(key, items)
            yield Condition(key, op, items)
        else:
            scalar = _check_scalar(key, op, value)
            if op in _ORDERED and isinstance(scalar, bool):
                raise InputError(f"filter on {key!r}: {op} cannot compare booleans")
            yield Condition(key, op, scalar)


def parse_filter(where: Filter | None) -> list[Condition]:
    """Check a filter mapping; return its conditions (all must hold). None means no filter."""
    if where is None:
        return []
    if not isinstance(where, Mapping):
        raise InputError(
            f"a filter must be a mapping of metadata key -> condition, got {_shown(where)}"
        )
    conditions: list[Condition] = []
    values = 0
    for key, spec in where.items():
        for condition in _conditions(key, spec):
            conditions.append(condition)
            if len(conditions) > MAX_CONDITIONS:
                raise InputError(
                    f"a filter has at most {MAX_CONDITIONS} conditions (key/operator pairs); "
                    f"this one has {_count(where)}"
                )
            if isinstance(condition.value, tuple):
                values += len(condition.value)
                if values > MAX_VALUES:
                    raise InputError(_too_many_values(key, values))
    return conditions


def _too_many_values(key: str, count: int) -> str:
    return (
        f"filter on {key!r}: the $in/$nin lists of a filter hold at most {MAX_VALUES} values "
        f"in all, got {count}{' so far' if count <= MAX_VALUES else ''}"
    )


def _count(where: Filter) -> int:
    """Conditions in a filter, counted without checking them (for a message)."""
    return sum(len(s) if isinstance(s, Mapping) and s else 1 for s in where.values())


def _cli_value(text: str) -> Scalar:
    """A CLI value: JSON numbers and true/false become numbers and booleans, the rest stays text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float) else text


_WHERE = re.compile(r"^\s*([^=!<>\s]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$", re.S)


def parse_where(items: Sequence[str]) -> dict[str, Any]:
    """CLI filters to a filter mapping: ``key=value``, ``key!=value``, ``key>=3``, ``key<3``...

    ``key=a,b`` (a comma in an equality) means IN. Several items combine with AND.
    """
    ops = {"=": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
    where: dict[str, dict[str, Any]] = {}
    for item in items:
        match = _WHERE.match(item)
        if not match:
            hint = ""
            if "=" not in item and "<" not in item and ">" not in item:
                # `--where year>=2020` unquoted: the shell reads `>=2020` as a redirection
                hint = (
                    "; quote a filter with < or > so the shell does not take it as a "
                    "redirection: --where 'year>=2020'"
                )
            raise InputError(
                f"--where {_shown(item)}: expected key=value, key>=value, key<value ...{hint}"
            )
        key, sign, raw = match.groups()
        op = ops[sign]
        if sign in ("=", "!=") and "," in raw:
            value: Any = [_cli_value(v.strip()) for v in raw.split(",") if v.strip()]
            op = "$in" if sign == "=" else "$nin"
        else:
            value = _cli_value(raw)
        where.setdefault(key, {})[op] = value
    parse_filter(where)  # check now, with the CLI's wording
    return where


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_kind(key: str, values: Sequence[Scalar]) -> Literal["number", "boolean", "text"]:
    """What a condition's values compare as; a list mixing kinds is an error."""
    if all(_is_number(v) for v in values):
        return "number"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, str) for v in values):
        return "text"
    raise InputError(f"filter on {key!r}: mix of value types in {_shown(list(values))}")


def sql_condition(
    condition: Condition, column: str, style: Literal["sqlite", "postgres"]
) -> tuple[str, list[Any]]:
    """SQL text and parameters that test one condition on a JSON metadata column.

    A key missing from a row's metadata never matches (not even $ne / $nin). Numbers compare as
    numbers and strings as strings; a row whose value has another type does not match.
    """
    path = "$." + ".".join(f'"{part}"' for part in condition.key.split("."))
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    kind_of_values = _value_kind(condition.key, values)
    numeric, boolean = kind_of_values == "number", kind_of_values == "boolean"
    if style == "sqlite":
        field = f"json_extract({column}, ?)"
        kind = f"json_type({column}, ?)"
        types = "('integer','real')" if numeric else "('true','false')" if boolean else "('text')"
        guard, guard_params = f"{kind} IN {types}", [path]
        params: list[Any] = [path]
        converted = [int(v) if isinstance(v, bool) else v for v in values]
    else:
        parts = condition.key.split(".")
        pg_path = "{" + ",".join(parts) + "}"
        kind_sql = "'number'" if numeric else "'boolean'" if boolean else "'string'"
        guard, guard_params = f"jsonb_typeof({column} #> %s) = {kind_sql}", [pg_path]
        cast = "::numeric" if numeric else "::boolean" if boolean else ""
        field = f"({column} #>> %s){cast}"
        params = [pg_path]
        converted = list(values)
    mark = "?" if style == "sqlite" else "%s"
    if condition.op in ("$in", "$nin"):
        negate = "NOT " if condition.op == "$nin" else ""
        test = f"{field} {negate}IN ({', '.join([mark] * len(converted))})"
        params = [*guard_params, *params, *converted]
    else:
        test = f"{field} {_SQL_COMPARE[condition.op]} {mark}"
        params = [*guard_params, *params, converted[0]]
    if style == "postgres":  # PostgreSQL may reorder ANDed tests by cost; CASE runs the
        return f"(CASE WHEN {guard} THEN {test} ELSE false END)", params  # guard before casts
    return f"({guard} AND {test})", params


def sql_has_key(
    key: str, column: str, style: Literal["sqlite", "postgres"]
) -> tuple[str, list[Any]]:
    """SQL text and parameters true for a row whose JSON metadata has `key` (a dotted path)."""
    if style == "sqlite":
        return f"json_type({column}, ?) IS NOT NULL", [
            "$." + ".".join(f'"{part}"' for part in key.split("."))
        ]
    return f"{column} #> %s IS NOT NULL", ["{" + ",".join(key.split(".")) + "}"]


def sql_where(
    conditions: Sequence[Condition], column: str, style: Literal["sqlite", "postgres"]
) -> tuple[str, list[Any]]:
    """All conditions ANDed into one SQL expression (``1=1`` when there are none)."""
    if not conditions:
        return "1=1", []
    parts, params = [], []
    for condition in conditions:
        sql, p = sql_condition(condition, column, style)
        parts.append(sql)
        params.extend(p)
    return " AND ".join(parts), params
