"""DuckDB over a snapshot: each table a view with PostgreSQL's name and column types.

Views cast every column to the type the manifest records (enums become DuckDB ENUM types
with PostgreSQL's labels and order), so a query written for PostgreSQL runs unchanged.
Soft-deleted rows stay in the files; the views hide them unless asked, as the live CRM does,
and the ``with_deleted`` schema always shows every row. DuckDB never downloads anything here:
Parquet, JSON and ICU (time zones) are built into the Python package.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ..config import Config
from ..errors import ConfigError
from . import store
from .errors import SnapshotError
from .manifest import Manifest
from .typemap import literal, quote

ALL_ROWS = "with_deleted"  # schema whose views include soft-deleted rows


class Snapshot:
    """An open snapshot: ``.sql(query)`` returns a polars DataFrame; ``.con`` is the DuckDB
    connection itself. Close it, or use it as a context manager."""

    def __init__(self, path: Path, *, include_deleted: bool = False, timezone: str = "UTC"):
        self.path = Path(path)
        self.manifest = Manifest.read(self.path)  # refuses file names and types it never writes
        self.manifest.check_files(self.path)  # names a missing or damaged file
        self.con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        try:
            self.con.execute(f"SET TimeZone = {literal(timezone)}")
        except duckdb.Error as exc:
            self.con.close()
            raise ConfigError(f"DuckDB cannot use the time zone {timezone!r} (CRM_TIMEZONE): {exc}") from exc
        try:
            self._create_views(include_deleted)
        except duckdb.Error as exc:
            self.con.close()
            raise SnapshotError(f"cannot open the snapshot {self.path}: {exc}") from exc

    def _create_views(self, include_deleted: bool) -> None:
        for name, labels in self.manifest.enums.items():
            self.con.execute(f"CREATE TYPE {quote(name)} AS ENUM ({', '.join(map(literal, labels))})")
        self.con.execute(f"CREATE SCHEMA {ALL_ROWS}")
        for name, table in self.manifest.tables.items():
            if not table.columns:
                continue  # a table without columns (PostgreSQL allows it): DuckDB has no such relation
            columns = ", ".join(
                f"CAST({quote(c.name)} AS {self._type(c.duckdb_type)}) AS {quote(c.name)}" for c in table.columns
            )
            source = literal(str((self.path / table.file).absolute()))
            self.con.execute(f"CREATE VIEW {ALL_ROWS}.{quote(name)} AS SELECT {columns} FROM read_parquet({source})")
            live = " WHERE deleted_at IS NULL" if table.soft_delete and not include_deleted else ""
            self.con.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {ALL_ROWS}.{quote(name)}{live}")

    def _type(self, duckdb_type: str) -> str:
        base = duckdb_type.removesuffix("[]")
        return quote(base) + duckdb_type[len(base) :] if base in self.manifest.enums else duckdb_type

    @property
    def tables(self) -> list[str]:
        """The views, one per exported table."""
        return [name for name, table in self.manifest.tables.items() if table.columns]

    def sql(self, query: str, params: list | dict | None = None) -> pl.DataFrame:
        """Run a query; uuids come back as text (polars has no uuid type)."""
        return self.con.sql(query, params=params).pl()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Snapshot {self.path} ({len(self.manifest.tables)} tables, {self.manifest.rows:,} rows)>"


def open(path: Path | str | None = None, *, include_deleted: bool = False) -> Snapshot:
    """Open a snapshot folder, or the newest snapshot in a parent folder (by default
    ``$CRM_HOME/snapshots``). The DuckDB session uses ``CRM_TIMEZONE``."""
    config = Config.from_env()
    return Snapshot(
        store.resolve(path if path is not None else store.default_parent(config)),
        include_deleted=include_deleted,
        timezone=config.timezone,
    )
