"""The pipeline: deals follow their stage's rules; moves are atomic, audited and announced."""

import datetime as dt
import threading
from decimal import Decimal

import pytest

from crm_kernel import CRM, ConflictError, ValidationError


@pytest.fixture
def deal(crm):
    company = crm.companies.create(name="Acme")
    contact = crm.contacts.create(company_id=company["id"], first_name="Ann", last_name="Lee")
    return crm.deals.create(company_id=company["id"], contact_id=contact["id"], title="Acme renewal", value=1000)


def stage_id(crm, name):
    return crm.stages.resolve(name)["id"]


def test_new_deal_starts_in_the_first_stage_with_its_probability(crm, deal):
    assert deal["stage_id"] == stage_id(crm, "Lead")
    assert deal["probability"] == Decimal("0.1")
    assert deal["weighted_value"] == Decimal("100.00")
    assert deal["currency"] == "USD"


def test_create_in_a_stage_checks_its_required_fields(crm, deal):
    with pytest.raises(ValidationError, match="close_reason: is required in stage Lost"):
        crm.deals.create(company_id=deal["company_id"], title="Lost cause", stage_id=stage_id(crm, "Lost"))
    won = crm.deals.create(company_id=deal["company_id"], title="Quick win", value=5, stage_id=stage_id(crm, "Won"))
    assert won["actual_close_date"] is not None


def test_currency_is_iso_4217_and_normalised(crm, deal):
    assert crm.deals.update(deal["id"], currency="eur")["currency"] == "EUR"
    with pytest.raises(ValidationError, match="currency"):
        crm.deals.update(deal["id"], currency="EURO")
    with pytest.raises(ValidationError, match="currency"):
        crm.deals.update(deal["id"], currency="ABC")


def test_value_and_probability_bounds(crm, deal):
    with pytest.raises(ValidationError, match="value"):
        crm.deals.update(deal["id"], value=-1)
    with pytest.raises(ValidationError, match="probability"):
        crm.deals.update(deal["id"], probability=1.01)
    with pytest.raises(ValidationError, match="value"):
        crm.deals.update(deal["id"], value="1e12")  # numeric(12,2) holds < 10^10


@pytest.mark.parametrize("by", ["name", "lower", "id", "text id"])
def test_move_by_stage_name_or_id(crm, deal, by):
    target = crm.stages.resolve("Qualified")
    stage = {"name": "Qualified", "lower": "qualified", "id": target["id"], "text id": str(target["id"])}[by]
    moved = crm.deals.move(deal["id"], stage)
    assert moved["stage_id"] == target["id"]
    assert moved["probability"] == target["probability"]
    assert moved["version"] == deal["version"] + 1


def test_move_writes_activity_audit_and_timestamps_in_one_go(crm, deal, audit_rows):
    moved = crm.deals.move(str(deal["id"]), "Qualified", expected_version=1)
    assert moved["last_activity_at"] is not None
    activities = crm.activities.list(deal_id=deal["id"])
    assert len(activities) == 1
    activity = activities[0]
    assert activity["type"] == "stage_change"
    assert activity["subject"] == "Stage: Lead \u2192 Qualified"
    assert activity["company_id"] == deal["company_id"] and activity["contact_id"] == deal["contact_id"]
    assert activity["external_data"] == {"from_stage_id": str(deal["stage_id"]), "to_stage_id": str(moved["stage_id"])}
    move = audit_rows(deal["id"], "move")
    assert len(move) == 1
    assert move[0]["before"]["stage_id"] == str(deal["stage_id"])
    assert move[0]["after"]["stage_id"] == str(moved["stage_id"])


def test_a_deal_enters_its_stage_on_create_and_on_real_moves_only(crm, deal):
    assert deal["stage_entered_at"] == deal["created_at"]
    edited = crm.deals.update(deal["id"], title="Acme renewal 2026")
    assert edited["stage_entered_at"] == deal["stage_entered_at"]
    moved = crm.deals.move(deal["id"], "Qualified")
    assert moved["stage_entered_at"] > deal["stage_entered_at"]
    again = crm.deals.move(deal["id"], "Qualified", changes={"value": 2000})
    assert again["stage_entered_at"] == moved["stage_entered_at"]


def test_move_to_won_sets_close_date_and_reopen_clears_it(crm, deal):
    won = crm.deals.move(deal["id"], "Won")
    assert won["actual_close_date"] == dt.date.today() or abs((won["actual_close_date"] - dt.date.today()).days) <= 1
    assert won["probability"] == 1 and won["weighted_value"] == won["value"]
    reopened = crm.deals.move(deal["id"], "Negotiation", changes={"expected_close_date": "2030-01-31"})
    assert reopened["actual_close_date"] is None
    assert reopened["expected_close_date"] == dt.date(2030, 1, 31)


