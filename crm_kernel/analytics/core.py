"""``crm.analytics``: pipeline analytics from the deals' history, as polars DataFrames.

    crm.analytics.pipeline(by="stage", as_of=dt.date(2026, 3, 31))
    crm.analytics.waterfall("2026-01-01", "2026-03-31")
    duck = crm.analytics(backend="duckdb", snapshot=folder)   # the same answers over a snapshot
    duck.forecast(period="quarter", method="learned")

Every figure is in the reporting currency (``crm.money``); deals whose currency has no rate
are counted in ``left_out`` and named in ``left_out_note``, never added in. ``now`` pins the
clock (ages in stage, the last complete period of a backtest).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

from . import forecast as forecasts
from . import pipeline_stats as stats
from .history import History, Source

if TYPE_CHECKING:
    from ..client import CRM


class Analytics:
    """Analytics over one CRM, on PostgreSQL or (``backend="duckdb"``) a snapshot."""

    def __init__(self, crm: CRM, backend: str = "postgres", snapshot=None, now: dt.datetime | None = None):
        Source(crm, backend, snapshot)  # refuses a bad backend now rather than at the first call
        self.crm, self.backend, self.snapshot, self.now = crm, backend, snapshot, now

    def __call__(self, backend: str = "postgres", snapshot=None, now: dt.datetime | None = None) -> Analytics:
        """The same analytics on another engine or snapshot, or with a fixed clock."""
        return Analytics(self.crm, backend, snapshot, now if now is not None else self.now)

    def __repr__(self) -> str:
        return f"<Analytics on {self.backend}>"

    def _run(self, analytic: Callable[..., pl.DataFrame], *args, **kwargs) -> pl.DataFrame:
        with Source(self.crm, self.backend, self.snapshot) as source:
            history = History(source, timezone=self.crm.config.timezone, now=self.now)
            return analytic(history, *args, **kwargs)

    def pipeline(self, by: str = "stage", as_of=None) -> pl.DataFrame:
        """Open deals per ``stage``, ``owner`` or expected close ``month``, as they stood at
        ``as_of`` (a date: the end of that day): deals, value, weighted, avg_value,
        avg_days_in_stage."""
        return self._run(stats.pipeline, by, as_of)

    def waterfall(self, start, end, close_from: dt.date | None = None, close_to: dt.date | None = None) -> pl.DataFrame:
        """How the open pipeline (optionally: closing between ``close_from`` and ``close_to``) got
        from ``start`` to ``end``; the rows reconcile exactly."""
        return self._run(stats.waterfall, start, end, close_from, close_to)

    def funnel(self, start, end) -> pl.DataFrame:
        """Deals that entered each stage in the period, and the shares that went further and won."""
        return self._run(stats.funnel, start, end)

    def velocity(self, start=None, end=None) -> pl.DataFrame:
        """Median and 80th-percentile days spent in each stage."""
        return self._run(stats.velocity, start, end)

    def slippage(self, start=None, end=None) -> pl.DataFrame:
        """Close dates pushed later, per owner."""
        return self._run(stats.slippage, start, end)

    def win_rate(self, by: str = "owner", start=None, end=None, bands=stats.SIZE_BANDS) -> pl.DataFrame:
        """Won / closed per ``owner``, ``industry``, ``size_band`` or ``lead_source``."""
        return self._run(stats.win_rate, by, start, end, bands)

    def cycle_time(self, by: str = "owner", start=None, end=None, bands=stats.SIZE_BANDS) -> pl.DataFrame:
        """Days from creation to a win per ``owner``, ``industry``, ``size_band`` or ``lead_source``."""
        return self._run(stats.cycle_time, by, start, end, bands)

    def forecast(
        self, period: str = "quarter", method: str = "stage", as_of=None, min_history: int = 10, by: str | None = None
    ) -> pl.DataFrame:
        """The weighted pipeline per expected close ``period`` (month or quarter), and per owner
        with ``by="owner"``, weighing each deal by its stage's probability or
        (``method="learned"``) by history."""
        return self._run(forecasts.forecast, period, method, as_of, min_history, by)

    def forecast_deals(
        self, period: str = "quarter", method: str = "stage", as_of=None, min_history: int = 10
    ) -> pl.DataFrame:
        """The open deals behind :meth:`forecast`, one row each with its period, owner and weight."""
        return self._run(forecasts.forecast_deals, period, method, as_of, min_history)

    def backtest(self, periods: int = 4, period: str = "quarter", min_history: int = 10) -> pl.DataFrame:
        """Each method's forecast error over the last ``periods`` complete periods, replayed
        from the audit log."""
        return self._run(forecasts.backtest, periods, period, min_history)
