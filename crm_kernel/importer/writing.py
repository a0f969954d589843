"""Writing a plan: COPY in one transaction, through the CRM's own connection (so the acting
user, and whatever the database enforces for that user, applies), with audit rows written in
bulk and marked as imported.

The rows COPY writes are stamped by the snapshot change-tracking triggers (sql/003) like any
insert; audit rows are made in the database from the rows as stored (``to_jsonb``), dated
with the record's own past: a deal's ``create`` at its ``created_at`` and, when it entered
its stage later, a ``move`` at ``stage_entered_at`` from the pipeline's first stage, so the
history read from audit_log (analytics/history.py) tells the truth about old data.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import polars as pl
import sqlalchemy as sa
from psycopg import sql

from ..db import bulk
from ..errors import AccessDeniedError
from ..model import catalog
from ..services import changes

COPY_CHUNK_ROWS = 50_000
# The fast path (db/bulk.py) rebuilds every secondary index from the whole table: worth it only
# when the new rows are many and outnumber those there. benchmarks/import.py, 200,000 contacts
# into an empty table: the COPY 20.6 s -> 8.4 s, the whole import 1.1 times faster (the rebuild
# and the audit rows remain); below 50,000 rows the gain is not worth blocking the table's readers.
FAST_MIN_ROWS = 50_000
FAST_TABLE_RATIO = 3
NOTIFY_LIMIT = 1_000  # above this many records one import sends no per-record notifications
_XACT = "pg_current_xact_id()::text::numeric"
_IMAGE = "(to_jsonb(t) - ARRAY['search_vector', 'last_xact'])"


def may_go_fast(cursor, table: str, fast: bool | None) -> bool:
    """Whether this session may take the fast path into ``table`` (it owns the table); asked for
    (``fast=True``) by a session that may not, an :class:`AccessDeniedError` saying why."""
    if fast is False:
        return False
    if bulk.owns(cursor, [table]):
        return True
    if fast:
        login = cursor.execute("SELECT current_user").fetchone()[0]
        raise AccessDeniedError(
            f"{table}: the fast import drops the table's secondary indexes and rebuilds them, which only "
            f"the owner of {table} may do, and this login ({login}) is not (the app's logins act through "
            "role crm_app under row-level security); import with fast=False (--no-fast) or as the schema owner",
            table=table,
        )
    return False


def goes_fast(cursor, table: str, rows: int) -> bool:
    """Whether ``rows`` new rows are big against ``table`` (the automatic choice)."""
    if rows < FAST_MIN_ROWS:
        return False
    there = cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
    return rows >= FAST_TABLE_RATIO * there


def write(
    conn: sa.Connection,
    plan,
    actor,
    advance: Callable[[int], None] = lambda n: None,
    *,
    default_owner: bool = False,
    fast: bool = False,
) -> dict[str, int]:
    """Write the plan's related records, creates and updates; returns rows written per kind.
    ``default_owner``: new records without an owner belong to ``actor`` (anyone but an admin,
    who could not see them otherwise: access/rules.py). ``fast``: the entity's non-unique
    secondary indexes are dropped for the COPY of the new records and rebuilt after it, in the
    same transaction (db/bulk.py)."""
    cursor = conn.connection.driver_connection.cursor()
    written = {}
    for entity, frame in plan.new_related.items():
        related = frame.drop("_row").with_columns(
            pl.lit(str(actor)).alias("created_by"), pl.lit(str(actor)).alias("updated_by")
        )
        copy_frame(cursor, entity, _with_defaults(cursor, entity, related))
        written[f"new {entity}"] = frame.height
    creates = plan.rows.filter(pl.col("_status") == "create").select(plan.stored)
    creates = creates.with_columns(pl.lit(str(actor)).alias("created_by"), pl.lit(str(actor)).alias("updated_by"))
    if default_owner and catalog.entity(plan.entity).has_field("owner_id"):
        owner = (
            pl.col("owner_id").fill_null(pl.lit(str(actor))) if "owner_id" in creates.columns else pl.lit(str(actor))
        )
        creates = creates.with_columns(owner.alias("owner_id"))
    creates = _with_defaults(cursor, plan.entity, creates)
    if fast:
        with bulk.set_aside(cursor, [plan.entity]):
            copy_frame(cursor, plan.entity, creates, advance)
    else:
        copy_frame(cursor, plan.entity, creates, advance)
    updates = plan.rows.filter(pl.col("_status") == "update")
    if not updates.is_empty():
        _update(
            cursor,
            plan.entity,
            updates.select(pl.col("_existing_id").alias("id"), *[c for c in plan.stored if c != "created_at"]),
            actor,
        )
        advance(updates.height)
    for entity in {plan.entity, *plan.new_related}:
        _audit_creates(cursor, entity, actor)
    total = creates.height + updates.height + sum(f.height for f in plan.new_related.values())
    if total <= NOTIFY_LIMIT:
        _notify(cursor, [plan.entity, *plan.new_related])
    written.update(created=creates.height, updated=updates.height)
    return written


def copy_frame(cursor, table: str, frame: pl.DataFrame, advance: Callable[[int], None] = lambda n: None) -> None:
    """COPY a frame of text columns into ``table`` (columns by name), chunk by chunk.

    PostgreSQL refuses COPY FROM into a table whose row-level security applies to the session
    (a login in role crm_app, sql/017): then the rows go through a temporary table of the same
    column types and one INSERT ... SELECT, which the policies check row by row."""
    if frame.is_empty():
        return
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    guarded = cursor.execute("SELECT row_security_active(%s)", [table]).fetchone()[0]
    if not guarded:
        _copy(cursor, sql.Identifier(table), columns, frame, advance)
        return
    staging = sql.Identifier(f"import_staging_{table}")
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            staging, columns, sql.Identifier(table)
        )
    )
    _copy(cursor, staging, columns, frame, advance)
    cursor.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(sql.Identifier(table), columns, columns, staging)
    )
    cursor.execute(sql.SQL("DROP TABLE {}").format(staging))


def _copy(
    cursor, target: sql.Composable, columns: sql.Composable, frame: pl.DataFrame, advance: Callable[[int], None]
) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, columns)
    with cursor.copy(stmt) as copy:
        for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False)
            copy.write(buffer.getvalue())
            advance(chunk.height)


def _with_defaults(cursor, table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Blank cells of NOT NULL columns that have a default take that default (COPY would store
    NULL and fail); columns blank in every row are left out, so the database fills them."""
    frame = frame.select([c for c in frame.columns if frame[c].null_count() < frame.height])
    entity = catalog.entity(table)
    filled = []
    for name in frame.columns:
        f = entity.field(name)
        if f.nullable or not f.has_default or frame[name].null_count() == 0:
            continue
        default = cursor.execute(
            "SELECT column_default FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = %s AND column_name = %s",
            [table, name],
        ).fetchone()[0]
        value = cursor.execute(sql.SQL("SELECT ({})::text").format(sql.SQL(default))).fetchone()[0]
        filled.append(pl.col(name).fill_null(pl.lit(value)))
    return frame.with_columns(filled) if filled else frame


