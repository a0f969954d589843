"""The pipeline board's data: board filters as query specs, column totals over every matching
deal, card pages, and the deal side panel's reads and writes.

Every read is a query spec run by the query engine (``crm.query``), so the board asks the same
questions an analyst can type; every write goes through the services (``crm.deals``,
``crm.activities``). :class:`~crm_kernel.board.state.Board` keeps the board's state on top
of this module and the widget (``crm_kernel.widgets.pipeline_board``) only draws it.

    pipeline = Pipeline(crm, {"owner": "mine", "quick": ["closing_this_month"]})
    pipeline.totals()                       # {stage_id: Totals(count, value, weighted)}
    pipeline.cards(stage_id, limit=20)      # the column's first cards, in the board's sort

"Now" (for "closing this month", "stale", overdue flags and days in stage) is the wall clock
unless a ``clock`` is given, which tests use to pin the board to a fixed instant.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, ValidationError
from ..model import catalog
from ..model.money import missing_note

if TYPE_CHECKING:
    from ..client import CRM

PAGE_SIZE = 20  # cards a column loads at first and per "show more"
STALE_DAYS = 30  # an open deal with no activity for this long is stale
HIGH_VALUE = Decimal(50_000)  # the "high value" quick filter: deals worth at least this

QUICK_FILTERS = {
    "closing_this_month": "Closing this month",
    "high_value": "High value",
    "stale": "Stale",
}
SORTS = {  # how a column orders its cards: a query spec order_by entry -> label
    "-value": "Highest value",
    "expected_close_date": "Closing soonest",
    "stage_entered_at": "Longest in stage",
}  # each has an index in sql/005_stage_entered_at.sql
ACTIVITY_KINDS = {"call": "Call", "note": "Note", "task": "Task"}

# The fields a card carries, as query spec select items.
CARD_SELECT = [
    "id",
    "title",
    "stage_id",
    "version",
    "value",
    "currency",
    "priority",
    "expected_close_date",
    "stage_entered_at",
    "last_activity_at",
    "created_at",
    "updated_at",
    "company_id",
    {"field": "company.name", "as": "company"},
    "owner_id",
    {"field": "owner.full_name", "as": "owner"},
]
# The fields the side panel lets a user edit, in form order.
PANEL_FIELDS = (
    "title",
    "value",
    "currency",
    "expected_close_date",
    "owner_id",
    "priority",
    "type",
    "lead_source",
    "campaign",
    "close_reason",
    "description",
)

_DEALS = catalog.entity("deals")


def _open_deal() -> list[dict]:
    """Rules: the deal's stage is neither won nor lost."""
    return [
        {"field": "stage.is_closed_won", "operator": "=", "value": False},
        {"field": "stage.is_closed_lost", "operator": "=", "value": False},
    ]


def _all(*rules) -> dict:
    return {"combinator": "and", "rules": [r for r in rules if r]}


def quick_filter(name: str, high_value: Decimal = HIGH_VALUE) -> dict:
    """The rule group of one quick filter."""
    days = {"amount": STALE_DAYS, "unit": "day"}
    rules = {
        "closing_this_month": _all({"field": "expected_close_date", "operator": "thisMonth"}),
        "high_value": _all({"field": "value", "operator": ">=", "value": str(high_value)}),
        "stale": _all(
            *_open_deal(),
            {
                "combinator": "or",
                "rules": [
                    {"field": "last_activity_at", "operator": "olderThan", "value": days},
                    _all(
                        {"field": "last_activity_at", "operator": "null"},
                        {"field": "created_at", "operator": "olderThan", "value": days},
                    ),
                ],
            },
        ),
    }
    if name not in rules:
        raise ValidationError({"quick": f"unknown quick filter {name!r}; use one of {', '.join(QUICK_FILTERS)}"})
    return rules[name]


