"""The catalog agrees with the migrated schema, column for column."""

import pytest
import sqlalchemy as sa

from crm_kernel.model import ENTITIES, children, entity
from crm_kernel.model.catalog import INTERNAL_TABLES

# information_schema's udt_name for each catalog field type (enums: their own type name).
UDT = {
    "text": "text",
    "integer": "int4",
    "number": "numeric",
    "money": "numeric",
    "date": "date",
    "timestamp": "timestamptz",
    "boolean": "bool",
    "uuid": "uuid",
    "json": "jsonb",
    "search": "tsvector",
    "tags": "_text",
}


@pytest.fixture(scope="module")
def live_columns(engine):
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text("""
            SELECT table_name, column_name, udt_name, is_nullable, numeric_precision, numeric_scale,
                   column_default, is_generated, is_identity
            FROM information_schema.columns WHERE table_schema = 'public'
            ORDER BY table_name, ordinal_position
        """)
            )
            .mappings()
            .all()
        )
    columns = {}
    for r in rows:
        columns.setdefault(r["table_name"], {})[r["column_name"]] = dict(r)
    return columns


def test_every_table_is_in_the_catalog(live_columns):
    assert set(live_columns) - INTERNAL_TABLES == set(ENTITIES)


@pytest.mark.parametrize("name", ENTITIES)
def test_fields_match_columns(live_columns, name):
    e = entity(name)
    live = live_columns[name]
    assert [f.name for f in e.fields] == list(live), "same columns in the same order"
    for f in e.fields:
        col = live[f.name]
        expected_udt = f.enum_type if f.type == "enum" else UDT[f.type]
        if f.type == "integer" and f.name == "id":
            expected_udt = "int8"
        assert col["udt_name"] == expected_udt, f"{name}.{f.name}"
        assert (col["is_nullable"] == "YES") == f.nullable, f"{name}.{f.name} nullability"
        db_fills = col["column_default"] is not None or col["is_identity"] == "YES" or col["is_generated"] == "ALWAYS"
        if f.has_default:
            assert db_fills, f"{name}.{f.name} is said to have a default"
        if not f.readonly:
            assert f.has_default == db_fills, f"{name}.{f.name} default"
        if f.type in ("number", "money"):
            assert (col["numeric_precision"], col["numeric_scale"]) == (f.precision, f.scale), f"{name}.{f.name}"


def test_every_numeric_column_declares_precision_and_scale(live_columns):
    loose = [
        f"{t}.{c}"
        for t, cols in live_columns.items()
        for c, col in cols.items()
        if col["udt_name"] == "numeric" and (col["numeric_precision"] is None or col["numeric_scale"] is None)
    ]
    assert loose == []


def test_enum_values_match_postgres_types(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("""
            SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
            FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname
        """)
        ).all()
    live = dict(rows)
    catalog = {f.enum_type: list(f.values) for e in ENTITIES.values() for f in e.fields if f.type == "enum"}
    assert catalog == {k: v for k, v in live.items() if k in catalog}
    assert set(live) == set(catalog)


def test_relations_match_foreign_keys(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("""
            SELECT kcu.table_name, kcu.column_name, ccu.table_name
            FROM information_schema.table_constraints tc
            JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
            JOIN information_schema.constraint_column_usage ccu USING (constraint_schema, constraint_name)
            WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'
        """)
        ).all()
    live = {tuple(r) for r in rows if r[0] not in INTERNAL_TABLES}
    catalog = {(r.source, r.field, r.target) for e in ENTITIES.values() for r in e.relations}
    assert catalog == live


def test_foreign_keys_follow_the_naming_rule():
    for e in ENTITIES.values():
        for r in e.relations:
            assert r.field in (f"{r.name}_id", "created_by", "updated_by"), r


def test_one_to_many_relations_are_the_reverse_of_foreign_keys():
    assert {(r.source, r.field) for r in children("companies")} == {
        ("contacts", "company_id"),
        ("deals", "company_id"),
        ("activities", "company_id"),
    }


def test_business_tables_carry_the_bookkeeping_columns():
    for e in ENTITIES.values():
        if e.business:
            for name in (
                "id",
                "created_at",
                "updated_at",
                "created_by",
                "updated_by",
                "deleted_at",
                "version",
                "custom_fields",
            ):
                assert e.has_field(name), f"{e.name}.{name}"


def test_search_indexes_exist(engine):
    with engine.connect() as conn:
        indexes = dict(
            conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")).all()
        )
    for table in ("companies", "contacts", "deals", "activities"):
        assert f"{table}_search_idx" in indexes
        assert "gin (search_vector)" in indexes[f"{table}_search_idx"]
    trigram = [name for name, d in indexes.items() if "gin_trgm_ops" in d]
    assert {"companies_name_trgm_idx", "contacts_name_trgm_idx", "contacts_email_trgm_idx"} <= set(trigram)
    assert "deals_stage_updated_idx" in indexes


def _extremes(f, col):
    """The largest value validation lets through for a numeric field, and the next one up."""
    from decimal import Decimal

    from crm_kernel.model.validation import INTEGER_RANGE

    if f.type == "integer":
        top = INTEGER_RANGE[1] if f.maximum is None else int(f.maximum)
        return top, top + 1, "int4"
    step = Decimal(1).scaleb(-col["numeric_scale"])
    top = Decimal(10) ** (col["numeric_precision"] - col["numeric_scale"]) - step
    if f.maximum is not None:
        top = min(top, Decimal(str(f.maximum)))
    return top, top + step, f"numeric({col['numeric_precision']}, {col['numeric_scale']})"


@pytest.mark.parametrize("name", [e.name for e in ENTITIES.values() if e.business])
def test_validation_accepts_what_the_column_holds_and_refuses_the_rest(engine, live_columns, name):
    """Every writable number is checked against its column's range and precision: the largest
    value validation accepts fits the live column; the next one is refused before the database."""
    from crm_kernel.errors import ValidationError
    from crm_kernel.model.validation import clean_update

    e = entity(name)
    numeric = [f for f in e.writable_fields if f.type in ("integer", "number", "money")]
    for f in numeric:
        top, beyond, sql_type = _extremes(f, live_columns[name][f.name])
        assert clean_update(e, {f.name: top}) == {f.name: top}
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT CAST(:v AS {sql_type})"), {"v": top}).scalar() == top
        with pytest.raises(ValidationError) as info:
            clean_update(e, {f.name: beyond})
        assert list(info.value.errors) == [f.name]
