"""Vega-Lite specs of the analytics' frames as plain dicts, for pages that draw without altair.

    from crm_kernel.analytics import specs
    specs.funnel(crm.analytics.funnel("2026-01-01", "2026-03-31"))    # a dict, JSON as it is
    specs.sized(specs.win_loss(frame), width=900, height=220)

Each chart is defined once, here; :mod:`charts` turns these dicts into altair charts for the
notebooks. Importing altair costs a page seconds and tens of MB (pandas comes with it), which a
dict does not. A spec carries its rows inline (dates as ISO text), so it renders offline.
"""

from __future__ import annotations

import polars as pl

MONEY = ",.2f"
SHARE = ".0%"
DAYS = ",.1f"
COLOURS = {"increase": "#66bb6a", "decrease": "#ef5350", "total": "#42a5f5"}
TYPES = {"N": "nominal", "O": "ordinal", "Q": "quantitative", "T": "temporal"}


def data(frame: pl.DataFrame) -> dict:
    """The rows inline, dates as ISO text (what Vega-Lite parses)."""
    return {"values": frame.with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String)).to_dicts()}


def field(shorthand: str, **more) -> dict:
    """An encoding from altair's shorthand: ``field("value:Q", format=MONEY)``."""
    name, kind = shorthand.rsplit(":", 1)
    return {"field": name, "type": TYPES[kind], **more}


def sized(spec: dict, width: int, height: int) -> dict:
    return {**spec, "width": width, "height": height}


def period_label(period: str = "quarter") -> pl.Expr:
    """A forecast period's first day as ``2026 Q1`` or ``2026-01``; no close date as such."""
    start = pl.col("period")
    text = (
        start.dt.year().cast(pl.String) + " Q" + start.dt.quarter().cast(pl.String)
        if period == "quarter"
        else start.dt.strftime("%Y-%m")
    )
    return pl.when(start.is_null()).then(pl.lit("no close date")).otherwise(text)


def forecast_by_owner(
    frame: pl.DataFrame, period: str = "quarter", select: str | None = None, title: str = "Forecast by owner"
) -> dict:
    """The forecast per expected close period, stacked by owner (``crm.analytics.forecast(
    by="owner")``). With ``select``, a click picks one bar (a point selection of that name
    over ``period_label`` and ``owner_id``) and dims the others."""
    rows = frame.with_columns(period_label=period_label(period), left_out_note=pl.col("left_out_note").fill_null(""))
    order = rows.sort("period", nulls_last=True)["period_label"].unique(maintain_order=True).to_list()
    spec = {
        "data": data(rows),
        "mark": {"type": "bar"},
        "encoding": {
            "x": field("period_label:N", sort=order, title="expected close"),
            "y": field("forecast:Q", title="forecast", stack="zero"),
            "color": field("owner:N", title="owner"),
            "tooltip": [
                field("period_label:N", title="period"),
                field("owner:N"),
                field("deals:Q"),
                field("value:Q", format=MONEY),
                field("forecast:Q", format=MONEY),
                field("left_out_note:N"),
            ],
        },
        "title": title,
    }
    if select:
        spec["params"] = [
            {"name": select, "select": {"type": "point", "fields": ["period_label", "owner_id"], "on": "click"}}
        ]
        spec["encoding"]["opacity"] = {"condition": {"param": select, "value": 1.0}, "value": 0.45}
    return spec


def waterfall(frame: pl.DataFrame, title: str = "Pipeline waterfall") -> dict:
    """Open at start, each movement floating from the running total, open at end."""
    total = pl.col("category").is_in(["open_at_start", "open_at_end"])
    running = pl.col("value").cum_sum()  # open_at_start, then each movement on top
    steps = frame.with_columns(
        _from=pl.when(total).then(0.0).otherwise(running - pl.col("value")),
        _to=pl.when(total).then(pl.col("value")).otherwise(running),
        kind=pl.when(total)
        .then(pl.lit("total"))
        .when(pl.col("value") >= 0)
        .then(pl.lit("increase"))
        .otherwise(pl.lit("decrease")),
    )
    return {
        "data": data(steps),
        "mark": {"type": "bar"},
        "encoding": {
            "x": field("category:N", sort=None, title=None),
            "y": field("_from:Q", title="value"),
            "y2": {"field": "_to"},
            "color": field("kind:N", scale={"domain": list(COLOURS), "range": list(COLOURS.values())}, legend=None),
            "tooltip": [
                field("category:N"),
                field("deals:Q"),
                field("value:Q", format=MONEY),
                field("left_out_note:N"),
            ],
        },
        "title": title,
    }


def funnel(frame: pl.DataFrame, title: str = "Funnel") -> dict:
    """Deals entering each stage, with the shares that went further and won."""
    return {
        "data": data(frame),
        "mark": {"type": "bar"},
        "encoding": {
            "y": field("stage:N", sort=None),
            "x": field("entered:Q", title="deals entered"),
            "tooltip": [
                field("stage:N"),
                field("entered:Q"),
                field("reached_next:Q"),
                field("next_rate:Q", format=SHARE),
                field("won:Q"),
                field("win_rate:Q", format=SHARE),
            ],
        },
        "title": title,
    }


def win_loss(frame: pl.DataFrame, title: str = "Won and lost per month") -> dict:
    """Deals won and lost per month of their close date (``win_rate(by="month")``), stacked."""
    key = frame.columns[0]
    return {
        "data": data(frame),
        "transform": [{"fold": ["won", "lost"], "as": ["outcome", "count"]}],
        "mark": {"type": "bar"},
        "encoding": {
            "x": field(f"{key}:T", timeUnit="yearmonth", title="closed in"),
            "y": field("count:Q", title="deals", stack="zero"),
            "color": field("outcome:N", scale={"domain": ["won", "lost"], "range": ["#66bb6a", "#ef5350"]}),
            "tooltip": [
                field(f"{key}:T", format="%Y-%m", title="month"),
                field("won:Q"),
                field("lost:Q"),
                field("win_rate:Q", format=SHARE),
                field("won_value:Q", format=MONEY),
                field("left_out_note:N"),
            ],
        },
        "title": title,
    }
