"""A small, hand-made CRM for query tests: edge cases on purpose.

Hostile strings (quotes, %, _, backslashes, unicode), NULLs in every kind of column,
soft-deleted rows, and dates on both sides of the fixed NOW used by relative-date rules.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import sqlalchemy as sa

NOW = dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC)  # a Wednesday
TODAY = NOW.date()


def uid(kind: str, n: int) -> str:
    prefix = {"user": 1, "company": 2, "contact": 3, "deal": 4, "activity": 5}[kind]
    return str(uuid.UUID(int=(prefix << 64) | n))


STAGE = {
    name: f"00000000-0000-0000-0001-00000000000{i}"
    for i, name in enumerate(["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"], start=1)
}

USERS = [
    {"id": uid("user", 1), "email": "alice@example.com", "full_name": "Alice Archer", "role": "rep"},
    {"id": uid("user", 2), "email": "bob@example.com", "full_name": "Bob O'Neil", "role": "manager"},
]

COMPANIES = [
    {
        "id": uid("company", 1),
        "name": "Acme Software",
        "industry": "Software",
        "size": "medium",
        "employees": 120,
        "annual_revenue": "5000000.00",
        "owner_id": uid("user", 1),
        "custom_fields": {"tier": "gold", "seats": 50},
    },
    {
        "id": uid("company", 2),
        "name": "Globex 100% Fintech",
        "industry": "Fintech",
        "size": "large",
        "employees": 900,
        "annual_revenue": "200000.00",
        "owner_id": uid("user", 2),
        "custom_fields": {"tier": "silver", "seats": 5},
    },
    {
        "id": uid("company", 3),
        "name": "Under_score Ltd",
        "industry": None,
        "size": None,
        "employees": None,
        "annual_revenue": None,
        "owner_id": None,
        "custom_fields": {},
    },
    {
        "id": uid("company", 4),
        "name": "O'Brien \\ Sons",
        "industry": "Retail",
        "size": "enterprise",
        "employees": 5000,
        "annual_revenue": "90000000.00",
        "owner_id": uid("user", 1),
        "custom_fields": {"tier": "gold"},
    },
    {
        "id": uid("company", 5),
        "name": "Ghost Corp",
        "industry": "Software",
        "size": "small",
        "employees": 3,
        "annual_revenue": "1000.00",
        "owner_id": uid("user", 2),
        "custom_fields": {},
        "deleted_at": "2026-05-01T00:00:00Z",
    },
    {
        "id": uid("company", 6),
        "name": "Ünïcode GmbH; DROP TABLE deals;--",
        "industry": "Software",
        "size": "startup",
        "employees": 8,
        "annual_revenue": "75000.50",
        "owner_id": uid("user", 2),
        "custom_fields": {"tier": "bronze"},
    },
]

CONTACTS = [
    {
        "id": uid("contact", 1),
        "company_id": uid("company", 1),
        "first_name": "Carol",
        "last_name": "Chen",
        "email": "carol@acme.test",
        "lead_score": 80,
        "lifecycle_stage": "customer",
        "is_primary": True,
    },
    {
        "id": uid("contact", 2),
        "company_id": uid("company", 1),
        "first_name": "Dan",
        "last_name": "D'Amato",
        "email": None,
        "lead_score": None,
        "lifecycle_stage": "lead",
        "is_primary": False,
    },
    {
        "id": uid("contact", 3),
        "company_id": uid("company", 2),
        "first_name": "Eve",
        "last_name": "100%_Evans",
        "email": "eve@globex.test",
        "lead_score": 45,
        "lifecycle_stage": "prospect",
        "is_primary": True,
    },
    {
        "id": uid("contact", 4),
        "company_id": uid("company", 5),
        "first_name": "Gus",
        "last_name": "Ghost",
        "email": "gus@ghost.test",
        "lead_score": 10,
        "lifecycle_stage": "inactive",
        "is_primary": True,
    },
    {
        "id": uid("contact", 5),
        "company_id": None,
        "first_name": "Zoë",
        "last_name": "Ångström",
        "email": "zoe@free.test",
        "lead_score": 99,
        "lifecycle_stage": "champion",
        "is_primary": False,
    },
]


def _deal(
    n,
    company,
    stage,
    title,
    value,
    expected,
    *,
    contact=None,
    owner=None,
    actual=None,
    created="2026-01-10",
    deleted=None,
    deal_type="new_business",
    priority="medium",
    probability=None,
    reason=None,
):
    return {
        "id": uid("deal", n),
        "company_id": uid("company", company),
        "stage_id": STAGE[stage],
        "title": title,
        "value": value,
        "expected_close_date": expected,
        "actual_close_date": actual,
        "contact_id": uid("contact", contact) if contact else None,
        "owner_id": uid("user", owner) if owner else None,
        "created_at": f"{created}T09:00:00Z",
        "deleted_at": deleted,
        "type": deal_type,
        "priority": priority,
        "probability": probability,
        "close_reason": reason,
    }


DEALS = [
    _deal(
        1,
        1,
        "Proposal",
        "Acme renewal",
        "12000.00",
        "2026-06-30",
        contact=1,
        owner=1,
        deal_type="renewal",
        probability="0.5000",
    ),
    _deal(
        2,
        1,
        "Won",
        "Acme upsell 50% off",
        "4500000.00",
        "2026-05-20",
        contact=2,
        owner=1,
        actual="2026-05-25",
        deal_type="upgrade",
        probability="1.0000",
        created="2025-12-31",
    ),
    _deal(3, 2, "Lead", "Globex pilot_phase", None, None, contact=3, owner=2, priority="high", created="2026-06-17"),
    _deal(
        4,
        2,
        "Lost",
        "Globex \\ backslash deal",
        "250000.00",
        "2026-04-01",
        owner=2,
        actual="2026-04-02",
        reason="Price",
        probability="0.0000",
        created="2026-03-03",
    ),
    _deal(
        5,
        3,
        "Negotiation",
        "Under_score expansion",
        "80000.00",
        "2026-06-17",
        owner=1,
        priority="urgent",
        probability="0.7500",
        created="2026-06-10",
    ),
    _deal(
        6,
        4,
        "Qualified",
        "O'Brien store rollout",
        "999999.99",
        "2026-07-15",
        owner=2,
        probability="0.2500",
        created="2026-06-01",
    ),
    _deal(7, 5, "Lead", "Ghost deal on deleted company", "100.00", "2026-06-20", owner=2, created="2026-04-30"),
    _deal(8, 1, "Lead", "Deleted deal", "5.00", "2026-06-18", owner=1, deleted="2026-06-01T00:00:00Z"),
    _deal(
        9, 6, "Proposal", "Ünïcode ÆØÅ deal", "75000.50", "2026-09-30", owner=None, priority="low", created="2026-06-16"
    ),
    _deal(
        10,
        6,
        "Won",
        "RENEWAL big",
        "300.00",
        "2026-06-01",
        owner=2,
        actual="2026-06-15",
        deal_type="renewal",
        created="2026-02-14",
    ),
]


def _activity(
    n,
    kind,
    subject,
    *,
    deal=None,
    contact=None,
    company=None,
    owner=None,
    completed=None,
    due=None,
    status="completed",
    created="2026-06-01T10:00:00Z",
    deleted=None,
    duration=None,
):
    return {
        "id": uid("activity", n),
        "type": kind,
        "subject": subject,
        "deal_id": uid("deal", deal) if deal else None,
        "contact_id": uid("contact", contact) if contact else None,
        "company_id": uid("company", company) if company else None,
        "owner_id": uid("user", owner) if owner else None,
        "completed_at": completed,
        "due_at": due,
        "status": status,
        "created_at": created,
        "deleted_at": deleted,
        "duration_minutes": duration,
    }


ACTIVITIES = [
    _activity(
        1, "call", "Intro call", deal=1, contact=1, company=1, owner=1, completed="2026-06-16T15:00:00Z", duration=30
    ),
    _activity(2, "email", "Proposal sent", deal=1, contact=1, company=1, owner=1, completed="2026-06-10T08:00:00Z"),
    _activity(
        3, "meeting", "Kick-off", deal=2, contact=2, company=1, owner=1, completed="2026-05-01T09:00:00Z", duration=60
    ),
    _activity(4, "call", "Follow-up", deal=1, company=1, owner=1, completed="2026-06-17T11:59:59Z", duration=15),
    _activity(5, "call", "Second follow-up", deal=1, company=1, owner=2, completed="2026-06-17T12:00:00Z", duration=0),
    _activity(6, "task", "Send contract", deal=5, company=3, owner=1, status="pending", due="2026-06-24T17:00:00Z"),
    _activity(7, "note", "Competitor is 10% cheaper", deal=4, company=2, owner=2, completed="2026-03-20T12:00:00Z"),
    _activity(
        8,
        "call",
        "Deleted call",
        deal=6,
        company=4,
        owner=2,
        completed="2026-06-15T12:00:00Z",
        deleted="2026-06-16T00:00:00Z",
    ),
    _activity(9, "email", "Old email", company=4, owner=2, completed="2026-01-05T12:00:00Z"),
    _activity(10, "linkedin_message", "Hi Zoë", contact=5, owner=1, completed="2026-06-14T23:30:00Z"),
]

TABLES = [
    ("users", USERS),
    ("companies", COMPANIES),
    ("contacts", CONTACTS),
    ("deals", DEALS),
    ("activities", ACTIVITIES),
]


def load(engine: sa.Engine, tables=TABLES) -> None:
    """Insert a data set, by default this one (ids fixed, so expected results can name them)."""
    from crm_kernel.model import table

    with engine.begin() as conn:
        for name, rows in tables:
            t = table(name)
            for row in rows:
                values = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in row.items()}
                conn.execute(
                    sa.text(
                        f"INSERT INTO {name} ({', '.join(values)}) "
                        f"VALUES ({', '.join(f'CAST(:{k} AS {_type(t, k)})' for k in values)})"
                    ),
                    values,
                )


def _type(table: sa.Table, column: str) -> str:
    from sqlalchemy.dialects import postgresql

    return table.c[column].type.compile(dialect=postgresql.dialect())