def _audit_creates(cursor, table: str, actor) -> None:
    """One audit row per record this transaction created in ``table`` (found by the change
    tracking stamp), dated with its own ``created_at``."""
    base = (
        f"INSERT INTO audit_log (user_id, at, entity, entity_id, operation, before, after, imported)"
        f" SELECT %(actor)s, {{at}}, '{table}', t.id, {{op}}, {{before}}, {{after}}, true"
        f" FROM {table} t WHERE t.last_xact = {_XACT} AND t.version = 1"
    )
    if table != "deals":
        cursor.execute(base.format(at="t.created_at", op="'create'", before="NULL", after=_IMAGE), {"actor": actor})
        return
    # A deal that entered its stage after it was created: created in the first stage, then moved.
    first = cursor.execute(
        "SELECT id::text, probability FROM pipeline_stages WHERE deleted_at IS NULL"
        " AND is_active ORDER BY position LIMIT 1"
    ).fetchone()
    earlier = (
        f"({_IMAGE} || jsonb_build_object('stage_id', %(first)s::text, 'probability', %(prob)s::numeric,"
        f" 'actual_close_date', NULL, 'stage_entered_at', t.created_at))"
    )
    moved = "t.stage_entered_at > t.created_at AND t.stage_id <> %(first)s::uuid"
    params = {"actor": actor, "first": first[0], "prob": first[1]}
    cursor.execute(
        base.format(
            at="t.created_at", op="'create'", before="NULL", after=f"CASE WHEN {moved} THEN {earlier} ELSE {_IMAGE} END"
        ),
        params,
    )
    cursor.execute(
        base.format(at="t.stage_entered_at", op="'move'", before=earlier, after=_IMAGE) + f" AND {moved}", params
    )


