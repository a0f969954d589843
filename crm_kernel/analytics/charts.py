"""Altair charts of the analytics' frames, one helper per analytic, each with tooltips.

    from crm_kernel.analytics import charts
    charts.pipeline(crm.analytics.pipeline())          # an altair.Chart
    charts.waterfall(crm.analytics.waterfall("2026-01-01", "2026-03-31"))

A chart carries its rows inline (no data is fetched when it is drawn), so it renders offline
and saves to standalone HTML. Amounts are in the reporting currency; the pipeline's tooltip
repeats the ``left_out_note`` of deals whose currency had no rate. The charts the forecast app
draws are defined once, as plain Vega-Lite dicts, in :mod:`specs` (the app does without altair);
here they become altair charts.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from . import specs
from .specs import DAYS, MONEY, SHARE

period_label = specs.period_label  # the forecast's periods as the charts label them


def _data(frame: pl.DataFrame) -> alt.Data:
    return alt.Data(**specs.data(frame))


def _from_spec(spec: dict) -> alt.Chart:
    """An altair chart of one of :mod:`specs`' dicts (validated), its rows kept inline."""
    chart = alt.Chart.from_dict(spec)
    chart.data = alt.Data(**spec["data"])  # as the other charts: not moved to top-level datasets
    return chart


def _key(frame: pl.DataFrame) -> str:
    return frame.columns[0]


def _label(frame: pl.DataFrame) -> alt.X | alt.Y:
    key = _key(frame)
    if frame.schema[key] == pl.Date:
        return alt.X(f"{key}:T", title=key.replace("_", " "), timeUnit="yearmonth")
    return alt.X(f"{key}:N", title=key.replace("_", " "), sort=None)


def pipeline(frame: pl.DataFrame, title: str = "Open pipeline") -> alt.LayerChart:
    """Value per stage (owner, month) as bars, the weighted value as a narrower bar inside."""
    key = _key(frame)
    tooltip = [
        alt.Tooltip(f"{key}:T", format="%Y-%m") if frame.schema[key] == pl.Date else f"{key}:N",
        "deals:Q",
        alt.Tooltip("value:Q", format=MONEY),
        alt.Tooltip("weighted:Q", format=MONEY),
        alt.Tooltip("avg_value:Q", format=MONEY),
        alt.Tooltip("avg_days_in_stage:Q", format=DAYS),
        "left_out_note:N",
    ]
    base = alt.Chart(_data(frame)).encode(x=_label(frame), tooltip=tooltip)
    value = base.mark_bar(color="#90caf9").encode(y=alt.Y("value:Q", title="value"))
    weighted = base.mark_bar(color="#1e88e5", size=12).encode(y="weighted:Q")
    return (value + weighted).properties(title=title)


def waterfall(frame: pl.DataFrame, title: str = "Pipeline waterfall") -> alt.Chart:
    """Open at start, each movement floating from the running total, open at end."""
    return _from_spec(specs.waterfall(frame, title))


def funnel(frame: pl.DataFrame, title: str = "Funnel") -> alt.Chart:
    """Deals entering each stage, with the shares that went further and won."""
    return _from_spec(specs.funnel(frame, title))


def velocity(frame: pl.DataFrame, title: str = "Days in stage") -> alt.LayerChart:
    """Median days per stage as bars, the 80th percentile as a tick."""
    tooltip = [
        "stage:N",
        "stays:Q",
        alt.Tooltip("median_days:Q", format=DAYS),
        alt.Tooltip("p80_days:Q", format=DAYS),
        alt.Tooltip("avg_days:Q", format=DAYS),
    ]
    base = alt.Chart(_data(frame)).encode(x=alt.X("stage:N", sort=None), tooltip=tooltip)
    return (
        base.mark_bar().encode(y=alt.Y("median_days:Q", title="days"))
        + base.mark_tick(color="#e65100", thickness=3).encode(y="p80_days:Q")
    ).properties(title=title)


def slippage(frame: pl.DataFrame, title: str = "Close dates pushed out") -> alt.Chart:
    """Days of close dates pushed later, per owner."""
    return (
        alt.Chart(_data(frame))
        .mark_bar(color="#ffa726")
        .encode(
            x=alt.X("owner:N", sort="-y"),
            y=alt.Y("days_pushed:Q", title="days pushed"),
            tooltip=[
                "owner:N",
                "deals:Q",
                "pushes:Q",
                "days_pushed:Q",
                alt.Tooltip("avg_days_per_push:Q", format=DAYS),
            ],
        )
        .properties(title=title)
    )


