"""``MyDay``: the page a sales rep opens first, over :mod:`crm_kernel.analytics.my_day`.

    from crm_kernel.widgets.my_day import MyDay
    MyDay(crm)            # the acting user's day; managers also pick a rep and see the team

KPI cards (:class:`~crm_kernel.widgets.kpi.KpiCard`), tasks due today or overdue with a tick
to complete them, deals that need attention, recent activity and, for managers, admins and
analysts, the same KPIs per owner they may read (a manager: their teams; see
:func:`~crm_kernel.analytics.my_day.visible_owners`). An analyst's tasks have no tick: they
only look. Every row links to its record page. All figures come from the library; this module
only lays them out.
"""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

import ipywidgets as widgets

from ..analytics import my_day
from ..model.currencies import format_money
from ..model.money import Total
from .kpi import KpiCard, money_traits
from .lists import RecordList, TaskList, record_href

KPIS = [  # key, label, in the order the cards appear
    ("open_pipeline", "Open pipeline"),
    ("weighted_pipeline", "Weighted pipeline"),
    ("won_this_month", "Won this month"),
    ("win_rate", "Win rate"),
    ("average_deal_size", "Average deal size"),
    ("closing_this_month", "Closing this month"),
]
TEAM_COLUMNS = [
    ("owner", "Owner"),
    ("open_pipeline", "Open pipeline"),
    ("weighted_pipeline", "Weighted"),
    ("won_this_month", "Won this month"),
    ("won_last_month", "Won last month"),
    ("win_rate", "Win rate"),
    ("average_deal_size", "Avg deal"),
    ("closing_this_month", "Closing this month"),
]


