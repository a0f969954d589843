"""ADBC connections to PostgreSQL: results as Arrow (binary COPY decoded in C), never as Python rows.

The one place that opens them, for query results (``query/engines/postgres.py``) and for
snapshots (``snapshot/stream.py``). A connection opened outside SQLAlchemy gets the session
settings the engine's own connections get: the time zone, ``plan_cache_mode``, and every entry of
``engine.get_execution_options()["crm_settings"]`` (e.g. ``crm.user_id`` for row-level
security), each with ``set_config(name, value, false)``.

    with arrow.session(engine, timezone="UTC", timeout=30) as cursor:
        cursor.execute("SELECT * FROM deals WHERE value > $1", [10_000])
        table = cursor.fetch_arrow_table()

Query connections are pooled per engine (opening one costs a backend's start, ~10 ms, which
would double a small page's time); a connection is reset with ``RESET ALL`` before it is handed
out again, so one run's settings never reach the next, and the pool closes with the engine.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from ..errors import AccessDeniedError, DatabaseError
from .engine import (
    INSUFFICIENT_PRIVILEGE,
    OUTAGE_STATES,
    SETTINGS_OPTION,
    access_denied,
    apply_settings,
    libpq_url,
    outage,
)

IDLE_SECONDS = 60.0  # an idle pooled connection older than this is closed, not reused
POOL_SIZE = 4  # idle connections kept per engine


def connect(url: str, *, autocommit: bool = False) -> adbc.Connection:
    """An ADBC connection to ``url`` (a libpq or SQLAlchemy URL); ``DatabaseError`` when unreachable."""
    try:
        return adbc.connect(libpq_url(url), autocommit=autocommit)
    except adbc_driver_manager.Error as exc:
        raise outage(url, first_line(exc), lost=False) from exc


def failure(engine: sa.Engine, exc: adbc_driver_manager.Error, doing: str) -> DatabaseError | AccessDeniedError:
    """``exc`` as a DatabaseError: the server out of reach, or what it refused while ``doing``;
    an AccessDeniedError where the acting user may not (row-level security, a missing grant)."""
    state = getattr(exc, "sqlstate", None) or ""
    if state == INSUFFICIENT_PRIVILEGE:
        return access_denied(first_line(exc))
    if state.startswith(OUTAGE_STATES) or (not state and isinstance(exc, adbc_driver_manager.OperationalError)):
        return outage(engine.url.render_as_string(hide_password=False), first_line(exc), lost=True)
    return DatabaseError(f"{doing} failed on PostgreSQL: {first_line(exc)}")


def connect_engine(engine: sa.Engine) -> adbc.Connection:
    """An unpooled ADBC connection to ``engine``'s database carrying its session settings
    (``crm_settings``), for a caller that keeps it open across several statements."""
    conn = connect(engine.url.render_as_string(hide_password=False))
    try:
        with conn.cursor() as cursor:
            apply_settings(cursor, settings_of(engine), local=False)
        conn.commit()  # session settings made in a transaction end with it unless it commits
    except adbc_driver_manager.Error as exc:
        _close(conn)
        raise DatabaseError(f"cannot prepare a PostgreSQL session: {first_line(exc)}") from exc
    return conn


def settings_of(engine: sa.Engine) -> dict[str, str]:
    """The session settings every connection of ``engine`` must carry (``crm_settings``)."""
    return dict(engine.get_execution_options().get(SETTINGS_OPTION) or {})


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Pool:
    """Idle ADBC connections of one engine (autocommit: each statement is its own transaction)."""

    def __init__(self, url: str):
        self.url = url
        self.lock = threading.Lock()
        self.idle: list[tuple[float, adbc.Connection]] = []

    def take(self) -> tuple[adbc.Connection, bool]:
        """A connection, and whether it was used before (it may have been cut off since)."""
        now = time.monotonic()
        with self.lock:
            while self.idle:
                since, conn = self.idle.pop()
                if now - since < IDLE_SECONDS:
                    return conn, True
                _close(conn)
        return connect(self.url, autocommit=True), False

    def give(self, conn: adbc.Connection) -> None:
        with self.lock:
            if len(self.idle) < POOL_SIZE:
                self.idle.append((time.monotonic(), conn))
                return
        _close(conn)

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for _, conn in idle:
            _close(conn)


_POOLS: weakref.WeakKeyDictionary[sa.Engine, _Pool] = weakref.WeakKeyDictionary()
_POOLS_LOCK = threading.Lock()


def _pool(engine: sa.Engine) -> _Pool:
    """The pool of ``engine``'s root: engines made by ``execution_options`` share it (each run
    sets its own settings), and it closes when the root is disposed."""
    while hasattr(engine, "_proxied"):  # an OptionEngine
        engine = engine._proxied
    with _POOLS_LOCK:
        pool = _POOLS.get(engine)
        if pool is None:
            pool = _POOLS[engine] = _Pool(engine.url.render_as_string(hide_password=False))
            sa.event.listen(engine, "engine_disposed", lambda _engine: pool.close())
        return pool


@contextmanager
def session(engine: sa.Engine, *, timezone: str, timeout: float | None = None) -> Iterator[adbc.Cursor]:
    """A cursor on a pooled connection of ``engine`` with the engine's session settings, the
    time zone and (seconds, None: none) a statement timeout. A connection that saw an error is
    closed, not pooled."""
    pool = _pool(engine)
    settings = {
        "TimeZone": timezone,
        "plan_cache_mode": "force_custom_plan",
        "statement_timeout": str(max(1, round(timeout * 1000))) if timeout else "0",
        **settings_of(engine),
    }
    while True:
        conn, reused = pool.take()
        cursor = conn.cursor()
        try:
            apply_settings(cursor, settings, local=False)
            break
        except adbc_driver_manager.Error as exc:
            _close(conn, cursor)
            if not reused:  # a pooled connection the server has closed meanwhile: take another
                raise failure(engine, exc, "preparing the session") from exc
    ok = False
    try:
        yield cursor
        ok = True
    finally:
        if ok:
            try:
                cursor.execute("RESET ALL")  # nothing of this run reaches the next one
                cursor.close()
            except adbc_driver_manager.Error:
                ok = False
        if ok:
            pool.give(conn)
        else:
            _close(conn, cursor)


def _close(conn: adbc.Connection, cursor: adbc.Cursor | None = None) -> None:
    for closable in (cursor, conn):
        if closable is None:
            continue
        try:
            closable.close()
        except (adbc_driver_manager.Error, RuntimeError):
            pass  # the connection may already be gone; nothing is left to release


# -- ADBC's Arrow types --------------------------------------------------------------------


def plain(table: pa.Table) -> pa.Table:
    """ADBC's extension columns as their storage: numeric as its text (exact), uuid as 16 bytes."""
    columns = []
    for column in table.columns:
        if isinstance(column.type, pa.BaseExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], type=column.type.storage_type)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def as_decimal(array: pa.Array, kind: pa.DataType) -> pa.Array:
    """ADBC's numeric text (an opaque extension type) as decimals; exact, since PostgreSQL
    prints every numeric(p, s) with exactly s decimals."""
    if pa.types.is_list(kind):
        values = as_decimal(array.values, kind.value_type)
        return pa.ListArray.from_arrays(array.offsets, values, type=kind, mask=array.is_null())
    return pc.cast(array.storage if isinstance(array, pa.ExtensionArray) else array, kind)