@dataclass(frozen=True)
class BoardFilter:
    """Which deals a board shows.

    ``owner``: None (everyone), ``"mine"`` (the acting user) or a user id; ``quick``: names
    from :data:`QUICK_FILTERS`, all of which must hold; ``view``: a saved deals query (name or
    id) whose ``where`` must hold too; ``search``: text in the title or the company's name.
    """

    owner: str | None = None
    quick: tuple[str, ...] = ()
    view: str | None = None
    search: str = ""

    @classmethod
    def of(cls, value: BoardFilter | dict | None) -> BoardFilter:
        if value is None:
            return cls()
        if isinstance(value, BoardFilter):
            return value
        unknown = set(value) - {"owner", "quick", "view", "search"}
        if unknown:
            raise ValidationError({k: "unknown board filter; use owner, quick, view or search" for k in unknown})
        quick = value.get("quick") or ()
        quick = (quick,) if isinstance(quick, str) else tuple(quick)
        for name in quick:
            quick_filter(name)  # refuses unknown names
        return cls(
            owner=value.get("owner") or None,
            quick=quick,
            view=value.get("view") or None,
            search=(value.get("search") or "").strip(),
        )

    def as_dict(self) -> dict:
        return {"owner": self.owner, "quick": list(self.quick), "view": self.view, "search": self.search}

    @property
    def open_only(self) -> bool:
        """Whether won and lost deals are excluded (then their columns need no query)."""
        return "stale" in self.quick

    def where(self, crm: CRM, high_value: Decimal = HIGH_VALUE) -> dict | None:
        """The filter as a query spec rule group (None: every deal). Loads the saved view."""
        rules: list[dict] = []
        if self.owner:
            owner = str(crm.user_id) if self.owner == "mine" else self.owner
            rules.append({"field": "owner_id", "operator": "=", "value": owner})
        rules.extend(quick_filter(name, high_value) for name in self.quick)
        if self.search:
            rules.append(
                {
                    "combinator": "or",
                    "rules": [
                        {"field": "title", "operator": "contains", "value": self.search},
                        {"field": "company.name", "operator": "contains", "value": self.search},
                    ],
                }
            )
        if self.view:
            spec = saved_view(crm, self.view)
            if spec.get("where"):
                rules.append(spec["where"])
        return _all(*rules) if rules else None


def saved_view(crm: CRM, name_or_id: str) -> dict:
    """A saved query usable as a board filter: it must query deals."""
    try:
        spec = crm.saved_queries.load(name_or_id)
    except NotFoundError as exc:
        raise ValidationError({"view": str(exc)}) from None
    if spec.get("entity") != "deals":
        raise ValidationError({"view": f"saved query {name_or_id!r} is about {spec.get('entity')}, not deals"})
    return spec


@dataclass
class Totals:
    """A column's header: over every deal of the stage that matches the filter.

    ``value`` and ``weighted`` are in the reporting currency; ``missing`` counts, per currency,
    the deals with a value that has no rate to convert it, left out of both sums."""

    count: int = 0
    value: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    missing: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        """``"2 deals in NOK without a rate are not included"``, or nothing."""
        return missing_note(self.missing)


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def _money(value) -> str | None:
    return None if value is None else str(value)


