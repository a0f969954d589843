"""Incremental snapshots: only rows changed since the previous snapshot are copied, and the
result equals a full export of the same moment, row for row."""

from __future__ import annotations

from pathlib import Path

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest

from crm_kernel import CRM, snapshot
from crm_kernel.db import connect_engine
from crm_kernel.db.engine import libpq_url
from crm_kernel.snapshot.incremental import PgSnapshot

from .test_snapshot import Writer, seed


@pytest.fixture
def fresh(make_database):
    """A CRM on a database of its own: these tests change its schema."""
    engine = connect_engine(make_database("crm_snapshot_incremental"))
    yield CRM(engine)
    engine.dispose()


def url_of(crm) -> str:
    return libpq_url(crm.engine.url.render_as_string(hide_password=False))


def assert_same_snapshot(one: Path, other: Path) -> None:
    """Same tables, same Parquet schemas, same rows (as multisets: row order may differ)."""
    a, b = snapshot.Manifest.read(one), snapshot.Manifest.read(other)
    assert set(a.tables) == set(b.tables)
    con = duckdb.connect()
    for name in a.tables:
        left, right = one / a.tables[name].file, other / b.tables[name].file
        assert pq.read_schema(left).equals(pq.read_schema(right)), name
        assert a.tables[name].columns == b.tables[name].columns, name
        missing, extra = con.execute(f"""
            SELECT (SELECT count(*) FROM (SELECT * FROM read_parquet('{left}') EXCEPT ALL SELECT * FROM read_parquet('{right}'))),
                   (SELECT count(*) FROM (SELECT * FROM read_parquet('{right}') EXCEPT ALL SELECT * FROM read_parquet('{left}')))
        """).fetchone()
        assert (missing, extra, a.tables[name].rows) == (0, 0, b.tables[name].rows), name
    con.close()


def at_one_moment(crm, *exports):
    """Run exports inside one transaction snapshot held open by the test."""
    with psycopg.connect(url_of(crm)) as held:
        held.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot_id = held.execute("SELECT pg_export_snapshot()").fetchone()[0]
        return [export(snapshot_id) for export in exports]


