"""Record services: create/get/update/delete/restore/list, audit rows and change notifications."""

import json
import uuid
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from crm_kernel import ConflictError, NotFoundError, ValidationError
from crm_kernel.db.engine import libpq_url


def table_counts(engine) -> dict:
    with engine.connect() as conn:
        return {
            t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
            for t in ("users", "companies", "contacts", "deals", "activities", "audit_log")
        }


@pytest.fixture
def acme(crm):
    return crm.companies.create(name="Acme", industry="Software", annual_revenue="2500000.50")


def test_create_returns_the_stored_record_with_bookkeeping(crm, acme):
    assert isinstance(acme["id"], uuid.UUID)
    assert acme["annual_revenue"] == Decimal("2500000.50")
    assert acme["version"] == 1
    assert acme["created_by"] == crm.user_id == acme["updated_by"]
    assert acme["custom_fields"] == {}
    assert "search_vector" not in acme
    assert crm.companies.get(acme["id"]) == acme


@pytest.mark.parametrize("as_text", [True, False])
def test_ids_are_accepted_as_uuid_or_text(crm, acme, as_text):
    rid = str(acme["id"]) if as_text else acme["id"]
    assert crm.companies.get(rid)["name"] == "Acme"
    contact = crm.contacts.create(company_id=rid, first_name="Ann", last_name="Lee")
    assert contact["company_id"] == acme["id"]


def test_malformed_id_is_a_validation_error(crm):
    with pytest.raises(ValidationError, match="not a valid id"):
        crm.companies.get("not-a-uuid")


def test_unknown_id_is_not_found(crm):
    with pytest.raises(NotFoundError, match="no company"):
        crm.companies.get(uuid.uuid4())
    with pytest.raises(NotFoundError):
        crm.companies.update(uuid.uuid4(), name="x")


def test_update_bumps_version_and_audits_before_and_after(crm, engine, acme, audit_rows):
    updated = crm.companies.update(acme["id"], {"industry": "Fintech"}, expected_version=1)
    assert updated["industry"] == "Fintech"
    assert updated["version"] == 2
    assert updated["updated_at"] >= acme["updated_at"]
    create, update = audit_rows(acme["id"])
    assert (create["operation"], update["operation"]) == ("create", "update")
    assert create["before"] is None and create["after"]["name"] == "Acme"
    assert update["before"]["industry"] == "Software"
    assert update["after"]["industry"] == "Fintech"
    assert update["after"]["annual_revenue"] == 2500000.50
    assert update["user_id"] == crm.user_id
    assert "search_vector" not in update["after"] and "last_xact" not in update["after"]


def test_update_with_no_changes_writes_nothing(crm, engine, acme, audit_rows):
    assert crm.companies.update(acme["id"], {})["version"] == 1
    assert len(audit_rows(acme["id"])) == 1


def test_stale_version_is_a_conflict_and_leaves_no_trace(crm, engine, acme):
    crm.companies.update(acme["id"], industry="Fintech")
    before = table_counts(engine)
    with pytest.raises(ConflictError, match="changed by someone else") as info:
        crm.companies.update(acme["id"], {"industry": "Retail"}, expected_version=1)
    assert info.value.current["industry"] == "Fintech"
    assert info.value.current["version"] == 2
    assert table_counts(engine) == before
    assert crm.companies.get(acme["id"])["industry"] == "Fintech"


