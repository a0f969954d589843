"""Demo data loading: COPY in one transaction, with indexes and foreign keys set aside and rebuilt.

from crm_kernel.demo import load
load(crm.engine, scale=1, seed=42, today=date(2026, 1, 15), replace=True)
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import polars as pl
import psycopg
import sqlalchemy as sa
from psycopg import sql
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..db import bulk
from ..errors import CrmError, DatabaseError
from ..model import SYSTEM_USER_ID
from . import rates
from .generation import LOADED, Stage, generate, row_counts

COPY_CHUNK_ROWS = 50_000
CLEARED = (
    "activities",
    "deals",
    "products",
    "contacts",
    "companies",
    "saved_queries",
    "audit_log",
    "team_members",
    "teams",
)


def read_stages(conn: sa.Connection) -> list[Stage]:
    """The active stages in board order; deals are spread over these rather than fixed ids."""
    rows = conn.execute(
        sa.text(
            "SELECT id::text AS id, probability, is_closed_won, is_closed_lost, required_fields, name"
            " FROM pipeline_stages WHERE deleted_at IS NULL AND is_active ORDER BY position"
        )
    ).all()
    if not rows:
        raise CrmError("there are no active pipeline stages to put demo deals in")
    return [
        Stage(r.id, r.probability, r.is_closed_won, r.is_closed_lost, tuple(r.required_fields), r.name) for r in rows
    ]


def load(
    engine: sa.Engine,
    *,
    scale: float = 1,
    seed: int = 42,
    today: dt.date,
    replace: bool = False,
    progress: bool = False,
) -> dict[str, int]:
    """Generate demo data and COPY it in; returns the rows loaded per table.

    One transaction: a failure leaves the database as it was. Without ``replace`` the CRM
    must hold no companies, and exchange rates are added only for currencies that have none;
    with it, all CRM data (but the system user and the stages) goes, and every exchange rate
    but the reporting currency's own. The reporting currency stays as it is.
    """
    if not scale > 0:
        raise CrmError(f"scale must be positive, not {scale}")
    counts = row_counts(scale)
    columns = (TextColumn("{task.description:<14}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        # Each table's bar is half generation, half COPY; then indexes and foreign keys return.
        tasks = {
            table: bar.add_task(table, total=2 * counts[table] if table in counts else None, start=False)
            for table in LOADED
        }
        tasks["indexes"] = bar.add_task("indexes", total=None, start=False)

        def advance(task: str, done: int) -> None:
            bar.start_task(tasks[task])
            bar.advance(tasks[task], done)

        def generated(table: str, rows: int) -> None:
            bar.update(tasks[table], total=2 * rows)
            advance(table, rows)

        try:
            with engine.begin() as conn:
                cursor = conn.connection.driver_connection.cursor()
                cursor.execute(f"LOCK TABLE {', '.join(LOADED)} IN SHARE ROW EXCLUSIVE MODE")
                if replace:
                    _clear(cursor)
                elif cursor.execute("SELECT EXISTS (SELECT FROM companies)").fetchone()[0]:
                    raise CrmError(
                        "the CRM already holds companies: use --replace (replace=True) "
                        "to delete all CRM data and load the demo data"
                    )
                timezone = cursor.execute("SHOW TimeZone").fetchone()[0]
                frames = generate(
                    read_stages(conn), scale=scale, seed=seed, today=today, timezone=timezone, on_table=generated
                )
                frames["exchange_rates"] = _new_rates(cursor, frames["exchange_rates"])
                copy_in(cursor, frames, advance)
                bar.update(tasks["indexes"], total=bar.tasks[tasks["indexes"]].completed)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {', '.join(LOADED)}")
        except (psycopg.Error, sa.exc.DBAPIError) as exc:
            raise DatabaseError(f"demo data not loaded: {exc}") from exc
    return {table: frame.height for table, frame in frames.items()}


def _clear(cursor: psycopg.Cursor) -> None:
    """Delete all CRM data but the system user and the configuration (stages, custom fields,
    the reporting currency and its own rate).

    Users that the kept configuration names as its authors stay too, or deleting them would fail.
    """
    cursor.execute(f"TRUNCATE {', '.join(CLEARED)} RESTART IDENTITY")
    cursor.execute(
        "DELETE FROM exchange_rates WHERE currency <> (SELECT value #>> '{}' FROM crm_settings"
        " WHERE key = 'reporting_currency')"
    )
    references = cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
        " WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass AND c.conrelid <> ALL (%s::regclass[])"
        " ORDER BY 1, 2",
        [[*CLEARED, "users"]],
    ).fetchall()
    stmt = sql.SQL("DELETE FROM users WHERE id <> {}").format(sql.Literal(SYSTEM_USER_ID))
    if references:
        named = sql.SQL(" UNION ").join(
            sql.SQL("SELECT {column} FROM {table} WHERE {column} IS NOT NULL").format(
                column=sql.Identifier(column), table=sql.SQL(table)
            )
            for table, column in references
        )
        stmt += sql.SQL(" AND id NOT IN ({})").format(named)
    cursor.execute(stmt)


def _new_rates(cursor: psycopg.Cursor, usd_rates: pl.DataFrame) -> pl.DataFrame:
    """The demo's rates re-based to the reporting currency, for the currencies that have none yet
    (the reporting currency has its own rate 1)."""
    reporting = cursor.execute("SELECT value #>> '{}' FROM crm_settings WHERE key = 'reporting_currency'").fetchone()
    rebased = rates.rebase(usd_rates, reporting[0] if reporting else "USD")
    present = [row[0] for row in cursor.execute("SELECT DISTINCT currency FROM exchange_rates")]
    return rebased.filter(~pl.col("currency").is_in(present))


def copy_in(
    cursor: psycopg.Cursor,
    frames: dict[str, pl.DataFrame],
    advance: Callable[[str, int], None] = lambda task, done: None,
) -> None:
    """COPY frames into their tables (in order), with foreign keys and secondary indexes set
    aside meanwhile; all inside the cursor's transaction.

    ``advance(table, rows)`` reports each chunk copied, ``advance("indexes", 1)`` each index
    or foreign key restored.
    """
    with bulk.set_aside(cursor, LOADED, foreign_keys=True, advance=lambda done: advance("indexes", done)):
        for table, frame in frames.items():
            copy_frame(cursor, table, frame, lambda rows, table=table: advance(table, rows))


def copy_frame(
    cursor: psycopg.Cursor, table: str, frame: pl.DataFrame, advance: Callable[[int], None] = lambda rows: None
) -> None:
    """COPY a frame into ``table`` (its columns by name) as CSV, chunk by chunk."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    )
    with cursor.copy(stmt) as copy:
        for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False)
            copy.write(buffer.getvalue())
            advance(chunk.height)