def _update(cursor, table: str, frame: pl.DataFrame, actor) -> None:
    """Existing records take the file's non-blank values: one UPDATE from a COPY-filled temp table,
    with before and after images in the audit log."""
    columns = [c for c in frame.columns if c != "id"]
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE import_updates ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            sql.SQL(", ").join(map(sql.Identifier, ["id", *columns])), sql.Identifier(table)
        )
    )
    copy_frame(cursor, "import_updates", frame)
    cursor.execute(
        sql.SQL(
            "CREATE TEMP TABLE import_before ON COMMIT DROP AS"
            " SELECT t.id, {image} AS img FROM {table} t JOIN import_updates u USING (id) ORDER BY t.id FOR UPDATE OF t"
        ).format(image=sql.SQL(_IMAGE), table=sql.Identifier(table))
    )
    sets = [
        sql.SQL("{c} = coalesce(u.{c}, t.{c})").format(c=sql.Identifier(c)) for c in columns if c != "custom_fields"
    ]
    if "custom_fields" in columns:
        sets.append(sql.SQL("custom_fields = t.custom_fields || coalesce(u.custom_fields, '{}')"))
    cursor.execute(
        sql.SQL(
            "UPDATE {table} t SET {sets}, version = t.version + 1, updated_at = now(), updated_by = %(actor)s"
            " FROM import_updates u WHERE t.id = u.id"
        ).format(table=sql.Identifier(table), sets=sql.SQL(", ").join(sets)),
        {"actor": actor},
    )
    if cursor.rowcount != frame.height:  # row-level security skipped records the user may not change
        raise AccessDeniedError(
            f"{table}: {frame.height - cursor.rowcount:,} of the file's rows would update "
            "records you may not change (owned outside your teams); nothing was written",
            table=table,
        )
    cursor.execute(
        sql.SQL(
            "INSERT INTO audit_log (user_id, entity, entity_id, operation, before, after, imported)"
            " SELECT %(actor)s, %(entity)s, t.id, 'update', b.img, {image}, true"
            " FROM {table} t JOIN import_before b USING (id)"
        ).format(image=sql.SQL(_IMAGE), table=sql.Identifier(table)),
        {"actor": actor, "entity": table},
    )


def _notify(cursor, tables: list[str]) -> None:
    """The usual change notification for each record written (open boards update)."""
    for table in dict.fromkeys(tables):
        cursor.execute(
            f"SELECT pg_notify(%s, json_build_object('entity', %s::text, 'id', t.id::text, 'operation', "
            f"CASE WHEN t.version = 1 THEN 'create' ELSE 'update' END, 'version', t.version)::text)"
            f" FROM {table} t WHERE t.last_xact = {_XACT}",
            [changes.CHANNEL, table],
        )
