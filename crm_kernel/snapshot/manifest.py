"""``manifest.json``: what a snapshot holds and the PostgreSQL state it was taken from.

Readers (``open``, ``crm snapshot list``, the next incremental export) trust only the
manifest: a folder without one is not a snapshot. A snapshot may come from elsewhere, so what
the manifest says is checked before anything uses it: each file name must be the one the
exporter gives that table (a plain ``<table>.parquet`` inside the folder) and each column type
one the type map produces, since types become DuckDB SQL and file names become paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import SnapshotError
from .store import MANIFEST, private_file

FORMAT = 1
_PG_SNAPSHOT = re.compile(r"^\d+:\d+:(\d+(,\d+)*)?$")  # pg_current_snapshot()::text
_PLAIN = re.compile(r"[a-z0-9_]+")  # mixed case too gets a hash: file systems may ignore case


def table_file(table: str) -> str:
    """``deals.parquet``; a name that is not a plain identifier (PostgreSQL allows any) gets a
    safe spelling and a hash, so that it stays one unique file inside the snapshot."""
    if _PLAIN.fullmatch(table):
        return f"{table}.parquet"
    digest = hashlib.sha1(table.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_]+', '_', table)[:40]}-{digest}.parquet"


@dataclass(frozen=True)
class SnapshotColumn:
    """A column as the snapshot stores it: its PostgreSQL type and the DuckDB view's."""

    name: str
    pg_type: str  # as PostgreSQL spells it: numeric(12,2), deal_type, text[]
    duckdb_type: str  # the view column's type; an enum keeps its PostgreSQL name


@dataclass(frozen=True)
class SkippedColumn:
    name: str
    pg_type: str
    reason: str


@dataclass(frozen=True)
class Table:
    file: str
    rows: int
    columns: tuple[SnapshotColumn, ...]
    skipped: tuple[SkippedColumn, ...] = ()
    key: str | None = None  # a one-column primary key
    tracked: bool = False  # the database tracks its changes (sql/003): incremental exports apply
    soft_delete: bool = False  # has deleted_at: the default views hide deleted rows
    pg_oid: int | None = None  # the table's pg_class oid: a table created anew gets another
    from_base: int = 0  # rows an incremental export carried over from the previous snapshot

    @classmethod
    def from_json(cls, data: dict) -> Table:
        return cls(
            **{
                **data,
                "columns": tuple(SnapshotColumn(**c) for c in data["columns"]),
                "skipped": tuple(SkippedColumn(**c) for c in data.get("skipped", ())),
            }
        )


@dataclass(frozen=True)
class Database:
    name: str
    system_identifier: str  # pg_control_system(): tells one cluster from another
    server_version: str


@dataclass(frozen=True)
class View:
    """Whose rows a snapshot holds. ``full``: every row (taken by the schema's owner, which
    row-level security does not bind, or by an admin or analyst); otherwise only what the
    acting user may read (sql/017)."""

    login: str  # the database login that exported
    user_id: str | None  # the acting user (crm.user_id, or a per-user login's own user)
    email: str | None
    role: str | None
    full: bool


@dataclass(frozen=True)
class Manifest:
    schema_version: str | None
    exported_at: str  # ISO 8601, UTC: the moment the transaction snapshot was taken
    pg_snapshot: str  # pg_current_snapshot() of the export transaction
    database: Database
    tables: dict[str, Table]
    enums: dict[str, list[str]] = field(default_factory=dict)  # PostgreSQL enum types and labels
    base: str | None = None  # the snapshot an incremental export started from
    format: int = FORMAT
    view: View | None = None  # whose rows it holds (None: taken before views were recorded)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def write(self, folder: Path) -> None:
        path = Path(folder) / MANIFEST
        with private_file(path, "w") as out:
            json.dump(asdict(self), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = Path(folder) / MANIFEST
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise SnapshotError(f"{path} has format {data.get('format')!r}; this version reads {FORMAT}")
            if not _PG_SNAPSHOT.match(data["pg_snapshot"]):
                raise SnapshotError(f"{path} holds a malformed pg_snapshot {data['pg_snapshot']!r}")
            view = View(**data["view"]) if data.get("view") else None
            manifest = cls(
                **{
                    **data,
                    "database": Database(**data["database"]),
                    "view": view,
                    "tables": {name: Table.from_json(t) for name, t in data["tables"].items()},
                }
            )
        except FileNotFoundError:
            raise SnapshotError(f"{folder} is not a snapshot (no {MANIFEST})") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"{path} is not a readable manifest: {exc}") from exc
        manifest._check(path)
        return manifest

    def _check(self, path: Path) -> None:
        """Refuse file names and column types the exporter never writes (see the module doc)."""
        from .typemap import is_view_type

        for name, table in self.tables.items():
            if table.file != table_file(name):
                raise SnapshotError(
                    f"{path}: tables.{name}.file is {table.file!r}; a snapshot keeps table "
                    f"{name!r} in {table_file(name)!r} inside its own folder"
                )
            for i, column in enumerate(table.columns):
                if not (
                    isinstance(column.name, str)
                    and isinstance(column.duckdb_type, str)
                    and is_view_type(column.duckdb_type, self.enums)
                ):
                    raise SnapshotError(
                        f"{path}: tables.{name}.columns[{i}] ({column.name!r}) has type "
                        f"{column.duckdb_type!r}, which is not a type a snapshot holds"
                    )

    def check_files(self, folder: Path) -> None:
        """Each table's file is there, readable, and holds the rows and columns listed (read
        from the files' footers, not their data)."""
        for name, table in self.tables.items():
            path = Path(folder) / table.file
            if not table.columns:
                continue
            try:
                metadata = pq.read_metadata(path)
                names = metadata.schema.to_arrow_schema().names
            except (OSError, pa.ArrowException) as exc:
                raise SnapshotError(
                    f"cannot open the snapshot {folder}: {table.file} is missing or damaged "
                    f"({exc}); take a new snapshot"
                ) from exc
            if metadata.num_rows != table.rows or names != [c.name for c in table.columns]:
                raise SnapshotError(
                    f"cannot open the snapshot {folder}: {table.file} does not hold what the "
                    f"manifest lists for table {name!r} "
                    f"({metadata.num_rows:,} rows, columns {names}); take a new snapshot"
                )
