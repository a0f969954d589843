"""Fixtures over the session's PostgreSQL cluster (started by the top-level conftest.py)."""

from __future__ import annotations

import os
import secrets

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine

from .helpers import APP_LOGIN, TEMPLATE_DATABASE, create_database

# Data the migrations seed; every other row is test data, removed between tests.
SEEDED_STAGES = [f"00000000-0000-0000-0001-00000000000{i}" for i in range(1, 7)]
RESET_SQL = f"""
TRUNCATE activities, deals, products, contacts, companies, saved_queries, custom_field_definitions, audit_log,
    team_members, teams, crm_user_logins,
    row_deletions RESTART IDENTITY;
DELETE FROM pipeline_stages WHERE id NOT IN ({", ".join(f"'{s}'" for s in SEEDED_STAGES)});
DELETE FROM users WHERE id <> '00000000-0000-0000-0000-000000000001';
DELETE FROM exchange_rates;
INSERT INTO exchange_rates (currency, rate_date, rate, source)
    VALUES ('USD', DATE '1900-01-01', 1, 'reporting currency');
UPDATE crm_settings SET value = '"USD"' WHERE key = 'reporting_currency';
"""


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["CRM_DATABASE_URL"]


@pytest.fixture(scope="session")
def engine(database_url):
    engine = connect_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def crm(engine) -> CRM:
    """A CRM on an emptied database (migrations' seed data only), acting as the system user."""
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(RESET_SQL)
    client = CRM(engine)
    return client


@pytest.fixture
def make_database(engine):
    """Create fresh migrated databases in the test cluster: ``url = make_database("name")``."""
    yield from _database_maker(engine)


@pytest.fixture(scope="module")
def make_database_module(engine):
    """``make_database`` for databases shared by a test module."""
    yield from _database_maker(engine)


def _database_maker(engine):
    created = []

    def make(name: str, *, migrated: bool = True) -> str:
        created.append(name)
        return create_database(engine, name, template=TEMPLATE_DATABASE if migrated else "template1")

    yield make
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in created:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def audit_rows(engine):
    """``audit_rows(entity_id=None, operation=None)``: audit rows, oldest first."""
    return lambda entity_id=None, operation=None: _audit_rows(engine, entity_id, operation)


def _audit_rows(engine: sa.Engine, entity_id=None, operation: str | None = None) -> list[dict]:
    stmt = "SELECT * FROM audit_log WHERE true"
    params = {}
    if entity_id is not None:
        stmt += " AND entity_id = :id"
        params["id"] = str(entity_id)
    if operation:
        stmt += " AND operation = :op"
        params["op"] = operation
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(stmt + " ORDER BY id"), params).mappings()]


@pytest.fixture(scope="session")
def query_engine(engine):
    """A database holding tests/query_data.py (read-only), with two declared custom fields."""
    from . import query_data

    maker = _database_maker(engine)
    make = next(maker)
    qe = connect_engine(make("crm_query"))
    query_data.load(qe)
    crm = CRM(qe)
    crm.custom_fields.define("companies", "tier", "text")
    crm.custom_fields.define("companies", "seats", "integer")
    yield qe
    qe.dispose()
    next(maker, None)


@pytest.fixture(scope="session")
def query_snapshot(query_engine, tmp_path_factory):
    """The query database exported to a snapshot and opened in DuckDB."""
    from crm_kernel import snapshot

    folder = snapshot.export(query_engine, tmp_path_factory.mktemp("query-snapshots"))
    with snapshot.open(folder) as snap:
        yield snap


# -- acting as users under row-level security (sql/017) ------------------------------------------


@pytest.fixture(scope="session")
def app_engine(engine, database_url):
    """An engine logged in as a service login in role crm_app (RLS applies)."""
    password = secrets.token_urlsafe(12)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        verb = (
            "ALTER"
            if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_LOGIN}'").first()
            else "CREATE"
        )
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
    people = {
        "ada": "admin",
        "mia": "manager",
        "rob": "rep",
        "rae": "rep",
        "sam": "rep",
        "ana": "analyst",
        "max": "manager",
    }
    users = {
        name: crm.users.create(email=f"{name}@example.com", full_name=name.title(), role=role)
        for name, role in people.items()
    }
    crm.access.add_team("East", manager="mia@example.com")
    crm.access.add_member("East", "rob@example.com")
    crm.access.add_member("East", "rae@example.com")
    crm.access.add_team("West", manager="max@example.com")
    crm.access.add_member("West", "sam@example.com")
    records = {}
    for name in ("rob", "rae", "sam", "mia"):
        owner = users[name]["id"]
        company = crm.companies.create(name=f"{name.title()} Co", owner_id=owner)
        deal = crm.deals.create(
            title=f"{name} deal",
            company_id=company["id"],
            owner_id=owner,
            value=1000,
            stage_id="00000000-0000-0000-0001-000000000001",
        )
        activity = crm.activities.create(type="call", subject=f"{name} call", deal_id=deal["id"], owner_id=owner)
        records[name] = {"company": company, "deal": deal, "activity": activity}
    return {"users": users, "records": records}