def test_move_requires_the_stages_fields_and_takes_them_in_the_same_call(crm, deal, audit_rows):
    with pytest.raises(ValidationError) as info:
        crm.deals.move(deal["id"], "Lost")
    assert info.value.errors == {"close_reason": "is required in stage Lost"}
    assert crm.deals.get(deal["id"])["version"] == 1
    assert crm.activities.count() == 0
    lost = crm.deals.move(deal["id"], "Lost", changes={"close_reason": "Went with a competitor", "probability": 0})
    assert lost["close_reason"] == "Went with a competitor"
    assert len(audit_rows(deal["id"], "move")) == 1


def test_move_checks_required_fields_against_the_deal_as_it_will_be(crm, deal):
    with pytest.raises(ValidationError, match="value: is required in stage Proposal"):
        crm.deals.move(deal["id"], "Proposal", changes={"value": None})
    assert crm.deals.get(deal["id"])["value"] == Decimal("1000.00")


def test_move_to_an_unknown_stage_names_the_stages(crm, deal):
    with pytest.raises(ValidationError, match="unknown stage 'Closing'.*Lead, Qualified"):
        crm.deals.move(deal["id"], "Closing")


def test_move_to_an_inactive_stage_is_refused(crm, deal):
    crm.stages.create(name="Parked", position=7, is_active=False)
    with pytest.raises(ValidationError, match="unknown stage"):
        crm.deals.move(deal["id"], "Parked")


def test_stale_move_is_a_conflict(crm, deal):
    crm.deals.move(deal["id"], "Qualified", expected_version=1)
    with pytest.raises(ConflictError) as info:
        crm.deals.move(deal["id"], "Proposal", expected_version=1)
    assert info.value.current["stage_id"] == stage_id(crm, "Qualified")


def test_update_with_a_stage_is_a_move(crm, deal, audit_rows):
    moved = crm.deals.update(deal["id"], stage_id=stage_id(crm, "Qualified"), title="Renamed")
    assert moved["title"] == "Renamed"
    assert crm.activities.count(type="stage_change") == 1
    assert len(audit_rows(deal["id"], "move")) == 1


def test_moving_to_the_current_stage_changes_nothing(crm, deal, audit_rows):
    assert crm.deals.move(deal["id"], "Lead")["version"] == 1
    assert len(audit_rows(deal["id"])) == 1


