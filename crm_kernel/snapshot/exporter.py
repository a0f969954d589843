"""PostgreSQL -> Parquet: every table of the public schema, one consistent moment, atomically.

A lead connection opens a REPEATABLE READ, READ ONLY transaction and exports its snapshot
(``pg_export_snapshot()``); a few ADBC worker connections import it, so tables are copied in
parallel and still all show the same moment. Files go into a staging folder that becomes the
snapshot, by rename, only once the manifest is written.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..db.engine import SETTINGS_OPTION, apply_settings, libpq_url
from ..db.migrate import schema_version
from ..errors import DatabaseError
from . import manifest, store
from .incremental import Base, carry_over, fall_back, find_base, link, verify
from .schema import ExportTable, read_enums, read_tables
from .stream import ParquetSink, Worker
from .typemap import literal

# Parallel connections. Two let PostgreSQL encode one table while the client decodes and
# writes another; on 2 cores (benchmarks/snapshot.py, scale 10) one took 0.65 s, two 0.55 s,
# three no less.
WORKERS = 2

_PIN = """
SELECT pg_export_snapshot() AS snapshot_id, pg_current_snapshot()::text AS pg_snapshot, now() AS taken_at,
       current_database() AS name, (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       current_setting('server_version') AS server_version
"""


@dataclass(frozen=True)
class Pin:
    """The moment being exported, as the lead transaction sees it."""

    snapshot_id: str  # pg_export_snapshot(): what the workers import
    pg_snapshot: str
    taken_at: dt.datetime
    database: manifest.Database
    schema_version: str | None
    tables: list[ExportTable]
    enums: dict[str, list[str]]
    view: manifest.View | None


def export(
    engine: sa.Engine,
    parent: Path | str | None = None,
    *,
    incremental: bool = False,
    progress: bool = False,
    transaction_snapshot: str | None = None,
    on_table: Callable[[str], None] | None = None,
) -> Path:
    """Write a snapshot of every table into ``parent`` (default ``$CRM_HOME/snapshots``).

    ``incremental`` copies only rows changed since the newest snapshot in ``parent`` (a full
    export when there is none to build on); the result holds the same rows as a full export.
    ``transaction_snapshot``, an id from ``pg_export_snapshot()`` in a transaction the caller
    keeps open, exports exactly what that transaction sees (as ``pg_dump --snapshot``).
    ``on_table(name)`` is called, from a copying thread, after each table's file is written.
    Returns the new snapshot's folder.

    The engine's acting user (``crm_settings``, as a :class:`~crm_kernel.CRM`'s engine carries
    it) applies to every connection: a login bound by row-level security exports only that
    user's rows, and the manifest's ``view`` says whose rows they are. Such a partial snapshot
    is always copied in full (an incremental one could keep rows the user no longer sees).
    """
    parent = Path(parent).expanduser() if parent is not None else store.default_parent()
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    settings = engine.get_execution_options().get(SETTINGS_OPTION) or {}
    with store.Staging(parent) as staging, _pinned(engine, transaction_snapshot) as pin:
        full = pin.view is None or pin.view.full
        base = find_base(parent, pin.database, pin.pg_snapshot) if incremental and full else None
        if base is not None and base.manifest.view is not None and not base.manifest.view.full:
            base = None
        tables = _copy_all(url, pin, base, staging.path, progress, on_table, settings)
        manifest.Manifest(
            schema_version=pin.schema_version,
            exported_at=pin.taken_at.astimezone(dt.UTC).isoformat(),
            pg_snapshot=pin.pg_snapshot,
            database=pin.database,
            tables=tables,
            enums=pin.enums,
            base=base.path.name if base else None,
            view=pin.view,
        ).write(staging.path)
        return staging.publish(store.folder_name(pin.taken_at))


@contextmanager
def _pinned(engine: sa.Engine, transaction_snapshot: str | None) -> Iterator[Pin]:
    """Hold the export's transaction open while the workers import its snapshot and copy."""
    settings = engine.get_execution_options().get(SETTINGS_OPTION) or {}
    try:
        # The acting user is set by hand, after SET TRANSACTION SNAPSHOT (which must come
        # before any query, and set_config is one).
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ", **{SETTINGS_OPTION: {}})
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(f"cannot connect for the snapshot: {exc.orig}") from exc
    with conn:
        try:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            if transaction_snapshot:
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT {literal(transaction_snapshot)}")
            cursor = conn.connection.dbapi_connection.cursor()
            apply_settings(cursor, settings, local=True)
            cursor.close()
            row = conn.exec_driver_sql(_PIN).one()
            tables = read_tables(conn)
            pin = Pin(
                row.snapshot_id,
                row.pg_snapshot,
                row.taken_at,
                manifest.Database(row.name, row.system_identifier, row.server_version),
                schema_version(conn),
                tables,
                read_enums(conn, tables),
                _view(conn),
            )
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(f"cannot start the snapshot transaction: {exc.orig}") from exc
        yield pin
        conn.rollback()


_VIEW = """
SELECT session_user::text AS login, u.id::text AS user_id, u.email, u.role,
       NOT row_security_active('deals') OR coalesce(crm_sees_all(), false) AS full
FROM (SELECT crm_acting_user() AS id) acting LEFT JOIN crm_find_user(acting.id::text) u ON true
"""


