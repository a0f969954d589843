"""Hostile writes: every service's create and update, fed generated values (huge numbers, NUL
characters, objects JSON cannot hold, wrong types, unknown fields, nested custom fields), either
succeeds or raises a CrmError naming the offending field, and writes nothing when it fails.

The suite's default hypothesis profile runs few, derandomised examples; HYPOTHESIS_PROFILE=thorough
explores more (conftest.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from crm_kernel.errors import CrmError, ValidationError
from crm_kernel.model import ENTITIES

TABLES = (
    "users",
    "companies",
    "contacts",
    "pipeline_stages",
    "deals",
    "activities",
    "saved_queries",
    "custom_field_definitions",
    "audit_log",
)
SERVICES = {
    "users": "users",
    "companies": "companies",
    "contacts": "contacts",
    "pipeline_stages": "stages",
    "deals": "deals",
    "activities": "activities",
    "saved_queries": "saved_queries",
    "custom_field_definitions": "custom_fields",
}
DECLARED = {
    "c_int": "integer",
    "c_num": "number",
    "c_date": "date",
    "c_ts": "timestamp",
    "c_bool": "boolean",
    "c_text": "text",
}


class Opaque:
    """An object with no JSON form."""

    def __repr__(self) -> str:
        return "<Opaque>"


NOT_JSON = st.sampled_from([Opaque(), {1, 2}, frozenset(), b"bytes", 1j, Ellipsis, dt.timedelta(1), range(3)])
HUGE = st.one_of(
    st.integers(min_value=2**31 - 2, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**31)),
    st.integers(min_value=10**999, max_value=10**1001),
)
NUL_TEXT = st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5))
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE,
    st.floats(),
    st.decimals(),
    NUL_TEXT,
    st.text(max_size=12),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(dt.UTC), st.timezones())),
    st.uuids(),
    NOT_JSON,
)
NESTED = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(st.text(max_size=6), NUL_TEXT, st.integers()), inner, max_size=3),
    ),
    max_leaves=8,
)
CUSTOM_FIELDS = st.dictionaries(
    st.one_of(st.sampled_from(sorted(DECLARED)), st.text(max_size=6), NUL_TEXT), NESTED, max_size=4
)


def changes_for(entity: str):
    """A dict of field: value, over the entity's fields (writable or not) and unknown names."""
    names = st.one_of(st.sampled_from([f.name for f in ENTITIES[entity].fields]), st.text(max_size=8))
    values = st.one_of(LEAVES, NESTED)
    plain = st.dictionaries(names, values, max_size=3)
    custom = st.fixed_dictionaries({"custom_fields": st.one_of(CUSTOM_FIELDS, NESTED)})
    return st.one_of(plain, custom, st.builds(lambda a, b: {**a, **b}, plain, custom))


def counts(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in TABLES}


def allowed_names(changes: dict) -> set[str]:
    """The fields an error may name: those given, and for custom fields their keys."""
    names = {str(name) for name in changes}
    custom = changes.get("custom_fields")
    if isinstance(custom, dict):
        names |= {f"custom_fields.{key}" for key in custom}
    return names


class World:
    """Records to create beside and to update, and fresh values for the unique fields."""

    def __init__(self, crm):
        self.crm = crm
        self.serial = itertools.count()
        for entity in ("companies", "deals", "contacts"):
            for key, kind in DECLARED.items():
                crm.custom_fields.define(entity, key, kind)
        self.company = crm.companies.create(name="Acme")
        self.contact = crm.contacts.create(first_name="Ann", last_name="Lee", company_id=self.company["id"])
        self.stage = crm.stages.create(name="Hostile", position=99)
        self.deal = crm.deals.create(title="Deal", company_id=self.company["id"], contact_id=self.contact["id"])
        self.targets = {
            "users": crm.users.create(**self.base("users")),
            "companies": self.company,
            "contacts": self.contact,
            "pipeline_stages": self.stage,
            "deals": self.deal,
            "activities": crm.activities.create(**self.base("activities")),
            "saved_queries": crm.saved_queries.create(**self.base("saved_queries")),
            "custom_field_definitions": crm.custom_fields.create(**self.base("custom_field_definitions")),
        }

    def base(self, entity: str) -> dict:
        n = next(self.serial)
        return {
            "users": {"email": f"user{n}@example.com", "full_name": f"User {n}"},
            "companies": {"name": f"Company {n}"},
            "contacts": {"first_name": "A", "last_name": f"B{n}"},
            "pipeline_stages": {"name": f"Stage {n}", "position": 100 + n},
            "deals": {"title": f"Deal {n}", "company_id": self.company["id"]},
            "activities": {"type": "note", "subject": f"Note {n}", "deal_id": self.deal["id"]},
            "saved_queries": {"name": f"Query {n}", "entity": "companies", "spec": {"entity": "companies"}},
            "custom_field_definitions": {"entity": "contacts", "key": f"k{n}", "type": "text"},
        }[entity]


