"""The operators a rule can use: one table read by the compiler and by the builder widget.

Each row says which field types the operator applies to, what shape of value it takes, and
how it becomes a SQLAlchemy expression. Values reach ``build`` already checked and converted
by the compiler; they are always bound parameters, never SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

Arity = Literal["none", "one", "list", "pair", "relative", "period"]

TEXT = frozenset({"text"})
NUMBER = frozenset({"integer", "number", "money"})
TEMPORAL = frozenset({"date", "timestamp"})
EQUALITY = TEXT | NUMBER | TEMPORAL | {"enum", "boolean", "uuid"}
ORDERED = TEXT | NUMBER | TEMPORAL
LISTABLE = TEXT | NUMBER | {"enum", "uuid"}
ANY_TYPE = EQUALITY | {"json"}


@dataclass(frozen=True)
class Operator:
    name: str
    label: str
    types: frozenset[str]
    arity: Arity
    build: Callable[[sa.ColumnElement, Any], sa.ColumnElement]

    def applies_to(self, field_type: str) -> bool:
        return field_type in self.types


def escape_like(text: str) -> str:
    """Make ``%``, ``_`` and ``\\`` in a user's text match themselves in LIKE patterns."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(prefix: str, suffix: str) -> Callable:
    return lambda col, v: col.ilike(f"{prefix}{escape_like(v)}{suffix}", escape="\\")


def _not(build: Callable) -> Callable:
    return lambda col, v: sa.not_(build(col, v))


def _window(col, window) -> sa.ColumnElement:
    """``start <= col < end``; either bound may be open (None)."""
    start, end = window
    parts = []
    if start is not None:
        parts.append(col >= start)
    if end is not None:
        parts.append(col < end)
    return sa.and_(*parts)


_contains, _begins, _ends = _like("%", "%"), _like("", "%"), _like("%", "")
_between = lambda col, v: col.between(v[0], v[1])  # noqa: E731

_ROWS = [
    # name, label, types, arity, build
    ("=", "equals", EQUALITY, "one", lambda col, v: col == v),
    ("!=", "does not equal", EQUALITY, "one", lambda col, v: col != v),
    ("<", "less than", ORDERED, "one", lambda col, v: col < v),
    (">", "greater than", ORDERED, "one", lambda col, v: col > v),
    ("<=", "at most", ORDERED, "one", lambda col, v: col <= v),
    (">=", "at least", ORDERED, "one", lambda col, v: col >= v),
    ("contains", "contains", TEXT, "one", _contains),
    ("beginsWith", "begins with", TEXT, "one", _begins),
    ("endsWith", "ends with", TEXT, "one", _ends),
    ("doesNotContain", "does not contain", TEXT, "one", _not(_contains)),
    ("doesNotBeginWith", "does not begin with", TEXT, "one", _not(_begins)),
    ("doesNotEndWith", "does not end with", TEXT, "one", _not(_ends)),
    ("null", "is empty", ANY_TYPE, "none", lambda col, v: col.is_(None)),
    ("notNull", "is not empty", ANY_TYPE, "none", lambda col, v: col.is_not(None)),
    ("in", "is one of", LISTABLE, "list", lambda col, v: col.in_(v)),
    ("notIn", "is not one of", LISTABLE, "list", lambda col, v: col.not_in(v)),
    ("between", "between", ORDERED, "pair", _between),
    ("notBetween", "not between", ORDERED, "pair", _not(_between)),
    # Relative dates: the compiler turns the value into a [start, end) window.
    ("inLast", "in the last", TEMPORAL, "relative", _window),
    ("inNext", "in the next", TEMPORAL, "relative", _window),
    ("olderThan", "more than ... ago", TEMPORAL, "relative", _window),
    *(
        (name, label, TEMPORAL, "period", _window)
        for name, label in [
            ("today", "today"), ("yesterday", "yesterday"), ("tomorrow", "tomorrow"),
            ("thisWeek", "this week"), ("lastWeek", "last week"), ("nextWeek", "next week"),
            ("thisMonth", "this month"), ("lastMonth", "last month"), ("nextMonth", "next month"),
            ("thisQuarter", "this quarter"), ("lastQuarter", "last quarter"), ("nextQuarter", "next quarter"),
            ("thisYear", "this year"), ("lastYear", "last year"), ("nextYear", "next year"),
        ]
    ),
]

OPERATORS: dict[str, Operator] = {row[0]: Operator(*row) for row in _ROWS}

# react-querybuilder's own 18 operator names, in its order.
RQB_OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "contains", "beginsWith", "endsWith", "doesNotContain",
                 "doesNotBeginWith", "doesNotEndWith", "null", "notNull", "in", "notIn", "between", "notBetween")


def operators_for(field_type: str) -> list[Operator]:
    """The operators a field of this type offers, in menu order."""
    return [op for op in OPERATORS.values() if op.applies_to(field_type)]
