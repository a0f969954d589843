"""What a record page shows beside a record's own fields: its related records and its timeline.

    related(crm, "companies", company)     # {"People": [...], "Deals": [...], "Owner": [...]}
    timeline(crm, "deals", deal_id, limit=10, offset=0)   # (entries, total), newest first

Reads only; every write stays with the record services (``crm.companies.update``,
``crm.activities.create``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import NotFoundError
from ..model import tables
from .records import as_uuid

if TYPE_CHECKING:
    from ..client import CRM

# Entities that have a record page (dashboards/record.ipynb?entity=...&id=...).
PAGE_ENTITIES = ("companies", "contacts", "deals", "activities")
# The activity column that ties an activity to a record of each entity.
TIMELINE_KEYS = {"companies": "company_id", "contacts": "contact_id", "deals": "deal_id"}
RELATED_LIMIT = 50  # related records listed per group; the group's count says how many there are


@dataclass(frozen=True)
class Link:
    """One related record: where it is (entity and id), its name and a line about it."""

    entity: str
    id: str
    title: str
    detail: str = ""

    @property
    def has_page(self) -> bool:
        return self.entity in PAGE_ENTITIES


@dataclass(frozen=True)
class Group:
    label: str
    links: list[Link]
    total: int


def title_of(entity: str, record: dict) -> str:
    """The name a record goes by: a contact's full name, a company's name, a deal's title."""
    if entity == "contacts":
        return " ".join(p for p in (record.get("first_name"), record.get("last_name")) if p) or "(no name)"
    if entity == "users":
        return record.get("full_name") or record.get("email") or "(no name)"
    key = {"companies": "name", "deals": "title", "activities": "subject", "pipeline_stages": "name"}.get(entity)
    return str(record.get(key) or "(untitled)")


def _one(crm: CRM, entity: str, record_id) -> Link | None:
    """The record ``record_id`` of ``entity`` as a link (deleted ones too: a deal still names its
    deleted company), or None when there is no id."""
    if record_id is None:
        return None
    service = getattr(crm, "stages" if entity == "pipeline_stages" else entity)
    try:
        record = service.get(record_id, include_deleted=True)
    except NotFoundError:  # a dangling reference is shown as missing, never raised
        return Link(entity, str(record_id), "(missing)")
    detail = "deleted" if record.get("deleted_at") is not None else ""
    return Link(entity, str(record["id"]), title_of(entity, record), detail)


def _money(value, currency: str) -> str:
    from ..model.currencies import format_money

    return format_money(value, currency) if value is not None else "no value"


def _deal_links(crm: CRM, **equals) -> Group:
    stages = {s["id"]: s["name"] for s in crm.stages.list(limit=None, include_deleted=True)}
    deals = crm.deals.list(limit=RELATED_LIMIT, order_by=["-created_at", "id"], **equals)
    links = [
        Link(
            "deals", str(d["id"]), d["title"], f"{stages.get(d['stage_id'], '?')} · {_money(d['value'], d['currency'])}"
        )
        for d in deals
    ]
    return Group("Deals", links, crm.deals.count(**equals))


def _people(crm: CRM, company_id) -> Group:
    people = crm.contacts.list(company_id=company_id, limit=RELATED_LIMIT, order_by=["last_name", "first_name", "id"])
    links = [
        Link("contacts", str(p["id"]), title_of("contacts", p), p.get("job_title") or p.get("email") or "")
        for p in people
    ]
    return Group("People", links, crm.contacts.count(company_id=company_id))


def _single(label: str, link: Link | None) -> Group:
    return Group(label, [link] if link else [], 1 if link else 0)


def related(crm: CRM, entity: str, record: dict) -> list[Group]:
    """The groups of records related to ``record``, in the order a page shows them."""
    rid = record["id"]
    owner = _single("Owner", _one(crm, "users", record.get("owner_id")))
    if entity == "companies":
        return [_people(crm, rid), _deal_links(crm, company_id=rid), owner]
    if entity == "contacts":
        return [
            _single("Company", _one(crm, "companies", record.get("company_id"))),
            _deal_links(crm, contact_id=rid),
            owner,
        ]
    if entity == "deals":
        # The schema gives a deal one contact (deals.contact_id); there is no deal-contacts table.
        return [
            _single("Company", _one(crm, "companies", record.get("company_id"))),
            _single("Contact", _one(crm, "contacts", record.get("contact_id"))),
            _single("Stage", _one(crm, "pipeline_stages", record.get("stage_id"))),
            owner,
        ]
    if entity == "activities":
        return [
            _single("Deal", _one(crm, "deals", record.get("deal_id"))),
            _single("Company", _one(crm, "companies", record.get("company_id"))),
            _single("Contact", _one(crm, "contacts", record.get("contact_id"))),
            owner,
        ]
    return [owner]


def timeline(crm: CRM, entity: str, record_id, *, limit: int = 10, offset: int = 0) -> tuple[list[dict], int]:
    """The activities of a company, contact or deal, newest first, and how many there are.

    An activity's time is when it was done, else when it is scheduled or due, else when it was
    logged. Each entry: ``id, type, subject, description, status, at, who``."""
    key = TIMELINE_KEYS.get(entity)
    if key is None:
        return [], 0
    rid: uuid.UUID = as_uuid(record_id)
    a, u = tables.table("activities"), tables.table("users")
    at = sa.func.coalesce(a.c.completed_at, a.c.scheduled_at, a.c.due_at, a.c.created_at)
    live = sa.and_(a.c[key] == rid, a.c.deleted_at.is_(None))
    stmt = (
        sa.select(
            a.c.id,
            a.c.type,
            a.c.subject,
            a.c.description,
            a.c.status,
            at.label("at"),
            sa.func.coalesce(u.c.full_name, u.c.email).label("who"),
        )
        .select_from(a.outerjoin(u, u.c.id == sa.func.coalesce(a.c.owner_id, a.c.created_by)))
        .where(live)
        .order_by(at.desc(), a.c.created_at.desc(), a.c.id)
        .limit(limit)
        .offset(offset)
    )
    with crm.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        total = conn.execute(sa.select(sa.func.count()).select_from(a).where(live)).scalar_one()
    return rows, total
