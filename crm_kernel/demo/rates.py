"""Demo exchange rates: a seeded random walk per currency, business-daily, into US dollars.

Each currency's log rate wanders around its usual level (vocabulary.USD_VALUE) and is pulled
back towards it, so that months of history look like real markets without drifting off. The
rates are what one unit is worth in US dollars; loading re-bases them to the database's
reporting currency (:func:`rebase`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from ..errors import CrmError
from .vocabulary import DAILY_VOLATILITY, USD_VALUE

SOURCE = "demo data"
PULL = 0.02  # share of the distance to the usual level closed each business day
COLUMNS = {"currency": pl.String, "rate_date": pl.Date, "rate": pl.Decimal(24, 12), "source": pl.String}


def walk(rng: np.random.Generator, currencies: Sequence[str], first: dt.date, last: dt.date) -> pl.DataFrame:
    """A rate per business day from ``first`` to ``last`` for each currency but USD (which is 1)."""
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    days = days[np.is_busday(days)]
    frames = []
    for code in dict.fromkeys(currencies):
        if code == "USD":
            continue
        level, volatility = np.log(USD_VALUE[code]), DAILY_VOLATILITY[code]
        shocks = rng.normal(0, volatility, len(days))
        log_rate = np.empty(len(days))
        current = level + rng.normal(0, 4 * volatility)
        for i, shock in enumerate(shocks):  # a few hundred steps per currency
            current += PULL * (level - current) + shock
            log_rate[i] = current
        frames.append(
            pl.DataFrame({"currency": code, "rate_date": days, "rate": np.round(np.exp(log_rate), 6), "source": SOURCE})
        )
    if not frames:
        return pl.DataFrame(schema=COLUMNS)
    return pl.concat(frames).with_columns(pl.col("rate").cast(pl.Decimal(24, 12)))


def rebase(rates: pl.DataFrame, reporting: str) -> pl.DataFrame:
    """Rates into US dollars -> rates into ``reporting`` (one of the demo's currencies), the
    same day's rate of ``reporting`` dividing each; US dollars get rows of their own."""
    if reporting == "USD":
        return rates
    if reporting not in set(rates["currency"]):
        known = ", ".join(sorted({"USD", *rates["currency"]}))
        raise CrmError(
            f"the reporting currency is {reporting}, but demo data has exchange rates only for "
            f"{known}: set one of them as the reporting currency (crm currency reporting USD) first"
        )
    base = rates.filter(pl.col("currency") == reporting).select("rate_date", base=pl.col("rate").cast(pl.Float64))
    usd = base.select(pl.lit("USD").alias("currency"), "rate_date", rate=1 / pl.col("base"), source=pl.lit(SOURCE))
    others = (
        rates.filter(pl.col("currency") != reporting)
        .join(base, on="rate_date")
        .select("currency", "rate_date", rate=pl.col("rate").cast(pl.Float64) / pl.col("base"), source="source")
    )
    return (
        pl.concat([usd, others])
        .with_columns(pl.col("rate").round(12).cast(pl.Decimal(24, 12)))
        .sort("currency", "rate_date")
    )
