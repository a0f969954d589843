"""Natural keys: how a row names a related record (a company by name or domain, a user by
e-mail or full name, a stage by name, a contact by e-mail, a product by name, a deal by
title), normalised alike in polars (the file) and SQL (the database)."""

from __future__ import annotations

import io

import polars as pl
import sqlalchemy as sa

_SCHEME = r"^[a-z][a-z0-9+.\-]*://"


def norm_text(expr: pl.Expr) -> pl.Expr:
    """Lower case, runs of white space as one space."""
    return expr.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def norm_domain(expr: pl.Expr) -> pl.Expr:
    """``https://www.Acme.com/about`` -> ``acme.com``."""
    return (
        expr.str.to_lowercase()
        .str.strip_chars()
        .str.replace(_SCHEME, "")
        .str.replace(r"^www\.", "")
        .str.replace(r"[/?#:].*$", "")
        .str.strip_chars(".")
    )


_NORM_TEXT_SQL = "lower(btrim(regexp_replace({0}, '\\s+', ' ', 'g')))"
_NORM_DOMAIN_SQL = (
    "btrim(regexp_replace(regexp_replace(regexp_replace(lower(btrim({0})), "
    "'^[a-z][a-z0-9+.\\-]*://', ''), '^www\\.', ''), '[/?#:].*$', ''), '.')"
)

# entity -> SQL expressions of its natural keys, most specific first.
KEY_SQL = {
    "companies": [_NORM_DOMAIN_SQL.format("domain"), _NORM_TEXT_SQL.format("name")],
    "users": ["lower(email)", _NORM_TEXT_SQL.format("full_name")],
    "pipeline_stages": [_NORM_TEXT_SQL.format("name")],
    "contacts": ["lower(email)"],
    "products": [_NORM_TEXT_SQL.format("name")],
    "deals": [_NORM_TEXT_SQL.format("title")],
}
_LIVE = {"pipeline_stages": "deleted_at IS NULL AND is_active"}


def file_key(entity: str, expr: pl.Expr) -> pl.Expr:
    """A file's value normalised as the target entity's keys are."""
    return norm_text(expr)


def lookup(conn: sa.Connection, entity: str) -> pl.DataFrame:
    """Every live record's keys: (key, id). A key two records share names the first only."""
    keys = " UNION ALL ".join(
        f"SELECT {sql} AS key, id::text AS id, {rank} AS rank, created_at FROM {entity}"
        f" WHERE {_LIVE.get(entity, 'deleted_at IS NULL')} AND {sql} IS NOT NULL AND {sql} <> ''"
        for rank, sql in enumerate(KEY_SQL[entity])
    )
    query = f"SELECT DISTINCT ON (key) key, id FROM ({keys}) k ORDER BY key, rank, created_at, id"
    return copy_out(conn, query, {"key": pl.String, "id": pl.String})


def copy_out(conn: sa.Connection, query: str, schema: dict) -> pl.DataFrame:
    """A query's rows through COPY TO (CSV), far faster than fetching rows one by one."""
    cursor = conn.connection.driver_connection.cursor()
    buffer = io.BytesIO()
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            buffer.write(block)
    if not buffer.tell():
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, new_columns=list(schema), schema=schema)
