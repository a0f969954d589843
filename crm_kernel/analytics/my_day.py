"""*My day*: the figures, tasks and deals a sales rep looks at first, as plain values.

    from crm_kernel.analytics import my_day
    day = my_day.figures(crm, owner_id)          # DayFigures: open pipeline, won this month, ...
    team = my_day.team(crm)                      # the same per owner the user may see, a polars frame
    my_day.tasks(crm, owner_id)                  # due today or overdue, oldest first
    my_day.attention(crm, owner_id)              # open deals gone quiet or past their close date
    my_day.recent(crm, owner_id)                 # the latest activities on the owner's work

Everything is read through query specs (``crm.query``), so the same rules apply as everywhere
else: soft-deleted rows are invisible, money is in the reporting currency at the deal's rate
(its close date's when closed, else the latest), and a deal whose currency has no rate is
counted in ``missing`` instead of being added in (:class:`~crm_kernel.model.money.Total`).
"Today" and months are the CRM's time zone's (``CRM_TIMEZONE``); ``today`` pins the clock.

Whose day a user may look at follows row-level security (sql/017), whatever the login: an admin
and an analyst everyone's (the analyst read-only), a manager their own and their teams'
members', a rep only their own (:func:`visible_owners`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa

from ..model.money import Total

if TYPE_CHECKING:
    from ..client import CRM

QUIET_DAYS = 14  # an open deal with no activity for this long needs attention
WINDOW_DAYS = 90  # win rate and average deal size look at deals closed in this many days
RECENT = 10  # activities in "recent activity"
TEAM_ROLES = ("manager", "admin", "analyst")  # who may see the team and another owner's day
READ_ONLY_ROLES = ("analyst",)  # who look at a day without completing its tasks

_OPEN = [
    {"field": "stage.is_closed_won", "operator": "=", "value": False},
    {"field": "stage.is_closed_lost", "operator": "=", "value": False},
]
_WON = {"field": "stage.is_closed_won", "operator": "=", "value": True}
_LOST = {"field": "stage.is_closed_lost", "operator": "=", "value": True}


@dataclass
class DayFigures:
    """One owner's KPIs. Money is a :class:`Total` in the reporting currency; ``win_rate`` is
    won / (won + lost) of deals closed in the last :data:`WINDOW_DAYS` days (None: none closed),
    ``average_deal_size`` the mean converted value of the deals won in that window."""

    currency: str
    open_pipeline: Total
    weighted_pipeline: Total
    won_this_month: Total
    won_last_month: Total
    average_deal_size: Total
    open_deals: int = 0
    won_this_month_deals: int = 0
    won_last_month_deals: int = 0
    won_in_window: int = 0
    lost_in_window: int = 0
    closing_this_month: int = 0
    closing_this_month_value: Total | None = None

    @property
    def win_rate(self) -> float | None:
        closed = self.won_in_window + self.lost_in_window
        return self.won_in_window / closed if closed else None

    @property
    def won_change(self) -> Decimal:
        """This month's won value less last month's."""
        return self.won_this_month.amount - self.won_last_month.amount


@dataclass(frozen=True)
class Calendar:
    """The days the figures are about, in the CRM's time zone."""

    today: dt.date
    month_start: dt.date = field(init=False)
    month_end: dt.date = field(init=False)
    last_month_start: dt.date = field(init=False)
    last_month_end: dt.date = field(init=False)
    window_start: dt.date = field(init=False)

    def __post_init__(self):
        start = self.today.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        last_end = start - dt.timedelta(days=1)
        for name, value in (
            ("month_start", start),
            ("month_end", following - dt.timedelta(days=1)),
            ("last_month_start", last_end.replace(day=1)),
            ("last_month_end", last_end),
            ("window_start", self.today - dt.timedelta(days=WINDOW_DAYS - 1)),
        ):
            object.__setattr__(self, name, value)


def today(crm: CRM) -> dt.date:
    """Today in the CRM's time zone."""
    return dt.datetime.now(ZoneInfo(crm.config.timezone)).date()


def role(crm: CRM) -> str:
    """The acting user's role (``rep``, ``manager``, ``admin``, ``analyst``), as the CRM
    resolved it when it connected (the access rules read the same)."""
    return crm.user_role


def sees_team(crm: CRM) -> bool:
    """Whether the acting user may see the team view and another owner's day."""
    return role(crm) in TEAM_ROLES


