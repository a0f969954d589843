"""Incremental exports: copy only the rows written since the previous snapshot, keep the rest.

Transaction visibility decides, not clocks. A tracked table stamps each row with the
transaction that last wrote it (``last_xact``, sql/003), and the previous snapshot's manifest
keeps the ``pg_current_snapshot()`` its rows were read in. A row whose writer is not visible
in that snapshot changed since (this includes a transaction that began before the previous
export and committed after it); every other row is exactly as the previous snapshot holds
it. Rows deleted since are listed in ``row_deletions`` (a NULL key: the table was truncated).
So each tracked table is: its changed rows, plus the previous file's rows minus the changed
and deleted keys. A table with neither is linked from the previous snapshot unchanged.

Triggers can be bypassed (``SET session_replication_role = replica``, as logical replication
and some restore tools do): such writes are not stamped and their deletions not recorded. Each
tracked table is therefore audited first: a row version written since the previous snapshot
(its ``xmin``) but not stamped since, or a row count that the refreshed copy does not match,
makes the exporter copy that table in full. A previous snapshot that cannot be read is no base:
the table, or the whole export, is copied in full, with a ``SnapshotWarning`` naming the file.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import store
from .errors import SnapshotError, SnapshotWarning
from .manifest import Database, Manifest
from .schema import ExportTable
from .typemap import TRACKING_COLUMN, literal, quote


@dataclass(frozen=True)
class PgSnapshot:
    """``pg_current_snapshot()``: transactions below ``xmin`` are finished, from ``xmax`` on
    not yet started, and those in ``xip`` were in progress."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> PgSnapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def sees(self, xid: int) -> bool:
        return xid < self.xmin or (xid < self.xmax and xid not in self.xip)

    def precedes(self, later: PgSnapshot) -> bool:
        """Every transaction this snapshot sees is also seen by ``later``."""
        return self.xmax <= later.xmax and not any(self.sees(x) for x in later.xip)


@dataclass(frozen=True)
class Base:
    """The previous snapshot an incremental export builds on."""

    path: Path
    manifest: Manifest

    @property
    def snapshot(self) -> PgSnapshot:
        return PgSnapshot.parse(self.manifest.pg_snapshot)

    def covers(self, table: ExportTable, enums: dict[str, list[str]]) -> bool:
        """Whether ``table`` can be refreshed from this snapshot: the same table (not dropped and
        created again), tracked then and now, with the same columns and enum labels (schema
        changes rewrite rows without firing triggers)."""
        before = self.manifest.tables.get(table.name)
        if not (table.tracked and before and before.tracked and before.key == table.key and before.pg_oid == table.oid):
            return False
        used_enums = {c.duckdb_type.removesuffix("[]") for c in table.columns} & set(enums)
        return (
            before.columns == table.entry(0).columns
            and all(self.manifest.enums.get(e) == enums[e] for e in used_enums)
            and (self.path / before.file).is_file()
        )

    def _unseen(self, xact_column: str) -> str:
        snap = self.snapshot
        return (
            f"{xact_column} >= {snap.xmin} AND NOT pg_visible_in_snapshot("
            f"{xact_column}::text::xid8, {literal(self.manifest.pg_snapshot)}::pg_snapshot)"
        )

    def changed_rows(self) -> str:
        """WHERE condition: rows written by transactions this snapshot did not see."""
        return self._unseen(quote(TRACKING_COLUMN))

    def deleted_keys(self, table: ExportTable) -> str:
        """Query: keys of ``table``'s rows deleted since this snapshot, exported as the key
        column is; NULL for a truncation."""
        key = next(c for c in table.columns if c.name == table.key)
        deleted = (
            f"SELECT CAST(row_id AS {key.pg_type}) AS {quote(key.name)} FROM row_deletions"
            f" WHERE table_name = {literal(table.name)} AND {self._unseen('xact')}"
        )
        return f"SELECT {key.expression} FROM ({deleted}) AS deleted"

    def audit(self, table: ExportTable, now: str) -> str:
        """Query: the table's row count, and how many of its rows were written since this
        snapshot without being stamped (their triggers bypassed). ``now``: the exporting
        transaction's ``pg_current_snapshot()``, whose xmax turns a row's 32-bit ``xmin`` into
        a full transaction id (every visible row's xmin lies less than 2^31 below it)."""
        xmax, wrap = PgSnapshot.parse(now).xmax, 1 << 32
        full_xmin = f"({xmax} - (({xmax % wrap} - xmin::text::bigint + {wrap}) % {wrap}))"
        written = (
            f"NOT pg_visible_in_snapshot({full_xmin}::text::xid8, {literal(self.manifest.pg_snapshot)}::pg_snapshot)"
        )
        unstamped = f"{written} AND NOT ({self.changed_rows()})"
        return f"SELECT count(*), count(*) FILTER (WHERE {unstamped}) FROM {quote(table.name)}"


def fall_back(message: str) -> None:
    """Say that an incremental export copies something in full, and why."""
    warnings.warn(message, SnapshotWarning, stacklevel=3)


def find_base(parent: Path, database: Database, pg_snapshot: str) -> Base | None:
    """The newest snapshot in ``parent`` if it was taken earlier from the same database."""
    path = store.newest(parent)
    if path is None:
        return None
    try:
        manifest = Manifest.read(path)
        manifest.check_files(path)
    except SnapshotError as exc:
        fall_back(f"the newest snapshot cannot serve as a base ({exc}); exporting in full")
        return None
    same_database = (manifest.database.system_identifier, manifest.database.name) == (
        database.system_identifier,
        database.name,
    )
    if not same_database or not PgSnapshot.parse(manifest.pg_snapshot).precedes(PgSnapshot.parse(pg_snapshot)):
        return None
    return Base(path, manifest)


def _plain(array: pa.Array) -> pa.Array:
    return array.storage if isinstance(array, pa.ExtensionArray) else array


def verify(path: Path) -> None:
    """Decode every page of a Parquet file (a footer can be intact over damaged data)."""
    for _ in pq.ParquetFile(path).iter_batches():
        pass


def carry_over(base_file: Path, key: str, gone: list[pa.Array], write) -> int:
    """Write the base file's rows whose key is not in ``gone``; returns how many."""
    drop = pa.concat_arrays([_plain(a) for a in gone]) if gone else None
    kept = 0
    for batch in pq.ParquetFile(base_file).iter_batches():
        if drop is not None and len(drop):
            batch = batch.filter(pc.invert(pc.is_in(_plain(batch.column(key)), value_set=drop)))
        write(batch)
        kept += batch.num_rows
    return kept


def link(source: Path, target: Path) -> None:
    """Reuse an unchanged file: a hard link where the file system allows, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        try:
            shutil.copyfile(source, target)
            os.chmod(target, store.FILE_MODE)
        except OSError as exc:
            raise SnapshotError(f"cannot copy {source} to {target}: {exc}") from exc