def run_together(n, fn):
    """Run fn(i) in n threads released at once; returns (results, errors)."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i):
        barrier.wait()
        try:
            results.append(fn(i))
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_concurrent_moves_with_the_same_version_have_exactly_one_winner(crm, engine, deal, audit_rows):
    stages = ["Qualified", "Proposal", "Negotiation", "Won"]
    boards = [CRM(engine) for _ in range(8)]
    changes = {"expected_close_date": "2031-01-01"}
    results, errors = run_together(
        8, lambda i: boards[i].deals.move(deal["id"], stages[i % 4], expected_version=1, changes=changes)
    )
    assert len(results) == 1
    assert len(errors) == 7 and all(isinstance(e, ConflictError) for e in errors)
    final = crm.deals.get(deal["id"])
    assert final["version"] == 2 and final["stage_id"] == results[0]["stage_id"]
    assert len(audit_rows(deal["id"], "move")) == 1
    assert crm.activities.count(deal_id=deal["id"]) == 1


def test_concurrent_unversioned_moves_serialise_without_lost_updates(crm, deal, audit_rows):
    stages = ["Qualified", "Proposal", "Won", "Lead"] * 2
    results, errors = run_together(8, lambda i: crm.deals.move(deal["id"], stages[i]))
    assert errors == [] and len(results) == 8
    moves = audit_rows(deal["id"], "move")
    assert moves, "at least the first move changes the stage"
    # Each move starts from the version the previous one wrote: none was lost.
    assert [m["before"]["version"] for m in moves] == list(range(1, len(moves) + 1))
    assert [m["after"]["version"] for m in moves] == list(range(2, len(moves) + 2))
    assert crm.deals.get(deal["id"])["version"] == 1 + len(moves)
    assert crm.activities.count(deal_id=deal["id"]) == len(moves)


def test_a_completed_activity_on_a_deal_marks_it_active(crm, deal):
    import datetime as dt

    crm.activities.create(deal_id=deal["id"], type="task", subject="Later", status="pending")
    assert crm.deals.get(deal["id"])["last_activity_at"] is None
    call = crm.activities.create(
        deal_id=deal["id"], type="call", subject="Check-in", status="completed", completed_at="2026-01-10T10:00:00Z"
    )
    touched = crm.deals.get(deal["id"])
    assert touched["last_activity_at"] == call["completed_at"]
    assert touched["version"] == deal["version"]  # bookkeeping, not an edit: no conflict for open forms
    crm.activities.create(
        deal_id=deal["id"], type="note", subject="Older", status="completed", completed_at="2025-01-01T00:00:00Z"
    )
    assert crm.deals.get(deal["id"])["last_activity_at"] == dt.datetime(2026, 1, 10, 10, tzinfo=dt.UTC)


# -- a deal whose company or contact was soft-deleted keeps working -------------------------------


@pytest.mark.parametrize("gone", ["companies", "contacts", "both"])
def test_a_deal_of_a_deleted_company_or_contact_can_still_move(crm, deal, gone):
    if gone in ("companies", "both"):
        crm.companies.delete(deal["company_id"])
    if gone in ("contacts", "both"):
        crm.contacts.delete(deal["contact_id"])
    moved = crm.deals.move(deal["id"], "Qualified")
    assert moved["stage_id"] == stage_id(crm, "Qualified")
    assert (moved["company_id"], moved["contact_id"]) == (deal["company_id"], deal["contact_id"])
    [activity] = crm.activities.list(deal_id=deal["id"])
    assert activity["type"] == "stage_change"
    assert (activity["company_id"], activity["contact_id"]) == (deal["company_id"], deal["contact_id"])


def test_an_activity_on_a_deal_may_name_the_deals_own_deleted_company_and_contact(crm, deal):
    crm.companies.delete(deal["company_id"])
    crm.contacts.delete(deal["contact_id"])
    call = crm.activities.create(
        deal_id=deal["id"],
        company_id=deal["company_id"],
        contact_id=deal["contact_id"],
        type="call",
        subject="Still talking",
        status="completed",
    )
    assert call["company_id"] == deal["company_id"]
    # A reference the caller chooses, not the deal's own, is still checked.
    other = crm.companies.create(name="Other")
    crm.companies.delete(other["id"])
    with pytest.raises(ValidationError) as info:
        crm.activities.create(deal_id=deal["id"], company_id=other["id"], type="call", subject="x")
    assert info.value.errors == {"company_id": f"no company with id {other['id']}"}
    with pytest.raises(ValidationError, match="company_id: no company"):
        crm.deals.update(deal["id"], company_id=other["id"])
    assert crm.activities.count() == 1


def test_the_stage_change_is_logged_through_the_public_method(crm, deal):
    with crm.transaction() as conn:
        note = crm.activities.log(conn, {"deal_id": deal["id"], "type": "note", "subject": "n", "status": "completed"})
    assert crm.activities.get(note["id"])["subject"] == "n"
    assert crm.deals.get(deal["id"])["last_activity_at"] == note["created_at"]


# -- a stage's required fields hold on every write, not only on a move -----------------------------


@pytest.mark.parametrize(
    ("stage", "changes", "field"),
    [
        ("Lost", {"close_reason": None}, "close_reason"),
        ("Lost", {"close_reason": ""}, "close_reason"),
        ("Won", {"value": None}, "value"),
    ],
)
def test_update_cannot_empty_a_field_the_stage_requires(crm, deal, audit_rows, stage, changes, field):
    closed = crm.deals.move(deal["id"], stage, changes={"close_reason": "Chose a rival"})
    audited = len(audit_rows())
    with pytest.raises(ValidationError) as info:
        crm.deals.update(deal["id"], changes)
    assert info.value.errors == {field: f"is required in stage {stage}"}
    assert crm.deals.get(deal["id"]) == closed
    assert len(audit_rows()) == audited
    with pytest.raises(ValidationError, match=f"{field}: is required in stage {stage}"):
        crm.deals.move(deal["id"], stage, changes=changes)  # the same stage: an edit in place


def test_update_need_not_fill_a_required_field_that_was_already_empty(crm, deal, engine):
    import sqlalchemy as sa

    lost = crm.deals.move(deal["id"], "Lost", changes={"close_reason": "x"})
    with engine.begin() as conn:  # a deal from before the rule: its stage's field is empty
        conn.execute(sa.text("UPDATE deals SET close_reason = NULL WHERE id = :id"), {"id": lost["id"]})
    assert crm.deals.update(deal["id"], title="Renamed")["title"] == "Renamed"