@dataclass
class Pipeline:
    """The board's questions, as query specs, for one CRM and one filter; ``clock`` returns the
    board's "now" (an aware datetime; default: the wall clock in the CRM's time zone)."""

    crm: CRM
    filters: BoardFilter | dict | None = None
    page_size: int = PAGE_SIZE
    sort: str = "-value"
    high_value: Decimal = HIGH_VALUE
    clock: Callable[[], dt.datetime] | None = None
    stages: list[dict] = field(init=False)
    where: dict | None = field(init=False)

    def __post_init__(self):
        self.set_sort(self.sort)
        self.tz = zoneinfo.ZoneInfo(self.crm.config.timezone)
        self.stages = self.load_stages()
        self.set_filter(self.filters)

    def set_sort(self, sort: str) -> None:
        if sort not in SORTS:
            raise ValidationError({"sort": f"unknown sort {sort!r}; use one of {', '.join(SORTS)}"})
        self.sort = sort

    def set_filter(self, filters: BoardFilter | dict | None) -> None:
        """Change the filter (checked, and the saved view loaded, before anything changes)."""
        chosen = BoardFilter.of(filters)
        where = chosen.where(self.crm, self.high_value)
        self.filters, self.where = chosen, where

    def load_stages(self) -> list[dict]:
        """The active stages, in board order."""
        return [
            {
                "id": str(s["id"]),
                "name": s["name"],
                "colour": s["colour"],
                "probability": float(s["probability"]),
                "won": s["is_closed_won"],
                "lost": s["is_closed_lost"],
                "required": list(s["required_fields"]),
            }
            for s in self.crm.stages.list(is_active=True, limit=None)
        ]

    def stage(self, stage_id: str) -> dict | None:
        return next((s for s in self.stages if s["id"] == stage_id), None)

    def possible(self, stage_id: str) -> bool:
        """Whether deals of this stage can match the filter at all."""
        stage = self.stage(stage_id)
        return stage is not None and not (self.filters.open_only and (stage["won"] or stage["lost"]))

    # -- specs ------------------------------------------------------------------------------

    def _where(self, *rules) -> dict:
        return _all(*rules, self.where)

    def totals_spec(self, stage_ids=None) -> dict:
        """Count, value and weighted value in the reporting currency per stage and deal
        currency, over every deal matching the filter; ``valued - converted`` deals of a
        currency had a value but no rate (never added in, but counted)."""
        ids = list(stage_ids) if stage_ids is not None else [s["id"] for s in self.stages]
        return {
            "entity": "deals",
            "where": self._where({"field": "stage_id", "operator": "in", "value": ids}),
            "group_by": ["stage_id", "currency"],
            "aggregates": [
                {"fn": "count", "as": "deals"},
                {"fn": "sum", "field": "value_reporting", "as": "total"},
                {"fn": "sum", "field": "weighted_reporting", "as": "weighted"},
                {"fn": "count", "field": "value", "as": "valued"},
                {"fn": "count", "field": "value_reporting", "as": "converted"},
            ],
        }

    def cards_spec(self, stage_id: str, offset: int = 0, limit: int | None = None) -> dict:
        """One page of a column's cards, in the board's sort (then by id: pages are stable)."""
        return {
            "entity": "deals",
            "select": CARD_SELECT,
            "where": self._where({"field": "stage_id", "operator": "=", "value": stage_id}),
            "order_by": [self.sort],
            "limit": self.page_size if limit is None else limit,
            "offset": offset,
        }

    def fetch_spec(self, deal_ids) -> dict:
        """These deals as cards, if they match the filter and sit in a column of the board."""
        return {
            "entity": "deals",
            "select": CARD_SELECT,
            "where": self._where(
                {"field": "id", "operator": "in", "value": [str(i) for i in deal_ids]},
                {
                    "field": "stage_id",
                    "operator": "in",
                    "value": [s["id"] for s in self.stages if self.possible(s["id"])],
                },
            ),
        }

    # -- reads ------------------------------------------------------------------------------

    def totals(self, stage_ids=None) -> dict[str, Totals]:
        """Totals of the given stages (default: every column); a stage without deals gets zeros."""
        ids = list(stage_ids) if stage_ids is not None else [s["id"] for s in self.stages]
        asked = [i for i in ids if self.possible(i)]
        result = {stage_id: Totals() for stage_id in ids}
        for row in self._query(self.totals_spec(asked)) if asked else []:
            totals = result[row["stage_id"]]
            totals.count += row["deals"]
            totals.value += row["total"] or Decimal(0)
            totals.weighted += row["weighted"] or Decimal(0)
            if row["valued"] > row["converted"]:
                totals.missing[row["currency"]] = row["valued"] - row["converted"]
        return result

    def cards(self, stage_id: str, offset: int = 0, limit: int | None = None) -> list[dict]:
        if not self.possible(stage_id):
            return []
        return [self.card(row) for row in self._query(self.cards_spec(stage_id, offset, limit))]

    def fetch(self, deal_ids) -> dict[str, dict]:
        """Current cards of these deals; a deal that is deleted or outside the board is missing."""
        ids = list(deal_ids)
        if not ids:
            return {}
        return {row["id"]: self.card(row) for row in self._query(self.fetch_spec(ids))}

    def _query(self, spec: dict) -> list[dict]:
        """Rows of a spec whose relative dates count from the board's "now"."""
        return self._rows(spec, now=self.now())

    def _rows(self, spec: dict, now: dt.datetime | None = None) -> list[dict]:
        # Python values straight from the rows: a board's kernel never loads polars (see query/rows.py)
        return self.crm.execute(spec, now=now, fetch="rows").dicts()

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz) if self.clock is None else self.clock().astimezone(self.tz)

    def card(self, row: dict) -> dict:
        """A card as the widget shows it (JSON-ready), with ``_key``, its place in the sort."""
        now = self.now()
        stage = self.stage(row["stage_id"]) or {}
        is_open = not (stage.get("won") or stage.get("lost"))
        quiet_since = row["last_activity_at"] or row["created_at"]
        closes = row["expected_close_date"]
        return {
            "id": row["id"],
            "title": row["title"],
            "stage_id": row["stage_id"],
            "version": row["version"],
            "company": row["company"],
            "company_id": row["company_id"],
            "value": _money(row["value"]),
            "currency": row["currency"],
            "owner": row["owner"],
            "owner_id": row["owner_id"],
            "priority": row["priority"],
            "expected_close_date": _iso(closes),
            "days_in_stage": max((now - row["stage_entered_at"]).days, 0),
            "overdue": bool(is_open and closes is not None and closes < now.date()),
            "stale": bool(is_open and quiet_since < now - dt.timedelta(days=STALE_DAYS)),
            "_key": sort_key(row, self.sort),
        }

    def changed_stages(self, changes: list[dict]) -> set[str] | None:
        """Stages the given deal writes took deals out of or into, from the audit trail.

        ``changes`` are change notifications (``{"id", "version", ...}``); None when a write's
        audit row is not found (the caller then refreshes every column's totals).
        """
        ids = sorted({c["id"] for c in changes})
        spec = {
            "entity": "audit_log",
            "select": ["entity_id", "before", "after"],
            "where": _all(
                {"field": "entity", "operator": "=", "value": "deals"},
                {"field": "entity_id", "operator": "in", "value": ids},
                {"field": "at", "operator": "inLast", "value": {"amount": 1, "unit": "day"}},
            ),
            "order_by": ["-id"],
        }
        images = {}
        for row in self._rows(spec):  # audit rows are stamped by the wall clock, whatever the board's
            after = json.loads(row["after"]) if row["after"] else {}
            before = json.loads(row["before"]) if row["before"] else {}
            images[(row["entity_id"], after.get("version"))] = (before.get("stage_id"), after.get("stage_id"))
        stages: set[str] = set()
        for change in changes:
            found = images.get((change["id"], change["version"]))
            if found is None:
                return None
            stages.update(s for s in found if s)
        return stages

    # -- the side panel ---------------------------------------------------------------------

    def users(self) -> list[dict]:
        """Who can own a deal: active users but the built-in system user."""
        rows = self.crm.users.list(active=True, limit=None, order_by="full_name")
        return [
            {"id": str(u["id"]), "name": u["full_name"], "email": u["email"]}
            for u in rows
            if str(u["id"]) != catalog.SYSTEM_USER_ID
        ]

    def views(self) -> list[dict]:
        """Saved deals queries the acting user can pick as a board filter."""
        return [
            {"id": str(q["id"]), "name": q["name"], "shared": q["shared"]}
            for q in self.crm.saved_queries.visible()
            if q["entity"] == "deals"
        ]

    def detail(self, deal_id) -> dict:
        """The side panel's content: the deal's fields (JSON-ready), names, and its timeline."""
        deal = self.crm.deals.get(deal_id)
        names = self._rows(
            {
                "entity": "deals",
                "select": [
                    {"field": "company.name", "as": "company"},
                    {"field": "stage.name", "as": "stage"},
                    {"field": "owner.full_name", "as": "owner"},
                    {"field": "contact.first_name", "as": "first"},
                    {"field": "contact.last_name", "as": "last"},
                ],
                "where": _all({"field": "id", "operator": "=", "value": str(deal["id"])}),
            }
        )[0]
        contact = " ".join(n for n in (names["first"], names["last"]) if n) or None
        return {
            "id": str(deal["id"]),
            "version": deal["version"],
            "stage_id": str(deal["stage_id"]),
            "stage": names["stage"],
            "company": names["company"],
            "contact": contact,
            "owner": names["owner"],
            "values": {name: json_value(deal[name]) for name in PANEL_FIELDS},
            "weighted_value": json_value(deal["weighted_value"]),
            "probability": json_value(deal["probability"]),
            "activities": self.timeline(deal["id"]),
        }

    def timeline(self, deal_id, limit: int = 50) -> list[dict]:
        """The deal's activities, newest first."""
        rows = self._rows(
            {
                "entity": "activities",
                "select": [
                    "id",
                    "type",
                    "subject",
                    "description",
                    "status",
                    "created_at",
                    "completed_at",
                    "due_at",
                    {"field": "owner.full_name", "as": "owner"},
                ],
                "where": _all({"field": "deal_id", "operator": "=", "value": str(deal_id)}),
                "order_by": ["-created_at"],
                "limit": limit,
            }
        )
        return [{k: json_value(v) for k, v in row.items()} for row in rows]

    def update(self, deal_id, version: int | None, changes: dict) -> dict:
        """Edit a deal from the side panel (blank text means empty); validated by the service."""
        clean = {}
        for name, value in changes.items():
            if name not in PANEL_FIELDS:
                raise ValidationError({name: "cannot be edited on the board"}, "deals")
            clean[name] = None if isinstance(value, str) and not value.strip() else value
        return self.crm.deals.update(deal_id, clean, expected_version=version)

    def log_activity(
        self, deal_id, kind: str, subject: str, description: str | None = None, due: str | None = None
    ) -> dict:
        """Log a call or a note (done now) or a task (due when given) on the deal."""
        if kind not in ACTIVITY_KINDS:
            raise ValidationError({"type": f"log one of {', '.join(ACTIVITY_KINDS)}, not {kind!r}"}, "activities")
        deal = self.crm.deals.get(deal_id)
        values: dict[str, Any] = {
            "deal_id": deal["id"],
            "company_id": deal["company_id"],
            "contact_id": deal["contact_id"],
            "owner_id": self.crm.user_id,
            "type": kind,
            "subject": subject,
            "description": description or None,
        }
        if kind == "task":
            values["status"] = "pending"
            if due:
                values["due_at"] = _due(due, self.tz)
        else:
            values["status"] = "completed"
            values["completed_at"] = self.now()
        return self.crm.activities.create(values)


