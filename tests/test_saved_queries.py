"""Saved queries and custom field declarations."""

import datetime as dt

import pytest
import sqlalchemy as sa

from crm_kernel import CRM, NotFoundError, QuerySpecError, ValidationError

from .helpers import as_user

SPEC = {"entity": "deals", "select": ["title"], "where": {"rules": [{"field": "value", "operator": ">", "value": 5}]}}


def test_save_load_counts_uses(crm, engine):
    saved = crm.saved_queries.save("Big deals", SPEC, description="over 5")
    assert saved["entity"] == "deals" and saved["owner_id"] == crm.user_id and saved["use_count"] == 0
    assert crm.saved_queries.load("big DEALS") == SPEC
    assert crm.saved_queries.load(saved["id"]) == SPEC
    record = crm.saved_queries.get(saved["id"])
    assert record["use_count"] == 2 and record["last_used_at"] is not None
    assert record["version"] == 1  # usage is not an edit


def test_save_again_replaces_and_bumps_version(crm):
    crm.saved_queries.save("Mine", SPEC)
    other = {**SPEC, "limit": 3}
    updated = crm.saved_queries.save("Mine", other, shared=True)
    assert updated["version"] == 2 and updated["shared"] is True
    assert crm.saved_queries.load("Mine") == other
    assert crm.saved_queries.count() == 1


def test_invalid_spec_is_not_saved(crm):
    with pytest.raises(QuerySpecError, match="where.rules\\[0\\].field"):
        crm.saved_queries.save(
            "Broken", {"entity": "deals", "where": {"rules": [{"field": "nope", "operator": "=", "value": 1}]}}
        )
    assert crm.saved_queries.count() == 0


def test_sharing_and_privacy(crm, engine):
    crm.users.create(email="rita@example.com", full_name="Rita")
    rita = CRM(engine, user="rita@example.com")
    rita.saved_queries.save("Private", SPEC)
    rita.saved_queries.save("Team view", SPEC, shared=True)
    assert [q["name"] for q in crm.saved_queries.visible()] == ["Team view"]
    assert crm.saved_queries.load("Team view") == SPEC
    with pytest.raises(NotFoundError, match="no saved query 'Private'"):
        crm.saved_queries.load("Private")
    with pytest.raises(NotFoundError, match="of yours"):
        crm.saved_queries.delete("Team view")  # only the owner deletes
    rita.saved_queries.delete("Team view")
    with pytest.raises(NotFoundError):
        crm.saved_queries.load("Team view")


def test_custom_fields_are_declared_then_queryable(crm):
    crm.companies.create(name="A", custom_fields={"tier": "gold", "renewal": "2026-05-01"})
    crm.companies.create(name="B", custom_fields={"tier": "silver", "renewal": "2027-01-01"})
    with pytest.raises(QuerySpecError, match="not declared"):
        crm.query(
            {
                "entity": "companies",
                "where": {"rules": [{"field": "custom_fields.tier", "operator": "=", "value": "gold"}]},
            }
        )
    crm.custom_fields.define("companies", "tier")
    crm.custom_fields.define("companies", "renewal", "date", label="Renewal date")
    assert crm.custom_fields.declared("companies") == {"renewal": "date", "tier": "text"}
    frame = crm.query(
        {
            "entity": "companies",
            "select": ["name", "custom_fields.renewal"],
            "where": {"rules": [{"field": "custom_fields.renewal", "operator": "<", "value": "2026-12-31"}]},
        }
    )
    assert frame.rows() == [("A", dt.date(2026, 5, 1))]
    redefined = crm.custom_fields.define("companies", "renewal", "text")  # every stored date is text too
    assert redefined["version"] == 2


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("invoices", "x", "text"), "entity"),
        (("companies", "Tier", "text"), "key"),
        (("companies", "tier", "money"), "type"),
    ],
)
def test_bad_custom_field_declarations(crm, args, field):
    with pytest.raises(ValidationError) as info:
        crm.custom_fields.define(*args)
    assert field in info.value.errors


def test_saved_queries_declare_their_parameters(crm):
    from crm_kernel import ValidationError

    rule = {"field": "value", "operator": ">=", "value": "min_value", "valueSource": "parameter"}
    spec = {"entity": "deals", "where": {"rules": [rule]}}
    with pytest.raises(ValidationError, match="declare parameter 'min_value'"):
        crm.saved_queries.save("Big deals", spec)
    declared = spec | {"parameters": {"min_value": {"type": "money", "label": "Smallest deal"}}}
    crm.saved_queries.save("Big deals", declared)
    loaded = crm.saved_queries.load("Big deals")
    assert loaded["parameters"] == declared["parameters"]
    crm.deals.create(title="Small", value=100, company_id=crm.companies.create(name="A")["id"])
    assert crm.query(loaded, params={"min_value": 50}).height == 1
    assert crm.query(loaded, params={"min_value": 500}).height == 0


# -- under row-level security (sql/017): whoever may read a query runs it and counts its use ----

TEAM_SPEC = {
    "entity": "deals",
    "select": ["title"],
    "where": {"rules": [{"field": "value", "operator": ">", "value": 5}]},
}


def _use(engine, query_id) -> tuple:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT use_count, version, updated_at FROM saved_queries WHERE id = :id"), {"id": query_id}
        ).one()


def test_an_analyst_and_a_rep_run_a_shared_query_and_count_its_use(app_engine, engine, world):
    shared = as_user(app_engine, "mia").saved_queries.save("Team deals", TEAM_SPEC, shared=True)
    before = _use(engine, shared["id"])
    titles = {}
    for who in ("ana", "rob"):
        crm = as_user(app_engine, who)
        spec = crm.saved_queries.load("team deals")
        titles[who] = set(crm.query(spec)["title"].to_list())
    assert titles == {"ana": {"rob deal", "rae deal", "sam deal", "mia deal"}, "rob": {"rob deal"}}
    after = _use(engine, shared["id"])
    assert after.use_count == before.use_count + 2
    assert (after.version, after.updated_at) == (before.version, before.updated_at)  # a use is not an edit
    listed = {q["name"]: q for q in as_user(app_engine, "rob").saved_queries.visible()}
    assert listed["Team deals"]["use_count"] == 2 and listed["Team deals"]["last_used_at"] is not None


def test_a_use_is_counted_only_for_a_query_the_user_may_read(app_engine, engine, world):
    private = as_user(app_engine, "mia").saved_queries.save("Mia only", TEAM_SPEC)
    rob = as_user(app_engine, "rob")
    with pytest.raises(NotFoundError):
        rob.saved_queries.load(private["id"])
    with rob.engine.begin() as conn:  # straight to the database: refused there too
        counted = conn.execute(sa.text("SELECT crm_count_saved_query_use(:id)"), {"id": private["id"]}).scalar()
    assert counted is False
    assert _use(engine, private["id"]).use_count == 0
    with as_user(app_engine, "ana").engine.begin() as conn:  # an analyst reads every query
        assert conn.execute(sa.text("SELECT crm_count_saved_query_use(:id)"), {"id": private["id"]}).scalar()
    assert _use(engine, private["id"]).use_count == 1
