"""Rows from PostgreSQL to Parquet through Arrow, never as Python objects.

Each worker is an ADBC connection (binary COPY decoded straight into Arrow) whose transaction
imports the export's snapshot with ``SET TRANSACTION SNAPSHOT``, so that all workers read the
same moment of the database. Batches are converted where ADBC's Arrow types are not the
ones the Parquet file should hold (numeric text to decimal) and written with zstd.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_manager
import pyarrow as pa
import pyarrow.parquet as pq

from ..db import arrow
from ..db.engine import apply_settings
from ..errors import DatabaseError
from .errors import SnapshotError
from .store import private_open
from .typemap import ExportColumn, literal

COMPRESSION = "zstd"
# ADBC returns record batches of about this size; a batch becomes one Parquet row group.
BATCH_BYTES = 16 << 20


class Worker:
    """One ADBC connection inside the export's transaction snapshot."""

    def __init__(self, url: str, snapshot_id: str, settings: dict[str, str] | None = None):
        self.conn = arrow.connect(url)
        self.cursor = self.conn.cursor()
        try:
            if settings:  # the acting user, for the session (row-level security reads it; sql/017)
                apply_settings(self.cursor, settings, local=False)
                self.conn.commit()  # SET TRANSACTION SNAPSHOT must open the next transaction
        except adbc_driver_manager.Error as exc:
            self.close()
            raise DatabaseError(f"cannot set the export connection's acting user: {exc}") from exc
        try:  # ADBC has begun a transaction: make it read the lead's snapshot
            self.cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self.cursor.execute(f"SET TRANSACTION SNAPSHOT {literal(snapshot_id)}")
        except adbc_driver_manager.Error as exc:
            self.close()
            raise DatabaseError(f"cannot join the export's transaction snapshot: {exc}") from exc
        self.cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})

    def batches(self, query: str, columns: tuple[ExportColumn, ...]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The query's schema as it will be written, and its converted batches."""
        try:
            self.cursor.execute(query)
            reader = self.cursor.fetch_record_batch()
        except adbc_driver_manager.Error as exc:
            raise DatabaseError(str(exc).strip()) from exc
        schema = _target_schema(reader.schema, columns)

        def convert() -> Iterator[pa.RecordBatch]:
            try:
                for batch in reader:
                    yield _convert(batch, schema)
            except adbc_driver_manager.Error as exc:
                raise DatabaseError(str(exc).strip()) from exc

        return schema, convert()

    def one(self, query: str) -> tuple:
        """The first row of a small query."""
        try:
            self.cursor.execute(query)
            return self.cursor.fetchone()
        except adbc_driver_manager.Error as exc:
            raise DatabaseError(str(exc).strip()) from exc

    def schema(self, query: str, columns: tuple[ExportColumn, ...]) -> pa.Schema:
        """The schema ``batches`` would write for ``query``, without running it."""
        try:
            return _target_schema(self.cursor.adbc_execute_schema(query), columns)
        except adbc_driver_manager.Error as exc:
            raise DatabaseError(str(exc).strip()) from exc

    def close(self) -> None:
        for closable in (self.cursor, self.conn):
            try:
                closable.close()
            except adbc_driver_manager.Error:
                pass  # the connection may already be gone; nothing is left to release


def _target_schema(schema: pa.Schema, columns: tuple[ExportColumn, ...]) -> pa.Schema:
    """ADBC's schema with numerics as decimals and without ADBC's per-field metadata."""
    fields = []
    for f, column in zip(schema, columns, strict=True):
        kind = f.type
        if column.decimal:
            kind = pa.decimal128(*column.decimal)
            if pa.types.is_list(f.type):
                kind = pa.list_(kind)
        fields.append(pa.field(f.name, kind))
    return pa.schema(fields)


def _convert(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [
        arrow.as_decimal(a, f.type) if pa.types.is_decimal(_leaf(f.type)) else a
        for a, f in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _leaf(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_list(kind) else kind


class ParquetSink:
    """One Parquet file, written by a thread of its own (so encoding and compressing overlap
    with reading the next batches) and made durable on close."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.rows = 0
        try:
            self._file = os.fdopen(private_open(path), "wb")
            self._writer = pq.ParquetWriter(self._file, schema, compression=COMPRESSION)
        except OSError as exc:
            raise SnapshotError(f"cannot write {path}: {exc}") from exc
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"write {path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._writer.write_batch(batch)
                except BaseException as exc:  # handed to the reading thread by close()
                    self._failure = exc

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._queue.put(batch)
            self.rows += batch.num_rows

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            if self._failure is not None:
                raise self._failure
            self._writer.close()
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise SnapshotError(f"cannot write {self.path}: {exc}") from exc
        finally:
            self._file.close()
