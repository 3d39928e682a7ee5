"""Metadata filters: checking, the CLI's forms, and their SQL meaning on real SQLite rows."""

from __future__ import annotations

import json
import sqlite3

import pytest

from embedcraft.errors import InputError
from embedcraft.store.filters import Condition, parse_filter, parse_where, sql_where

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