@pytest.fixture
def world(crm):
    return World(crm)


def attempt(world: World, engine, entity: str, operation: str, changes: dict) -> None:
    service = getattr(world.crm, SERVICES[entity])
    target = world.targets[entity]
    before_counts = counts(engine)
    before_row = service.get(target["id"], include_deleted=True)
    try:
        if operation == "create":
            service.create({**world.base(entity), **changes})
        else:
            service.update(target["id"], changes)
    except CrmError as exc:
        assert counts(engine) == before_counts, f"{entity}.{operation} failed but wrote: {exc}"
        assert service.get(target["id"], include_deleted=True) == before_row
        if isinstance(exc, ValidationError):
            assert exc.errors, str(exc)
            named = set(exc.errors) - {"values"}
            assert named <= allowed_names(changes) | _required_by_stage(world, entity), (str(exc), changes)
        else:
            assert str(exc)


def _required_by_stage(world: World, entity: str) -> set[str]:
    """A deal's stage may require fields that a hostile change empties (named by the stage)."""
    return set(world.crm.stages.get(world.deal["stage_id"])["required_fields"]) if entity == "deals" else set()


@pytest.mark.parametrize("entity", list(SERVICES))
def test_hostile_values_are_refused_by_name_and_leave_nothing_behind(crm, engine, world, entity):
    @given(changes=changes_for(entity))
    def run(changes):
        attempt(world, engine, entity, "create", changes)
        attempt(world, engine, entity, "update", changes)

    run()


@pytest.mark.parametrize(
    ("entity", "changes", "field"),
    [
        ("companies", {"employees": 3_000_000_000}, "employees"),
        ("companies", {"employees": 10**5000}, "employees"),  # beyond Python's int-to-text limit
        ("companies", {"address": {"n": 10**5000}}, "address"),
        ("companies", {"name": "A\x00"}, "name"),
        ("companies", {"annual_revenue": 0.1 + 0.2}, "annual_revenue"),
        ("companies", {"custom_fields": {"c_int": "gold"}}, "custom_fields.c_int"),
        ("companies", {"custom_fields": {"c_date": "2026-02-30"}}, "custom_fields.c_date"),
        ("contacts", {"social_profiles": {"x": Opaque()}}, "social_profiles"),
        ("deals", {"probability": Decimal("1.00001")}, "probability"),
        ("activities", {"duration_minutes": -(2**40)}, "duration_minutes"),
        ("pipeline_stages", {"required_fields": ["value", 3]}, "required_fields"),
        ("saved_queries", {"spec": {"where": float("nan")}}, "spec"),
        ("custom_field_definitions", {"type": "money"}, "type"),
        ("users", {"email": "a\x00@b.io"}, "email"),
    ],
)
def test_known_hostile_values_name_their_field(crm, engine, world, entity, changes, field):
    """Fixed examples of each kind, so that each is tried whatever the generator picks."""
    for operation in ("create", "update"):
        before = counts(engine)
        service = getattr(crm, SERVICES[entity])
        with pytest.raises(ValidationError) as info:
            if operation == "create":
                service.create({**world.base(entity), **changes})
            else:
                service.update(world.targets[entity]["id"], changes)
        assert list(info.value.errors) == [field]
        assert counts(engine) == before


def test_dates_and_decimals_inside_custom_fields_are_stored(crm, world):
    company = crm.companies.update(
        world.company["id"],
        custom_fields={
            "c_date": dt.date(2026, 5, 1),
            "c_ts": dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC),
            "c_num": Decimal("2.50"),
            "c_int": 7,
            "other": [uuid.UUID(int=0)],
        },
    )
    assert company["custom_fields"] == {
        "c_date": "2026-05-01",
        "c_ts": "2026-05-01T09:00:00+00:00",
        "c_num": 2.5,
        "c_int": 7,
        "other": ["00000000-0000-0000-0000-000000000000"],
    }
    frame = crm.query(
        {
            "entity": "companies",
            "select": ["custom_fields.c_date", "custom_fields.c_num"],
            "where": {"rules": [{"field": "id", "operator": "=", "value": str(company["id"])}]},
        }
    )
    assert frame.rows() == [(dt.date(2026, 5, 1), Decimal("2.50"))]


def test_nothing_is_left_by_an_integrity_error_either(crm, engine, world):
    """A unique value taken meanwhile is refused by the database; still named, still nothing written."""
    before = counts(engine)
    with pytest.raises(ValidationError) as info:
        crm.users.create(email=world.targets["users"]["email"].upper(), full_name="Twin")
    assert list(info.value.errors) == ["email"]
    assert counts(engine) == before
    with engine.connect() as conn:  # and the transaction really ended
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
