"""Converted money, with no database writes: a deal's value in the reporting currency as SQL
that PostgreSQL and DuckDB both run, and totals that say what they could not convert.

The rates themselves (the reporting currency, importing and re-basing them) are written by
``crm.money`` (:mod:`crm_kernel.services.money`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from . import tables
from .currencies import format_money

# What an open deal's "close date" is when looking up the latest rate.
FAR_FUTURE = dt.date(9999, 12, 31)


def converted_value(
    value: sa.ColumnElement,
    currency: sa.ColumnElement,
    close_date: sa.ColumnElement,
    rates: sa.TableClause | sa.Table | None = None,
) -> sa.ColumnElement:
    """``value`` in the reporting currency, as SQL that PostgreSQL and DuckDB both run.

    The rate is the nearest one on or before ``close_date`` (a closed deal's actual close
    date), or the latest when there is none (an open deal); no rate at all gives NULL.
    """
    rates = tables.table("exchange_rates") if rates is None else rates
    on = sa.func.coalesce(close_date, sa.cast(sa.literal(FAR_FUTURE.isoformat()), sa.Date))
    rate = (
        sa.select(rates.c.rate)
        .where(rates.c.currency == currency, rates.c.rate_date <= on)
        .order_by(rates.c.rate_date.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.cast(sa.func.round(value * rate, 2), sa.Numeric(18, 2))


def missing_note(missing: dict[str, int], noun: str = "deals") -> str:
    """``"1 deal in NOK, 2 deals in SEK without a rate are not included"``; empty when none is."""
    parts = [f"{n} {noun if n != 1 else noun.rstrip('s')} in {code}" for code, n in sorted(missing.items())]
    if not parts:
        return ""
    verb = "is" if len(parts) == 1 and sum(missing.values()) == 1 else "are"
    return f"{', '.join(parts)} without a rate {verb} not included"


@dataclass(frozen=True)
class Total:
    """A sum in the reporting currency, and what could not be converted into it.

    ``missing`` maps a currency without a rate to how many of the summed rows were in it;
    ``str(total)`` says so: ``"$1,200.00 (3 deals in NOK without a rate are not included)"``.
    """

    amount: Decimal
    currency: str
    missing: dict[str, int] = field(default_factory=dict)
    noun: str = "deals"

    @property
    def complete(self) -> bool:
        return not self.missing

    def note(self) -> str:
        return missing_note(self.missing, self.noun)

    def format(self, locale: str = "en_US") -> str:
        text = format_money(self.amount, self.currency, locale)
        note = self.note()
        return f"{text} ({note})" if note else text

    def __str__(self) -> str:
        return self.format()