def test_incremental_equals_full_under_concurrent_writes(fresh, tmp_path):
    made = seed(fresh)
    parent = tmp_path / "snapshots"
    url = url_of(fresh)
    with fresh.engine.begin() as conn:
        conn.connection.driver_connection.execute("""
            CREATE TABLE notes (id serial PRIMARY KEY, body text);             -- a user table, not tracked
            CREATE TABLE tracked_notes (id serial PRIMARY KEY, body text);     -- a user table, tracked
            SELECT crm_track_changes('tracked_notes');
            INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 50) g;
            INSERT INTO tracked_notes (body) SELECT 'note ' || g FROM generate_series(1, 50) g;
            INSERT INTO activities (company_id, type, subject, status)
            SELECT (SELECT id FROM companies LIMIT 1), 'note', 'Bulk ' || g, 'completed' FROM generate_series(1, 3000) g;
        """)

    # A transaction that writes before the previous snapshot is taken and commits after it.
    late = psycopg.connect(url)
    late.execute("UPDATE deals SET value = 777.77 WHERE id = %s", [made["deals"][0]["id"]])
    late.execute("SAVEPOINT inner_part")
    late.execute("INSERT INTO companies (name) VALUES ('From a late commit')")
    late.execute("RELEASE SAVEPOINT inner_part")
    late_xid = int(late.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
    fresh.users.create(email="later@example.com", full_name="Later")  # a newer transaction ends first

    writer = Writer(url, [c["id"] for c in made["companies"][2:]])  # the second company gets deleted
    writer.start()
    try:
        before = writer.commits
        base = snapshot.export(fresh.engine, parent, on_table=writer.during)
        assert late_xid in PgSnapshot.parse(snapshot.Manifest.read(base).pg_snapshot).xip  # in progress
        assert writer.commits > before
        late.commit()
        late.close()
        with fresh.engine.begin() as conn:
            conn.connection.driver_connection.execute("""
                DELETE FROM activities WHERE subject = 'Discovery call';         -- a hard delete
                TRUNCATE saved_queries;
                UPDATE tracked_notes SET body = 'changed' WHERE id <= 5;
                DELETE FROM tracked_notes WHERE id > 45;
                INSERT INTO notes (body) VALUES ('added');
            """)
        fresh.saved_queries.create(name="After the truncate", entity="deals", spec={"entity": "deals"})
        fresh.companies.delete(made["companies"][1]["id"])
        before = writer.commits
        incremental, full = at_one_moment(
            fresh,
            lambda sid: snapshot.export(fresh.engine, parent, incremental=True, transaction_snapshot=sid,
                                        on_table=writer.during),
            lambda sid: snapshot.export(fresh.engine, tmp_path / "full", transaction_snapshot=sid))
        assert writer.commits > before, "the writer must commit while the exports run"
    finally:
        writer.stop()

    assert_same_snapshot(incremental, full)

    manifest = snapshot.Manifest.read(incremental)
    assert manifest.base == base.name
    tables = manifest.tables
    assert 0 < tables["activities"].from_base < tables["activities"].rows
    assert tables["saved_queries"].from_base == 0 and tables["saved_queries"].rows == 1
    assert tables["tracked_notes"].tracked and tables["tracked_notes"].from_base == 40
    assert not tables["notes"].tracked and tables["notes"].from_base == 0
    unchanged = base / "pipeline_stages.parquet"
    assert tables["pipeline_stages"].from_base == tables["pipeline_stages"].rows
    assert (incremental / "pipeline_stages.parquet").stat().st_ino == unchanged.stat().st_ino  # linked
    with snapshot.open(incremental) as snap:
        assert snap.sql("SELECT count(*) AS n FROM companies WHERE name = 'From a late commit'")["n"][0] == 1
        value = snap.con.execute("SELECT value FROM deals WHERE id = ?", [made["deals"][0]["id"]]).fetchone()[0]
        assert str(value) == "777.77"


def test_schema_changes_refresh_the_table_in_full(fresh, tmp_path):
    seed(fresh)
    parent = tmp_path / "snapshots"
    recreate = """
        DROP TABLE IF EXISTS tracked_notes;
        CREATE TABLE tracked_notes (id int PRIMARY KEY, body text);
        SELECT crm_track_changes('tracked_notes');
        INSERT INTO tracked_notes SELECT g, 'note' FROM generate_series(1, %s) g;
    """
    with fresh.engine.begin() as conn:
        conn.connection.driver_connection.execute(recreate % 10)
    snapshot.export(fresh.engine, parent)
    with fresh.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE companies ADD COLUMN region text DEFAULT 'EMEA'")
        conn.connection.driver_connection.execute(recreate % 5)  # dropped: no deletions recorded
    with fresh.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ALTER TYPE deal_type ADD VALUE 'expansion'")
    incremental, full = at_one_moment(
        fresh,
        lambda sid: snapshot.export(fresh.engine, parent, incremental=True, transaction_snapshot=sid),
        lambda sid: snapshot.export(fresh.engine, tmp_path / "full", transaction_snapshot=sid))
    assert_same_snapshot(incremental, full)
    tables = snapshot.Manifest.read(incremental).tables
    assert tables["companies"].from_base == 0  # a new column
    assert tables["deals"].from_base == 0  # its enum gained a label
    assert tables["tracked_notes"].from_base == 0 and tables["tracked_notes"].rows == 5  # created anew
    assert tables["contacts"].from_base == tables["contacts"].rows


def test_without_a_previous_snapshot_of_this_database_the_export_is_full(fresh, make_database, tmp_path):
    parent = tmp_path / "snapshots"
    other = connect_engine(make_database("crm_snapshot_other"))
    try:
        snapshot.export(other, parent)
    finally:
        other.dispose()
    seed(fresh)
    path = snapshot.export(fresh.engine, parent, incremental=True)
    manifest = snapshot.Manifest.read(path)
    assert manifest.base is None
    assert all(t.from_base == 0 for t in manifest.tables.values())
    assert snapshot.export(fresh.engine, tmp_path / "empty", incremental=True).exists()


# pg_current_snapshot() "xmin:xmax:in-progress", a transaction id, whether the snapshot sees it.
SEES = [
    ("10:20:", 9, True),
    ("10:20:", 15, True),
    ("10:20:12,15", 15, False),
    ("10:20:12,15", 20, False),
    ("10:20:12,15", 13, True),
]


@pytest.mark.parametrize(("text", "xid", "sees"), SEES)
def test_snapshot_visibility(text, xid, sees):
    assert PgSnapshot.parse(text).sees(xid) is sees


# earlier snapshot, later snapshot, whether the first may serve as the base of the second.
PRECEDES = [
    ("10:20:12", "15:25:", True),
    ("10:20:12", "10:20:12", True),
    ("10:20:", "10:20:12", False),  # 12 finished for the first, still running for the second
    ("15:25:", "10:20:", False),  # taken later
]


@pytest.mark.parametrize(("earlier", "later", "precedes"), PRECEDES)
def test_snapshot_order(earlier, later, precedes):
    assert PgSnapshot.parse(earlier).precedes(PgSnapshot.parse(later)) is precedes
