"""`crm db backup` / `crm db restore`: a backup restored into a fresh cluster is the same CRM,
row for row, and a restore that cannot complete changes nothing."""

from __future__ import annotations

import datetime as dt
import os
import stat

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import cli
from crm_kernel.db import connect_engine
from crm_kernel.db.backup import BackupError, backup, backup_version, database_version, restore
from crm_kernel.db.embedded import EmbeddedPostgres
from crm_kernel.db.engine import libpq_url
from crm_kernel.demo import load
from tests.helpers import scratch_dir


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: its row count and a checksum of all its rows."""
    with psycopg.connect(libpq_url(url)) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ]
        result = {}
        for table in tables:
            count, digest = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \"{table}\" t"
            ).fetchone()
            result[table] = (count, digest)
        return result


@pytest.fixture(scope="module")
def source(make_database_module):
    """A CRM database with demo data, history and rates in it."""
    url = make_database_module("backup_source")
    engine = connect_engine(url)
    load(engine, scale=0.05, seed=7, today=dt.date(2026, 11, 30))
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def dump(source, tmp_path_factory):
    return backup(source, tmp_path_factory.mktemp("backups"))


def test_backup_is_a_private_file_named_after_its_schema(dump, source):
    version = database_version(source)
    assert dump.path.name.startswith("crm-") and dump.path.name.endswith(f"-v{version}.dump")
    assert stat.S_IMODE(dump.path.stat().st_mode) == 0o600
    assert backup_version(dump.path) == dump.schema_version
    assert not [p for p in dump.path.parent.iterdir() if p.name.startswith(".")]  # no partial file left


def test_restore_into_a_fresh_cluster_gives_the_same_rows(dump, source):
    cluster = EmbeddedPostgres(scratch_dir("crm-restore-pg-") / "pg", fast=True)
    try:
        url = cluster.start()
        assert restore(url, dump.path) == dump.schema_version
        restored, original = fingerprint(url), fingerprint(source)
        assert restored == original
        assert restored["deals"][0] > 0 and restored["audit_log"][0] > 0
    finally:
        cluster.destroy()


def test_restore_refuses_a_database_that_holds_a_crm(dump, make_database):
    url = make_database("backup_busy")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO companies (name) VALUES ('Keep me')")
    before = fingerprint(url)
    with pytest.raises(BackupError, match="already holds a CRM.*--replace"):
        restore(url, dump.path)
    assert fingerprint(url) == before


def test_replace_overwrites_all_of_it(dump, source, make_database):
    url = make_database("backup_replace")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO companies (name) VALUES ('Gone after the restore')")
        conn.execute("CREATE TABLE stray (x int)")  # not in the backup: must go too
    restore(url, dump.path, replace=True)
    assert fingerprint(url) == fingerprint(source)


def test_a_damaged_backup_changes_nothing(dump, make_database, tmp_path):
    url = make_database("backup_damaged")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO companies (name) VALUES ('Still here')")
    before = fingerprint(url)
    damaged = tmp_path / "damaged.dump"
    data = dump.path.read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])  # the tail, with most of the data, is lost
    with pytest.raises(BackupError):
        restore(url, damaged, replace=True)
    assert fingerprint(url) == before


def test_a_file_that_is_no_backup_is_named(tmp_path, make_database):
    junk = tmp_path / "notes.dump"
    junk.write_text("not a dump")
    with pytest.raises(BackupError, match="notes.dump is not a crm_kernel backup"):
        restore(make_database("backup_junk", migrated=False), junk)
    with pytest.raises(BackupError, match="no backup file"):
        backup_version(tmp_path / "missing.dump")


def test_a_backup_newer_than_this_installation_is_refused(make_database, tmp_path):
    url = make_database("backup_future")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ('999', 'future', 'x')")
    future = backup(url, tmp_path / "future.dump")
    assert future.schema_version == "999"
    empty = make_database("backup_future_target", migrated=False)
    with pytest.raises(BackupError, match="version 999, newer than this crm_kernel"):
        restore(empty, future.path)
    engine = sa.create_engine(sa.make_url(empty).set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('public.companies')").scalar() is None
    engine.dispose()


def test_backup_of_an_empty_database_is_refused(make_database, tmp_path):
    with pytest.raises(BackupError, match="no CRM schema"):
        backup(make_database("backup_nothing", migrated=False), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_command_line(dump, source, make_database, tmp_path):
    runner = CliRunner()
    out = tmp_path / "nightly.dump"
    env = {**os.environ, "CRM_DATABASE_URL": source}
    done = runner.invoke(cli.main, ["db", "backup", "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert f"to {out}" in done.output and out.exists()

    target = make_database("backup_cli_target", migrated=False)
    env = {**os.environ, "CRM_DATABASE_URL": target}
    done = runner.invoke(cli.main, ["db", "restore", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert f"restored schema version {dump.schema_version}" in done.output
    again = runner.invoke(cli.main, ["db", "restore", str(out)], env=env)
    assert again.exit_code == 1 and "--replace" in again.output
    assert fingerprint(target) == fingerprint(source)
