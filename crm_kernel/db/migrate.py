"""Apply the numbered SQL files in ``sql/`` in order, each in its own transaction.

Applied files are recorded in ``schema_migrations`` with a checksum; running again is a
no-op, and an applied file that was edited afterwards is refused rather than ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..errors import DatabaseError

_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x63726D  # pg_advisory_xact_lock key: one migrator at a time


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations_dir() -> Path:
    """``sql/`` of a source checkout, else the copy packed into the wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "sql", here.parents[1] / "sql"):
        if candidate.is_dir():
            return candidate
    raise DatabaseError("the sql/ migrations folder is missing from this installation")


def discover(folder: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((folder or migrations_dir()).glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise DatabaseError(f"migration file {path.name} is not named NNN_name.sql")
        found.append(Migration(match.group(1), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"two migrations share a number in {folder or migrations_dir()}")
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def _applied(conn: sa.Connection) -> dict[str, str]:
    """Applied versions and checksums, read under the migrators' lock (taken first, so
    that concurrent migrators also agree on creating the bookkeeping table)."""
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
    conn.exec_driver_sql(_CREATE_TABLE)
    rows = conn.exec_driver_sql("SELECT version, checksum FROM schema_migrations").all()
    return dict(rows)


def pending_migrations(engine: sa.Engine, folder: Path | None = None) -> list[Migration]:
    with engine.begin() as conn:
        applied = _applied(conn)
    return [m for m in discover(folder) if m.version not in applied]


def migrate(engine: sa.Engine, folder: Path | None = None) -> list[Migration]:
    """Apply pending migrations; returns the ones applied (empty when up to date)."""
    done = []
    for migration in discover(folder):
        with engine.begin() as conn:
            applied = _applied(conn)
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise DatabaseError(
                        f"migration {migration.path.name} was changed after it was applied; "
                        "add a new migration instead of editing an old one"
                    )
                continue
            try:
                # psycopg runs a parameterless multi-statement script in one round trip.
                conn.connection.driver_connection.execute(migration.sql)
            except Exception as exc:
                raise DatabaseError(f"migration {migration.path.name} failed: {exc}") from exc
            conn.execute(
                sa.text("INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)"),
                {"v": migration.version, "n": migration.name, "c": migration.checksum},
            )
        done.append(migration)
    return done


def schema_version(conn: sa.Connection) -> str | None:
    """The newest applied migration number, or None on an empty database."""
    exists = conn.exec_driver_sql("SELECT to_regclass('public.schema_migrations')").scalar()
    if not exists:
        return None
    return conn.exec_driver_sql("SELECT max(version) FROM schema_migrations").scalar()


def check_schema(conn: sa.Connection, folder: Path | None = None) -> None:
    """Refuse a database whose schema is older than this installation's migrations (after an
    upgrade, before `crm db migrate`): without this, the first query that names a new column
    fails with a raw database error. Reads only; takes no lock."""
    exists = conn.exec_driver_sql("SELECT to_regclass('public.schema_migrations')").scalar()
    applied = set(conn.exec_driver_sql("SELECT version FROM schema_migrations").scalars()) if exists else set()
    pending = [m for m in discover(folder) if m.version not in applied]
    if not applied:
        raise DatabaseError("the CRM schema is missing; run `crm db migrate`")
    if pending:
        names = ", ".join(m.path.name for m in pending)
        raise DatabaseError(
            f"the database schema is older than this version of crm_kernel ({len(pending)} migration(s) "
            f"pending: {names}); run `crm db migrate`"
        )
