"""crm.importer: files made here, nasty on purpose, imported into a real PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt

import polars as pl
import pytest
import sqlalchemy as sa

from crm_kernel.errors import ImportRefusedError


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def counts(crm) -> dict:
    with crm.engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("companies", "contacts", "deals", "users", "products", "audit_log")
        }


# -- reading ------------------------------------------------------------------------------------


def test_semicolons_bom_and_quoted_newlines(crm, tmp_path):
    f = write(
        tmp_path / "c.csv",
        "\ufeffFirst Name;Last Name;E-mail Address;Notes\n"
        'Ann;Lee;ann@x.com;"two\nlines; and a semicolon"\nBo;Kim;bo@x.com;plain\n',
    )
    report = crm.importer.run("contacts", f, mapping={"unmapped": "custom_fields"})
    assert report.created == 2 and report.written
    ann = crm.contacts.list(email="ann@x.com")[0]
    assert ann["first_name"] == "Ann" and ann["custom_fields"]["notes"] == "two\nlines; and a semicolon"


def test_legacy_encoding_is_detected_and_can_be_named(crm, tmp_path):
    f = write(
        tmp_path / "c.csv", "first_name,last_name,email\nJosé,Müller,jose@x.com\nRenée,Ça,renee@x.com\n", "cp1252"
    )
    report = crm.importer.preview("contacts", f)
    assert report.encoding == "cp1252" and report.created == 2
    crm.importer.run("contacts", f, encoding="cp1252")
    assert {c["last_name"] for c in crm.contacts.list()} == {"Müller", "Ça"}


def test_wrong_encoding_named_is_a_clear_error(crm, tmp_path):
    f = write(tmp_path / "c.csv", "first_name,last_name\nJosé,Müller\n", "cp1252")
    with pytest.raises(ImportRefusedError, match="not valid utf-8.*--encoding"):
        crm.importer.preview("contacts", f, encoding="utf-8")


def test_excel(crm, tmp_path):
    path = tmp_path / "companies.xlsx"
    pl.DataFrame(
        {"Company Name": ["Acme", "Globex"], "Website": ["acme.com", "globex.com"], "Employees": [10, 20]}
    ).write_excel(path)
    report = crm.importer.run("companies", path)
    assert report.created == 2
    assert sorted(c["employees"] for c in crm.companies.list()) == [10, 20]


# -- mapping and validation ---------------------------------------------------------------------


def test_missing_required_columns_are_named(crm, tmp_path):
    f = write(tmp_path / "c.csv", "Surname,Phone\nLee,1\n")
    with pytest.raises(ImportRefusedError, match="required field.*first_name"):
        crm.importer.preview("contacts", f)


def test_bad_rows_are_reported_with_line_column_value_and_reason(crm, tmp_path):
    f = write(
        tmp_path / "c.csv",
        'first_name,last_name,email,lead_score\nAnn,Lee,ann@x.com,5\n"Bo\nB",Kim,not-an-email,7\nCy,,cy@x.com,101\n',
    )
    before = counts(crm)
    with pytest.raises(ImportRefusedError) as refused:
        crm.importer.run("contacts", f, errors=tmp_path / "errors.csv")
    assert counts(crm) == before
    errors = refused.value.report.errors
    assert errors.select("line", "column", "value").rows() == [
        (3, "email", "not-an-email"),
        (5, "last_name", None),
        (5, "lead_score", "101"),
    ]
    assert "e-mail" in errors["reason"][0] and errors["reason"][1] == "is required"
    with open(tmp_path / "errors.csv") as fh:
        assert list(csv.reader(fh))[0] == ["line", "column", "value", "reason"]


def test_negative_values_and_unknown_stages_and_owners(crm, tmp_path):
    crm.users.create(email="rep@x.com", full_name="Rita Rep")
    f = write(
        tmp_path / "d.csv",
        "Deal Name,Amount,Deal Stage,Owner\nA,-5,Lead,rep@x.com\nB,10,Nowhere,Rita Rep\n"
        "C,10,Lead,ghost@x.com\nD,12.5,qualified,rita rep\n",
    )
    report = crm.importer.preview("deals", f)
    assert report.refused == 3 and report.created == 1
    reasons = {(r["line"], r["column"]): r["reason"] for r in report.errors.iter_rows(named=True)}
    assert reasons[(2, "Amount")] == "must be greater than or equal to 0"
    assert reasons[(3, "Deal Stage")].startswith("unknown stage")
    assert reasons[(4, "Owner")].startswith("unknown user")


def test_skip_invalid_writes_exactly_the_valid_rows(crm, tmp_path, audit_rows):
    f = write(tmp_path / "c.csv", "first_name,last_name,email\nAnn,Lee,ann@x.com\nBo,Kim,bad\nCy,Do,cy@x.com\n")
    report = crm.importer.run("contacts", f, skip_invalid=True)
    assert (report.created, report.refused) == (2, 1)
    assert sorted(c["email"] for c in crm.contacts.list()) == ["ann@x.com", "cy@x.com"]
    rows = audit_rows(operation="create")
    assert len(rows) == 2 and all(r["imported"] for r in rows)
    assert {r["after"]["email"] for r in rows} == {"ann@x.com", "cy@x.com"}


def test_value_renames_templates_and_multiply(crm, tmp_path):
    f = write(tmp_path / "a.csv", "account,sector,revenue\nAcme,technolgy,1100.04\n")
    crm.importer.run(
        "companies",
        f,
        mapping={"values": {"industry": {"technolgy": "technology"}}, "multiply": {"annual_revenue": 1000000}},
    )
    acme = crm.companies.list()[0]
    assert acme["industry"] == "technology" and str(acme["annual_revenue"]) == "1100040000.00"


# -- duplicates ---------------------------------------------------------------------------------


def test_duplicates_within_the_file_and_against_the_database(crm, tmp_path):
    old_id = crm.contacts.create(first_name="Old", last_name="Timer", email="old@x.com")["id"]
    f = write(
        tmp_path / "c.csv", "first_name,last_name,email\nAnn,Lee,ann@x.com\nAnn,Again,ANN@x.com \nNew,Name,Old@X.com\n"
    )
    skip = crm.importer.preview("contacts", f)
    assert (skip.created, skip.skipped) == (1, 2)
    assert skip.duplicates["matches"].to_list()[0] == "line 2"
    create = crm.importer.preview("contacts", f, on_duplicate="create")
    assert create.refused == 2
    crm.importer.run("contacts", f, on_duplicate="update")
    old = crm.contacts.get(old_id)
    assert (old["first_name"], old["last_name"], old["version"]) == ("New", "Name", 2)
    assert crm.contacts.count() == 2


def test_near_duplicate_companies_are_suspected(crm, tmp_path):
    crm.companies.create(name="ACME Corporation")
    f = write(tmp_path / "a.csv", "Company Name\nAcme Corp\nGlobex Inc\nGlobex Incorporated\n")
    report = crm.importer.preview("companies", f)
    pairs = {(r["name"], r["similar_to"]) for r in report.suspected.iter_rows(named=True)}
    assert ("Acme Corp", "ACME Corporation") in pairs
    assert ("Globex Incorporated", "Globex Inc") in pairs
    assert report.created == 3  # suspected, not acted on
    assert crm.companies.count() == 1  # a preview writes nothing


def test_dry_run_writes_nothing(crm, tmp_path):
    f = write(tmp_path / "c.csv", "first_name,last_name,email\nAnn,Lee,ann@x.com\n")
    before = counts(crm)
    report = crm.importer.run("contacts", f, dry_run=True)
    assert report.created == 1 and not report.written and counts(crm) == before


# -- relations, deals and their own dates -------------------------------------------------------


def test_deals_by_natural_keys_keep_their_dates(crm, tmp_path):
    crm.users.create(email="rep@x.com", full_name="Rita Rep")
    acme = crm.companies.create(name="Acme", domain="acme.com")
    f = write(
        tmp_path / "d.csv",
        "title,company,owner,stage,value,created,close date,product\n"
        "Big,acme.com,Rita Rep,Won,100,2020-01-05,2020-03-01,Widget\n"
        "Open,,rep@x.com,Qualified,,2020-02-01,,\n",
    )
    report = crm.importer.run("deals", f, mapping={"create_missing": ["product"]})
    assert report.created == 2 and report.new_related == {"products": 1}
    won = crm.deals.list(title="Big")[0]
    assert won["company_id"] == acme["id"] and won["created_at"].date() == dt.date(2020, 1, 5)
    assert won["stage_entered_at"].date() == dt.date(2020, 3, 1) and won["actual_close_date"] == dt.date(2020, 3, 1)
    assert crm.products.get(won["product_id"])["name"] == "Widget"
    open_deal = crm.deals.list(title="Open")[0]
    assert open_deal["company_id"] is None and str(open_deal["probability"]) == "0.2500"
    with crm.engine.connect() as conn:
        trail = conn.execute(
            sa.text("SELECT operation, at::date, after->>'stage_id' FROM audit_log WHERE entity_id = :id ORDER BY id"),
            {"id": won["id"]},
        ).all()
    lead = crm.stages.resolve("Lead")["id"]
    assert [tuple(r) for r in trail] == [
        ("create", dt.date(2020, 1, 5), str(lead)),
        ("move", dt.date(2020, 3, 1), str(won["stage_id"])),
    ]


def test_history_sees_imported_deals_as_of_their_dates(crm, tmp_path):
    f = write(tmp_path / "d.csv", "title,stage,value,created,close date\nBig,Won,100,2020-01-05,2020-03-01\n")
    crm.importer.run("deals", f)
    from crm_kernel.analytics.history import History, Source

    stages = {s["id"]: s["name"] for s in crm.stages.list()}
    with Source(crm, "postgres") as source:
        history = History(source)
        before_close = history.states(as_of=dt.date(2020, 2, 1))
        after_close = history.states(as_of=dt.date(2020, 4, 1))
        assert history.states(as_of=dt.date(2019, 12, 1)).height == 0
    assert [stages[_id(s)] for s in before_close["stage_id"]] == ["Lead"]
    assert [stages[_id(s)] for s in after_close["stage_id"]] == ["Won"]


def _id(text):
    import uuid

    return uuid.UUID(text)


def test_stage_required_fields_and_fill(crm, tmp_path):
    f = write(tmp_path / "d.csv", "title,stage\nGone,Lost\n")
    assert crm.importer.preview("deals", f).errors["reason"].to_list() == ["is required in stage Lost"]
    report = crm.importer.run("deals", f, mapping={"fill_required": {"close_reason": "Not recorded"}})
    assert report.created == 1 and crm.deals.list()[0]["close_reason"] == "Not recorded"


def test_unknown_company_can_be_created(crm, tmp_path):
    f = write(tmp_path / "c.csv", "first_name,last_name,company\nAnn,Lee,Initech\nBo,Kim,initech\n")
    assert crm.importer.preview("contacts", f).refused == 2
    report = crm.importer.run("contacts", f, mapping={"create_missing": ["company"]})
    assert report.created == 2 and crm.companies.count() == 1
    company = crm.companies.list()[0]
    assert {c["company_id"] for c in crm.contacts.list()} == {company["id"]}


def test_large_file_with_one_bad_row_at_the_end_writes_nothing(crm, tmp_path, audit_rows):
    n = 100_000
    frame = pl.DataFrame(
        {
            "first_name": ["F"] * n,
            "last_name": [f"L{i}" for i in range(n)],
            "email": [f"p{i}@example.com" for i in range(n)],
        }
    )
    frame = frame.with_columns(
        pl.when(pl.int_range(n) == n - 1).then(pl.lit("broken")).otherwise(pl.col("email")).alias("email")
    )
    path = tmp_path / "big.csv"
    frame.write_csv(path)
    before = counts(crm)
    with pytest.raises(ImportRefusedError) as refused:
        crm.importer.run("contacts", path)
    assert counts(crm) == before and audit_rows() == []
    assert refused.value.report.errors.select("line", "value").rows() == [(n + 1, "broken")]
    report = crm.importer.run("contacts", path, skip_invalid=True)
    assert report.created == n - 1 and crm.contacts.count() == n - 1
    with crm.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE imported")).scalar_one() == n - 1


def test_users_and_products(crm, tmp_path):
    f = write(tmp_path / "u.csv", "name,e-mail,role\nAnn Lee,ann@x.com,Manager\n")
    crm.importer.run("users", f)
    assert crm.users.list(email="ann@x.com")[0]["role"] == "manager"
    p = write(tmp_path / "p.csv", "product,series,sales_price\nGTX Pro,GTX,4821\n")
    crm.importer.run("products", p)
    assert str(crm.products.list()[0]["list_price"]) == "4821.00"


def test_activities(crm, tmp_path):
    crm.contacts.create(first_name="Ann", last_name="Lee", email="ann@x.com")
    f = write(
        tmp_path / "a.csv",
        "type,subject,contact,scheduled\ncall,Intro,ann@x.com,2024-05-01 09:30\n"
        "Meeting,Demo,ann@x.com,2024-05-02T10:00:00+02:00\n",
    )
    assert crm.importer.run("activities", f).created == 2
    demo = crm.activities.list(subject="Demo")[0]
    assert demo["scheduled_at"] == dt.datetime(2024, 5, 2, 8, 0, tzinfo=dt.UTC)


def test_deals_create_takes_a_stage_name(crm):
    deal = crm.deals.create(title="By name", stage_id="qualified")
    assert deal["stage_id"] == crm.stages.resolve("Qualified")["id"]


def test_declared_custom_fields_are_checked_and_typed(crm, tmp_path):
    crm.custom_fields.define("companies", "seats", "integer")
    f = write(tmp_path / "a.csv", "name,seats,motto\nAcme,12,Go\nGlobex,many,Up\n")
    report = crm.importer.preview("companies", f, mapping={"unmapped": "custom_fields"})
    assert report.errors.select("line", "column", "value").rows() == [(3, "seats", "many")]
    crm.importer.run("companies", f, mapping={"unmapped": "custom_fields"}, skip_invalid=True)
    assert crm.companies.list()[0]["custom_fields"] == {"seats": 12, "motto": "Go"}


def test_a_multiselect_imports_as_a_list_of_its_options(crm, tmp_path):
    crm.custom_fields.define("companies", "channels", "multiselect", options=["web", "phone", "events"])
    f = write(
        tmp_path / "m.csv", 'name,channels\nAcme,web; phone\nGlobex,"events, web, web"\nInitech,web; fax\nHooli,\n'
    )
    report = crm.importer.preview("companies", f, mapping={"unmapped": "custom_fields"})
    assert report.errors.select("line", "column", "value").rows() == [(4, "channels", "web; fax")]
    assert "'fax' is not one of the options" in report.errors["reason"][0]
    crm.importer.run("companies", f, mapping={"unmapped": "custom_fields"}, skip_invalid=True)
    stored = {c["name"]: c["custom_fields"] for c in crm.companies.list()}
    assert stored == {
        "Acme": {"channels": ["web", "phone"]},
        "Globex": {"channels": ["events", "web"]},
        "Hooli": {"channels": None},
    }


def test_deals_without_a_company_work_on_the_board_snapshot_and_analytics(crm, tmp_path):
    from crm_kernel import snapshot
    from crm_kernel.board.pipeline import Pipeline

    f = write(
        tmp_path / "d.csv",
        "title,stage,value,created,close date\nLoose,Won,100,2024-01-05,2024-03-01\nOpen,Qualified,50,2024-02-01,\n",
    )
    crm.importer.run("deals", f)
    crm.deals.create(title="Made here", value=10)  # no company through the service too
    board = Pipeline(crm)
    qualified = crm.stages.resolve("Qualified")["id"]
    assert [c["title"] for c in board.cards(str(qualified))] == ["Open"]
    spec = {
        "entity": "deals",
        "select": ["title", "company.name", "product.name"],
        "order_by": [{"field": "title", "dir": "asc"}],
    }
    on_postgres = crm.query(spec)
    folder = crm.snapshot(tmp_path / "snaps")
    with snapshot.open(folder) as snap:
        on_duckdb = crm.query(spec, backend="duckdb", snapshot=snap)
    assert (
        on_postgres.rows()
        == on_duckdb.rows()
        == [("Loose", None, None), ("Made here", None, None), ("Open", None, None)]
    )
    assert crm.analytics.win_rate(by="industry", start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 31)).height >= 1
    assert crm.analytics.pipeline(by="stage").height >= 1


def test_products_service(crm):
    from crm_kernel.errors import ValidationError

    gtx = crm.products.create(name="GTX Pro", family="GTX", list_price="4821", currency="eur")
    assert (gtx["currency"], str(gtx["list_price"])) == ("EUR", "4821.00")
    with pytest.raises(ValidationError):
        crm.products.create(name="gtx pro")
    deal = crm.deals.create(title="With a product", product_id=gtx["id"])
    assert crm.query({"entity": "deals", "select": ["product.family"]}).rows() == [("GTX",)]
    assert deal["company_id"] is None


def test_excel_dates_and_whole_numbers(crm, tmp_path):
    path = tmp_path / "deals.xlsx"
    pl.DataFrame(
        {
            "Deal Name": ["A"],
            "Close Value": [1200.0],
            "Expected Close Date": [dt.date(2025, 6, 30)],
            "Stage": ["Proposal"],
        }
    ).write_excel(path)
    report = crm.importer.run("deals", path)
    assert report.created == 1, str(report)
    deal = crm.deals.list()[0]
    assert (str(deal["value"]), deal["expected_close_date"]) == ("1200.00", dt.date(2025, 6, 30))


def test_money_with_signs_and_separators(crm, tmp_path):
    f = write(tmp_path / "d.csv", 'title,value,employees\nA,"$1,200.50",x\n')
    crm.importer.run("deals", f, mapping={"columns": {"employees": None}})
    assert str(crm.deals.list()[0]["value"]) == "1200.50"
