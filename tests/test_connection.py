"""Connections: an outage mid-call is a DatabaseError on every path and heals when the server is
back; a database behind this installation's migrations and a bad CRM_TIMEZONE are refused on
connect with the fix to apply."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine
from crm_kernel.db.embedded import EmbeddedPostgres
from crm_kernel.db.migrate import migrate
from crm_kernel.errors import ConfigError, DatabaseError
from tests.helpers import scratch_dir


@pytest.fixture(scope="module")
def cluster():
    """A throwaway cluster of its own: these tests stop and start it."""
    pg = EmbeddedPostgres(scratch_dir("crm-outage-pg-") / "pg", fast=True)
    url = pg.start()
    engine = connect_engine(url)
    migrate(engine)
    engine.dispose()
    yield pg
    pg.destroy()


@pytest.fixture
def open_crm(cluster):
    url = cluster.start()
    crm = CRM(connect_engine(url))
    yield crm
    crm.close()
    cluster.start()


COMPANIES = {"entity": "companies", "select": ["name"]}


def test_an_outage_under_an_open_crm_is_a_database_error_and_heals(cluster, open_crm):
    url = cluster.url()
    acme = open_crm.companies.create(name="Acme")
    assert cluster.stop()
    calls = {
        "create": lambda: open_crm.companies.create(name="During the outage"),
        "update": lambda: open_crm.companies.update(acme["id"], name="Renamed"),
        "move": lambda: open_crm.deals.create(company_id=acme["id"], title="D"),
        "get": lambda: open_crm.companies.get(acme["id"]),
        "list": lambda: open_crm.companies.list(),
        "query": lambda: open_crm.query(COMPANIES),
    }
    for name, call in calls.items():
        with pytest.raises(DatabaseError, match=r"(lost the connection to|cannot connect to) .*127\.0\.0\.1") as info:
            call()
        assert "crm db start" in str(info.value), name
        assert "password" not in str(info.value).lower() or "***" in str(info.value), name
    assert cluster.start() == url  # same port, so the same engine can find it again
    assert open_crm.companies.get(acme["id"])["name"] == "Acme"
    open_crm.companies.create(name="After the outage")
    assert sorted(open_crm.query(COMPANIES)["name"].to_list()) == ["Acme", "After the outage"]


def test_an_outage_inside_a_transaction_is_a_database_error(cluster, open_crm):
    with pytest.raises(DatabaseError, match="lost the connection"):
        with open_crm.transaction() as conn:
            conn.execute(sa.text("SELECT 1"))
            cluster.stop()
            conn.execute(sa.text("SELECT 1"))
    cluster.start()
    assert open_crm.companies.count() >= 0


def test_connecting_to_a_stopped_server_is_a_database_error(cluster):
    url = cluster.start()
    cluster.stop()
    with pytest.raises(DatabaseError, match="cannot connect to .*crm db start"):
        CRM.connect(url)
    cluster.start()
    CRM.connect(url).close()


# -- checked on connect ----------------------------------------------------------------------------


def test_an_unmigrated_database_says_run_crm_db_migrate(make_database, tmp_path):
    import shutil

    from crm_kernel.db.migrate import discover, migrations_dir

    url = make_database("crm_behind", migrated=False)
    engine = connect_engine(url)
    with pytest.raises(DatabaseError, match="the CRM schema is missing; run `crm db migrate`"):
        CRM(engine)
    older = tmp_path / "sql"  # as installed by the previous release: without the newest file
    shutil.copytree(migrations_dir(), older)
    newest = discover()[-1]
    (older / newest.path.name).unlink()
    migrate(engine, older)
    with pytest.raises(DatabaseError) as info:
        CRM.connect(url)
    assert f"pending: {newest.path.name}); run `crm db migrate`" in str(info.value)
    migrate(engine)
    assert CRM(engine).companies.count() == 0
    engine.dispose()


@pytest.mark.parametrize(
    "zone", ["UTC -c statement_timeout=1", "Mars/Olympus_Mons", "../../etc/passwd", "Europe/", "UTC' -c x='y"]
)
def test_a_bad_crm_timezone_is_a_config_error(database_url, monkeypatch, zone):
    monkeypatch.setenv("CRM_TIMEZONE", zone)
    with pytest.raises(ConfigError, match="CRM_TIMEZONE"):
        CRM.connect(database_url)
    with pytest.raises(ConfigError, match="CRM_TIMEZONE"):
        connect_engine(database_url, timezone=zone)


def test_a_good_crm_timezone_reaches_the_session(database_url, monkeypatch):
    monkeypatch.setenv("CRM_TIMEZONE", "America/Argentina/Buenos_Aires")
    with CRM.connect(database_url) as crm, crm.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW timezone").scalar() == "America/Argentina/Buenos_Aires"
