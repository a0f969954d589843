"""The record page's widgets on a real database: the form shows the record and saves edits
through the services, puts a refused value's message under its field, refuses a stale edit
while showing the current values, and the timeline shows what LogActivity logs."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest

from crm_kernel.widgets import LogActivity, RecordForm, Timeline
from crm_kernel.widgets.record_page import RecordPage, record_page, record_url


@pytest.fixture
def acme(crm):
    company = crm.companies.create(
        name="Acme", industry="Software", size="medium", employees=120, annual_revenue="5000000"
    )
    person = crm.contacts.create(company_id=company["id"], first_name="Ada", last_name="Lovelace", job_title="CTO")
    deal = crm.deals.create(
        company_id=company["id"], contact_id=person["id"], title="Acme renewal", value="1200.50", currency="EUR"
    )
    return {"company": company, "contact": person, "deal": deal}


def test_form_fields_reflect_the_record(crm, acme):
    form = RecordForm(crm, "companies", acme["company"]["id"])
    assert form.editors["name"].input.value == "Acme"
    assert form.editors["industry"].input.value == "Software"
    assert form.editors["size"].input.value == "medium"  # an enum's drop-down
    assert form.editors["employees"].input.value == "120"
    assert form.editors["domain"].value is None
    assert "$5,000,000.00" in form.editors["annual_revenue"].note.value  # money in the reporting currency

    deal = RecordForm(crm, "deals", acme["deal"]["id"])
    assert deal.editors["company_id"].value == str(acme["company"]["id"])  # the reference picker
    assert ("Acme", str(acme["company"]["id"])) in deal.editors["company_id"].input.dropdown.options
    assert deal.editors["contact_id"].value == str(acme["contact"]["id"])
    assert deal.editors["expected_close_date"].input.value is None  # a date picker
    assert "€1,200.50" in deal.editors["value"].note.value
    assert "no EUR exchange rate into USD" in deal.editors["value"].note.value
    assert deal.changes() == {}


def test_an_untouched_form_has_nothing_to_save(crm, acme):
    crm.activities.create(
        deal_id=acme["deal"]["id"],
        type="call",
        subject="Hello",
        status="completed",
        completed_at=dt.datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=dt.UTC),
    )
    form = RecordForm(crm, "deals", acme["deal"]["id"])
    assert form.record["last_activity_at"].microsecond == 123456  # shown to the second
    assert form.changes() == {}
    assert form.save() and "Nothing to save" in form.message.value
    assert crm.deals.get(acme["deal"]["id"])["version"] == acme["deal"]["version"]


def test_money_is_shown_converted_when_there_is_a_rate(crm, acme):
    crm.money.set_rate("EUR", "2020-01-01", "1.10")
    form = RecordForm(crm, "deals", acme["deal"]["id"])
    assert "€1,200.50 · $1,320.55 in USD" in form.editors["value"].note.value


def test_an_edit_persists(crm, acme):
    form = RecordForm(crm, "companies", acme["company"]["id"])
    form.editors["industry"].input.value = "Fintech"
    form.editors["employees"].input.value = "150"
    form.editors["size"].input.value = "large"
    assert form.save()
    stored = crm.companies.get(acme["company"]["id"])
    assert (stored["industry"], stored["employees"], stored["size"]) == ("Fintech", 150, "large")
    assert stored["version"] == acme["company"]["version"] + 1
    assert "Saved" in form.message.value
    assert form.record["version"] == stored["version"]  # the next save starts from here

    deal = RecordForm(crm, "deals", acme["deal"]["id"])
    deal.editors["expected_close_date"].input.value = dt.date(2026, 3, 31)
    deal.editors["contact_id"].input.value = None
    assert deal.save()
    stored = crm.deals.get(acme["deal"]["id"])
    assert stored["expected_close_date"] == dt.date(2026, 3, 31) and stored["contact_id"] is None


def test_a_validation_message_lands_on_its_field_and_nothing_is_written(crm, acme, audit_rows):
    form = RecordForm(crm, "contacts", acme["contact"]["id"])
    form.editors["email"].input.value = "not an address"
    form.editors["job_title"].input.value = "CEO"
    assert not form.save()
    assert "not an e-mail address" in form.editors["email"].error.value
    assert form.editors["job_title"].error.value == ""
    assert "Not saved" in form.message.value
    stored = crm.contacts.get(acme["contact"]["id"])
    assert stored["email"] is None and stored["job_title"] == "CTO"
    assert stored["version"] == acme["contact"]["version"]
    assert len(audit_rows(acme["contact"]["id"])) == 1  # the create only

    company = RecordForm(crm, "companies", acme["company"]["id"])
    company.editors["employees"].input.value = "-3"
    company.editors["name"].input.value = "  "
    assert not company.save()
    assert "greater than or equal to 0" in company.editors["employees"].error.value
    assert "must not be empty" in company.editors["name"].error.value
    assert crm.companies.get(acme["company"]["id"])["name"] == "Acme"


def test_a_custom_field_is_shown_and_edited_by_its_type(crm, acme):
    crm.custom_fields.define("companies", "seats", "integer", label="Seats")
    crm.custom_fields.define("companies", "renews", "date")
    crm.companies.update(acme["company"]["id"], custom_fields={"seats": 10, "other": "kept"})
    form = RecordForm(crm, "companies", acme["company"]["id"])
    assert form.editors["custom_fields.seats"].input.value == "10"
    assert form.editors["custom_fields.seats"].input.description == "Seats"
    assert form.editors["custom_fields.renews"].input.value is None  # a date picker

    form.editors["custom_fields.seats"].input.value = "many"
    assert not form.save()
    assert "not a whole number" in form.editors["custom_fields.seats"].error.value
    assert crm.companies.get(acme["company"]["id"])["custom_fields"]["seats"] == 10

    form.editors["custom_fields.seats"].input.value = "25"
    form.editors["custom_fields.renews"].input.value = dt.date(2027, 1, 1)
    assert form.save()
    assert crm.companies.get(acme["company"]["id"])["custom_fields"] == {
        "seats": 25,
        "renews": "2027-01-01",
        "other": "kept",
    }
    assert form.changes() == {}  # as stored: the date (JSON text) and the number read back the same


def test_an_unset_custom_flag_is_not_a_change(crm, acme):
    crm.custom_fields.define("companies", "partner", "boolean")
    form = RecordForm(crm, "companies", acme["company"]["id"])
    assert form.editors["custom_fields.partner"].input.value is False
    assert form.changes() == {}
    form.editors["custom_fields.partner"].input.value = True
    assert form.save()
    assert crm.companies.get(acme["company"]["id"])["custom_fields"] == {"partner": True}


def test_a_multiselect_is_edited_as_tags_limited_to_its_options(crm, acme):
    crm.custom_fields.define("companies", "channels", "multiselect", options=["web", "phone", "events"])
    form = RecordForm(crm, "companies", acme["company"]["id"])
    editor = form.editors["custom_fields.channels"]
    assert editor.input.children[1].allowed_tags == ["web", "phone", "events"]
    assert editor.value == [] and form.changes() == {}  # unset is no choice, and not a change
    editor.input.children[1].value = ["phone", "web"]
    assert form.save()
    assert crm.companies.get(acme["company"]["id"])["custom_fields"] == {"channels": ["phone", "web"]}
    assert form.changes() == {}
    editor.input.children[1].value = []
    assert form.save()
    assert crm.companies.get(acme["company"]["id"])["custom_fields"] == {}


def test_a_stale_edit_is_refused_with_the_current_values_shown(crm, acme):
    form = RecordForm(crm, "deals", acme["deal"]["id"])
    crm.deals.update(acme["deal"]["id"], title="Acme renewal 2026", priority="high")  # someone else
    form.editors["title"].input.value = "Acme renewal (mine)"
    form.editors["description"].input.value = "Call before March"
    assert not form.save()
    stored = crm.deals.get(acme["deal"]["id"])
    assert stored["title"] == "Acme renewal 2026" and stored["description"] is None
    assert "someone else changed this record" in form.message.value
    assert "Title" in form.message.value and "Priority" in form.message.value
    # The user's edits stay; the field they edited says what it holds now.
    assert form.editors["title"].input.value == "Acme renewal (mine)"
    assert "Acme renewal 2026" in form.editors["title"].note.value
    assert form.editors["description"].input.value == "Call before March"
    # A field they did not touch shows the other person's value.
    assert form.editors["priority"].input.value == "high"
    assert "Changed by someone else" in form.editors["priority"].note.value

    assert form.save()  # again: the edits apply over the current record
    stored = crm.deals.get(acme["deal"]["id"])
    assert (stored["title"], stored["description"], stored["priority"]) == (
        "Acme renewal (mine)",
        "Call before March",
        "high",
    )


def test_logging_a_call_adds_a_timeline_entry(crm, acme):
    deal_id = acme["deal"]["id"]
    timeline = Timeline(crm, "deals", deal_id, page_size=2)
    assert timeline.total == 0 and "No activities yet" in timeline.list.value
    log = LogActivity(crm, "deals", deal_id, on_logged=lambda _: timeline.refresh())
    log.buttons["call"].click()
    assert log.form.layout.display == ""
    log.subject.value = "Discovery call"
    log.notes.value = "Wants a pilot"
    log.save_button.click()
    assert "Logged call" in log.message.value
    assert timeline.total == 1
    entry = timeline.entries[0]
    assert (entry["type"], entry["subject"], entry["who"]) == ("call", "Discovery call", "System")
    assert "Discovery call" in timeline.list.value and "Wants a pilot" in timeline.list.value
    stored = crm.activities.list(deal_id=deal_id)
    assert [(a["type"], a["status"], a["company_id"], a["contact_id"]) for a in stored] == [
        ("call", "completed", acme["company"]["id"], acme["contact"]["id"])
    ]
    assert crm.deals.get(deal_id)["last_activity_at"] is not None

    assert log.submit("note", "") is None  # a subject is required
    assert "subject" in log.message.value
    log.submit("task", "Send the proposal", day=dt.date(2030, 1, 1))
    log.submit("note", "Budget approved")
    assert timeline.total == 3
    # Newest first: the task is due in 2030, the note was just written, the call before it.
    assert [e["subject"] for e in timeline.entries] == ["Send the proposal", "Budget approved"]
    timeline.next_button.click()
    assert [e["subject"] for e in timeline.entries] == ["Discovery call"]
    # The company's timeline holds the deal's activities too.
    assert Timeline(crm, "companies", acme["company"]["id"]).total == 3


def test_the_page_links_related_records(crm, acme):
    page = RecordPage(crm, "companies", acme["company"]["id"])
    html = page.related.value
    assert record_url("contacts", acme["contact"]["id"]).replace("&", "&amp;") in html
    assert record_url("deals", acme["deal"]["id"]).replace("&", "&amp;") in html
    assert "Ada Lovelace" in html and "Acme renewal" in html and "€1,200.50" in html
    assert "Acme" in page.heading.value and "$5,000,000.00" in page.heading.value

    deal = RecordPage(crm, "deals", acme["deal"]["id"])
    labels = [g.label for g in deal.related.groups]
    assert labels == ["Company", "Contact", "Stage", "Owner"]
    assert record_url("companies", acme["company"]["id"]).replace("&", "&amp;") in deal.related.value
    contact = RecordPage(crm, "contacts", acme["contact"]["id"])
    assert [g.label for g in contact.related.groups] == ["Company", "Deals", "Owner"]
    assert contact.log_activity is not None and contact.timeline is not None


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({}, "No record named"),
        ({"entity": "planets", "id": "x"}, "Unknown kind of record 'planets'"),
        ({"entity": "companies"}, "needs &id="),
        ({"entity": "companies", "id": "not-a-uuid"}, "is not a record id"),
        ({"entity": "deals", "id": "00000000-0000-0000-0000-0000000000ff"}, "Not found: no deal with id"),
    ],
)
def test_a_wrong_address_says_what_is_wrong(crm, query, says):
    shown = record_page(crm, query)
    assert "crm-record-missing" in shown._dom_classes
    assert says in unescape(shown.value)


def test_record_url():
    assert record_url("deals", "abc") == "record.ipynb?entity=deals&id=abc"


def test_the_result_grid_opens_the_selected_rows_record(crm, acme):
    from crm_kernel.widgets import ResultGrid

    grid = ResultGrid(crm)
    grid.show({"entity": "deals", "select": ["id", "title", "value"]})
    assert grid.open_link.value == ""
    grid.datagrid.selections = [{"r1": 0, "r2": 0, "c1": 1, "c2": 1}]
    assert grid.selected_record() == ("deals", str(acme["deal"]["id"]))
    assert record_url("deals", acme["deal"]["id"]).replace("&", "&amp;") in grid.open_link.value
    assert "Open deal “Acme renewal”" in grid.open_link.value
    grid.show({"entity": "deals", "select": ["title"]})  # no ids shown: nothing to open
    grid.datagrid.selections = [{"r1": 0, "r2": 0, "c1": 0, "c2": 0}]
    assert grid.selected_record() is None and grid.open_link.value == ""


def test_the_board_links_each_card_to_its_deal_page(crm, acme):
    from crm_kernel.widgets import PipelineBoard

    board = PipelineBoard(crm, live=False)
    try:
        assert board.options["record_app"] == "record.ipynb"
        js = board._esm if isinstance(board._esm, str) else board._esm.read_text()
        assert "pb-card-open" in js and 'recordUrl((model.get("options") || {}).record_app, "deals", card.id)' in js
    finally:
        board.close()


def test_tags_are_edited_as_tags(crm, acme):
    crm.companies.update(acme["company"]["id"], {"tags": ["vip"]})
    form = RecordForm(crm, "companies", acme["company"]["id"])
    assert form.editors["tags"].value == ["vip"] and form.changes() == {}
    form.editors["tags"].input.children[1].value = ["vip", "partner", "VIP"]
    assert form.changes() == {"tags": ["vip", "partner", "VIP"]}
    assert form.save()
    assert crm.companies.get(acme["company"]["id"])["tags"] == ["vip", "partner"]  # kept once, case aside
