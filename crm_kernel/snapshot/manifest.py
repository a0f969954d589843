"""``manifest.json``: what a snapshot holds and the PostgreSQL state it was taken from.

Readers (``open``, ``crm snapshot list``, the next incremental export) trust only the
manifest: a folder without one is not a snapshot.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import SnapshotError
from .store import MANIFEST

FORMAT = 1
_PG_SNAPSHOT = re.compile(r"^\d+:\d+:(\d+(,\d+)*)?$")  # pg_current_snapshot()::text


@dataclass(frozen=True)
class Column:
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
    columns: tuple[Column, ...]
    skipped: tuple[SkippedColumn, ...] = ()
    key: str | None = None  # a one-column primary key
    tracked: bool = False  # the database tracks its changes (sql/003): incremental exports apply
    soft_delete: bool = False  # has deleted_at: the default views hide deleted rows
    pg_oid: int | None = None  # the table's pg_class oid: a table created anew gets another
    from_base: int = 0  # rows an incremental export carried over from the previous snapshot

    @classmethod
    def from_json(cls, data: dict) -> Table:
        return cls(**{**data, "columns": tuple(Column(**c) for c in data["columns"]),
                      "skipped": tuple(SkippedColumn(**c) for c in data.get("skipped", ()))})


@dataclass(frozen=True)
class Database:
    name: str
    system_identifier: str  # pg_control_system(): tells one cluster from another
    server_version: str


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

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def write(self, folder: Path) -> None:
        path = Path(folder) / MANIFEST
        with open(path, "w") as out:
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
            return cls(**{**data, "database": Database(**data["database"]),
                          "tables": {name: Table.from_json(t) for name, t in data["tables"].items()}})
        except FileNotFoundError:
            raise SnapshotError(f"{folder} is not a snapshot (no {MANIFEST})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"{path} is not a readable manifest: {exc}") from exc
