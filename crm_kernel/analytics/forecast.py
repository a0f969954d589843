"""Forecast: the open pipeline weighted by the chance each deal wins, per expected close
period, and a backtest that replays the past from the audit log to measure each method.

Two ways to weigh a deal:

- ``stage``: its stage's configured probability (``pipeline_stages.probability``).
- ``learned``: the share of past deals that won among those that were in the same stage at
  least as long as this one has been (closed deals only, from the stage-change history known
  at the time). Fewer than ``min_history`` such stays: the share over every past stay in the
  stage; fewer again: the configured probability.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..errors import QuerySpecError
from .history import (
    History,
    amount,
    days_between,
    first_day,
    left_out,
    next_period,
    period_start,
    weighted_cents,
)
from .pipeline_stats import stays

METHODS = ("stage", "learned")


BY = (None, "owner")


def forecast(
    history: History,
    period: str = "quarter",
    method: str = "stage",
    as_of=None,
    min_history: int = 10,
    by: str | None = None,
) -> pl.DataFrame:
    """Open deals per expected close period (``period``: its first day; null: no close date)
    and, with ``by="owner"``, per owner (``owner_id``, ``owner``), with ``deals``, ``value``,
    ``forecast`` (the weighted value), ``left_out`` and ``left_out_note``. Open deals convert
    at the latest rate (known on ``as_of``'s day)."""
    if by not in BY:
        raise QuerySpecError("by", f"unknown forecast grouping {by!r}; use owner or nothing")
    states = _weighted(history, period, method, as_of, min_history)
    keys = ["period"] + (["owner_id", "owner"] if by == "owner" else [])
    summary = states.group_by(keys).agg(
        deals=pl.len().cast(pl.Int64),
        value=amount(pl.col("cents").sum()),
        forecast=amount(pl.col("weighted").sum()),
    )
    missing = left_out(states, keys)
    out = summary.join(missing, on=keys, how="left", nulls_equal=True).with_columns(pl.col("left_out").fill_null(0))
    return out.sort(keys, nulls_last=True).select(*keys, "deals", "value", "forecast", "left_out", "left_out_note")


def forecast_deals(
    history: History, period: str = "quarter", method: str = "stage", as_of=None, min_history: int = 10
) -> pl.DataFrame:
    """The deals behind :func:`forecast`, one row each, largest forecast first: ``period``,
    ``owner_id``, ``owner``, ``deal_id``, ``title``, ``stage``, ``expected_close_date``,
    ``value`` and ``forecast`` (null: no rate for its currency), ``probability`` (the weight)."""
    states = _weighted(history, period, method, as_of, min_history)
    titles = history._lookup("deals", "title", "deal_id", "title")
    return (
        states.join(titles, on="deal_id", how="left")
        .with_columns(value=amount(pl.col("cents")), forecast=amount(pl.col("weighted")), probability=pl.col("p"))
        .sort(["forecast", "title"], descending=[True, False], nulls_last=True)
        .select(
            "period",
            "owner_id",
            "owner",
            "deal_id",
            "title",
            "stage",
            "expected_close_date",
            "value",
            "forecast",
            "probability",
        )
    )


def _weighted(history: History, period: str, method: str, as_of, min_history: int) -> pl.DataFrame:
    """Open deals with ``cents`` (converted), ``p``, ``weighted`` cents and their ``period``."""
    _method(method)
    moment = history.moment(as_of)
    states = history.states(as_of).filter(pl.col("open"))
    states = history.convert(states, history.day(moment) if as_of is not None else None)
    states = weigh(history, states, moment, method, min_history, as_of)
    return states.with_columns(
        period=period_start(pl.col("expected_close_date"), period),
        weighted=weighted_cents(pl.col("cents"), pl.col("p")),
    )


def weigh(
    history: History, states: pl.DataFrame, moment: dt.datetime, method: str, min_history: int, as_of
) -> pl.DataFrame:
    """Add ``p``, each open deal's chance to win by ``method``, as known at ``moment``."""
    if method == "stage":
        return states.with_columns(p=pl.col("stage_probability").cast(pl.Float64))
    spells = stays(history, upto=moment)
    outcomes = history.states(as_of).filter(pl.col("is_won").fill_null(False) | pl.col("is_lost").fill_null(False))
    spells = spells.join(outcomes.select("deal_id", pl.col("is_won").alias("won")), on="deal_id", how="inner").select(
        "stage_id", "days", pl.col("won").cast(pl.Int64)
    )
    per_stage = spells.group_by("stage_id").agg(n_stage=pl.len(), won_stage=pl.col("won").sum())
    # For each stay length: how many stays lasted at least that long, and how many of them won.
    at_least = (
        spells.sort("stage_id", "days")
        .with_columns(
            n_ge=(pl.len() - pl.int_range(pl.len())).over("stage_id"),
            won_ge=pl.col("won").reverse().cum_sum().reverse().over("stage_id"),
        )
        .group_by("stage_id", "days")
        .agg(pl.col("n_ge").max(), pl.col("won_ge").max())
        .sort("days")
    )
    aged = states.with_columns(
        age=days_between(pl.lit(moment, pl.Datetime("us", "UTC")), pl.col("entered_at")), _row=pl.int_range(pl.len())
    )
    aged = (
        aged.sort("age")
        .join_asof(at_least, left_on="age", right_on="days", by="stage_id", strategy="forward", check_sortedness=False)
        .join(per_stage, on="stage_id", how="left")
        .sort("_row")
    )
    p = (
        pl.when(pl.col("n_ge").fill_null(0) >= max(min_history, 1))
        .then(pl.col("won_ge") / pl.col("n_ge"))
        .when(pl.col("n_stage").fill_null(0) >= max(min_history, 1))
        .then(pl.col("won_stage") / pl.col("n_stage"))
        .otherwise(pl.col("stage_probability").cast(pl.Float64))
    )
    return aged.with_columns(p=p.round(4)).drop("age", "_row", "days", "n_ge", "won_ge", "n_stage", "won_stage")


def backtest(history: History, periods: int = 4, period: str = "quarter", min_history: int = 10) -> pl.DataFrame:
    """Replay the last ``periods`` complete periods: at each period's start, forecast the open
    deals expected to close in it with each method, knowing only the history up to then; the
    actual is what those same deals were won for within the period.

    One row per period and method: ``period``, ``method``, ``deals``, ``forecast``,
    ``actual``, ``error`` (forecast - actual), ``ape`` (absolute percentage error; null when
    nothing was won), ``mape`` (the method's mean ape over the periods), ``left_out``.
    Every deal converts at the rate of the period's first day, so exchange-rate moves are
    not counted as forecast error.
    """
    if periods < 1:
        raise QuerySpecError("periods", f"needs at least one period, got {periods}")
    starts = [first_day(history.day(history.now), period)]
    for _ in range(periods):
        starts.insert(0, _previous(starts[0], period))
    rows = []
    for start in starts[:-1]:
        last = next_period(start, period) - dt.timedelta(days=1)
        before = history.moment(start, "start") - dt.timedelta(microseconds=1)
        deals = history.states(before).filter(pl.col("open") & pl.col("expected_close_date").is_between(start, last))
        deals = history.convert(deals, start)
        ends = (
            history.states(history.moment(last, "end"))
            .filter(pl.col("is_won").fill_null(False) & pl.col("actual_close_date").is_between(start, last))
            .select("deal_id", pl.col("value").alias("won_value"), pl.col("currency").alias("won_currency"))
        )
        deals = history.convert(
            deals.join(ends, on="deal_id", how="left"),
            start,
            value="won_value",
            currency="won_currency",
            out="won_cents",
        )
        missing = deals.filter(pl.col("cents").is_null() | pl.col("won_cents").is_null())
        counted = deals.filter(pl.col("cents").is_not_null() & pl.col("won_cents").is_not_null())
        actual = int(counted["won_cents"].sum())
        for method in METHODS:
            weighted = weigh(history, counted, before, method, min_history, before)
            cents = int(weighted.select(weighted_cents(pl.col("cents"), pl.col("p")).sum()).item())
            rows.append((start, method, counted.height, cents, actual, missing.height))
    frame = pl.DataFrame(
        rows,
        schema={
            "period": pl.Date,
            "method": pl.String,
            "deals": pl.Int64,
            "_forecast": pl.Int64,
            "_actual": pl.Int64,
            "left_out": pl.Int64,
        },
        orient="row",
    )
    frame = frame.with_columns(
        forecast=amount(pl.col("_forecast")),
        actual=amount(pl.col("_actual")),
        error=amount(pl.col("_forecast") - pl.col("_actual")),
        ape=pl.when(pl.col("_actual") > 0).then(
            (pl.col("_forecast") - pl.col("_actual")).abs() / pl.col("_actual") * 100
        ),
    ).with_columns(mape=pl.col("ape").mean().over("method"))
    return frame.select("period", "method", "deals", "forecast", "actual", "error", "ape", "mape", "left_out")


def _previous(start: dt.date, period: str) -> dt.date:
    return first_day(start - dt.timedelta(days=1), period)


def _method(method: str) -> str:
    if method not in METHODS:
        raise QuerySpecError("method", f"unknown forecast method {method!r}; use stage or learned")
    return method
