"""The pipeline board's state: columns with their totals and loaded cards, kept true to the
database as this board and everybody else write.

A column's totals always come from the query engine over every deal of the stage that
matches the filter; its cards are the first ones in the board's sort, loaded a page at a time.
When a deal changes (a move here, or a change notification from anyone), only that deal is
fetched again and only the columns it left and entered have their totals queried again, so
the totals stay exact without reloading the board.

Actions return an *outcome*: a JSON-ready dict with ``ok``, ``kind`` and a message for people,
so that the widget shows errors as data instead of raising them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import ConflictError, CrmError, NotFoundError, ValidationError
from ..model import catalog
from .pipeline import HIGH_VALUE, PAGE_SIZE, Pipeline, Totals, field_label, field_specs

if TYPE_CHECKING:
    from ..client import CRM

_DEALS = catalog.entity("deals")
_WRITABLE = {f.name for f in _DEALS.writable_fields}


@dataclass
class BoardColumn:
    """One stage of the board: its totals and the cards loaded so far."""

    stage: dict
    totals: Totals = field(default_factory=Totals)
    cards: list[dict] = field(default_factory=list)
    complete: bool = False  # every matching deal of the stage is among the cards

    def public(self) -> dict:
        return {
            **self.stage,
            "count": self.totals.count,
            "value": str(self.totals.value),
            "weighted": str(self.totals.weighted),
            "missing": self.totals.note(),
            "cards": [{k: v for k, v in card.items() if not k.startswith("_")} for card in self.cards],
            "more": max(self.totals.count - len(self.cards), 0) if not self.complete else 0,
        }

    def place(self, card: dict) -> bool:
        """Insert the card where the sort puts it, if that is within the loaded cards."""
        keys = [c["_key"] for c in self.cards]
        at = bisect.bisect_left(keys, card["_key"])
        if at == len(self.cards) and not self.complete:
            return False  # it sorts after the loaded cards: "show more" will bring it
        self.cards.insert(at, card)
        return True


def outcome(ok: bool, kind: str, message: str, **extra) -> dict:
    return {"ok": ok, "kind": kind, "message": message, **extra}


class Board:
    """A pipeline board's columns for one CRM, one filter and one sort. Thread-safe."""

    def __init__(
        self,
        crm: CRM,
        filters=None,
        *,
        page_size: int = PAGE_SIZE,
        sort: str = "-value",
        high_value: Decimal = HIGH_VALUE,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.pipeline = Pipeline(crm, filters, page_size=page_size, sort=sort, high_value=high_value, clock=clock)
        self.lock = threading.RLock()
        self.columns: dict[str, BoardColumn] = {}
        self._own: dict[str, int] = {}  # deal id -> the version this board's own write produced
        self.load()

    @property
    def crm(self) -> CRM:
        return self.pipeline.crm

    # -- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """(Re)load the stages, every column's totals and every column's first page."""
        with self.lock:
            self.pipeline.stages = self.pipeline.load_stages()
            totals = self.pipeline.totals()
            self.columns = {s["id"]: BoardColumn(s, totals[s["id"]]) for s in self.pipeline.stages}
            for column in self.columns.values():
                self._page(column)

    def _page(self, column: BoardColumn) -> int:
        size = self.pipeline.page_size
        rows = self.pipeline.cards(column.stage["id"], offset=len(column.cards), limit=size)
        have = {c["id"] for c in column.cards}
        fresh = [card for card in rows if card["id"] not in have]
        column.cards.extend(fresh)
        column.complete = len(rows) < size
        return len(fresh)

    def show_more(self, stage_id: str) -> dict:
        """Load the column's next page of cards."""
        with self.lock:
            column = self.columns.get(str(stage_id))
            if column is None:
                return outcome(False, "invalid", f"no column {stage_id!r} on this board")
            added = self._page(column)
            return outcome(True, "more", f"{added} more in {column.stage['name']}", added=added)

    def set_filter(self, filters) -> None:
        """Show other deals; the filter is checked (and a saved view loaded) before anything changes."""
        with self.lock:
            before = self.pipeline.filters, self.pipeline.where
            self.pipeline.set_filter(filters)
            try:
                self.load()
            except CrmError:  # e.g. a saved view that no longer fits the schema: keep the board as it was
                self.pipeline.filters, self.pipeline.where = before
                self.load()
                raise

    def set_sort(self, sort: str) -> None:
        with self.lock:
            self.pipeline.set_sort(sort)
            self.load()

    # -- reading the state ------------------------------------------------------------------

    def state(self) -> list[dict]:
        """The columns as the widget draws them (JSON-ready)."""
        with self.lock:
            return [column.public() for column in self.columns.values()]

    def find(self, deal_id) -> dict | None:
        """The loaded card of this deal, if any."""
        deal_id = str(deal_id)
        with self.lock:
            for column in self.columns.values():
                for card in column.cards:
                    if card["id"] == deal_id:
                        return card
        return None

    def column_of(self, deal_id) -> str | None:
        card = self.find(deal_id)
        return card["stage_id"] if card else None

    def stage(self, stage) -> dict | None:
        """A column's stage by id or (case-insensitive) name."""
        text = str(stage).strip().lower()
        return next((s for s in self.pipeline.stages if s["id"] == text or s["name"].lower() == text), None)

    # -- keeping cards and totals true --------------------------------------------------------

    def _remove(self, deal_id: str) -> dict | None:
        for column in self.columns.values():
            for i, card in enumerate(column.cards):
                if card["id"] == deal_id:
                    return column.cards.pop(i)
        return None

    def refresh(self, deal_ids, stages=None) -> None:
        """Fetch these deals again and re-query the totals of ``stages`` (None: every column)."""
        ids = [str(i) for i in deal_ids]
        with self.lock:
            cards = self.pipeline.fetch(ids)
            for deal_id in ids:
                self._remove(deal_id)
                card = cards.get(deal_id)
                if card is not None:
                    self.columns[card["stage_id"]].place(card)
            wanted = list(self.columns) if stages is None else [s for s in self.columns if s in stages]
            if wanted:
                for stage_id, totals in self.pipeline.totals(wanted).items():
                    self.columns[stage_id].totals = totals

    def apply(self, changes: list[dict]) -> dict:
        """Bring the board up to date with change notifications (``{"entity", "id", "operation",
        "version"}``), fetching only the changed deals and re-querying only the columns they
        left or entered. Returns what was touched: ``{"deals": [...], "activities": bool}``."""
        with self.lock:
            entities = {c.get("entity") for c in changes}
            if "pipeline_stages" in entities:
                self.load()
                return {"deals": [], "activities": "activities" in entities, "reloaded": True}
            deals = []
            for change in changes:
                if change.get("entity") != "deals":
                    continue
                if self._own.get(change["id"]) == change.get("version"):
                    del self._own[change["id"]]  # our own write: already applied
                    continue
                deals.append(change)
            touched = []
            if deals:
                stages = self.pipeline.changed_stages(deals)
                ids = list(dict.fromkeys(c["id"] for c in deals))
                if stages is not None:
                    stages |= {s for s in map(self.column_of, ids) if s}
                self.refresh(ids, stages)
                touched.extend(ids)
            related = self._related(changes)
            if related:
                self.refresh(related, None if self._filter_follows_relations() else set())
                touched.extend(related)
            return {"deals": touched, "activities": "activities" in entities, "reloaded": False}

    def _related(self, changes: list[dict]) -> list[str]:
        """Loaded cards that show a changed company or user (their names are on the card)."""
        companies = {c["id"] for c in changes if c.get("entity") == "companies"}
        users = {c["id"] for c in changes if c.get("entity") == "users"}
        if not companies and not users:
            return []
        return [
            card["id"]
            for column in self.columns.values()
            for card in column.cards
            if card["company_id"] in companies or card["owner_id"] in users
        ]

    def _filter_follows_relations(self) -> bool:
        text = json.dumps(self.pipeline.where or {})
        return '"related"' in text or any("." in f for f in _fields(self.pipeline.where))

    # -- actions ----------------------------------------------------------------------------

    def move(self, deal_id, stage, *, version: int | None = None, changes: dict | None = None) -> dict:
        """Move a deal to a column (stage id or name) with the card's version (or ``version``).

        ``ok``: moved, and both columns updated. ``conflict``: someone changed the deal first;
        the card now shows its fresh state. ``invalid``: the stage needs fields the deal lacks;
        ``fields`` says which, so they can be asked for and the move retried with ``changes``.
        """
        deal_id = str(deal_id)
        with self.lock:
            target = self.stage(stage)
            if target is None:
                return outcome(False, "invalid", f"there is no column {stage!r} on this board")
            card = self.find(deal_id)
            if version is None and card is not None:
                version = card["version"]
            title = f"“{card['title']}”" if card else "The deal"
            source = card["stage_id"] if card else None
            try:
                deal = self.crm.deals.move(deal_id, target["id"], expected_version=version, changes=changes)
            except ConflictError as exc:
                now = exc.current or {}
                self.refresh([deal_id], {source, str(now.get("stage_id"))})
                where = self.pipeline.stage(str(now.get("stage_id"))) or {"name": "another stage"}
                return outcome(
                    False,
                    "conflict",
                    f"{title} was changed by someone else meanwhile: it is in {where['name']} now "
                    f"(version {now.get('version')}). Your move was not saved; check the card and "
                    "try again.",
                    deal_id=deal_id,
                    stage_id=str(now.get("stage_id")),
                    version=now.get("version"),
                )
            except NotFoundError as exc:
                self.refresh([deal_id], {source})
                return outcome(False, "missing", f"{title} is gone: {exc}", deal_id=deal_id)
            except ValidationError as exc:
                return self._invalid(exc, title, deal_id, target, version)
            if card is not None:
                self._own[deal_id] = deal["version"]
            self.refresh([deal_id], {source, target["id"]} | self._sources(card, deal))
            return outcome(
                True,
                "moved",
                f"Moved {title} to {target['name']}.",
                deal_id=deal_id,
                stage_id=target["id"],
                version=deal["version"],
            )

    def _sources(self, card: dict | None, deal: dict) -> set[str]:
        """The columns a deal that is not on screen left with this write (from the audit trail)."""
        if card is not None:
            return set()
        stages = self.pipeline.changed_stages([{"id": str(deal["id"]), "version": deal["version"]}])
        return set(self.columns) if stages is None else stages

    @staticmethod
    def _invalid(exc: ValidationError, title: str, deal_id: str, target: dict, version) -> dict:
        problems = "; ".join(f"{field_label(name)} {problem}" for name, problem in exc.errors.items())
        specs = {spec["name"]: spec for spec in field_specs()}
        asked = [
            {
                **(
                    specs.get(name)
                    or {
                        "name": name,
                        "label": field_label(name),
                        "type": _DEALS.field(name).type,
                        "values": list(_DEALS.field(name).values),
                    }
                ),
                "required": True,
            }
            for name in exc.errors
            if name in _WRITABLE
        ]
        return outcome(
            False,
            "invalid",
            f"{title} cannot move to {target['name']}: {problems}.",
            deal_id=deal_id,
            stage_id=target["id"],
            stage=target["name"],
            version=version,
            errors=exc.errors,
            fields=asked,
        )

    def update(self, deal_id, changes: dict, *, version: int | None = None) -> dict:
        """Edit a deal's fields (side panel); ``invalid`` outcomes carry ``errors`` per field."""
        deal_id = str(deal_id)
        with self.lock:
            card = self.find(deal_id)
            source = card["stage_id"] if card else None
            try:
                deal = self.pipeline.update(deal_id, version, changes)
            except ConflictError as exc:
                now = exc.current or {}
                self.refresh([deal_id], {source, str(now.get("stage_id"))})
                return outcome(
                    False,
                    "conflict",
                    f"Someone else changed this deal meanwhile (now version "
                    f"{now.get('version')}); your changes were not saved. "
                    "The panel shows the fresh values.",
                    deal_id=deal_id,
                )
            except NotFoundError as exc:
                self.refresh([deal_id], {source})
                return outcome(False, "missing", str(exc), deal_id=deal_id)
            except ValidationError as exc:
                problems = "; ".join(f"{field_label(n)} {p}" for n, p in exc.errors.items())
                return outcome(False, "invalid", f"Not saved: {problems}.", deal_id=deal_id, errors=exc.errors)
            if card is not None:
                self._own[deal_id] = deal["version"]
            self.refresh([deal_id], {source, str(deal["stage_id"])} | self._sources(card, deal))
            return outcome(True, "saved", f"Saved “{deal['title']}”.", deal_id=deal_id, version=deal["version"])

    def log_activity(
        self, deal_id, kind: str, subject: str, description: str | None = None, due: str | None = None
    ) -> dict:
        """Log a call, note or task on the deal."""
        if not (subject or "").strip():
            return outcome(False, "invalid", "Not logged: Subject is required.", errors={"subject": "is required"})
        try:
            activity = self.pipeline.log_activity(deal_id, kind, subject.strip(), description, due)
        except ValidationError as exc:
            problems = "; ".join(f"{n.replace('_', ' ').capitalize()} {p}" for n, p in exc.errors.items())
            return outcome(False, "invalid", f"Not logged: {problems}.", errors=exc.errors)
        except NotFoundError as exc:
            return outcome(False, "missing", str(exc))
        return outcome(True, "logged", f"Logged {kind} “{activity['subject']}”.", activity_id=str(activity["id"]))


def _fields(group) -> list[str]:
    """Every field path a rule group names."""
    if not group:
        return []
    found = []
    for rule in group.get("rules", []):
        if "rules" in rule:
            found.extend(_fields(rule))
        elif "field" in rule:
            found.append(rule["field"])
    return found
