"""DuckDB over a snapshot: its dialect, reflection and execution (Arrow straight from DuckDB).

A snapshot's plain views hide soft-deleted rows; the compiler reads the views that keep them
(and hides deleted rows itself), so that a join still reaches a deleted company, as on
PostgreSQL. DuckDB has no statement timeout of its own: a timer interrupts the statement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import duckdb_engine
import sqlalchemy as sa

from ...snapshot.views import ALL_ROWS
from ..compilers import Compiler
from ..control import RunHandle, Timer, statement, stopped
from ..spec import parse
from .base import NAMED_PARAMETER, Engine, Fetch, SqlReader, seek_values


class DuckDBCompiler(Compiler):
    name = "duckdb"
    dialect = duckdb_engine.Dialect(paramstyle="numeric_dollar")
    all_rows_schema = ALL_ROWS

    def read_custom_list(self, value):
        """As PostgreSQL's crm_json_texts (sql/018_multiselect.sql): the array's elements as
        text, null for anything but an array."""
        texts = sa.func.json_extract_string(value, sa.literal("$[*]", sa.Text), type_=sa.ARRAY(sa.Text()))
        return sa.case((sa.func.json_type(value) == sa.literal("ARRAY", sa.Text), texts))


class DuckDBEngine(Engine):
    name = "duckdb"
    compiler = DuckDBCompiler
    uses_snapshot = True
    errors = (duckdb.Error, sa.exc.SQLAlchemyError)
    reflect_sql = """
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'main' ORDER BY table_name, ordinal_position
    """

    def rows(self, conn, sql: str) -> list[tuple]:
        return conn.execute(sql).fetchall()

    def custom_fields(self, conn) -> tuple:
        try:
            return super().custom_fields(conn)
        except duckdb.CatalogException:  # a snapshot taken before custom fields existed
            return ()

    @contextmanager
    def connection(self, crm, snapshot=None):
        with _opened(crm, snapshot) as opened:
            yield opened.con

    @contextmanager
    def reader(self, crm, snapshot=None):
        with _opened(crm, snapshot) as opened:
            yield _DuckDBReader(opened.con)

    def execute(
        self, crm, spec, snapshot=None, *, now=None, timeout=None, handle=None, params=None, fetch: Fetch = "arrow"
    ):
        with _opened(crm, snapshot) as opened:
            return run(
                opened.con, spec, timezone=crm.config.timezone, now=now, timeout=timeout, handle=handle, params=params
            )

    def pages(self, crm, spec, snapshot, page_size: int):
        return _pages(crm, spec, snapshot, page_size)


ENGINE = DuckDBEngine()


class _DuckDBReader(SqlReader):
    """Hand-written SQL on a snapshot's connection (``:name`` parameters become ``$name``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def frame(self, sql: str, params: dict):
        frame = self.con.sql(NAMED_PARAMETER.sub(r"$\1", sql), params=params).pl()
        frame.columns = [f"c{i}" for i in range(frame.width)]
        return frame

    def table(self, name: str, *, with_deleted: bool = False) -> str:
        return f"{ALL_ROWS}.{name}" if with_deleted else name

    def json_record(self, column: str, keys: tuple[str, ...]) -> str:
        # DuckDB parses JSON text again for every ->>: every key at once, as a text array
        paths = ", ".join(f"'$.{key}'" for key in keys)
        return f"{column}->>[{paths}]"

    def json_field(self, record: str, keys: tuple[str, ...], key: str) -> str:
        return f"{record}[{keys.index(key) + 1}]"


@contextmanager
def _opened(crm, snapshot):
    """``snapshot`` when it is an opened one, else the one it names (the newest under
    ``$CRM_HOME`` when None), closed afterwards."""
    from ... import snapshot as snapshots

    if isinstance(snapshot, snapshots.Snapshot):
        yield snapshot
        return
    opened = snapshots.open(snapshot if snapshot is not None else snapshots.default_parent(crm.config))
    try:
        yield opened
    finally:
        opened.close()


def bound_statement(compiled) -> tuple[str, list]:
    bound = compiled.bound()
    return str(bound), [bound.params[name] for name in bound.positiontup]


def run(
    con,
    spec,
    *,
    timezone: str = "UTC",
    now=None,
    timeout: float | None = None,
    handle: RunHandle | None = None,
    params: dict | None = None,
):
    """Run on a DuckDB connection whose views mirror the CRM tables (a snapshot)."""
    from .. import frames
    from ..run import QueryResult, compile_spec

    spec = parse(spec)
    started = time.perf_counter()
    compiled = compile_spec(spec, "duckdb", schema=ENGINE.schema(con, spec), timezone=timezone, now=now, params=params)
    sql, values = bound_statement(compiled)
    compiled_at = time.perf_counter()
    timer = Timer(timeout, con.interrupt)
    try:
        with statement(handle, con.interrupt), timer:
            table = con.sql(sql, params=values).to_arrow_table()
    except duckdb.InterruptException:
        raise stopped(handle, timeout, timer.fired) from None
    after = None
    if compiled.keys:
        keys = table.select([key.name for key in compiled.keys])
        after = seek_values(
            compiled, list(keys.slice(table.num_rows - 1).to_pylist()[0].values()) if table.num_rows else None
        )
    frame = frames.from_arrow(compiled.columns, table, timezone)
    done = time.perf_counter()
    return QueryResult(
        compiled, "duckdb", compiled_at - started, done - compiled_at, timezone, _frame=frame, after=after
    )


def _pages(crm, spec, snapshot, page_size: int) -> Iterator:
    import pyarrow as pa

    from ...export import ExportError
    from .. import frames
    from ..run import compile_spec

    parsed = parse(spec)
    timezone = crm.config.timezone
    # Resolved once, when the export starts: a snapshot published meanwhile is not read.
    with _opened(crm, snapshot) as opened:
        con = opened.con.cursor()  # a result of its own, whatever else uses the snapshot meanwhile
        try:
            compiled = compile_spec(parsed, "duckdb", schema=ENGINE.schema(con, parsed), timezone=timezone)
            sql, values = bound_statement(compiled)
            reader = con.sql(sql, params=values).to_arrow_reader(page_size)
            empty = True
            for batch in reader:
                empty = False
                yield frames.from_arrow(compiled.columns, pa.Table.from_batches([batch]), timezone)
            if empty:
                yield frames.from_arrow(compiled.columns, reader.schema.empty_table(), timezone)
        except duckdb.Error as exc:
            raise ExportError(f"reading the result from the snapshot {opened.path} failed: {exc}") from exc
        finally:
            con.close()