def _due(text: str, tz: dt.tzinfo) -> dt.datetime:
    """A task's due time from a date (end of office hours that day) or a date and time."""
    try:
        if len(text.strip()) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time(17), tzinfo=tz)
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError({"due_at": f"{text!r} is not a date like 2026-01-31"}, "activities") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=tz)


def json_value(value):
    """A field's value as the widget's JSON carries it (money and numbers as exact text)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def sort_key(row: dict, sort: str) -> tuple:
    """Where a card sorts in its column, as the query engine orders it: by the sort field
    (empty values last, in both directions), then by id."""
    name = sort.lstrip("-")
    value = row.get(name)
    if value is None:
        return (1, 0, row["id"])
    if isinstance(value, dt.datetime):
        number = Decimal(str(value.timestamp()))
    elif isinstance(value, dt.date):
        number = Decimal(value.toordinal())
    else:
        number = Decimal(value)
    return (0, -number if sort.startswith("-") else number, row["id"])


def field_specs() -> list[dict]:
    """How the side panel draws each editable field (from the catalog)."""
    specs = []
    for name in PANEL_FIELDS:
        f = _DEALS.field(name)
        kind = "user" if name == "owner_id" else f.type
        label = "Owner" if name == "owner_id" else f.label
        specs.append({"name": name, "label": label, "type": kind, "values": list(f.values), "required": not f.nullable})
    return specs


def field_label(name: str) -> str:
    if name == "owner_id":
        return "Owner"
    return _DEALS.field(name).label if _DEALS.has_field(name) else name.replace("_", " ").capitalize()
