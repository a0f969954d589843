"""``ForecastPage``: the forecast app, over ``crm.analytics`` and its charts' Vega-Lite specs.

    from crm_kernel.widgets.forecast import ForecastPage
    ForecastPage(crm)     # forecast by period and owner (click a bar: its deals), funnel,
                          # waterfall of this quarter, won and lost per month

The charts are :mod:`crm_kernel.analytics.specs`' dicts drawn by :class:`VegaChart` (vega,
vega-lite and vega-embed bundled from the installed vl-convert package), so nothing is fetched
to draw them, tooltips work and altair is not imported; a click on a forecast bar comes back
to the kernel as the chart's selection, which lists that bar's deals below it.
"""

from __future__ import annotations

import datetime as dt
import html

import ipywidgets as widgets
import polars as pl

from ..analytics import my_day, specs
from ..model.currencies import format_money
from .lists import RecordList, record_href
from .vega_chart import VegaChart

PICK = "bar"  # the forecast chart's selection: the clicked bar
FUNNEL_DAYS = 90
TREND_MONTHS = 12
PERIODS = [("Quarter", "quarter"), ("Month", "month")]
METHODS = [("Stage probability", "stage"), ("Learned from history", "learned")]


class ForecastPage(widgets.VBox):
    """The forecast app; ``on`` pins today (the waterfall's quarter, the funnel's window)."""

    def __init__(self, crm, on: dt.date | None = None):
        self.crm = crm
        self.today = on or my_day.today(crm)
        self.currency = crm.money.reporting_currency()
        self.period = widgets.ToggleButtons(options=PERIODS, value="quarter", description="Period")
        self.method = widgets.Dropdown(options=METHODS, value="stage", description="Weights")
        self.period.add_class("crm-forecast-period")
        self.method.add_class("crm-forecast-method")
        self.forecast_chart = VegaChart(self._forecast_chart())
        self.forecast_chart.add_class("crm-forecast-chart")
        self.picked = widgets.HTML("<p>Click a bar to list its deals.</p>")
        self.picked.add_class("crm-forecast-picked")
        self.deals = RecordList(empty="No bar chosen")
        self.deals.add_class("crm-forecast-deals")
        self.others = VegaChart(self._other_charts())
        self.others.add_class("crm-forecast-others")
        self.forecast_chart.observe(self._on_pick, "selections")
        self.period.observe(lambda _c: self.redraw(), "value")
        self.method.observe(lambda _c: self.redraw(), "value")
        super().__init__(
            [widgets.HBox([self.period, self.method]), self.forecast_chart, self.picked, self.deals, self.others]
        )
        self.add_class("crm-forecast")

    # -- the forecast and its deals ------------------------------------------------------------

    def _forecast_chart(self) -> dict:
        period, method = self.period.value, self.method.value
        self.frame = self.crm.analytics.forecast(period=period, method=method, by="owner")
        self.deal_frame = self.crm.analytics.forecast_deals(period=period, method=method).with_columns(
            period_label=specs.period_label(period)
        )
        return specs.sized(specs.forecast_by_owner(self.frame, period, select=PICK), width=900, height=300)

    def redraw(self) -> None:
        self.forecast_chart.spec = self._forecast_chart()  # its selections emptied
        self.show_deals(None, None)

    def _on_pick(self, change) -> None:
        chosen = (change["new"].get(PICK) or [None])[0]
        if not chosen:
            self.show_deals(None, None)
        else:
            self.show_deals(chosen.get("period_label"), chosen.get("owner_id"))

    def bar_deals(self, period_label: str, owner_id: str | None) -> pl.DataFrame:
        """The deals behind one bar of the forecast chart."""
        owner = pl.col("owner_id").is_null() if owner_id is None else pl.col("owner_id") == owner_id
        return self.deal_frame.filter((pl.col("period_label") == period_label) & owner)

    def show_deals(self, period_label: str | None, owner_id: str | None) -> None:
        """List the deals of one bar (none: ask for a click)."""
        if period_label is None:
            self.picked.value = "<p>Click a bar to list its deals.</p>"
            self.deals.items = []
            return
        frame = self.bar_deals(period_label, owner_id)
        owner = frame["owner"][0] if frame.height else ""
        total = format_money(frame["forecast"].fill_null(0).sum(), self.currency)
        start = frame["period"][0] if frame.height else None
        attrs = (
            f"data-period='{html.escape(period_label, quote=True)}' data-owner='{html.escape(owner_id or '')}' "
            f"data-start='{start.isoformat() if start else ''}'"
        )
        self.picked.value = (
            f"<h3 {attrs}>{frame.height} deals "
            f"of {html.escape(owner or 'no owner')} expected to close in {html.escape(period_label)}"
            f" · forecast {html.escape(total)}</h3>"
        )
        self.deals.items = [
            {
                "id": row["deal_id"],
                "title": row["title"] or row["deal_id"],
                "href": record_href("deals", row["deal_id"]),
                "meta": " · ".join(
                    x
                    for x in (
                        row["stage"],
                        format_money(row["value"], self.currency) if row["value"] is not None else "no rate",
                        f"{row['probability']:.0%}" if row["probability"] is not None else None,
                        f"forecast {format_money(row['forecast'], self.currency)}"
                        if row["forecast"] is not None
                        else None,
                        f"closes {row['expected_close_date'].isoformat()}" if row["expected_close_date"] else None,
                    )
                    if x
                ),
            }
            for row in frame.iter_rows(named=True)
        ]

    # -- funnel, waterfall, won and lost ---------------------------------------------------------

    def _other_charts(self) -> dict:
        today = self.today
        quarter = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        year_ago = (today.replace(day=1) - dt.timedelta(days=31 * (TREND_MONTHS - 1))).replace(day=1)
        a = self.crm.analytics
        funnel = specs.funnel(
            a.funnel(today - dt.timedelta(days=FUNNEL_DAYS - 1), today),
            title=f"Funnel: deals of the last {FUNNEL_DAYS} days",
        )
        waterfall = specs.waterfall(a.waterfall(quarter, today), title=f"Pipeline since {quarter.isoformat()}")
        trend = specs.win_loss(a.win_rate(by="month", start=year_ago, end=today))
        return {
            "vconcat": [
                {"hconcat": [specs.sized(funnel, 400, 220), specs.sized(waterfall, 400, 220)]},
                specs.sized(trend, 900, 220),
            ],
            "resolve": {"scale": {"color": "independent"}},
        }
