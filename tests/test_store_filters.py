"""Metadata filters: checking, the CLI's forms, and their SQL meaning on real SQLite rows."""

from __future__ import annotations

import json
import sqlite3

import pytest

from embedcraft.errors import InputError
from embedcraft.store.filters import (
    MAX_CONDITIONS,
    MAX_VALUES,
    Condition,
    parse_filter,
    parse_where,
    sql_where,
)

ROWS = [
    {"lang": "en", "year": 1999, "score": 0.5, "ok": True, "tag": "a"},
    {"lang": "fr", "year": 2005, "score": 2.0, "ok": False, "tag": "b"},
    {"lang": "en", "year": 2010, "ok": True, "nested": {"x": 3}},
    {"lang": "de", "year": "2010", "score": 9},  # a year stored as text
    {},
]


def _matching(where: dict) -> list[int]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (i INTEGER, metadata TEXT)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?)", [(i, json.dumps(r)) for i, r in enumerate(ROWS)]
    )
    sql, params = sql_where(parse_filter(where), "metadata", "sqlite")
    return [r[0] for r in conn.execute(f"SELECT i FROM t WHERE {sql} ORDER BY i", params)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"lang": "en"}, [0, 2]),
        ({"lang": {"$ne": "en"}}, [1, 3]),  # a row without the key never matches
        ({"year": {"$gte": 2005}}, [1, 2]),  # "2010" as text is not a number
        ({"year": {"$gt": 1999, "$lt": 2010}}, [1]),
        ({"score": {"$lte": 2}}, [0, 1]),
        ({"tag": {"$in": ["a", "b", "z"]}}, [0, 1]),
        ({"lang": {"$nin": ["en"]}}, [1, 3]),
        ({"ok": True}, [0, 2]),
        ({"ok": False}, [1]),
        ({"year": 2010}, [2]),
        ({"year": "2010"}, [3]),
        ({"nested.x": 3}, [2]),
        ({"lang": "en", "year": {"$gt": 2000}}, [2]),
        ({}, [0, 1, 2, 3, 4]),
    ],
)
def test_filters_select_the_expected_rows(where: dict, expected: list[int]) -> None:
    assert _matching(where) == expected


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ({"year": {"$regex": "x"}}, "unknown operator '\\$regex'"),
        ({"year": {"$in": "abc"}}, "needs a list"),
        ({"year": {"$in": []}}, "at least one value"),
        ({"year": {}}, "empty condition"),
        ({"year": None}, "string, number or boolean"),
        ({"year": float("nan")}, "string, number or boolean"),
        ({"ok": {"$gt": True}}, "cannot compare booleans"),
        ({"bad key!": 1}, "filter key"),
        ("lang=en", "must be a mapping"),
    ],
)
def test_bad_filters_are_clear_errors(where: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_filter(where)  # type: ignore[arg-type]


def test_mixed_value_types_in_one_list_are_refused() -> None:
    with pytest.raises(InputError, match="mix of value types"):
        _matching({"year": {"$in": [2010, "2010"]}})


def test_cli_where_forms() -> None:
    where = parse_where(["lang=en", "year>=2000", "year<2010", "tag=a,b", "score!=3", "ok=true"])
    assert where == {
        "lang": {"$eq": "en"},
        "year": {"$gte": 2000, "$lt": 2010},
        "tag": {"$in": ["a", "b"]},
        "score": {"$ne": 3},
        "ok": {"$eq": True},
    }
    assert parse_filter({"x": 1}) == [Condition("x", "$eq", 1)]
    with pytest.raises(InputError, match="expected key=value"):
        parse_where(["no operator here"])


@pytest.mark.parametrize(
    "where",
    [
        {"year": 2**63},
        {"year": {"$gte": -(2**63) - 1}},
        {"year": {"$in": [1, 2**64]}},
        {"year": {"$nin": [10**5000]}},  # no str() of it either: Python refuses > 4,300 digits
    ],
)
def test_integers_beyond_64_bits_are_refused_not_overflowed(where: dict) -> None:
    """SQLite raised OverflowError (a 500 from the server): now one clear InputError."""
    with pytest.raises(InputError, match="outside the 64-bit range .* write it as a float"):
        _matching(where)


def test_64_bit_limits_themselves_and_big_floats_still_work() -> None:
    assert _matching({"year": {"$lt": 2**63 - 1, "$gt": -(2**63)}}) == [0, 1, 2]
    assert _matching({"year": {"$lt": 1e19}}) == [0, 1, 2]


@pytest.mark.parametrize("keys", [MAX_CONDITIONS + 1, 1001, 5000])
def test_too_many_conditions_are_refused_with_the_limit(keys: int) -> None:
    """SQLite said "Expression tree is too large" from ~1,000 keys; the cap is named instead."""
    where = {f"k{i}": 1 for i in range(keys)}
    with pytest.raises(InputError, match=f"at most {MAX_CONDITIONS} conditions.*has {keys}"):
        _matching(where)
    ranges = {f"k{i}": {"$gt": 0, "$lt": 9} for i in range(MAX_CONDITIONS // 2 + 1)}
    with pytest.raises(InputError, match=f"at most {MAX_CONDITIONS} conditions"):
        parse_filter(ranges)  # operators count, not only keys


def test_the_largest_allowed_filter_runs_on_sqlite() -> None:
    where: dict = {f"k{i}": {"$ne": 1} for i in range(MAX_CONDITIONS - 1)}
    where["year"] = {"$in": list(range(MAX_VALUES))}
    assert _matching(where) == []  # rows lack the k keys: nothing matches, and no SQL error
    assert _matching({"year": {"$in": list(range(MAX_VALUES))}}) == [0, 1, 2]


def test_too_many_in_values_are_refused_with_the_limit() -> None:
    with pytest.raises(InputError, match=f"at most {MAX_VALUES} values in all, got 100000"):
        parse_filter({"year": {"$in": list(range(100_000))}})
    half = list(range(MAX_VALUES // 2 + 1))
    with pytest.raises(InputError, match=f"at most {MAX_VALUES} values in all"):
        parse_filter({"a": {"$in": half}, "b": {"$nin": half}})


def test_messages_about_huge_or_deep_values_stay_short() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    for where in ({"year": {"$eq": deep}}, {"year": {"$in": 10**5000}}, {"x" * 10**6: 1}):
        with pytest.raises(InputError) as caught:
            parse_filter(where)  # type: ignore[arg-type]
        assert len(str(caught.value)) < 300


def test_cli_where_with_a_huge_integer_is_the_same_clear_error() -> None:
    with pytest.raises(InputError, match="outside the 64-bit range"):
        parse_where(["year>=12345678901234567890"])


def test_an_unquoted_comparison_in_a_shell_gets_a_hint_to_quote_it() -> None:
    # `--where year>=2020` typed unquoted: the shell redirects `>=2020` and passes `year` alone
    with pytest.raises(InputError, match="quote a filter with < or >.*--where 'year>=2020'"):
        parse_where(["year"])
