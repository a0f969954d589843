"""The operators a rule can use: one table read by the compiler and by the builder widget.

Each row says which field types the operator applies to, what shape of value it takes, and
how it becomes a SQLAlchemy expression. Values reach ``build`` already checked and converted
by the compiler; they are always bound parameters, never SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import sqlalchemy as sa

from .schema import NUMERIC_TYPES as NUMBER
from .schema import ORDERED_TYPES as ORDERED
from .schema import TEMPORAL_TYPES as TEMPORAL
from .schema import TEXT_TYPES as TEXT

Arity = Literal["none", "one", "list", "pair", "relative", "period"]

EQUALITY = ORDERED | {"enum", "boolean", "uuid"}
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
        return field_type in self.types or (field_type == "tags" and self.name in TAG_LABELS)


def escape_like(text: str) -> str:
    """Make ``%``, ``_`` and ``\\`` in a user's text match themselves in LIKE patterns."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def escape_like_sql(expr: sa.ColumnElement) -> sa.ColumnElement:
    """:func:`escape_like` in SQL, for a pattern taken from another field of the row."""
    for char in ("\\", "%", "_"):  # the backslash first, or the others' escapes would double
        expr = sa.func.replace(expr, sa.literal(char, sa.Text), sa.literal("\\" + char, sa.Text))
    return expr


def _like(prefix: str, suffix: str) -> Callable:
    def build(col, v):
        if isinstance(v, sa.ColumnElement):  # another field: its wildcards are literal too
            pattern = escape_like_sql(v)
            if prefix:
                pattern = sa.literal(prefix, sa.Text) + pattern
            if suffix:
                pattern = pattern + sa.literal(suffix, sa.Text)
            return col.ilike(pattern, escape="\\")
        return col.ilike(f"{prefix}{escape_like(v)}{suffix}", escape="\\")

    return build


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


def _between(col, v) -> sa.ColumnElement:
    low, high = v
    if isinstance(low, sa.ColumnElement) or isinstance(high, sa.ColumnElement):
        # Bounds from other fields: which is lower is known only per row.
        return sa.case((low <= high, col.between(low, high)), else_=col.between(high, low))
    return col.between(low, high)


# The comparisons: also what a count of related records (spec.py) and the builder's count row take.
COMPARISONS = ("=", "!=", "<", ">", "<=", ">=")

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
            ("today", "today"),
            ("yesterday", "yesterday"),
            ("tomorrow", "tomorrow"),
            ("thisWeek", "this week"),
            ("lastWeek", "last week"),
            ("nextWeek", "next week"),
            ("thisMonth", "this month"),
            ("lastMonth", "last month"),
            ("nextMonth", "next month"),
            ("thisQuarter", "this quarter"),
            ("lastQuarter", "last quarter"),
            ("nextQuarter", "next quarter"),
            ("thisYear", "this year"),
            ("lastYear", "last year"),
            ("nextYear", "next year"),
        ]
    ),
]

OPERATORS: dict[str, Operator] = {row[0]: Operator(*row) for row in _ROWS}

# react-querybuilder's own 18 operator names, in its order.
RQB_OPERATORS = (
    "=",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "contains",
    "beginsWith",
    "endsWith",
    "doesNotContain",
    "doesNotBeginWith",
    "doesNotEndWith",
    "null",
    "notNull",
    "in",
    "notIn",
    "between",
    "notBetween",
)


# What the operators mean on a multi-valued field (tags), and how they read there. Tags compare
# without regard to case; "=" takes a nested group over the elements and a match mode.
TAG_LABELS = {
    "contains": "has tag",
    "doesNotContain": "does not have tag",
    "in": "has any of",
    "notIn": "has none of",
    "null": "has no tags",
    "notNull": "has tags",
    "=": "matches",
}


def operators_for(field_type: str) -> list[Operator]:
    """The operators a field of this type offers, in menu order."""
    if field_type == "tags":
        return [replace(OPERATORS[name], label=label) for name, label in TAG_LABELS.items()]
    return [op for op in OPERATORS.values() if op.applies_to(field_type)]