def _share(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _set(card: KpiCard, **traits) -> None:
    """Change a card's traits as one update of the page."""
    with card.hold_sync():
        for name, value in traits.items():
            setattr(card, name, value)


def _money(amount: float | None, currency: str) -> str:
    return "" if amount is None else format_money(amount, currency)


class MyDay(widgets.VBox):
    """The acting user's day (``owner_id``: another owner's, for a manager, an admin or an
    analyst); ``on`` pins today."""

    def __init__(self, crm, owner_id=None, on: dt.date | None = None):
        self.crm = crm
        self.on = on
        self.zone = ZoneInfo(crm.config.timezone)
        self.manager = my_day.sees_team(crm)
        me = crm.users.get(crm.user_id)
        self.heading = widgets.HTML(
            f"<div class='crm-day-heading'><b>{html.escape(me['full_name'])}</b> · "
            f"{(on or my_day.today(crm)).strftime('%A %-d %B %Y')}</div>"
        )
        self.owner = widgets.Dropdown(description="Day of", layout=widgets.Layout(width="320px"))
        self.owner.add_class("crm-day-owner")
        choices = [(f"{me['full_name']} (me)", str(crm.user_id))]
        if self.manager:
            choices += [(o["name"], o["id"]) for o in my_day.owners(crm) if o["id"] != str(crm.user_id)]
        self.owner.options = choices
        self.owner.value = str(owner_id or crm.user_id) if self.manager else str(crm.user_id)
        self.owner.layout.display = None if self.manager else "none"
        self.cards = {key: KpiCard(key=key, label=label) for key, label in KPIS}
        self.tasks = TaskList(crm, empty="No task due today", on_change=self.refresh)
        self.tasks.checkable = not my_day.read_only(crm)
        self.attention = RecordList(empty="Every deal is on track")
        self.recent = RecordList(empty="No activity yet")
        self.team = widgets.HTML()
        cards = widgets.HBox(list(self.cards.values()), layout=widgets.Layout(flex_flow="row wrap"))
        cards.add_class("crm-day-cards")

        def section(title: str, body, css: str, side: bool = False) -> widgets.VBox:
            # side by side in a row, sections share its width; stacked, each keeps its height
            layout = (
                widgets.Layout(flex="1 1 0", min_width="320px", margin="0 8px")
                if side
                else widgets.Layout(margin="0 8px")
            )
            box = widgets.VBox([widgets.HTML(f"<h3>{html.escape(title)}</h3>"), body], layout=layout)
            box.add_class("crm-day-section")
            box.add_class(css)
            return box

        lists = widgets.HBox(
            [
                section("Tasks due and overdue", self.tasks, "crm-day-tasks", side=True),
                section("Deals that need attention", self.attention, "crm-day-attention", side=True),
            ],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        parts = [
            widgets.HBox([self.heading, self.owner]),
            cards,
            lists,
            section("Recent activity", self.recent, "crm-day-recent"),
        ]
        if self.manager:
            parts.append(section("Team", self.team, "crm-day-team-section"))
        super().__init__(parts)
        self.add_class("crm-my-day")
        self.owner.observe(lambda _change: self.refresh(), "value")
        self.refresh(team=True)

    @property
    def owner_id(self) -> str:
        return self.owner.value

    def refresh(self, team: bool = False) -> None:
        """Read everything again (after a tick, or another owner chosen)."""
        owner, on = self.owner_id, self.on
        self.show_figures(my_day.figures(self.crm, owner, on=on))
        self.tasks.items = [self._task(row) for row in my_day.tasks(self.crm, owner, on=on).iter_rows(named=True)]
        self.attention.items = [
            self._deal(row) for row in my_day.attention(self.crm, owner, on=on).iter_rows(named=True)
        ]
        self.recent.items = [self._activity(row) for row in my_day.recent(self.crm, owner).iter_rows(named=True)]
        if self.manager:
            self.show_team(my_day.team(self.crm, on=on))

    def show_figures(self, day: my_day.DayFigures) -> None:
        c = self.cards
        _set(
            c["open_pipeline"],
            **money_traits(day.open_pipeline),
            detail=f"{day.open_deals:,} open deal{'s' if day.open_deals != 1 else ''}",
        )
        _set(c["weighted_pipeline"], **{**money_traits(day.weighted_pipeline), "detail": "by stage probability"})
        last = Total(day.won_last_month.amount, day.currency).format()
        change = day.won_change
        _set(
            c["won_this_month"],
            **{
                **money_traits(day.won_this_month),
                "detail": f"vs {last} last month",
                "trend": "up" if change > 0 else "down" if change < 0 else "flat",
            },
        )
        closed = day.won_in_window + day.lost_in_window
        _set(
            c["win_rate"],
            **{
                "value": _share(day.win_rate),
                "raw": "" if day.win_rate is None else f"{day.win_rate:.4f}",
                "detail": f"{day.won_in_window} won of {closed} closed, last {my_day.WINDOW_DAYS} days",
            },
        )
        _set(
            c["average_deal_size"],
            **{**money_traits(day.average_deal_size), "detail": f"won in the last {my_day.WINDOW_DAYS} days"},
        )
        _set(
            c["closing_this_month"],
            **{
                "value": f"{day.closing_this_month:,}",
                "raw": str(day.closing_this_month),
                "detail": Total(day.closing_this_month_value.amount, day.currency).format(),
                "note": day.closing_this_month_value.note(),
            },
        )

    def show_team(self, frame) -> None:
        currency = self.crm.money.reporting_currency()
        head = "".join(f"<th>{html.escape(label)}</th>" for _, label in TEAM_COLUMNS)
        rows = []
        for row in frame.iter_rows(named=True):
            cells = []
            for key, _ in TEAM_COLUMNS:
                value = row[key]
                if key == "owner":
                    text = value
                elif key == "win_rate":
                    text = _share(value)
                elif key == "closing_this_month":
                    text = f"{value:,}"
                else:
                    text = _money(value, currency)
                cells.append(f"<td data-kpi='{key}'>{html.escape(str(text))}</td>")
            note = row["left_out_note"]
            title = f" title='{html.escape(note, quote=True)}'" if note else ""
            rows.append(f"<tr data-owner='{html.escape(row['owner_id'])}'{title}>{''.join(cells)}</tr>")
        self.team.value = (
            f"<table class='crm-day-team'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def _local(self, moment: dt.datetime | None) -> str:
        return "" if moment is None else moment.astimezone(self.zone).strftime("%-d %b %H:%M")

    def _task(self, row: dict) -> dict:
        meta = [row["type"].replace("_", " "), f"due {self._local(row['due_at'])}"]
        meta += [x for x in (row["deal"], row["company"]) if x]
        return {
            "id": str(row["id"]),
            "version": row["version"],
            "title": row["subject"],
            "href": record_href("activities", row["id"]),
            "meta": " · ".join(meta),
            "badge": "overdue" if row["overdue"] else "today",
        }

    def _deal(self, row: dict) -> dict:
        passed = "has passed" in row["reason"]
        meta = [x for x in (row["company"], row["reason"]) if x]
        return {
            "id": str(row["id"]),
            "title": row["title"],
            "href": record_href("deals", row["id"]),
            "meta": " · ".join(meta),
            "badge": "overdue" if passed else "quiet",
        }

    def _activity(self, row: dict) -> dict:
        meta = [row["type"].replace("_", " "), self._local(row["created_at"])] + ([row["deal"]] if row["deal"] else [])
        return {
            "id": str(row["id"]),
            "title": row["subject"],
            "href": record_href("activities", row["id"]),
            "meta": " · ".join(meta),
            "badge": "" if row["status"] == "completed" else row["status"],
        }
