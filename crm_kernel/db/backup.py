"""``crm db backup`` and ``crm db restore``: the whole CRM database in one pg_dump file.

A backup is pg_dump's custom format, written beside its target and renamed into place only
when complete, named after the schema version it holds. A restore goes into an empty database
in one transaction: it either completes or leaves the database as it was, and a database that
already holds a CRM is refused unless the caller says to replace it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..errors import ConfigError, CrmError
from .embedded import find_bindir
from .engine import libpq_url
from .migrate import discover

SUFFIX = ".dump"


class BackupError(CrmError):
    """A backup or restore that could not be done; nothing was changed."""


@dataclass(frozen=True)
class Backup:
    path: Path
    schema_version: str
    size: int


def _tool(name: str) -> str:
    """pg_dump / pg_restore from the same installation as the server binaries."""
    path = find_bindir() / name
    if not path.exists():
        raise ConfigError(f"{name} is missing from {path.parent}; install the PostgreSQL client tools")
    return str(path)


def _environment(url: str) -> dict[str, str]:
    """libpq settings as environment variables: the password never shows in a process list."""
    params = conninfo_to_dict(libpq_url(url))
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
        "sslmode": "PGSSLMODE",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({names[key]: str(value) for key, value in params.items() if key in names and value is not None})
    return env


def _run(args: list[str], url: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=_environment(url), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise BackupError(f"{Path(args[0]).name} failed: {' '.join(message[-3:]) or f'exit status {proc.returncode}'}")
    return proc


def database_version(url: str) -> str | None:
    """The schema version a database holds, or None when it holds no CRM."""
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        if conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0] is None:
            return None
        return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]


def default_name(version: str, now: dt.datetime | None = None) -> str:
    """``crm-20261201-0457-v008.dump``: when, and which schema."""
    now = now or dt.datetime.now()
    return f"crm-{now:%Y%m%d-%H%M%S}-v{version}{SUFFIX}"


def backup(url: str, out: Path | str | None = None) -> Backup:
    """Dump the CRM database at ``url`` into ``out`` (a file, or a folder for the default name)."""
    version = database_version(url)
    if version is None:
        raise BackupError("the database holds no CRM schema; there is nothing to back up")
    out = Path(out) if out is not None else Path.cwd()
    target = out / default_name(version) if out.is_dir() else out
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: the folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    try:
        _run([_tool("pg_dump"), "--format=custom", "--compress=6", "--no-owner", f"--file={partial}"], url)
        partial.chmod(0o600)  # a backup holds every record and the users' e-mails
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Backup(target, version, target.stat().st_size)


# Roles belong to the cluster, not to the database: a backup's grants and policies name the
# roles sql/017 makes, which a fresh cluster lacks (per-user logins are made again with
# `crm users db-credentials`, the service login by `crm db start`).
CLUSTER_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_app') THEN
        CREATE ROLE crm_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_personal_login') THEN
        CREATE ROLE crm_personal_login NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
"""

_VERSION_ROW = re.compile(r"^(\d+)\t", re.MULTILINE)


def backup_version(path: Path | str) -> str:
    """The schema version inside a backup file, read without a database (pg_restore to text)."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    proc = subprocess.run(
        [_tool("pg_restore"), "--data-only", "--table=schema_migrations", "--file=-", str(path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise BackupError(f"{path} is not a crm_kernel backup (pg_restore: {proc.stderr.strip()[-200:]})")
    versions = _VERSION_ROW.findall(proc.stdout)
    if not versions:
        raise BackupError(f"{path} holds no CRM schema version; it is not a crm_kernel backup")
    return max(versions)


def restore(url: str, path: Path | str, *, replace: bool = False) -> str:
    """Restore ``path`` into the database at ``url``; returns the restored schema version.

    The database must hold no CRM, unless ``replace``: then its ``public`` schema is dropped in
    the same transaction as the restore, so a failure keeps what was there. A backup newer than
    this installation's migrations is refused (upgrade crm_kernel first); an older one is
    restored as it is, to be brought up to date by ``crm db migrate``.
    """
    version = backup_version(path)
    newest = max((m.version for m in discover()), default="0")
    if version > newest:
        raise BackupError(
            f"{path} holds schema version {version}, newer than this crm_kernel ({newest}); upgrade first"
        )
    current = database_version(url)
    if current is not None and not replace:
        raise BackupError(
            "the database already holds a CRM (schema version "
            f"{current}); restore into an empty database, or pass --replace to overwrite it"
        )
    # pg_restore writes the backup as SQL and psql runs it in one transaction, after the
    # drop when replacing. COMMIT is sent only once pg_restore has read the whole file: a file
    # that breaks off half-way ends the session with the transaction open, and it rolls back.
    prefix = "BEGIN;\n" + (
        "DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n" if current is not None else ""
    )
    prefix += CLUSTER_ROLES
    with tempfile.TemporaryFile() as psql_err, tempfile.TemporaryFile() as restore_err:
        script = subprocess.Popen(
            [_tool("pg_restore"), "--no-owner", "--file=-", str(path)],
            stdout=subprocess.PIPE,
            stderr=restore_err,
            stdin=subprocess.DEVNULL,
        )
        psql = subprocess.Popen(
            [_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=_environment(url),
        )
        try:
            psql.stdin.write(prefix.encode())
            shutil.copyfileobj(script.stdout, psql.stdin, 1 << 20)
            if script.wait() == 0:
                psql.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:
            pass  # psql stopped at an error: its message follows
        finally:
            try:
                psql.stdin.close()
            except BrokenPipeError:
                pass
            script.stdout.close()
        script.wait()
        psql.wait()
        if script.returncode != 0:
            raise BackupError(f"pg_restore could not read {path}: {_tail(restore_err)}")
        if psql.returncode != 0:
            raise BackupError(f"the restore failed and changed nothing: {_tail(psql_err)}")
    return version


def _tail(file, limit: int = 300) -> str:
    file.seek(0)
    return file.read().decode(errors="replace").strip()[-limit:]
