"""Roles, teams and row-level security: each role reads exactly its rows on every path and is
refused forbidden writes, with nothing written. The app's connections log in as a member of
crm_app (as `crm db start` makes crm_service), bound by sql/017's policies."""

from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine
from crm_kernel.errors import AccessDeniedError, ConfigError

APP_LOGIN = "crm_test_service"


@pytest.fixture(scope="session")
def app_engine(engine, database_url):
    """An engine logged in as a service login in role crm_app (RLS applies)."""
    password = secrets.token_urlsafe(12)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        verb = "ALTER" if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_LOGIN}'").first() else "CREATE"
        conn.exec_driver_sql(f"{verb} ROLE {APP_LOGIN} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"GRANT crm_app TO {APP_LOGIN}")
    url = sa.make_url(database_url).set(username=APP_LOGIN, password=password)
    app = connect_engine(url.render_as_string(hide_password=False))
    yield app
    app.dispose()


@pytest.fixture
def world(crm):
    """Users and teams: team East (manager Mia; reps Rob, Rae), team West (rep Sam); analyst
    Ana; admin Ada. One company and one deal and activity owned by each of Rob, Rae, Sam, Mia."""
    people = {"ada": "admin", "mia": "manager", "rob": "rep", "rae": "rep", "sam": "rep", "ana": "analyst",
              "max": "manager"}
    users = {name: crm.users.create(email=f"{name}@example.com", full_name=name.title(), role=role)
             for name, role in people.items()}
    crm.access.add_team("East", manager="mia@example.com")
    crm.access.add_member("East", "rob@example.com")
    crm.access.add_member("East", "rae@example.com")
    crm.access.add_team("West", manager="max@example.com")
    crm.access.add_member("West", "sam@example.com")
    records = {}
    for name in ("rob", "rae", "sam", "mia"):
        owner = users[name]["id"]
        company = crm.companies.create(name=f"{name.title()} Co", owner_id=owner)
        deal = crm.deals.create(title=f"{name} deal", company_id=company["id"], owner_id=owner, value=1000,
                                stage_id="00000000-0000-0000-0001-000000000001")
        activity = crm.activities.create(type="call", subject=f"{name} call", deal_id=deal["id"], owner_id=owner)
        records[name] = {"company": company, "deal": deal, "activity": activity}
    return {"users": users, "records": records}


def as_user(app_engine, name: str) -> CRM:
    return CRM(app_engine, user=f"{name}@example.com")


# Deals each acting user sees: reps their own, managers their teams' and their own.
VISIBLE_DEALS = {
    "ada": {"rob", "rae", "sam", "mia"},
    "ana": {"rob", "rae", "sam", "mia"},
    "mia": {"rob", "rae", "mia"},
    "max": {"sam"},
    "rob": {"rob"},
    "rae": {"rae"},
    "sam": {"sam"},
}


def _titles(rows) -> set[str]:
    return {r["title"].split()[0] for r in rows}


@pytest.mark.parametrize("who", sorted(VISIBLE_DEALS))
def test_services_list_exactly_the_permitted_deals(app_engine, world, who):
    crm = as_user(app_engine, who)
    assert _titles(crm.deals.list(limit=None)) == VISIBLE_DEALS[who]
    assert {r["subject"].split()[0] for r in crm.activities.list(limit=None)} == VISIBLE_DEALS[who]
    assert len(crm.companies.list(limit=None)) == 4  # companies are shared read-only