def read_only(crm: CRM) -> bool:
    """Whether the acting user only looks (an analyst: no task is theirs to complete)."""
    return role(crm) in READ_ONLY_ROLES


def visible_owners(crm: CRM) -> list[str] | None:
    """The owners whose deals and activities the acting user reads: None for everyone (an admin,
    an analyst), else their ids (a manager: themselves and the members of the teams they
    manage; a rep: themselves). Asked of the database's own rule (``crm_visible_owners``,
    sql/017), so the views list no one whose rows row-level security hides, and the owner's
    login, which no policy binds, shows the same."""
    with crm.engine.connect() as conn:
        everyone, owners = conn.execute(sa.text("SELECT crm_sees_all(), crm_visible_owners()")).one()
    return None if everyone else sorted(str(o) for o in owners)


# -- KPIs ------------------------------------------------------------------------------------


def figures(crm: CRM, owner_id=None, *, on: dt.date | None = None) -> DayFigures:
    """The KPIs of one owner (default: the acting user)."""
    owner = str(owner_id or crm.user_id)
    return _all_figures(crm, [owner], on).get(owner) or _empty(crm.money.reporting_currency())


def team(crm: CRM, *, on: dt.date | None = None) -> pl.DataFrame:
    """The KPIs per owner of at least one deal (active users) whose deals the acting user reads
    (:func:`visible_owners`), ordered by open pipeline.

    Columns: ``owner_id``, ``owner``, ``open_pipeline``, ``weighted_pipeline``,
    ``won_this_month``, ``won_last_month``, ``win_rate``, ``average_deal_size``,
    ``closing_this_month``, ``closing_this_month_value`` (floats in the reporting currency)
    and ``left_out_note`` (deals whose currency had no rate).
    """
    people = crm.query(
        {
            "entity": "users",
            "select": ["id", "full_name"],
            "where": {"combinator": "and", "rules": [{"field": "active", "operator": "=", "value": True}]},
        }
    )
    names = dict(zip(people["id"].to_list(), people["full_name"].to_list(), strict=True))
    every = _all_figures(crm, visible_owners(crm), on)
    rows = []
    for owner, day in every.items():
        if owner not in names:
            continue
        notes = sorted({t.note() for t in (day.open_pipeline, day.won_this_month, day.won_last_month) if t.note()})
        rows.append(
            {
                "owner_id": owner,
                "owner": names[owner],
                "open_pipeline": float(day.open_pipeline.amount),
                "weighted_pipeline": float(day.weighted_pipeline.amount),
                "won_this_month": float(day.won_this_month.amount),
                "won_last_month": float(day.won_last_month.amount),
                "win_rate": day.win_rate,
                "average_deal_size": float(day.average_deal_size.amount),
                "closing_this_month": day.closing_this_month,
                "closing_this_month_value": float(day.closing_this_month_value.amount),
                "left_out_note": "; ".join(notes) or None,
            }
        )
    schema = {
        "owner_id": pl.String,
        "owner": pl.String,
        "open_pipeline": pl.Float64,
        "weighted_pipeline": pl.Float64,
        "won_this_month": pl.Float64,
        "won_last_month": pl.Float64,
        "win_rate": pl.Float64,
        "average_deal_size": pl.Float64,
        "closing_this_month": pl.Int64,
        "closing_this_month_value": pl.Float64,
        "left_out_note": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort(["open_pipeline", "owner"], descending=[True, False])


def _empty(currency: str) -> DayFigures:
    zero = Total(Decimal(0), currency)
    return DayFigures(currency, zero, zero, zero, zero, zero, closing_this_month_value=zero)


def _all_figures(crm: CRM, owners: list[str] | None, on: dt.date | None) -> dict[str, DayFigures]:
    """Figures per owner id (``owners``: only those; None: every owner of a deal)."""
    cal = Calendar(on or today(crm))
    currency = crm.money.reporting_currency()
    scope = (
        [{"field": "owner_id", "operator": "in", "value": owners}]
        if owners is not None
        else [{"field": "owner_id", "operator": "notNull"}]
    )

    def sums(*rules, weighted: bool = False):
        return _sums(crm, [*scope, *rules], weighted)

    def closed_in(start: dt.date, end: dt.date) -> dict:
        return {"field": "actual_close_date", "operator": "between", "value": [start.isoformat(), end.isoformat()]}

    open_ = sums(*_OPEN, weighted=True)
    closing = sums(
        *_OPEN,
        {
            "field": "expected_close_date",
            "operator": "between",
            "value": [cal.month_start.isoformat(), cal.month_end.isoformat()],
        },
    )
    won_now = sums(_WON, closed_in(cal.month_start, cal.month_end))
    won_before = sums(_WON, closed_in(cal.last_month_start, cal.last_month_end))
    won_window = sums(_WON, closed_in(cal.window_start, cal.today))
    lost_window = sums(_LOST, closed_in(cal.window_start, cal.today))

    out: dict[str, DayFigures] = {}
    keys = set().union(open_, closing, won_now, won_before, won_window, lost_window)
    for owner in keys:
        empty = _Sum()
        o, c, n, b, w, lost = (
            part.get(owner, empty) for part in (open_, closing, won_now, won_before, won_window, lost_window)
        )
        average = (w.value / w.converted).quantize(Decimal("0.01")) if w.converted else Decimal(0)
        out[owner] = DayFigures(
            currency,
            open_pipeline=o.total(currency),
            weighted_pipeline=o.total(currency, weighted=True),
            won_this_month=n.total(currency),
            won_last_month=b.total(currency),
            average_deal_size=Total(average, currency, dict(w.missing)),
            open_deals=o.deals,
            won_this_month_deals=n.deals,
            won_last_month_deals=b.deals,
            won_in_window=w.deals,
            lost_in_window=lost.deals,
            closing_this_month=c.deals,
            closing_this_month_value=c.total(currency),
        )
    return out


@dataclass
class _Sum:
    deals: int = 0
    value: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    converted: int = 0  # deals with a value that converted
    missing: dict[str, int] = field(default_factory=dict)

    def total(self, currency: str, weighted: bool = False) -> Total:
        return Total(self.weighted if weighted else self.value, currency, dict(self.missing))


def _sums(crm: CRM, rules: list[dict], weighted: bool) -> dict[str, _Sum]:
    """Count and converted sums of the deals matching ``rules``, per owner id."""
    aggregates = [
        {"fn": "count", "as": "deals"},
        {"fn": "sum", "field": "value_reporting", "as": "value"},
        {"fn": "count", "field": "value", "as": "valued"},
        {"fn": "count", "field": "value_reporting", "as": "converted"},
    ]
    if weighted:
        aggregates.append({"fn": "sum", "field": "weighted_reporting", "as": "weighted"})
    frame = crm.query(
        {
            "entity": "deals",
            "where": {"combinator": "and", "rules": rules},
            "group_by": ["owner_id", "currency"],
            "aggregates": aggregates,
        }
    )
    out: dict[str, _Sum] = {}
    for row in frame.iter_rows(named=True):
        part = out.setdefault(str(row["owner_id"]), _Sum())
        part.deals += row["deals"]
        part.value += row["value"] or Decimal(0)
        part.weighted += row.get("weighted") or Decimal(0)
        part.converted += row["converted"]
        if row["valued"] > row["converted"]:
            part.missing[row["currency"]] = part.missing.get(row["currency"], 0) + row["valued"] - row["converted"]
    return out


# -- lists -----------------------------------------------------------------------------------


def _day_start(crm: CRM, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), ZoneInfo(crm.config.timezone))