@pytest.mark.parametrize(
    ("entity", "values", "field", "message"),
    [
        ("companies", {"industry": "x"}, "name", "is required"),
        ("companies", {"name": "  "}, "name", "must not be empty"),
        ("companies", {"name": "A", "email": "nope"}, "email", "not an e-mail"),
        ("companies", {"name": "A", "size": "huge"}, "size", "Input should be"),
        ("companies", {"name": "A", "employees": -1}, "employees", "greater than or equal to 0"),
        ("companies", {"name": "A", "annual_revenue": "lots"}, "annual_revenue", "decimal"),
        ("companies", {"name": "A", "colour": "red"}, "colour", "unknown field"),
        ("companies", {"name": "A", "version": 3}, "version", "set by the system"),
        ("contacts", {"first_name": "A", "last_name": "B", "lead_score": 101}, "lead_score", "less than or equal"),
        (
            "contacts",
            {"first_name": "A", "last_name": "B", "company_id": str(uuid.uuid4())},
            "company_id",
            "no company",
        ),
        ("users", {"email": "a@b.io", "full_name": "A", "role": "boss"}, "role", "Input should be"),
        ("pipeline_stages", {"name": "X", "position": 9, "probability": 1.5}, "probability", "less than or equal to 1"),
        ("pipeline_stages", {"name": "X", "position": 9, "colour": "#12"}, "colour", "not a colour"),
        # Each value is checked against its PostgreSQL column (integer, numeric(p, s), text, jsonb).
        ("companies", {"name": "A", "employees": 3_000_000_000}, "employees", "less than or equal to 2147483647"),
        (
            "pipeline_stages",
            {"name": "X", "position": -(2**31) - 1},
            "position",
            "greater than or equal to -2147483648",
        ),
        ("companies", {"name": "A", "annual_revenue": 0.1 + 0.2}, "annual_revenue", "has more than 2 decimal places"),
        (
            "companies",
            {"name": "A", "annual_revenue": "1e20"},
            "annual_revenue",
            "at most 14 digits before the decimal",
        ),
        ("companies", {"name": "A", "annual_revenue": float("nan")}, "annual_revenue", "not a finite number"),
        ("companies", {"name": "A\x00B"}, "name", "NUL"),
        ("companies", {"name": "A", "address": {"street": "x\x00"}}, "address", "NUL"),
        ("companies", {"name": "A", "address": {"a\x00": 1}}, "address", "NUL"),
        ("companies", {"name": "A", "address": {"geo": [1, float("inf")]}}, "address", "JSON cannot store"),
        ("companies", {"name": "A", "address": {"x": object()}}, "address", "not a JSON value"),
        ("companies", {"name": "A", "address": {1: "x"}}, "address", "keys are text"),
        ("companies", {"name": "A", "address": "Main St"}, "address", "must be a JSON object or list"),
        ("companies", {"name": "A", "custom_fields": [1]}, "custom_fields", "must be an object"),
        ("companies", {"name": "A", "custom_fields": {"x": {1, 2}}}, "custom_fields", "not a JSON value"),
        (
            "pipeline_stages",
            {"name": "X", "position": 9, "required_fields": ["nope"]},
            "required_fields",
            "not a deal field",
        ),
        (
            "pipeline_stages",
            {"name": "X", "position": 9, "required_fields": {"value": 1}},
            "required_fields",
            "must be a list of deal field names",
        ),
    ],
)
def test_invalid_create_names_the_field_and_leaves_no_trace(crm, engine, entity, values, field, message):
    before = table_counts(engine)
    with pytest.raises(ValidationError, match=message) as info:
        getattr(crm, "stages" if entity == "pipeline_stages" else entity).create(values)
    assert field in info.value.errors
    assert table_counts(engine) == before


def test_unique_email_is_case_insensitive(crm, engine, acme):
    crm.contacts.create(first_name="Ann", last_name="Lee", email="Ann.Lee@acme.com")
    before = table_counts(engine)
    with pytest.raises(ValidationError) as info:
        crm.contacts.create(first_name="Other", last_name="Ann", email="ann.lee@ACME.com")
    assert list(info.value.errors) == ["email"]
    assert table_counts(engine) == before


def test_non_nullable_field_cannot_be_cleared(crm, acme):
    with pytest.raises(ValidationError) as info:
        crm.companies.update(acme["id"], name=None)
    assert "name" in info.value.errors


def test_soft_delete_hides_and_restore_brings_back(crm, engine, acme, audit_rows):
    deleted = crm.companies.delete(acme["id"], expected_version=1)
    assert deleted["deleted_at"] is not None and deleted["version"] == 2
    with pytest.raises(NotFoundError):
        crm.companies.get(acme["id"])
    assert crm.companies.get(acme["id"], include_deleted=True)["deleted_at"] is not None
    assert crm.companies.list() == []
    assert crm.companies.count(include_deleted=True) == 1
    with pytest.raises(NotFoundError, match="is deleted"):
        crm.companies.update(acme["id"], name="Zombie")
    restored = crm.companies.restore(acme["id"])
    assert restored["deleted_at"] is None and restored["version"] == 3
    with pytest.raises(NotFoundError, match="is not deleted"):
        crm.companies.restore(acme["id"])
    assert [r["operation"] for r in audit_rows(acme["id"])] == ["create", "delete", "restore"]


