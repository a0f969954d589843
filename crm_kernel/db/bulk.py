"""Bulk loads with secondary indexes (and, when asked, foreign keys) set aside and rebuilt.

Updating the GIN and B-tree indexes row by row (and checking foreign keys row by row) costs
several times the COPY itself; building each index once and checking each foreign key with one
join afterwards is far cheaper. Used by the demo loader and by big imports:

    with set_aside(cursor, ["contacts"]):
        ...COPY into contacts...

Everything happens in the cursor's transaction, so a failure anywhere rolls back the rows and
the dropped indexes alike. The definitions are read back from the catalog, so the migrations in
sql/ stay their only source. Unique indexes and the indexes behind constraints stay: foreign
keys point at them, and they check the rows as they arrive. Dropping an index needs the table's
owner, and takes an ACCESS EXCLUSIVE lock until commit (readers wait).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql

MAINTENANCE_WORK_MEM = "256MB"  # index builds sort in memory; the default 64MB spills to disk


def owns(cursor: psycopg.Cursor, tables: Sequence[str]) -> bool:
    """Whether the session may drop indexes on every one of ``tables`` (it owns them, directly
    or through a role; the app's login role crm_app owns none)."""
    return cursor.execute(
        "SELECT bool_and(pg_has_role(current_user, relowner, 'USAGE')) FROM pg_class WHERE oid = ANY(%s::regclass[])",
        [list(tables)],
    ).fetchone()[0]


@contextmanager
def set_aside(
    cursor: psycopg.Cursor,
    tables: Sequence[str],
    *,
    foreign_keys: bool = False,
    advance: Callable[[int], None] = lambda done: None,
) -> Iterator[None]:
    """Drop ``tables``' non-unique secondary indexes (and foreign keys, when asked) for the
    block, and rebuild them after it; ``advance(1)`` hears of each one rebuilt. Nothing is
    rebuilt when the block raises: the transaction is bound to roll back."""
    restore = _drop(cursor, tables, foreign_keys)
    yield
    cursor.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(MAINTENANCE_WORK_MEM)))
    for statement in restore:
        cursor.execute(statement)
        advance(1)


def secondary_indexes(cursor: psycopg.Cursor, tables: Sequence[str]) -> list[tuple[str, str, str]]:
    """(schema, name, definition) of the indexes :func:`set_aside` drops: neither unique nor
    behind a constraint (primary key, unique, exclusion)."""
    return cursor.execute(
        "SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique"
        " AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY i.indrelid::regclass::text, c.relname",
        [list(tables)],
    ).fetchall()


def _drop(cursor: psycopg.Cursor, tables: Sequence[str], foreign_keys: bool) -> list[sql.Composable]:
    """Drop what :func:`set_aside` sets aside; return the statements that restore it."""
    indexes = secondary_indexes(cursor, tables)
    keys = (
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
            [list(tables)],
        ).fetchall()
        if foreign_keys
        else []
    )
    for schema, name, _ in indexes:
        cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    for table, name, _ in keys:
        cursor.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name)))
    return [
        *(sql.SQL(definition) for _, _, definition in indexes),
        *(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.SQL(table), sql.Identifier(name), sql.SQL(definition)
            )
            for table, name, definition in keys
        ),
    ]