def tasks(crm: CRM, owner_id=None, *, on: dt.date | None = None) -> pl.DataFrame:
    """The owner's open to-dos (pending or in progress, with a due time) due today or earlier,
    oldest first: ``id``, ``version``, ``type``, ``subject``, ``due_at``, ``overdue`` (due
    before today), ``deal_id``, ``deal``, ``company_id``, ``company``."""
    day = on or today(crm)
    owner = str(owner_id or crm.user_id)
    tomorrow = _day_start(crm, day + dt.timedelta(days=1))
    frame = crm.query(
        {
            "entity": "activities",
            "select": [
                "id",
                "version",
                "type",
                "subject",
                "due_at",
                "deal_id",
                {"field": "deal.title", "as": "deal"},
                "company_id",
                {"field": "company.name", "as": "company"},
            ],
            "where": {
                "combinator": "and",
                "rules": [
                    {"field": "owner_id", "operator": "=", "value": owner},
                    {"field": "status", "operator": "in", "value": ["pending", "in_progress"]},
                    {"field": "due_at", "operator": "<", "value": tomorrow.isoformat()},
                ],
            },
            "order_by": ["due_at"],
        }
    )
    start = _day_start(crm, day)
    return frame.with_columns(
        overdue=pl.col("due_at")
        < pl.lit(start).dt.convert_time_zone("UTC").dt.cast_time_unit(frame.schema["due_at"].time_unit)
        if frame.height
        else pl.lit(False)
    )


