"""Snapshots: PostgreSQL -> Parquet at one consistent moment, atomically, and DuckDB over them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import CRM, ConfigError, DatabaseError, cli, snapshot
from crm_kernel.db import connect_engine
from crm_kernel.db.engine import libpq_url
from crm_kernel.model.catalog import SECRET_TABLES
from crm_kernel.snapshot import NoSnapshotError, SnapshotError, store

# A table a user made in the public schema: every column type the export maps, arrays included.
KINDS_SQL = """
CREATE TABLE kinds (
    id int PRIMARY KEY, small int2, big int8, real4 float4, real8 float8, name varchar(20), code char(3),
    doc json, blob bytea, at_time time, at_local timestamp, span interval, address inet, amount money,
    any_number numeric, huge numeric(50, 2), rounded numeric(5, -2), tiny numeric(2, 4), priority priority_level,
    tags text[], scores int[], prices numeric(8, 2)[], ids uuid[], levels priority_level[], days date[],
    stamps timestamptz[], flags bool[], docs jsonb[]
);
INSERT INTO kinds VALUES
 (1, 7, 9007199254740993, 1.5, 2.25, 'naïve ''quoted''', 'ab', '{"a": [1, 2.5, null]}', '\\x00ff10',
  '12:30:15.5', '2024-02-29 23:59:59.999999', '1 year 2 days 03:04:05', '10.1.2.3/32', 12.34,
  3.14159265358979323846, 123456789012345678901234567890123456789012345678.91, 12345, 0.0012, 'urgent',
  '{"a","b c",NULL}', '{1,NULL,3}', '{1.25,NULL,99999.99}', '{00000000-0000-0000-0000-000000000001}',
  '{low,urgent}', '{2024-02-29,NULL}', '{"2024-01-01 10:00+02"}', '{t,f,NULL}', '{"{\\"k\\": 1}"}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE "Odd name/with slash" (id int PRIMARY KEY, "Mixed Case" text);
INSERT INTO "Odd name/with slash" VALUES (1, 'still a table');
"""

# Row 1 of KINDS_SQL as DuckDB reads it back, written out from the INSERT by hand. Types that
# Parquet cannot hold travel as PostgreSQL's text form (inet's text() keeps the mask, money
# its symbol, numeric(5,-2) its rounding); char(3) keeps its padding.
KINDS_ROW = {
    "id": 1,
    "small": 7,
    "big": 9007199254740993,
    "real4": 1.5,
    "real8": 2.25,
    "name": "naïve 'quoted'",
    "code": "ab ",
    "doc": '{"a": [1, 2.5, null]}',
    "blob": b"\x00\xff\x10",
    "at_time": dt.time(12, 30, 15, 500000),
    "at_local": dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "span": "1 year 2 days 03:04:05",
    "address": "10.1.2.3/32",
    "amount": "$12.34",
    "any_number": "3.14159265358979323846",
    "huge": "123456789012345678901234567890123456789012345678.91",
    "rounded": "12300",
    "tiny": "0.0012",
    "priority": "urgent",
    "tags": ["a", "b c", None],
    "scores": [1, None, 3],
    "prices": [Decimal("1.25"), None, Decimal("99999.99")],
    "ids": [uuid.UUID("00000000-0000-0000-0000-000000000001")],
    "levels": ["low", "urgent"],
    "days": [dt.date(2024, 2, 29), None],
    "stamps": [dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC)],
    "flags": [True, False, None],
    "docs": ['{"k": 1}'],
}

# PostgreSQL type -> the type of the DuckDB view column (sqlglot style: input -> expected).
TYPES = [
    ("deals", "id", "uuid", "UUID"),
    ("deals", "value", "numeric(12,2)", "DECIMAL(12,2)"),
    ("deals", "probability", "numeric(5,4)", "DECIMAL(5,4)"),
    ("companies", "annual_revenue", "numeric(16,2)", "DECIMAL(16,2)"),
    ("deals", "expected_close_date", "date", "DATE"),
    ("deals", "created_at", "timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
    ("deals", "version", "integer", "INTEGER"),
    ("audit_log", "id", "bigint", "BIGINT"),
    ("pipeline_stages", "is_closed_won", "boolean", "BOOLEAN"),
    ("deals", "title", "text", "VARCHAR"),
    ("deals", "custom_fields", "jsonb", "JSON"),
    ("deals", "priority", "priority_level", "ENUM('low', 'medium', 'high', 'urgent')"),
    ("kinds", "small", "smallint", "SMALLINT"),
    ("kinds", "big", "bigint", "BIGINT"),
    ("kinds", "real4", "real", "FLOAT"),
    ("kinds", "real8", "double precision", "DOUBLE"),
    ("kinds", "name", "character varying(20)", "VARCHAR"),
    ("kinds", "code", "character(3)", "VARCHAR"),
    ("kinds", "doc", "json", "JSON"),
    ("kinds", "blob", "bytea", "BLOB"),
    ("kinds", "at_time", "time without time zone", "TIME"),
    ("kinds", "at_local", "timestamp without time zone", "TIMESTAMP"),
    ("kinds", "span", "interval", "VARCHAR"),
    ("kinds", "address", "inet", "VARCHAR"),
    ("kinds", "amount", "money", "VARCHAR"),
    ("kinds", "any_number", "numeric", "VARCHAR"),
    ("kinds", "huge", "numeric(50,2)", "VARCHAR"),
    ("kinds", "rounded", "numeric(5,-2)", "VARCHAR"),
    ("kinds", "tiny", "numeric(2,4)", "VARCHAR"),
    ("kinds", "tags", "text[]", "VARCHAR[]"),
    ("kinds", "scores", "integer[]", "INTEGER[]"),
    ("kinds", "prices", "numeric(8,2)[]", "DECIMAL(8,2)[]"),
    ("kinds", "ids", "uuid[]", "UUID[]"),
    ("kinds", "levels", "priority_level[]", "ENUM('low', 'medium', 'high', 'urgent')[]"),
    ("kinds", "days", "date[]", "DATE[]"),
    ("kinds", "stamps", "timestamp with time zone[]", "TIMESTAMP WITH TIME ZONE[]"),
    ("kinds", "flags", "boolean[]", "BOOLEAN[]"),
    ("kinds", "docs", "jsonb[]", "JSON[]"),
]


def seed(crm: CRM, companies: int = 6) -> dict:
    """A small CRM written through the services: every built-in table gets rows."""
    owner = crm.users.create(email="owner@example.com", full_name="Olga Owner", role="manager")
    made = {"companies": [], "deals": []}
    for i in range(companies):
        company = crm.companies.create(
            name=f"Company {i}",
            domain=f"c{i}.example",
            industry="Software",
            size="medium",
            employees=10 + i,
            annual_revenue=Decimal("1000000.25") * (i + 1),
            address={"city": "Zürich", "lines": [f"Street {i}"]},
            owner_id=owner["id"],
            custom_fields={"tier": i % 3},
        )
        contact = crm.contacts.create(
            company_id=company["id"],
            first_name="Ann",
            last_name=f"Lee {i}",
            email=f"ann{i}@c{i}.example",
            preferred_contact_method="email",
            is_primary=True,
            lead_score=50,
            lifecycle_stage="customer",
            social_profiles={"linkedin": f"ann{i}"},
            owner_id=owner["id"],
        )
        deal = crm.deals.create(
            company_id=company["id"],
            contact_id=contact["id"],
            owner_id=owner["id"],
            title=f"Deal {i}",
            value=Decimal("1234.56") + i,
            currency="EUR",
            expected_close_date=dt.date(2025, 3, 31),
            first_contact_date=dt.date(2025, 1, 2),
            lead_source="referral",
            campaign="Spring",
            type="renewal",
            priority="high",
        )
        crm.deals.move(deal["id"], "Proposal")
        made["companies"].append(company)
        made["deals"].append(deal)
    crm.activities.create(
        company_id=made["companies"][0]["id"],
        type="call",
        subject="Discovery call",
        scheduled_at=dt.datetime(2025, 1, 2, 9, 30, tzinfo=dt.UTC),
        duration_minutes=30,
        external_id="x-1",
        external_source="calendar",
        external_data={"attendees": 3},
    )
    crm.saved_queries.create(
        name="Big deals", entity="deals", spec={"entity": "deals", "limit": 10}, owner_id=owner["id"], shared=True
    )
    return made


@pytest.fixture
def fresh(make_database):
    """A CRM on a database of its own (user tables made here must not reach the shared one)."""
    engine = connect_engine(make_database("crm_snapshot"))
    yield CRM(engine)
    engine.dispose()


@pytest.fixture
def parent(tmp_path) -> Path:
    return tmp_path / "snapshots"


def pg_rows(engine: sa.Engine, query: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(query)]


def table_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars().all()
        return {
            n: conn.exec_driver_sql(f'SELECT count(*) FROM "{n}"').scalar() for n in names if n not in SECRET_TABLES
        }


# -- types and counts ----------------------------------------------------------------------


def test_every_column_type_survives_the_round_trip(fresh, parent):
    seed(fresh)
    with fresh.engine.begin() as conn:
        conn.connection.driver_connection.execute(KINDS_SQL)
    with snapshot.open(fresh.snapshot(out=parent), include_deleted=True) as snap:
        described = {(t, r[0]): r[1] for t in snap.tables for r in snap.con.execute(f'DESCRIBE "{t}"').fetchall()}
        for table, column, pg_type, duckdb_type in TYPES:
            recorded = {c.name: c for c in snap.manifest.tables[table].columns}[column]
            assert recorded.pg_type == pg_type, f"{table}.{column}"
            assert described[(table, column)] == duckdb_type, f"{table}.{column}"

        # The user table, value by value, against what its INSERT says (written out by hand).
        got = snap.con.execute("SELECT * FROM kinds ORDER BY id").fetchall()
        names = [c.name for c in snap.manifest.tables["kinds"].columns]
        assert dict(zip(names, got[0], strict=True)) == KINDS_ROW
        assert got[1] == (2,) + (None,) * (len(names) - 1)
        assert snap.con.execute('SELECT * FROM "Odd name/with slash"').fetchall() == [(1, "still a table")]

        # The CRM's tables against PostgreSQL's own rows (read with a plain SELECT, not the
        # export's query); DuckDB hands JSON over as text where psycopg parses it.
        for table, entry in snap.manifest.tables.items():
            if table in ("kinds", "Odd name/with slash"):
                continue
            names = ", ".join(f'"{c.name}"' for c in entry.columns)
            order = f"ORDER BY {', '.join(str(i + 1) for i in range(min(3, len(entry.columns))))}"
            expected = pg_rows(fresh.engine, f'SELECT {names} FROM "{table}" {order}')
            got = snap.con.execute(f'SELECT {names} FROM "{table}" {order}').fetchall()
            assert len(got) == len(expected) == entry.rows, table
            for want_row, got_row in zip(expected, got, strict=True):
                for c, want, value in zip(entry.columns, want_row, got_row, strict=True):
                    if c.duckdb_type.startswith("JSON") and value is not None:
                        value = json.loads(value)
                    assert value == want, f"{table}.{c.name}: {value!r} != {want!r}"


def test_decimals_keep_their_digits_and_enums_sort_as_in_postgres(crm, parent):
    acme = crm.companies.create(name="Acme")
    for value, priority in [("0.10", "urgent"), ("99999.99", "low"), ("0.20", "high")]:
        crm.deals.create(company_id=acme["id"], title=f"Deal {value}", value=value, priority=priority)
    with snapshot.open(crm.snapshot(out=parent)) as snap:
        frame = snap.sql("SELECT priority, value, sum(value) OVER () AS total FROM deals ORDER BY priority")
    assert frame["priority"].to_list() == ["low", "high", "urgent"]  # the enum's order, not the alphabet's
    assert frame["value"].to_list() == [Decimal("99999.99"), Decimal("0.20"), Decimal("0.10")]
    assert frame["total"][0] == Decimal("100000.29")


def test_counts_equal_postgres(crm, parent):
    seed(crm)
    crm.companies.delete(crm.companies.list(limit=1)[0]["id"])
    path = crm.snapshot(out=parent)
    counts = table_counts(crm.engine)
    with snapshot.open(path) as snap:
        assert {t: e.rows for t, e in snap.manifest.tables.items()} == counts
        assert {
            t: snap.con.execute(f'SELECT count(*) FROM with_deleted."{t}"').fetchone()[0] for t in snap.tables
        } == counts
        live = snap.con.execute("SELECT count(*) FROM companies").fetchone()[0]
    assert live == counts["companies"] - 1 == crm.companies.count()


def test_manifest_records_the_moment_and_the_schema(crm, parent):
    path = crm.snapshot(out=parent)
    manifest = snapshot.Manifest.read(path)
    with crm.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT max(version) FROM schema_migrations").scalar()
        database = conn.exec_driver_sql("SELECT current_database()").scalar()
    assert manifest.schema_version == version
    assert manifest.database.name == database
    assert path.name == store.folder_name(dt.datetime.fromisoformat(manifest.exported_at))
    xmin, xmax, _ = manifest.pg_snapshot.split(":")
    assert int(xmin) <= int(xmax)
    assert manifest.enums["priority_level"] == ["low", "medium", "high", "urgent"]
    deals = manifest.tables["deals"]
    assert deals.key == "id" and deals.tracked and deals.soft_delete
    assert {s.name for s in deals.skipped} == {"search_vector", "last_xact"}
    assert not manifest.tables["schema_migrations"].tracked
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [*(f"{t}.parquet" for t in manifest.tables), "manifest.json"]
    )


# -- reading snapshots ---------------------------------------------------------------------


def test_soft_deleted_rows_are_hidden_unless_asked(crm, parent):
    kept, gone = crm.companies.create(name="Kept"), crm.companies.create(name="Gone")
    crm.companies.delete(gone["id"])
    path = crm.snapshot(out=parent)
    with snapshot.open(path) as snap:
        assert snap.sql("SELECT name FROM companies")["name"].to_list() == ["Kept"]
        assert sorted(snap.sql("SELECT name FROM with_deleted.companies")["name"]) == ["Gone", "Kept"]
    with snapshot.open(path, include_deleted=True) as snap:
        assert sorted(snap.sql("SELECT name FROM companies")["name"]) == ["Gone", "Kept"]
    assert kept["deleted_at"] is None


def test_open_takes_a_folder_or_the_newest_in_a_parent(crm, parent, monkeypatch, tmp_path):
    first = crm.snapshot(out=parent)
    crm.companies.create(name="Later")
    second = crm.snapshot(out=parent)
    (parent / ".partial-abandoned").mkdir()  # what a killed export leaves: never opened
    shutil.copytree(first, parent / "kept-by-hand")  # opened when named, never listed nor pruned
    assert second.name > first.name
    assert store.snapshots(parent) == [first, second]
    with snapshot.open(parent) as snap:
        assert snap.path == second and snap.sql("SELECT count(*) AS n FROM companies")["n"][0] == 1
    for path in (first, parent / "kept-by-hand"):
        with snapshot.open(path) as snap:
            assert snap.sql("SELECT count(*) AS n FROM companies")["n"][0] == 0
    monkeypatch.setenv("CRM_HOME", str(tmp_path / "home"))
    with pytest.raises(NoSnapshotError, match="no snapshot in .*home/snapshots.*crm snapshot export"):
        snapshot.open()
    made = snapshot.export(crm.engine)  # CRM.snapshot() uses the CRM's own settings
    assert made.parent == tmp_path / "home" / "snapshots"
    with snapshot.open() as snap:
        assert snap.path == made


def test_duckdb_session_uses_crm_timezone(crm, parent, monkeypatch):
    crm.companies.create(name="Late")
    with crm.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE companies SET created_at = '2025-01-01 23:30:00+00'")
    path = crm.snapshot(out=parent)
    monkeypatch.setenv("CRM_TIMEZONE", "Europe/Berlin")
    with snapshot.open(path) as snap:
        row = snap.con.execute(
            "SELECT current_setting('TimeZone'), created_at::DATE, created_at FROM companies"
        ).fetchone()
    assert row[0] == "Europe/Berlin"
    assert row[1] == dt.date(2025, 1, 2)  # 00:30 in Berlin
    assert row[2] == dt.datetime(2025, 1, 1, 23, 30, tzinfo=dt.UTC)
    monkeypatch.setenv("CRM_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        snapshot.open(path)


# -- consistency ---------------------------------------------------------------------------


class Writer(threading.Thread):
    """Keeps committing pipeline moves and new deals until stopped. ``during()`` is an
    ``on_table`` hook for ``export``: it returns only once the writer has committed again, so
    commits land while the export runs, whatever the machine's speed."""

    def __init__(self, url: str, company_ids: list):
        super().__init__(daemon=True)
        self.engine = connect_engine(url)
        self.crm = CRM(self.engine)
        self.company_ids = company_ids
        self.commits = 0
        self.error: BaseException | None = None
        self.halt = threading.Event()
        self.committed = threading.Condition()

    def run(self) -> None:
        stages = ["Qualified", "Proposal", "Negotiation", "Won"]
        i = 0
        try:
            while not self.halt.is_set():
                company = self.company_ids[i % len(self.company_ids)]
                deal = self.crm.deals.create(
                    company_id=company, title=f"Live {i}", value=100 + i, expected_close_date=dt.date(2025, 6, 30)
                )
                self.crm.deals.move(deal["id"], stages[i % len(stages)])
                with self.committed:
                    self.commits += 2
                    self.committed.notify_all()
                i += 1
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            with self.committed:
                self.committed.notify_all()

    def during(self, _table: str = "") -> None:
        with self.committed:
            target = self.commits + 2
            self.committed.wait_for(lambda: self.commits >= target or self.error or not self.is_alive())

    def stop(self) -> None:
        self.halt.set()
        self.join(600)  # a guard against a hang: a commit may be slow on a busy machine
        self.engine.dispose()
        assert self.error is None, self.error


def test_snapshot_under_concurrent_writes_is_one_moment(fresh, parent, tmp_path):
    made = seed(fresh)
    url = libpq_url(fresh.engine.url.render_as_string(hide_password=False))
    with fresh.engine.begin() as conn:  # enough rows that the export takes a while
        conn.exec_driver_sql(
            "INSERT INTO activities (company_id, type, subject, description, status)"
            " SELECT c.id, 'note', 'Note ' || g, repeat('words ', 30), 'completed'"
            " FROM generate_series(1, 40000) g, (SELECT id FROM companies LIMIT 1) c"
        )
    writer = Writer(url, [c["id"] for c in made["companies"]])
    writer.start()
    try:
        # What PostgreSQL reports inside one transaction snapshot, which the export then imports.
        with psycopg.connect(url) as held:
            held.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            snapshot_id = held.execute("SELECT pg_export_snapshot()").fetchone()[0]
            expected = dict(
                held.execute(
                    "SELECT stage_id::text, sum(value) FROM deals WHERE deleted_at IS NULL GROUP BY 1"
                ).fetchall()
            )
            before = writer.commits
            pinned = snapshot.export(fresh.engine, parent, transaction_snapshot=snapshot_id, on_table=writer.during)
            during_pinned = writer.commits - before
        before = writer.commits
        own = snapshot.export(fresh.engine, tmp_path / "own", on_table=writer.during)
        during_own = writer.commits - before
    finally:
        writer.stop()
    assert during_pinned > 0 and during_own > 0, "the writer must commit while the exports run"
    with snapshot.open(pinned) as snap:
        got = dict(snap.con.execute("SELECT stage_id::VARCHAR, sum(value) FROM deals GROUP BY 1").fetchall())
    assert got == expected
    # Without a given snapshot, the export's own moment is still one: every move wrote a deal
    # version, an audit row and a stage-change activity in one transaction.
    with snapshot.open(own) as snap:
        moves, activities, stale = snap.con.execute("""
            SELECT (SELECT count(*) FROM audit_log WHERE operation = 'move'),
                   (SELECT count(*) FROM activities WHERE type = 'stage_change'),
                   (SELECT count(*) FROM deals d WHERE d.version <> (
                        SELECT count(*) FROM audit_log a WHERE a.entity_id = d.id AND a.entity = 'deals'))
        """).fetchone()
    assert moves == activities > 0
    assert stale == 0


# -- atomicity -----------------------------------------------------------------------------


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def lock_deals(url: str) -> psycopg.Connection:
    """A transaction holding an exclusive lock on deals, so that an export stalls there."""
    conn = psycopg.connect(url)
    conn.execute("LOCK TABLE deals IN ACCESS EXCLUSIVE MODE")
    return conn


def test_killed_export_leaves_the_previous_snapshot_intact(fresh, parent):
    seed(fresh)
    previous = fresh.snapshot(out=parent)
    before = fingerprint(previous)
    url = libpq_url(fresh.engine.url.render_as_string(hide_password=False))
    lock = lock_deals(url)
    code = (
        "import sys; from crm_kernel.db import connect_engine; from crm_kernel.snapshot import export; "
        "export(connect_engine(sys.argv[1]), sys.argv[2])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, url, str(parent)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 600  # a guard against a hang, not a bound: starting Python may be slow
        while time.monotonic() < deadline:  # until the export has written the tables it can reach
            staged = [p for p in parent.glob(".partial-*") if p.is_dir()]
            if staged and len(list(staged[0].glob("*.parquet"))) >= 3:
                break
            assert proc.poll() is None, "the export ended although deals was locked"
            time.sleep(0.02)
        else:
            pytest.fail("the export never got going")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        lock.rollback()
        lock.close()
        if proc.poll() is None:
            proc.kill()
    assert store.snapshots(parent) == [previous]
    assert fingerprint(previous) == before
    with snapshot.open(parent) as snap:
        assert snap.path == previous
    leftovers = sorted(p.name for p in parent.glob(".partial-*"))
    assert leftovers and all(name.startswith(".partial-") for name in leftovers)
    removed = snapshot.prune(parent, keep=1)
    assert [p.name for p in removed] == [n for n in leftovers if not n.endswith(".lock")]
    assert sorted(p.name for p in parent.iterdir()) == [previous.name]


def test_failed_export_leaves_the_previous_snapshot_and_nothing_else(fresh, parent):
    seed(fresh)
    previous = fresh.snapshot(out=parent)
    before = fingerprint(previous)
    url = libpq_url(fresh.engine.url.render_as_string(hide_password=False))
    with fresh.engine.begin() as conn:  # new sessions give up waiting for a lock after 200 ms
        conn.exec_driver_sql(f'ALTER DATABASE "{fresh.engine.url.database}" SET lock_timeout = 200')
    lock = lock_deals(url)
    engine = connect_engine(url)
    try:
        with pytest.raises(DatabaseError, match="exporting table deals failed: .*lock timeout"):
            snapshot.export(engine, parent)
    finally:
        engine.dispose()
        lock.close()
    assert sorted(p.name for p in parent.iterdir()) == [previous.name]
    assert fingerprint(previous) == before


def test_prune_keeps_the_newest_and_live_exports(crm, parent):
    made = [crm.snapshot(out=parent) for _ in range(3)]
    with store.Staging(parent) as live:  # an export still running: its lock is held
        removed = snapshot.prune(parent, keep=2)
        assert removed == [made[0]]
        assert live.path.exists()
    assert store.snapshots(parent) == made[1:]
    with pytest.raises(SnapshotError, match="at least one"):
        snapshot.prune(parent, keep=0)


def test_damaged_snapshot_is_a_clear_error(crm, parent):
    path = crm.snapshot(out=parent)
    (path / "deals.parquet").unlink()
    with pytest.raises(SnapshotError, match="cannot open the snapshot .*deals.parquet"):
        snapshot.open(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match="not a readable manifest") as raised:
        snapshot.open(path)
    assert not isinstance(raised.value, NoSnapshotError)  # a snapshot is there, only damaged


def test_unwritable_folder_is_a_clear_error(crm, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SnapshotError, match="cannot write a snapshot into"):
        crm.snapshot(out=blocker)


# -- the command ---------------------------------------------------------------------------


def run_cli(*args, env):
    return CliRunner().invoke(cli.main, ["snapshot", *args], env=env, catch_exceptions=False)


def test_cli_export_list_prune(fresh, tmp_path):
    seed(fresh, companies=2)
    env = {
        "CRM_DATABASE_URL": fresh.engine.url.render_as_string(hide_password=False),
        "CRM_HOME": str(tmp_path / "home"),
    }
    first = run_cli("export", env=env)
    assert first.exit_code == 0, first.output
    path = Path(first.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path / "home" / "snapshots" and store.is_snapshot(path)
    fresh.companies.create(name="Another")
    second = run_cli("export", "--incremental", env=env)
    assert second.exit_code == 0 and f"incremental from {path.name}" in second.output

    listed = run_cli("list", env=env).stdout.strip().splitlines()
    assert len(listed) == 2 and listed[0].startswith(path.name) and "full" in listed[0]
    assert f"incremental from {path.name}" in listed[1]

    pruned = run_cli("prune", "--keep", "1", env=env)
    assert pruned.exit_code == 0 and f"removed {path.name}" in pruned.stdout and "1 removed" in pruned.stdout
    assert len(run_cli("list", env=env).stdout.strip().splitlines()) == 1

    other = tmp_path / "elsewhere"
    assert run_cli("export", "--out", str(other), env=env).exit_code == 0
    assert len(store.snapshots(other)) == 1
    assert run_cli("list", "--out", str(tmp_path / "none"), env=env).stdout.startswith("no snapshots in")
    refused = CliRunner().invoke(cli.main, ["snapshot", "prune", "--keep", "0"], env=env)
    assert refused.exit_code == 2


# -- damaged and hostile snapshots ------------------------------------------------------------


def corrupt(path: Path, footer: bool = True) -> None:
    """Keep the file's size, overwrite its data pages (and footer): what a bad disk or a torn copy leaves."""
    data = bytearray(path.read_bytes())
    end = len(data) if footer else len(data) - int.from_bytes(data[-8:-4], "little") - 8
    data[4:end] = b"\x17" * (end - 4)
    path.write_bytes(bytes(data))


def test_damaged_file_is_a_snapshot_error_naming_it(crm, parent):
    seed(crm, companies=2)
    path = crm.snapshot(out=parent)
    good = (path / "deals.parquet").read_bytes()
    for damage in (corrupt, lambda p: p.write_bytes(good[: len(good) // 2]), lambda p: p.write_bytes(b"")):
        damage(path / "deals.parquet")
        with pytest.raises(SnapshotError, match=r"deals\.parquet is missing or damaged"):
            snapshot.open(path)
        (path / "deals.parquet").write_bytes(good)
    (path / "deals.parquet").write_bytes((path / "companies.parquet").read_bytes())  # another table's file
    with pytest.raises(SnapshotError, match=r"deals\.parquet does not hold what the manifest lists"):
        snapshot.open(path)


def edit_manifest(path: Path, change) -> None:
    data = json.loads((path / "manifest.json").read_text())
    change(data)
    (path / "manifest.json").write_text(json.dumps(data))


HOSTILE_TYPES = [
    "INTEGER) AS id FROM read_csv('/etc/passwd') --",
    "VARCHAR); COPY (SELECT 1) TO '/tmp/owned.csv'; --",
    "DECIMAL(12,2) ",
    "DECIMAL(40,2)",
    "MAP(VARCHAR, VARCHAR)",
    "priority_level[][]",
]
HOSTILE_FILES = [
    "../deals.parquet",
    "/etc/passwd",
    "sub/deals.parquet",
    "..",
    "deals.parquet/../x.parquet",
    "companies.parquet",
    "deals.PARQUET",
]


@pytest.mark.parametrize("kind", HOSTILE_TYPES)
def test_manifest_types_outside_the_type_map_are_refused(crm, parent, kind):
    path = crm.snapshot(out=parent)
    edit_manifest(path, lambda m: m["tables"]["deals"]["columns"][1].update(duckdb_type=kind))
    with pytest.raises(SnapshotError, match=r"manifest.json: tables\.deals\.columns\[1\] \('\w+'\) has type"):
        snapshot.open(path)
    assert not Path("/tmp/owned.csv").exists()


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_manifest_file_names_outside_the_folder_are_refused(crm, parent, name):
    path = crm.snapshot(out=parent)
    edit_manifest(path, lambda m: m["tables"]["deals"].update(file=name))
    with pytest.raises(SnapshotError, match=r"manifest.json: tables\.deals\.file is .*'deals\.parquet'"):
        snapshot.open(path)


def test_every_type_the_exporter_writes_passes_the_check(fresh, parent):
    with fresh.engine.begin() as conn:
        conn.connection.driver_connection.execute(KINDS_SQL)
    with snapshot.open(fresh.snapshot(out=parent)) as snap:  # the check refuses none of its own
        assert {c.duckdb_type for c in snap.manifest.tables["kinds"].columns} >= {"DECIMAL(8,2)[]", "priority_level[]"}


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_snapshots_are_private(crm, tmp_path):
    old = os.umask(0o022)
    try:
        parent = tmp_path / "new" / "snapshots"
        path = crm.snapshot(out=parent)
        staging = store.Staging(parent)
        with staging:
            assert mode(staging.path) == 0o700 and mode(store._lock_path(staging.path)) == 0o600
    finally:
        os.umask(old)
    assert mode(parent) == mode(parent.parent) == mode(path) == 0o700
    assert {p.name: mode(p) for p in path.iterdir()} == {p.name: 0o600 for p in path.iterdir()}
    incremental = snapshot.export(crm.engine, parent, incremental=True)
    assert mode(incremental) == 0o700 and {mode(p) for p in incremental.iterdir()} == {0o600}


def test_prune_racing_an_export_never_takes_its_staging_folder(crm, parent, monkeypatch):
    """The export creates its lock file, then locks it; a prune that runs in between finds it
    unheld. Without care it removes the lock file, and the next prune the live staging folder."""
    crm.snapshot(out=parent)
    real_flock, raced = store.fcntl.flock, []

    class Interleaved:  # runs a prune exactly between the export's creating and locking its lock file
        LOCK_EX, LOCK_NB = store.fcntl.LOCK_EX, store.fcntl.LOCK_NB

        @staticmethod
        def flock(fd, operation):
            if not raced and operation == store.fcntl.LOCK_EX:
                raced.append(snapshot.prune(parent, keep=1))
            return real_flock(fd, operation)

    monkeypatch.setattr(store, "fcntl", Interleaved)
    with store.Staging(parent) as live:
        assert raced == [[]]  # the first prune ran inside the window and removed nothing it needed
        assert snapshot.prune(parent, keep=1) == []
        assert live.path.is_dir() and store._lock_path(live.path).exists()
        (live.path / "table.parquet").write_bytes(b"still being written")
        assert live.publish("20990101T000000.000000Z").is_dir()


def test_sign_in_tokens_stay_out_of_snapshots(crm, parent):
    from crm_kernel.access.tokens import issue

    crm.users.create(email="rep@example.com", full_name="Rep")
    issue(crm.engine, "rep@example.com")
    path = crm.snapshot(out=parent)
    with snapshot.open(path) as snap:
        assert "sign_in_tokens" not in snap.manifest.tables and "sign_in_tokens" not in snap.tables
        assert "schema_migrations" in snap.manifest.tables