def test_a_deleted_record_cannot_be_referenced(crm, acme):
    crm.companies.delete(acme["id"])
    with pytest.raises(ValidationError, match="no company"):
        crm.contacts.create(first_name="A", last_name="B", company_id=acme["id"])


def test_list_filters_orders_and_pages(crm):
    for name, industry in [("B", "Retail"), ("A", "Software"), ("C", "Software")]:
        crm.companies.create(name=name, industry=industry)
    assert [c["name"] for c in crm.companies.list(industry="Software", order_by="name")] == ["A", "C"]
    assert [c["name"] for c in crm.companies.list(order_by="-name", limit=2)] == ["C", "B"]
    assert [c["name"] for c in crm.companies.list(order_by="name", offset=2)] == ["C"]
    assert crm.companies.count(industry="Software") == 2
    assert crm.companies.list(industry=None) == []
    with pytest.raises(ValidationError, match="unknown field"):
        crm.companies.list(colour="red")
    with pytest.raises(ValidationError, match="unknown field"):
        crm.companies.list(order_by="colour")


def test_acting_user_lands_in_records_and_audit(crm, engine, audit_rows):
    from crm_kernel import CRM

    rep = crm.users.create(email="rep@example.com", full_name="Rita Rep")
    as_rep = CRM(engine, user="REP@example.com")
    assert as_rep.user_id == rep["id"]
    company = as_rep.companies.create(name="Globex")
    assert company["created_by"] == rep["id"]
    assert audit_rows(company["id"])[0]["user_id"] == rep["id"]


def test_unknown_acting_user_is_a_clear_error(engine):
    from crm_kernel import CRM, ConfigError

    with pytest.raises(ConfigError, match="nobody@example.com"):
        CRM(engine, user="nobody@example.com")


def test_writes_notify_listeners_only_when_committed(crm, database_url):
    with psycopg.connect(libpq_url(database_url), autocommit=True) as listener:
        listener.execute("LISTEN crm_changes")
        company = crm.companies.create(name="Initech")
        with pytest.raises(ValidationError):
            crm.companies.update(company["id"], employees=-5)
        crm.companies.update(company["id"], employees=5)
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=3)]
    assert payloads == [
        {"entity": "companies", "id": str(company["id"]), "operation": "create", "version": 1},
        {"entity": "companies", "id": str(company["id"]), "operation": "update", "version": 2},
    ]


def test_failed_transaction_rolls_back_every_part(crm, engine, acme, monkeypatch):
    """If the audit write fails, the record change is rolled back with it."""
    from crm_kernel.services import audit

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", broken)
    before = table_counts(engine)
    with pytest.raises(RuntimeError):
        crm.companies.update(acme["id"], name="Changed")
    assert table_counts(engine) == before
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT name, version FROM companies WHERE id = :id"), {"id": acme["id"]}).one()
    assert tuple(row) == ("Acme", 1)


def test_values_must_be_a_dict(crm, engine):
    before = table_counts(engine)
    with pytest.raises(ValidationError, match="values: must be a dict"):
        crm.companies.create(["Acme"])
    assert table_counts(engine) == before


def test_python_objects_in_json_fields_are_stored_as_json(crm, engine):
    import datetime as dt

    at = dt.datetime(2026, 5, 1, 9, 30, tzinfo=dt.UTC)
    company = crm.companies.create(
        name="A",
        custom_fields={
            "renewal": dt.date(2026, 5, 1),
            "at": at,
            "price": Decimal("0.10"),
            "ref": uuid.UUID(int=1),
            "tags": ("a", "b"),
            "nested": {"when": dt.date(2020, 1, 2)},
        },
    )
    assert company["custom_fields"]["renewal"] == "2026-05-01"
    assert company["custom_fields"]["at"] == "2026-05-01T09:30:00+00:00"
    assert company["custom_fields"]["tags"] == ["a", "b"]
    assert company["custom_fields"]["nested"] == {"when": "2020-01-02"}
    assert company["custom_fields"]["ref"] == "00000000-0000-0000-0000-000000000001"
    with engine.connect() as conn:  # a Decimal keeps its exact digits as a JSON number
        price = conn.execute(
            sa.text("SELECT custom_fields->'price' FROM companies WHERE id = :id"), {"id": company["id"]}
        ).scalar()
        kind = conn.execute(sa.text("SELECT jsonb_typeof(custom_fields->'price') FROM companies")).scalar()
    assert (price, kind) == (0.1, "number")


