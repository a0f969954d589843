"""Fixtures over the session's PostgreSQL cluster (started by the top-level conftest.py)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine

from .helpers import TEMPLATE_DATABASE, create_database

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
