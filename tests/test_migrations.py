"""Migrations: applied in order, each in a transaction, recorded, idempotent, tamper-evident."""

import shutil

import pytest
import sqlalchemy as sa

from crm_kernel.db import connect_engine, migrate, pending_migrations, schema_version
from crm_kernel.db.migrate import discover, migrations_dir
from crm_kernel.errors import DatabaseError


@pytest.fixture
def fresh(make_database):
    engine = connect_engine(make_database("crm_migrations", migrated=False))
    yield engine
    engine.dispose()


def test_migrations_apply_in_order_and_again_is_a_no_op(fresh):
    applied = migrate(fresh)
    assert [m.version for m in applied] == sorted(m.version for m in discover())
    with fresh.connect() as conn:
        recorded = conn.exec_driver_sql("SELECT version FROM schema_migrations ORDER BY version").scalars().all()
        assert schema_version(conn) == recorded[-1]
    assert recorded == [m.version for m in applied]
    assert migrate(fresh) == []
    assert pending_migrations(fresh) == []


def test_default_pipeline_is_seeded(fresh):
    migrate(fresh)
    with fresh.connect() as conn:
        stages = conn.exec_driver_sql(
            "SELECT name, probability, is_closed_won, is_closed_lost FROM pipeline_stages ORDER BY position"
        ).all()
    assert [s.name for s in stages] == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    assert [float(s.probability) for s in stages] == sorted(float(s.probability) for s in stages[:5]) + [0.0]
    assert [s.name for s in stages if s.is_closed_won] == ["Won"]
    assert [s.name for s in stages if s.is_closed_lost] == ["Lost"]


def copy_migrations(tmp_path):
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    return folder


def test_a_failing_migration_leaves_nothing_behind(fresh, tmp_path):
    folder = copy_migrations(tmp_path)
    (folder / "999_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    with pytest.raises(DatabaseError, match="999_broken.sql failed"):
        migrate(fresh, folder)
    with fresh.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('public.half_done')").scalar() is None
        assert "999" not in conn.exec_driver_sql("SELECT version FROM schema_migrations").scalars().all()
    assert [m.version for m in pending_migrations(fresh, folder)] == ["999"]


def test_an_edited_applied_migration_is_refused(fresh, tmp_path):
    folder = copy_migrations(tmp_path)
    migrate(fresh, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(DatabaseError, match="changed after it was applied"):
        migrate(fresh, folder)


def test_badly_named_migration_is_refused(tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "add_things.sql").write_text("SELECT 1")
    with pytest.raises(DatabaseError, match="NNN_name.sql"):
        discover(folder)


def test_concurrent_migrators_apply_once(make_database):
    import threading

    url = make_database("crm_migrations_race", migrated=False)
    engines = [connect_engine(url) for _ in range(3)]
    results, errors = [], []

    def run(engine):
        try:
            results.append(migrate(engine))
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(len(r) for r in results) == len(discover())
    with engines[0].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pipeline_stages")).scalar() == 6
    for e in engines:
        e.dispose()