# -- declared custom fields hold values of their type -------------------------------------------

CUSTOM_VALUES = [  # type, values that fit, values that do not
    ("text", ["gold", ""], [1, True, ["a"]]),
    ("integer", [7, -(2**63), Decimal("12")], ["7", 7.5, True, 2**63]),
    ("number", [7, 7.25, Decimal("0.10")], ["7", False, {"a": 1}]),
    ("boolean", [True, False], ["true", 0, 1]),
    ("date", ["2026-05-01", "0001-01-01"], ["2026-13-01", "01/05/2026", "2026-05-01T10:00:00", 20260501]),
    (
        "timestamp",
        ["2026-05-01T09:30:00+02:00", "2026-05-01 09:30:00Z", "2026-05-01T09:30:00.123456", "2026-05-01"],
        ["yesterday", "2026-05-01T25:00:00", "0001-01-01T00:00:00+00:00", 5],
    ),
]


@pytest.mark.parametrize(("kind", "good", "bad"), CUSTOM_VALUES, ids=[c[0] for c in CUSTOM_VALUES])
def test_declared_custom_fields_are_checked_on_write(crm, engine, kind, good, bad):
    crm.custom_fields.define("companies", "extra", kind)
    company = crm.companies.create(name="A", custom_fields={"extra": None, "free": "anything"})
    for value in good:
        assert crm.companies.update(company["id"], custom_fields={"extra": value})["version"] > 1
    stored = crm.companies.get(company["id"])
    before = table_counts(engine)
    for value in bad:
        with pytest.raises(ValidationError) as info:
            crm.companies.create(name="B", custom_fields={"extra": value})
        assert list(info.value.errors) == ["custom_fields.extra"]
        assert f"declared {kind}" in info.value.errors["custom_fields.extra"]
        with pytest.raises(ValidationError, match="custom_fields.extra"):
            crm.companies.update(company["id"], custom_fields={"extra": value})
    assert table_counts(engine) == before
    assert crm.companies.get(company["id"]) == stored


def test_a_date_given_as_a_python_date_fits_a_date_field(crm):
    import datetime as dt

    crm.custom_fields.define("deals", "renewal", "date")
    crm.custom_fields.define("deals", "signed_at", "timestamp")
    company = crm.companies.create(name="A")
    deal = crm.deals.create(
        company_id=company["id"],
        title="D",
        custom_fields={"renewal": dt.date(2026, 5, 1), "signed_at": dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)},
    )
    assert deal["custom_fields"] == {"renewal": "2026-05-01", "signed_at": "2026-05-01T09:00:00+00:00"}
    with pytest.raises(ValidationError, match="custom_fields.renewal: '2026-05-01T09:00:00' is not a date"):
        crm.deals.update(deal["id"], custom_fields={"renewal": dt.datetime(2026, 5, 1, 9)})