def win_rate(frame: pl.DataFrame, title: str = "Win rate") -> alt.Chart:
    """Won share of closed deals per segment."""
    key = _key(frame)
    return (
        alt.Chart(_data(frame))
        .mark_bar(color="#66bb6a")
        .encode(
            x=alt.X(f"{key}:N", sort=None),
            y=alt.Y("win_rate:Q", axis=alt.Axis(format="%"), title="win rate"),
            tooltip=[
                f"{key}:N",
                "won:Q",
                "lost:Q",
                "closed:Q",
                alt.Tooltip("win_rate:Q", format=SHARE),
                alt.Tooltip("won_value:Q", format=MONEY),
                "left_out_note:N",
            ],
        )
        .properties(title=title)
    )


def cycle_time(frame: pl.DataFrame, title: str = "Days to win") -> alt.LayerChart:
    """Median days from creation to a win per segment, the 80th percentile as a tick."""
    key = _key(frame)
    tooltip = [
        f"{key}:N",
        "deals:Q",
        alt.Tooltip("median_days:Q", format=DAYS),
        alt.Tooltip("p80_days:Q", format=DAYS),
        alt.Tooltip("avg_days:Q", format=DAYS),
    ]
    base = alt.Chart(_data(frame)).encode(x=alt.X(f"{key}:N", sort=None), tooltip=tooltip)
    return (
        base.mark_bar().encode(y=alt.Y("median_days:Q", title="days"))
        + base.mark_tick(color="#e65100", thickness=3).encode(y="p80_days:Q")
    ).properties(title=title)


def forecast(frame: pl.DataFrame, title: str = "Forecast") -> alt.LayerChart:
    """Pipeline value per expected close period, the forecast (weighted) inside it."""
    tooltip = [
        "period:N",
        "deals:Q",
        alt.Tooltip("value:Q", format=MONEY),
        alt.Tooltip("forecast:Q", format=MONEY),
        "left_out_note:N",
    ]
    base = alt.Chart(_data(frame)).encode(x=alt.X("period:O", title="expected close"), tooltip=tooltip)
    return (
        base.mark_bar(color="#90caf9").encode(y=alt.Y("value:Q", title="value"))
        + base.mark_bar(color="#1e88e5", size=12).encode(y="forecast:Q")
    ).properties(title=title)


def backtest(frame: pl.DataFrame, title: str = "Forecast against actual") -> alt.LayerChart:
    """Each method's forecast per period as lines, the actual as bars."""
    tooltip = [
        "period:N",
        "method:N",
        "deals:Q",
        alt.Tooltip("forecast:Q", format=MONEY),
        alt.Tooltip("actual:Q", format=MONEY),
        alt.Tooltip("ape:Q", format=",.1f", title="error %"),
        alt.Tooltip("mape:Q", format=",.1f", title="MAPE"),
    ]
    data = _data(frame)
    # one bar per period: every method's row repeats the same actual
    actual = (
        alt.Chart(data)
        .transform_aggregate(actual="max(actual)", groupby=["period"])
        .mark_bar(color="#cfd8dc")
        .encode(
            x=alt.X("period:O"),
            y=alt.Y("actual:Q", title="value"),
            tooltip=["period:N", alt.Tooltip("actual:Q", format=MONEY)],
        )
    )
    lines = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(x=alt.X("period:O"), y="forecast:Q", color="method:N", tooltip=tooltip)
    )
    return (actual + lines).properties(title=title)


def forecast_by_owner(
    frame: pl.DataFrame, period: str = "quarter", select: str | None = None, title: str = "Forecast by owner"
) -> alt.Chart:
    """The forecast per expected close period, stacked by owner; with ``select``, a click picks
    one bar (see :func:`specs.forecast_by_owner`)."""
    return _from_spec(specs.forecast_by_owner(frame, period, select, title))


def win_loss(frame: pl.DataFrame, title: str = "Won and lost per month") -> alt.Chart:
    """Deals won and lost per month of their close date (``win_rate(by="month")``), stacked."""
    return _from_spec(specs.win_loss(frame, title))