def attention(crm: CRM, owner_id=None, *, on: dt.date | None = None, quiet_days: int = QUIET_DAYS) -> pl.DataFrame:
    """The owner's open deals that need attention, most overdue first: no activity in
    ``quiet_days`` days (none at all: created that long ago), or a close date already passed.
    Columns: ``id``, ``title``, ``company``, ``value``, ``currency``, ``expected_close_date``,
    ``last_activity_at``, ``reason``."""
    day = on or today(crm)
    owner = str(owner_id or crm.user_id)
    quiet_since = _day_start(crm, day - dt.timedelta(days=quiet_days)).isoformat()
    frame = crm.query(
        {
            "entity": "deals",
            "select": [
                "id",
                "title",
                {"field": "company.name", "as": "company"},
                "value",
                "currency",
                "expected_close_date",
                "last_activity_at",
                "created_at",
            ],
            "where": {
                "combinator": "and",
                "rules": [
                    {"field": "owner_id", "operator": "=", "value": owner},
                    *_OPEN,
                    {
                        "combinator": "or",
                        "rules": [
                            {"field": "expected_close_date", "operator": "<", "value": day.isoformat()},
                            {"field": "last_activity_at", "operator": "<", "value": quiet_since},
                            {
                                "combinator": "and",
                                "rules": [
                                    {"field": "last_activity_at", "operator": "null"},
                                    {"field": "created_at", "operator": "<", "value": quiet_since},
                                ],
                            },
                        ],
                    },
                ],
            },
            "order_by": ["expected_close_date", "title"],
        }
    )
    rows = []
    for row in frame.iter_rows(named=True):
        reasons = []
        if row["expected_close_date"] is not None and row["expected_close_date"] < day:
            reasons.append(f"close date {row['expected_close_date'].isoformat()} has passed")
        last = row["last_activity_at"]
        if last is None:
            reasons.append("no activity yet")
        elif last < dt.datetime.fromisoformat(quiet_since):
            reasons.append(f"no activity for {(day - last.astimezone(ZoneInfo(crm.config.timezone)).date()).days} days")
        rows.append({**row, "reason": "; ".join(reasons)})
    schema = {**{k: v for k, v in frame.schema.items() if k != "created_at"}, "reason": pl.String}
    return pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema)


def recent(crm: CRM, owner_id=None, *, limit: int = RECENT) -> pl.DataFrame:
    """The latest activities the owner logged or that happened on their deals, newest first:
    ``id``, ``type``, ``subject``, ``status``, ``created_at``, ``deal_id``, ``deal``."""
    owner = str(owner_id or crm.user_id)
    return crm.query(
        {
            "entity": "activities",
            "select": [
                "id",
                "type",
                "subject",
                "status",
                "created_at",
                "deal_id",
                {"field": "deal.title", "as": "deal"},
            ],
            "where": {
                "combinator": "or",
                "rules": [
                    {"field": "owner_id", "operator": "=", "value": owner},
                    {"field": "deal.owner_id", "operator": "=", "value": owner},
                ],
            },
            "order_by": [{"field": "created_at", "dir": "desc"}],
            "limit": limit,
        }
    )


def owners(crm: CRM) -> list[dict]:
    """Active users who own at least one deal the acting user reads (:func:`visible_owners`), by
    name: ``{"id", "name"}`` (whose day a manager, an admin or an analyst may pick)."""
    rules: list[dict] = [{"field": "owner.active", "operator": "=", "value": True}]
    scope = visible_owners(crm)
    if scope is not None:
        rules.append({"field": "owner_id", "operator": "in", "value": scope})
    frame = crm.query(
        {
            "entity": "deals",
            "where": {"combinator": "and", "rules": rules},
            "group_by": [{"field": "owner.id", "as": "id"}, {"field": "owner.full_name", "as": "name"}],
            "aggregates": [{"fn": "count", "as": "n"}],
        }
    )
    return sorted(
        ({"id": str(r["id"]), "name": r["name"]} for r in frame.iter_rows(named=True)), key=lambda r: r["name"]
    )