def test_retyping_a_custom_field_is_refused_while_stored_values_do_not_fit(crm, engine):
    gold = crm.companies.create(name="Gold", custom_fields={"tier": "gold"})
    silver = crm.companies.create(name="Silver", custom_fields={"tier": "silver"})
    crm.companies.create(name="Three", custom_fields={"tier": 3})
    crm.companies.delete(silver["id"])  # deleted records can be restored: they count too
    with pytest.raises(ValidationError) as info:
        crm.custom_fields.define("companies", "tier", "integer")
    message = info.value.errors["type"]
    assert message.startswith("2 record(s) of companies hold custom_fields.tier values that are not integer")
    assert str(gold["id"]) in message and str(silver["id"]) in message and "'gold'" in message
    assert crm.custom_fields.declared("companies") == {}
    crm.companies.update(gold["id"], custom_fields={"tier": 1})
    with pytest.raises(ValidationError, match=f"1 record\\(s\\) of companies .*{silver['id']}"):
        crm.custom_fields.define("companies", "tier", "integer")
    crm.companies.restore(silver["id"])
    crm.companies.update(silver["id"], custom_fields={"tier": 2})
    assert crm.custom_fields.define("companies", "tier", "integer")["type"] == "integer"
    with pytest.raises(ValidationError) as info:
        crm.custom_fields.define("companies", "tier", "boolean")
    assert info.value.errors["type"].startswith("3 record(s)")
    assert crm.custom_fields.declared("companies") == {"tier": "integer"}


def test_restoring_a_declaration_checks_the_values_written_meanwhile(crm):
    declaration = crm.custom_fields.define("companies", "seats", "integer")
    crm.custom_fields.delete(declaration["id"])
    company = crm.companies.create(name="A", custom_fields={"seats": "many"})
    with pytest.raises(ValidationError, match=f"{company['id']}: 'many' is not a whole number"):
        crm.custom_fields.restore(declaration["id"])
    with pytest.raises(ValidationError, match="entity: unknown entity 'invoices'"):
        crm.custom_fields.create(entity="invoices", key="x", type="text")


def test_an_unchanged_reference_to_a_deleted_record_is_not_checked_again(crm, acme):
    owner = crm.users.create(email="owner@example.com", full_name="Owner")
    contact = crm.contacts.create(company_id=acme["id"], owner_id=owner["id"], first_name="Ann", last_name="Lee")
    crm.companies.delete(acme["id"])
    crm.users.delete(owner["id"])
    # A form sends every field back: the references it did not change stay as they are.
    edited = crm.contacts.update(contact["id"], company_id=acme["id"], owner_id=str(owner["id"]), job_title="CTO")
    assert (edited["company_id"], edited["owner_id"], edited["job_title"]) == (acme["id"], owner["id"], "CTO")
    other = crm.companies.create(name="Other")
    crm.companies.delete(other["id"])
    with pytest.raises(ValidationError, match="company_id: no company"):
        crm.contacts.update(contact["id"], company_id=other["id"])


def test_retyping_waits_for_a_writer_in_flight_and_then_sees_its_value(crm, engine):
    """A write checked against the old declaration cannot slip past a re-typing: the re-typing
    locks the table, waits for the writer's transaction, then finds its value."""
    import threading

    crm.custom_fields.define("companies", "tier", "text")
    outcome = {}

    def retype():
        try:
            crm.custom_fields.define("companies", "tier", "integer")
        except ValidationError as exc:
            outcome["error"] = exc

    with crm.transaction() as conn:
        company = crm.companies._insert(conn, {"name": "Gold", "custom_fields": {"tier": "gold"}})
        worker = threading.Thread(target=retype)
        worker.start()
        with engine.connect() as watcher:  # handshake: the re-typing is blocked on the table lock
            while not watcher.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE relation = 'companies'::regclass AND NOT granted"
            ).scalar():
                watcher.rollback()
                worker.join(0.05)
                assert worker.is_alive(), outcome
    worker.join()
    assert str(company["id"]) in outcome["error"].errors["type"]
    assert crm.custom_fields.declared("companies") == {"tier": "text"}


@pytest.mark.parametrize(
    ("equals", "field"),
    [
        ({"owner_id": "nope"}, "owner_id"),
        ({"name": "A\x00"}, "name"),
        ({"employees": 10**12}, "employees"),
        ({"name": object()}, "name"),
        ({"search_vector": "x"}, "search_vector"),
    ],
)
def test_list_filters_are_checked_like_the_fields_they_compare(crm, acme, equals, field):
    for call in (crm.companies.list, crm.companies.count):
        with pytest.raises(ValidationError) as info:
            call(**equals)
        assert list(info.value.errors) == [field]
    assert crm.companies.list(email="not an e-mail", owner_id=None) == []  # formats do not apply
    assert crm.companies.count(name="Acme", employees=None) == 1
