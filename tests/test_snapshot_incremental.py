"""Incremental snapshots: only rows changed since the previous snapshot are copied, and the
result equals a full export of the same moment, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest

from crm_kernel import CRM, snapshot
from crm_kernel.db import connect_engine
from crm_kernel.db.engine import libpq_url
from crm_kernel.snapshot import SnapshotWarning
from crm_kernel.snapshot.incremental import PgSnapshot

from .test_snapshot import Writer, corrupt, seed

# An incremental export says when it copies something in full; where a test does not expect
# that, the warning fails it.
pytestmark = pytest.mark.filterwarnings("error::crm_kernel.snapshot.SnapshotWarning")


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
            SELECT (SELECT count(*) FROM (SELECT * FROM read_parquet('{left}')
                                          EXCEPT ALL SELECT * FROM read_parquet('{right}'))),
                   (SELECT count(*) FROM (SELECT * FROM read_parquet('{right}')
                                          EXCEPT ALL SELECT * FROM read_parquet('{left}')))
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
            SELECT (SELECT id FROM companies LIMIT 1), 'note', 'Bulk ' || g, 'completed'
            FROM generate_series(1, 3000) g;
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
            lambda sid: snapshot.export(
                fresh.engine, parent, incremental=True, transaction_snapshot=sid, on_table=writer.during
            ),
            lambda sid: snapshot.export(fresh.engine, tmp_path / "full", transaction_snapshot=sid),
        )
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
        lambda sid: snapshot.export(fresh.engine, tmp_path / "full", transaction_snapshot=sid),
    )
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


# -- when the recorded changes cannot be trusted ------------------------------------------------

NOTES = """
    CREATE TABLE tracked_notes (id int PRIMARY KEY, body text);
    SELECT crm_track_changes('tracked_notes');
    INSERT INTO tracked_notes SELECT g, 'note ' || g FROM generate_series(1, 20) g;
    CREATE TABLE other_notes (id int PRIMARY KEY, body text);
    SELECT crm_track_changes('other_notes');
    INSERT INTO other_notes SELECT g, 'note ' || g FROM generate_series(1, 20) g;
"""


def run_sql(crm, sql: str) -> None:
    with crm.engine.begin() as conn:
        conn.connection.driver_connection.execute(sql)


def both(crm, parent, full_parent):
    return at_one_moment(
        crm,
        lambda sid: snapshot.export(crm.engine, parent, incremental=True, transaction_snapshot=sid),
        lambda sid: snapshot.export(crm.engine, full_parent, transaction_snapshot=sid),
    )


def test_a_primary_key_update_leaves_no_ghost_row(fresh, tmp_path):
    parent = tmp_path / "snapshots"
    made = seed(fresh, companies=2)
    run_sql(fresh, NOTES)
    snapshot.export(fresh.engine, parent)
    run_sql(
        fresh,
        """
        UPDATE tracked_notes SET id = 100 WHERE id = 1;                      -- a new key
        UPDATE tracked_notes SET id = -id WHERE id IN (2, 3);                -- two rows in one statement
        UPDATE tracked_notes SET id = 2 WHERE id = -3;                       -- an old key taken by another row
        UPDATE tracked_notes SET id = 4, body = 'back' WHERE id = 4;        -- the same key again
        UPDATE other_notes SET id = id + 1000;                               -- every key at once
    """,
    )
    new_id = "00000000-0000-0000-0000-0000000000aa"
    with fresh.engine.begin() as conn:  # a uuid key too (no row refers to this stage)
        conn.exec_driver_sql(f"UPDATE pipeline_stages SET id = '{new_id}' WHERE name = 'Lost'")
    incremental, full = both(fresh, parent, tmp_path / "full")
    assert_same_snapshot(incremental, full)
    with snapshot.open(incremental) as snap:
        assert snap.sql("SELECT count(*) AS n FROM tracked_notes WHERE id = 1")["n"][0] == 0
        assert snap.sql("SELECT count(*) AS n FROM pipeline_stages WHERE name = 'Lost'")["n"][0] == 1
    assert made  # the seed's rows are there too (compared above)


def test_writes_with_triggers_bypassed_are_noticed(fresh, tmp_path):
    parent = tmp_path / "snapshots"
    seed(fresh, companies=2)
    run_sql(fresh, NOTES)
    snapshot.export(fresh.engine, parent)
    with psycopg.connect(url_of(fresh), autocommit=True) as conn:  # as logical replication does
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE tracked_notes SET body = 'changed unseen' WHERE id = 2")  # no new last_xact
        conn.execute("DELETE FROM other_notes WHERE id = 3")  # no row_deletions row
    with pytest.warns(SnapshotWarning) as warned:
        incremental, full = both(fresh, parent, tmp_path / "full")
    assert_same_snapshot(incremental, full)
    said = " ".join(str(w.message) for w in warned)
    assert "table tracked_notes: 1 rows were written without the change-tracking triggers" in said
    assert "table other_notes: 19 rows in PostgreSQL, 20 after applying the recorded changes" in said
    tables = snapshot.Manifest.read(incremental).tables
    assert tables["tracked_notes"].from_base == tables["other_notes"].from_base == 0
    assert tables["contacts"].from_base == tables["contacts"].rows  # the others still build on the base


def test_a_damaged_base_file_is_copied_in_full_saying_so(fresh, tmp_path):
    parent = tmp_path / "snapshots"
    seed(fresh)
    base = snapshot.export(fresh.engine, parent)
    corrupt(base / "contacts.parquet", footer=False)  # readable footer, damaged data: linked unless read
    corrupt(base / "deals.parquet", footer=False)
    fresh.deals.create(title="After the base", company_id=fresh.companies.list(limit=1)[0]["id"])
    with pytest.warns(SnapshotWarning) as warned:
        incremental, full = both(fresh, parent, tmp_path / "full")
    assert_same_snapshot(incremental, full)
    said = " ".join(str(w.message) for w in warned)
    assert f"{base / 'contacts.parquet'} cannot be read" in said and f"{base / 'deals.parquet'} cannot be read" in said
    manifest = snapshot.Manifest.read(incremental)
    assert manifest.base == base.name and manifest.tables["contacts"].from_base == 0
    assert manifest.tables["companies"].from_base == manifest.tables["companies"].rows


@pytest.mark.parametrize("damage", ["footer", "manifest", "hostile"])
def test_an_unreadable_base_means_a_full_export_saying_why(fresh, tmp_path, damage):
    parent = tmp_path / "snapshots"
    seed(fresh, companies=2)
    base = snapshot.export(fresh.engine, parent)
    if damage == "footer":
        corrupt(base / "deals.parquet")
        reason = r"deals\.parquet is missing or damaged"
    elif damage == "manifest":
        (base / "manifest.json").write_text("{torn")
        reason = "not a readable manifest"
    else:  # a base that would have the export link a file from outside its folder
        data = json.loads((base / "manifest.json").read_text())
        data["tables"]["users"]["file"] = "../../secrets.parquet"
        (base / "manifest.json").write_text(json.dumps(data))
        reason = r"tables\.users\.file is '\.\./\.\./secrets\.parquet'"
    with pytest.warns(
        SnapshotWarning, match=f"the newest snapshot cannot serve as a base .*{reason}.*exporting in full"
    ):
        incremental, full = both(fresh, parent, tmp_path / "full")
    assert_same_snapshot(incremental, full)
    manifest = snapshot.Manifest.read(incremental)
    assert manifest.base is None and all(t.from_base == 0 for t in manifest.tables.values())
