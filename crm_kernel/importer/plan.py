"""The plan of an import: every row of the file with what will happen to it (create, update,
skip or refuse) and why, the values it will store, the related records it will create and the
suspected duplicates. Building it reads the database and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa

from ..errors import ImportRefusedError
from ..model import catalog
from ..model.validation import BIGINT_RANGE
from .dedup import UNIQUE, find_duplicates, suspected_companies
from .mapping import RELATIONS, Mapping, template_parts
from .reading import Table
from .relations import copy_out, file_key, lookup
from .validation import (
    PROBLEM_SCHEMA,
    check_fields,
    field_rule,
    listed,
    missing_required,
    problems_frame,
)

OnDuplicate = str  # "skip" | "update" | "create"
ON_DUPLICATE = ("skip", "update", "create")

# Related records an import can create from a key alone: relation -> the field the key fills.
CREATABLE = {"company": "name", "product": "name", "owner": "email"}


@dataclass
class Plan:
    entity: str
    mapping: Mapping
    rows: pl.DataFrame  # _row, _status, _existing_id, _first_row + one text column per stored field
    problems: pl.DataFrame  # _row, target, value, reason
    duplicates: pl.DataFrame  # _row, _key, _first_row, _existing_id: rows that repeat a record
    suspected: pl.DataFrame  # dedup.SUSPECT_SCHEMA
    new_related: dict[str, pl.DataFrame] = field(default_factory=dict)  # entity -> id, key field
    stored: list[str] = field(default_factory=list)  # the table's columns the rows fill


def _slug(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"[^0-9a-z]+", ".").str.strip_chars(".")


def _template(template: str) -> pl.Expr:
    pieces = []
    for name, flt in template_parts(template):
        if flt is None:
            pieces.append(pl.lit(name[1:]))
            continue
        col = pl.col(name)
        pieces.append(
            {"slug": _slug(col), "lower": col.str.to_lowercase(), "upper": col.str.to_uppercase()}.get(flt, col)
        )
    return pl.concat_str(pieces, ignore_nulls=False)


def derive(frame: pl.DataFrame, m: Mapping) -> tuple[pl.DataFrame, dict[str, str]]:
    """The file's columns as targets (raw text, renamed values, templates, defaults), and each
    target's source header for messages."""
    exprs: dict[str, pl.Expr] = {}
    source: dict[str, str] = {}
    for header, target in m.columns.items():
        if target:
            exprs[target] = pl.col(header)
            source[target] = header
        elif m.unmapped == "custom_fields" and header not in m.columns.values():
            key = "custom_fields." + "_".join(header.lower().split()).replace("-", "_")
            exprs[key] = pl.col(header)
            source[key] = header
    for target, template in m.templates.items():
        exprs[target] = _template(template)
        source[target] = f"{target} (template)"
    for target, renames in m.values.items():
        if target in exprs:
            exprs[target] = exprs[target].replace(renames)
    for target, default in m.defaults.items():
        exprs[target] = exprs[target].fill_null(pl.lit(str(default))) if target in exprs else pl.lit(str(default))
        source.setdefault(target, f"{target} (default)")
    out = frame.select("_row", *(e.cast(pl.String).alias(t) for t, e in exprs.items()))
    return out, source