def _view(conn: sa.Connection) -> manifest.View | None:
    """Whose rows the export holds; None on a schema without row-level security (sql/017)."""
    if conn.exec_driver_sql("SELECT to_regprocedure('crm_acting_user()')").scalar() is None:
        return None
    row = conn.exec_driver_sql(_VIEW).one()
    return manifest.View(row.login, row.user_id, row.email, row.role, bool(row.full))


def _progress(enabled: bool) -> Progress:
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)


def _copy_all(
    url: str,
    pin: Pin,
    base: Base | None,
    folder: Path,
    progress: bool,
    on_table: Callable[[str], None] | None,
    settings: dict[str, str],
) -> dict[str, manifest.Table]:
    """Copy every table, largest first, over ``WORKERS`` connections; the first error stops all."""
    todo = deque(pin.tables)
    done: dict[str, manifest.Table] = {}
    stop = threading.Event()
    with _progress(progress) as bar:
        tasks = {t.name: bar.add_task(t.name, total=t.estimated_rows or None) for t in pin.tables}

        def run() -> None:
            worker = Worker(url, pin.snapshot_id, settings)
            try:
                while not stop.is_set():
                    try:
                        table = todo.popleft()
                    except IndexError:
                        return
                    task = tasks[table.name]
                    entry = _copy_table(
                        worker, table, base, pin, folder, stop, lambda rows, task=task: bar.advance(task, rows)
                    )
                    bar.update(task, total=entry.rows, completed=entry.rows)
                    done[table.name] = entry
                    if on_table is not None:
                        on_table(table.name)
            finally:
                worker.close()

        connections = max(1, min(WORKERS, len(pin.tables)))
        with ThreadPoolExecutor(connections) as pool:
            futures = [pool.submit(run) for _ in range(connections)]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                stop.set()
                raise
    return dict(sorted(done.items()))


def _copy_table(
    worker: Worker,
    table: ExportTable,
    base: Base | None,
    pin: Pin,
    folder: Path,
    stop: threading.Event,
    advance: Callable[[int], None],
) -> manifest.Table:
    try:
        if base and base.covers(table, pin.enums):
            entry = _incremental(worker, table, base, pin, folder, stop, advance)
            if entry is not None:
                return entry
        schema, batches = worker.batches(table.select(), table.columns)
        with ParquetSink(folder / table.file, schema) as sink:
            _drain(batches, sink, stop, advance)
        return table.entry(sink.rows)
    except DatabaseError as exc:
        raise DatabaseError(f"exporting table {table.name} failed: {exc}") from exc


def _incremental(
    worker: Worker,
    table: ExportTable,
    base: Base,
    pin: Pin,
    folder: Path,
    stop: threading.Event,
    advance: Callable[[int], None],
) -> manifest.Table | None:
    """The table refreshed from the base snapshot, or None when it must be copied in full
    (its base file is damaged, or its changes were made without the tracking triggers)."""
    base_file = base.path / table.file
    changed = table.select(base.changed_rows())
    try:
        if not worker.schema(changed, table.columns).equals(pq.read_schema(base_file)):
            return None
    except (OSError, pa.ArrowException) as exc:
        fall_back(f"{base_file} cannot be read ({exc}); table {table.name} is copied in full")
        return None
    rows, unstamped = worker.one(base.audit(table, pin.pg_snapshot))
    if unstamped:
        fall_back(
            f"table {table.name}: {unstamped:,} rows were written without the change-tracking triggers "
            "(session_replication_role = replica?); it is copied in full"
        )
        return None
    try:
        entry = _refresh(worker, table, base, changed, folder, stop, advance)
    except (OSError, pa.ArrowException) as exc:
        fall_back(f"{base_file} cannot be read ({exc}); table {table.name} is copied in full")
        return None
    if entry.rows != rows and not stop.is_set():
        fall_back(
            f"table {table.name}: {rows:,} rows in PostgreSQL, {entry.rows:,} after applying the recorded "
            "changes (rows deleted without the change-tracking triggers?); it is copied in full"
        )
        return None
    return entry


def _drain(
    batches: Iterator[pa.RecordBatch], sink: ParquetSink, stop: threading.Event, advance: Callable[[int], None]
) -> None:
    for batch in batches:
        if stop.is_set():
            return
        sink.write(batch)
        advance(batch.num_rows)


def _refresh(
    worker: Worker,
    table: ExportTable,
    base: Base,
    changed: str,
    folder: Path,
    stop: threading.Event,
    advance: Callable[[int], None],
) -> manifest.Table:
    """An incremental copy: changed rows from PostgreSQL, the others from the base snapshot."""
    base_file = base.path / table.file
    key = tuple(c for c in table.columns if c.name == table.key)
    _, deleted = worker.batches(base.deleted_keys(table), key)
    gone = [batch.column(0) for batch in deleted]
    schema, batches = worker.batches(changed, table.columns)
    first = next(batches, None)
    if first is None and not any(len(keys) for keys in gone):
        verify(base_file)  # a damaged file must not live on in the new snapshot
        link(base_file, folder / table.file)
        rows = base.manifest.tables[table.name].rows
        advance(rows)
        return table.entry(rows, from_base=rows)
    with ParquetSink(folder / table.file, schema) as sink:
        for batch in itertools.chain([first] if first else [], batches):
            if stop.is_set():
                break
            sink.write(batch)
            gone.append(batch.column(table.key))
            advance(batch.num_rows)
        truncated = any(keys.null_count for keys in gone)
        kept = 0 if truncated else carry_over(base_file, table.key, gone, sink.write)
        advance(kept)
    return table.entry(sink.rows, from_base=kept)
