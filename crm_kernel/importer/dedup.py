"""Duplicates, within the file and against the database: contacts and users by e-mail,
companies by domain (else name), products by name, all normalised; and suspected duplicates,
company names alike by trigram similarity ("Acme Corp" and "ACME Corporation"), which are
shown, never acted on.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from .relations import lookup, norm_domain, norm_text

# Entities whose key the database holds unique: a duplicate cannot be created twice.
UNIQUE = {"contacts", "users", "products"}
SIMILARITY = 0.45  # pg_trgm similarity above which two company names are suspected duplicates
IN_FILE_LIMIT = 5_000  # new names compared pairwise within the file (quadratic), at most

SUSPECT_SCHEMA = {
    "_row": pl.Int64,
    "name": pl.String,
    "similar_to": pl.String,
    "_other_row": pl.Int64,
    "similarity": pl.Float64,
}  # _other_row: the file's row it resembles; null: an existing company


def dedup_key(entity: str, frame: pl.DataFrame) -> pl.Expr | None:
    """The expression naming a row's record, or None for entities without one (deals, activities)."""
    columns = set(frame.columns)
    if entity in ("contacts", "users") and "email" in columns:
        return pl.col("email").str.to_lowercase()  # cells come stripped; as the unique index: lower(email)
    if entity == "products" and "name" in columns:
        return norm_text(pl.col("name"))
    if entity == "companies":
        name = norm_text(pl.col("name")) if "name" in columns else pl.lit(None, pl.String)
        if "domain" in columns:
            domain = norm_domain(pl.col("domain"))
            return pl.when(domain.is_not_null() & (domain != "")).then(domain).otherwise(name)
        return name
    return None


def find_duplicates(conn: sa.Connection, entity: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Per row: ``_key``, ``_first_row`` (the earlier row it repeats, else null) and
    ``_existing_id`` (the live record it matches, else null)."""
    key = dedup_key(entity, frame)
    if key is None:
        return frame.select(
            "_row",
            pl.lit(None, pl.String).alias("_key"),
            pl.lit(None, pl.Int64).alias("_first_row"),
            pl.lit(None, pl.String).alias("_existing_id"),
        )
    keyed = frame.select("_row", key.alias("_key"))
    repeated = pl.col("_key").is_not_null() & ~pl.col("_key").is_first_distinct()
    if keyed.select(repeated.any()).item():  # rows in file order: the first of a key is its min row
        keyed = keyed.with_columns(pl.when(repeated).then(pl.col("_row").min().over("_key")).alias("_first_row"))
    else:  # the usual case, without grouping a million keys
        keyed = keyed.with_columns(pl.lit(None, pl.Int64).alias("_first_row"))
    existing = lookup(conn, entity).rename({"key": "_key", "id": "_existing_id"})
    if existing.is_empty():
        return keyed.with_columns(pl.lit(None, pl.String).alias("_existing_id"))
    return keyed.join(existing, on="_key", how="left", maintain_order="left")


def suspected_companies(conn: sa.Connection, names: pl.DataFrame) -> pl.DataFrame:
    """Near-duplicate company names among ``names`` (``_row``, ``name``: the companies about to be
    created): against live companies (through the trigram index) and against each other."""
    if names.is_empty():
        return pl.DataFrame(schema=SUSPECT_SCHEMA)
    conn.exec_driver_sql(f"SET LOCAL pg_trgm.similarity_threshold = {SIMILARITY}")
    rows, texts = names["_row"].to_list(), names["name"].to_list()
    found = conn.execute(
        sa.text(
            "SELECT n.row, n.name, c.name AS similar_to, similarity(n.name, c.name) AS sim"
            " FROM unnest(CAST(:rows AS bigint[]), CAST(:names AS text[])) AS n(row, name)"
            " JOIN companies c ON c.name % n.name AND c.deleted_at IS NULL"
            " WHERE lower(c.name) <> lower(n.name)"
        ),
        {"rows": rows, "names": texts},
    ).all()
    suspects = [
        {"_row": r.row, "name": r.name, "similar_to": r.similar_to, "_other_row": None, "similarity": float(r.sim)}
        for r in found
    ]
    if len(texts) <= IN_FILE_LIMIT:
        pairs = conn.execute(
            sa.text(
                "SELECT b.row, b.name, a.name AS similar_to, a.row AS other, similarity(a.name, b.name) AS sim"
                " FROM unnest(CAST(:rows AS bigint[]), CAST(:names AS text[])) AS a(row, name)"
                " JOIN unnest(CAST(:rows AS bigint[]), CAST(:names AS text[])) AS b(row, name)"
                " ON a.row < b.row AND a.name % b.name AND lower(a.name) <> lower(b.name)"
            ),
            {"rows": rows, "names": texts},
        ).all()
        suspects += [
            {
                "_row": r.row,
                "name": r.name,
                "similar_to": r.similar_to,
                "_other_row": r.other,
                "similarity": float(r.sim),
            }
            for r in pairs
        ]
    return pl.DataFrame(suspects, schema=SUSPECT_SCHEMA).sort("_row", "similarity", descending=[False, True])