def _custom_fields(frame: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    names = [c for c in frame.columns if c.startswith("custom_fields.")]
    if not names:
        return frame, False
    struct = pl.struct([pl.col(n).alias(n.removeprefix("custom_fields.")) for n in names])
    return frame.with_columns(struct.struct.json_encode().alias("custom_fields")).drop(names), True


# A declared custom field's values are stored as JSON of its type (services/custom_fields.py).
_CUSTOM_AS = {"integer": pl.Int64, "number": pl.Float64, "boolean": pl.Boolean}


def _declared_custom(conn, entity: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check the declared custom fields' values against their types and give them those types."""
    names = [c for c in frame.columns if c.startswith("custom_fields.")]
    if not names:
        return frame, problems_frame()
    declared = {
        key: (kind, options)
        for key, kind, options in conn.execute(
            sa.text("SELECT key, type, options FROM custom_field_definitions WHERE entity = :e AND deleted_at IS NULL"),
            {"e": entity},
        ).all()
    }
    exprs, problems = [], []
    for name in names:
        kind, options = declared.get(name.removeprefix("custom_fields."), (None, None))
        if kind in (None, "text"):
            continue
        if kind == "multiselect":
            clean, reason = _chosen(pl.col(name), options)
        else:
            spec = (
                catalog.Field(name, kind, minimum=BIGINT_RANGE[0], maximum=BIGINT_RANGE[1])
                if kind == "integer"
                else catalog.Field(name, kind)
            )
            clean, reason = field_rule(spec, pl.col(name))
        exprs.append(clean.cast(_CUSTOM_AS[kind], strict=False) if kind in _CUSTOM_AS else clean)
        problems.append(
            frame.select(
                "_row", pl.lit(name).alias("target"), pl.col(name).alias("value"), reason.alias("reason")
            ).filter(pl.col("reason").is_not_null())
        )
    frame = frame.with_columns([e for e in exprs])
    return frame, (pl.concat(problems) if problems else problems_frame())


def _chosen(raw: pl.Expr, options: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """A multiselect's cell, "web; phone": the list of its options, or why not (the first
    choice that is no option)."""
    items = listed(raw)
    outside = items.list.eval(pl.element().filter(~pl.element().is_in(options))).list.first()
    choices = ", ".join(map(repr, options))
    reason = (
        pl.when(outside.is_not_null())
        .then(pl.lit("'") + outside + pl.lit(f"' is not one of the options {choices}"))
        .otherwise(None)
    )
    return items, reason


def build(conn: sa.Connection, table: Table, m: Mapping, on_duplicate: OnDuplicate, actor) -> Plan:
    if on_duplicate not in ON_DUPLICATE:
        raise ImportRefusedError(f"on_duplicate is one of {', '.join(ON_DUPLICATE)}, not {on_duplicate!r}")
    entity = m.entity
    frame = table.frame.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    data, source = derive(frame, m)
    missing = missing_required(entity, set(data.columns))
    if missing:
        raise ImportRefusedError(
            f"{table.name} has no column for the required field(s) {', '.join(missing)} of {entity}; "
            f"its columns are {', '.join(map(repr, table.frame.columns))} (map them with a mapping file)"
        )
    own = [c for c in data.columns if c != "_row" and not c.startswith("custom_fields.") and c not in RELATIONS[entity]]
    checked, problems = check_fields(data, entity, own, m.date_format, m.multiply)
    checked, found = _declared_custom(conn, entity, checked)
    problems = pl.concat([problems, found])
    checked, has_custom = _custom_fields(checked)
    parts = [problems]
    new_related: dict[str, pl.DataFrame] = {}
    for relation, (fk, target) in RELATIONS[entity].items():
        if relation not in checked.columns:
            continue
        checked, found, created = _resolve(conn, checked, relation, fk, target, m.create_missing)
        parts.append(found)
        if created is not None:
            new_related[target] = created
    if entity == "deals":
        checked, found = _deal_rules(conn, checked, m)
        parts.append(found)
    if "created_at" in checked.columns or entity == "deals":
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        checked = checked.with_columns(
            pl.col("created_at").fill_null(pl.lit(now))
            if "created_at" in checked.columns
            else pl.lit(None, pl.String).alias("created_at")
        )
        if entity == "deals":
            checked = checked.with_columns(
                pl.col("created_at").fill_null(pl.lit(now)),
                pl.coalesce("stage_entered_at", "_closed_on", "created_at", pl.lit(now)).alias("stage_entered_at"),
            )
    problems = pl.concat(parts)
    dups = find_duplicates(conn, entity, checked)
    rows = checked.join(dups, on="_row", how="left")
    bad = problems.select("_row").unique()
    refused_dups = []
    unique = entity in UNIQUE
    status = (
        pl.when(pl.col("_row").is_in(bad["_row"].implode()))
        .then(pl.lit("refuse"))
        .when(pl.col("_first_row").is_not_null() & (on_duplicate == "create") & (not unique))
        .then(pl.lit("create"))
        .when(pl.col("_first_row").is_not_null() & (on_duplicate == "create"))
        .then(pl.lit("refuse"))
        .when(pl.col("_first_row").is_not_null())
        .then(pl.lit("skip"))
        .when(pl.col("_existing_id").is_not_null() & (on_duplicate == "create") & unique)
        .then(pl.lit("refuse"))
        .when(pl.col("_existing_id").is_not_null() & (on_duplicate != "create"))
        .then(pl.lit(on_duplicate))
        .otherwise(pl.lit("create"))
    )
    rows = rows.with_columns(status.alias("_status"))
    if unique and on_duplicate == "create":
        clash = rows.filter((pl.col("_status") == "refuse") & ~pl.col("_row").is_in(bad["_row"].implode()))
        refused_dups.append(
            clash.select(
                "_row",
                pl.lit(dedup_target(entity)).alias("target"),
                pl.col("_key").alias("value"),
                pl.when(pl.col("_first_row").is_not_null())
                .then(pl.lit("repeats an earlier row; it must be unique"))
                .otherwise(pl.lit("already exists in the CRM; it must be unique"))
                .alias("reason"),
            )
        )
    problems = pl.concat([problems, *refused_dups]).cast(PROBLEM_SCHEMA).sort("_row", "target")
    duplicates = rows.filter(pl.col("_first_row").is_not_null() | pl.col("_existing_id").is_not_null()).select(
        "_row", "_key", "_first_row", "_existing_id", "_status"
    )
    suspected = pl.DataFrame()
    if entity == "companies" and "name" in rows.columns:
        fresh = rows.filter((pl.col("_status") == "create") & pl.col("name").is_not_null()).select("_row", "name")
        suspected = suspected_companies(conn, fresh)
    elif "companies" in new_related:
        suspected = suspected_companies(conn, new_related["companies"].select(pl.col("_row"), pl.col("name")))
    from .dedup import SUSPECT_SCHEMA

    if suspected.is_empty():
        suspected = pl.DataFrame(schema=SUSPECT_SCHEMA)
    stored = [c for c in rows.columns if not c.startswith("_") and catalog.entity(entity).has_field(c)]
    if has_custom and "custom_fields" not in stored:
        stored.append("custom_fields")
    plan = Plan(
        entity,
        m,
        rows,
        problems.with_columns(pl.col("target").replace_strict(source, default=pl.col("target")).alias("column")),
        duplicates,
        suspected,
        new_related,
        stored,
    )
    return plan


def dedup_target(entity: str) -> str:
    return {"contacts": "email", "users": "email", "products": "name"}.get(entity, "name")


def _resolve(conn, frame: pl.DataFrame, relation: str, fk: str, target: str, create_missing: list[str]):
    """Replace the ``relation`` column's keys by ids in ``fk``; unknown keys are problems, or new
    records when the mapping creates them."""
    keys = lookup(conn, target).rename({"key": "_k", "id": fk})
    frame = frame.with_columns(file_key(target, pl.col(relation)).alias("_k")).join(keys, on="_k", how="left")
    unknown = frame.filter(pl.col(relation).is_not_null() & pl.col(fk).is_null())
    created = None
    noun = catalog.entity(target).singular.lower()
    if relation in create_missing and relation in CREATABLE and not unknown.is_empty():
        fresh = unknown.group_by("_k", maintain_order=True).agg(
            pl.col(relation).first().alias("_text"), pl.col("_row").min().alias("_row")
        )
        if relation == "owner":  # a user needs an e-mail: only e-mail keys create users
            fresh = fresh.filter(pl.col("_text").str.contains("@"))
        fresh = fresh.with_columns(
            pl.Series("_new_id", [str(uuid.uuid4()) for _ in range(fresh.height)], dtype=pl.String)
        )
        frame = (
            frame.join(fresh.select("_k", "_new_id"), on="_k", how="left")
            .with_columns(pl.coalesce(fk, "_new_id").alias(fk))
            .drop("_new_id")
        )
        unknown = frame.filter(pl.col(relation).is_not_null() & pl.col(fk).is_null())
        created = fresh.select("_row", pl.col("_new_id").alias("id"), pl.col("_text").alias(CREATABLE[relation]))
        if relation == "owner":
            created = created.with_columns(pl.col("email").str.split("@").list.first().alias("full_name"))
    hint = (
        f'; add it first or let the import create it (create_missing: ["{relation}"])' if relation in CREATABLE else ""
    )
    problems = unknown.select(
        "_row",
        pl.lit(relation).alias("target"),
        pl.col(relation).alias("value"),
        pl.lit(f"unknown {noun}{hint}").alias("reason"),
    )
    return frame.drop("_k", relation), problems, created


def _deal_rules(conn, frame: pl.DataFrame, m: Mapping) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A deal's stage: its required fields, its probability, its close date (services/deals.py)."""
    stages = copy_out(
        conn,
        "SELECT id::text, name, probability::text, (is_closed_won OR is_closed_lost)::int,"
        " required_fields::text, position FROM pipeline_stages"
        " WHERE deleted_at IS NULL AND is_active ORDER BY position",
        {
            "stage_id": pl.String,
            "_stage": pl.String,
            "_stage_probability": pl.String,
            "_closed": pl.Int8,
            "_required": pl.String,
            "_position": pl.Int64,
        },
    )
    if stages.is_empty():
        raise ImportRefusedError("the pipeline has no active stage to put deals in")
    if "stage_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(stages["stage_id"][0]).alias("stage_id"))
    frame = frame.with_columns(pl.col("stage_id").fill_null(pl.lit(stages["stage_id"][0])))
    stages = stages.with_columns(
        pl.col("_required").str.json_decode(pl.List(pl.String)), pl.col("_closed").cast(pl.Boolean)
    )
    frame = frame.join(stages.drop("_position"), on="stage_id", how="left")
    problems = []
    required = sorted({name for names in stages["_required"].to_list() for name in names})
    for name in required:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
        needs = pl.col("_required").list.contains(name)
        if name in m.fill_required:
            frame = frame.with_columns(
                pl.when(needs & pl.col(name).is_null())
                .then(pl.lit(m.fill_required[name]))
                .otherwise(pl.col(name))
                .alias(name)
            )
        problems.append(
            frame.filter(needs & pl.col(name).is_null()).select(
                "_row",
                pl.lit(name).alias("target"),
                pl.lit(None, pl.String).alias("value"),
                pl.format("is required in stage {}", pl.col("_stage")).alias("reason"),
            )
        )
    today = dt.date.today().isoformat()
    close = pl.col("actual_close_date") if "actual_close_date" in frame.columns else pl.lit(None, pl.String)
    probability = pl.col("probability") if "probability" in frame.columns else pl.lit(None, pl.String)
    frame = frame.with_columns(
        probability.fill_null(pl.col("_stage_probability")).alias("probability"),
        pl.when(pl.col("_closed")).then(close.fill_null(pl.lit(today))).otherwise(close).alias("actual_close_date"),
    )
    frame = frame.with_columns(pl.when(pl.col("_closed")).then(pl.col("actual_close_date")).alias("_closed_on"))
    if "stage_entered_at" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("stage_entered_at"))
    problems = pl.concat(problems) if problems else problems_frame()
    return frame.drop("_required", "_stage_probability"), problems
