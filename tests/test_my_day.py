"""My day's figures, each against SQL written here: one rep's deals in three currencies (one
without a rate), another rep's deals and a deleted deal that must not count; tasks, deals that
need attention, recent activity, and completing a task."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.analytics import my_day
from crm_kernel.errors import ValidationError

from .helpers import as_user

TODAY = dt.date(2026, 5, 20)
DAY = dt.timedelta(days=1)

# A deal's value in the reporting currency, as the KPIs must convert it: at the rate of its
# close date when closed, else the latest; no rate, no value.
CONVERTED = """
    round(d.value * (SELECT r.rate FROM exchange_rates r WHERE r.currency = d.currency
                     AND r.rate_date <= coalesce(d.actual_close_date, DATE '9999-12-31')
                     ORDER BY r.rate_date DESC LIMIT 1), 2)
"""
DEALS = f"""
    SELECT d.*, s.is_closed_won AS won, s.is_closed_lost AS lost, {CONVERTED} AS converted
    FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
    WHERE d.deleted_at IS NULL AND d.owner_id = :owner
"""


def sql_one(crm, query: str, **params):
    with crm.engine.connect() as conn:
        return conn.execute(sa.text(f"WITH d AS ({DEALS}) {query}"), params).scalar()


@pytest.fixture
def team(crm):
    """Rates for EUR (two dates) and GBP, none for NOK; Ann's deals in every state, Bob's and a
    deleted one of Ann's that must not count."""
    crm.money.set_rate("EUR", "2026-01-01", "1.10")
    crm.money.set_rate("EUR", TODAY - 10 * DAY, "1.20")
    crm.money.set_rate("GBP", "2026-01-01", "1.25")
    ann = crm.users.create(email="ann@example.com", full_name="Ann Rep", role="rep")
    bob = crm.users.create(email="bob@example.com", full_name="Bob Rep", role="rep")
    acme = crm.companies.create(name="Acme")

    def deal(owner, title, value, currency="USD", stage="Lead", closed_on=None, close=None, **extra):
        d = crm.deals.create(
            company_id=acme["id"],
            owner_id=owner["id"],
            title=title,
            value=value,
            currency=currency,
            expected_close_date=close,
            **extra,
        )
        if stage != "Lead":
            changes = {"close_reason": "Price"} if stage == "Lost" else {}
            if closed_on:
                changes["actual_close_date"] = closed_on
            d = crm.deals.move(d["id"], stage, changes=changes)
        return d

    month = TODAY.replace(day=1)
    last_month = (month - DAY).replace(day=1)
    for owner in (ann, bob):
        deal(owner, "open usd", "1000.00", close=TODAY + 3 * DAY)
        deal(owner, "open eur", "2000.00", "EUR", "Proposal", close=TODAY - 2 * DAY)
        deal(owner, "open nok", "5000.00", "NOK", "Qualified", close=month)
        deal(owner, "open gbp", "300.00", "GBP", "Negotiation", close=TODAY + 60 * DAY)
        deal(owner, "won now usd", "700.00", stage="Won", closed_on=TODAY - DAY)
        deal(owner, "won now eur", "100.00", "EUR", "Won", closed_on=month)  # at the older EUR rate
        deal(owner, "won now nok", "50.00", "NOK", "Won", closed_on=month)
        deal(owner, "won last month", "400.00", stage="Won", closed_on=last_month + 3 * DAY)
        deal(owner, "won long ago", "9000.00", stage="Won", closed_on=TODAY - 200 * DAY)
        deal(owner, "lost", "800.00", stage="Lost", closed_on=TODAY - 30 * DAY)
        deal(owner, "lost long ago", "800.00", stage="Lost", closed_on=TODAY - 120 * DAY)
    gone = deal(ann, "deleted", "99999.00", close=TODAY)
    crm.deals.delete(gone["id"])
    return {"ann": ann, "bob": bob, "acme": acme}


def test_open_and_weighted_pipeline_in_the_reporting_currency(crm, team):
    owner = team["ann"]["id"]
    day = my_day.figures(crm, owner, on=TODAY)
    open_ = "FROM d WHERE NOT won AND NOT lost"
    assert day.currency == "USD"
    assert day.open_pipeline.amount == sql_one(crm, f"SELECT sum(converted) {open_}", owner=owner)
    assert day.open_pipeline.amount == Decimal("1000.00") + Decimal("2400.00") + Decimal("375.00")
    assert day.weighted_pipeline.amount == sql_one(
        crm, f"SELECT sum(round(converted * coalesce(probability, 0), 2)) {open_}", owner=owner
    )
    assert day.open_deals == sql_one(crm, f"SELECT count(*) {open_}", owner=owner) == 4
    assert day.open_pipeline.missing == {"NOK": 1}
    assert "1 deal in NOK without a rate" in str(day.open_pipeline)


def test_won_this_month_against_last_month(crm, team):
    owner = team["ann"]["id"]
    day = my_day.figures(crm, owner, on=TODAY)
    won = "FROM d WHERE won AND date_trunc('month', actual_close_date) = date_trunc('month', CAST(:day AS date))"
    assert day.won_this_month.amount == sql_one(crm, f"SELECT sum(converted) {won}", owner=owner, day=TODAY)
    assert day.won_this_month.amount == Decimal("700.00") + Decimal("110.00")  # EUR at the month's first day's rate
    assert day.won_this_month.missing == {"NOK": 1}
    assert day.won_this_month_deals == 3
    last = TODAY.replace(day=1) - DAY
    assert (
        day.won_last_month.amount
        == sql_one(crm, f"SELECT sum(converted) {won}", owner=owner, day=last)
        == Decimal("400.00")
    )
    assert day.won_change == Decimal("410.00")


def test_win_rate_and_average_deal_size_over_the_window(crm, team):
    owner = team["ann"]["id"]
    day = my_day.figures(crm, owner, on=TODAY)
    window = "FROM d WHERE actual_close_date BETWEEN CAST(:day AS date) - 89 AND :day"
    won = sql_one(crm, f"SELECT count(*) {window} AND won", owner=owner, day=TODAY)
    closed = sql_one(crm, f"SELECT count(*) {window} AND (won OR lost)", owner=owner, day=TODAY)
    assert (won, closed) == (4, 5)
    assert day.win_rate == pytest.approx(won / closed)
    average = sql_one(
        crm, f"SELECT round(avg(converted), 2) {window} AND won AND converted IS NOT NULL", owner=owner, day=TODAY
    )
    assert day.average_deal_size.amount == average == Decimal("403.33")
    assert day.average_deal_size.missing == {"NOK": 1}


def test_deals_closing_this_month(crm, team):
    owner = team["ann"]["id"]
    day = my_day.figures(crm, owner, on=TODAY)
    closing = (
        "FROM d WHERE NOT won AND NOT lost "
        "AND date_trunc('month', expected_close_date) = date_trunc('month', CAST(:day AS date))"
    )
    assert day.closing_this_month == sql_one(crm, f"SELECT count(*) {closing}", owner=owner, day=TODAY) == 3
    assert day.closing_this_month_value.amount == sql_one(
        crm, f"SELECT sum(converted) {closing}", owner=owner, day=TODAY
    )


def test_figures_default_to_the_acting_user_and_nobody_elses(crm, team):
    as_bob = type(crm)(crm.engine, user="bob@example.com")
    assert (
        my_day.figures(as_bob, on=TODAY).open_pipeline == my_day.figures(crm, team["bob"]["id"], on=TODAY).open_pipeline
    )
    nobody = my_day.figures(crm, on=TODAY)  # the system user owns no deal
    assert nobody.open_pipeline.amount == 0 and nobody.win_rate is None and nobody.open_deals == 0


def test_the_team_view_gives_the_same_figures_per_owner(crm, team):
    frame = my_day.team(crm, on=TODAY)
    assert sorted(frame["owner"].to_list()) == ["Ann Rep", "Bob Rep"]
    for row in frame.iter_rows(named=True):
        one = my_day.figures(crm, row["owner_id"], on=TODAY)
        assert row["open_pipeline"] == float(one.open_pipeline.amount)
        assert row["won_this_month"] == float(one.won_this_month.amount)
        assert row["win_rate"] == pytest.approx(one.win_rate)
        assert row["closing_this_month"] == one.closing_this_month
        assert "NOK" in row["left_out_note"]


def test_only_managers_see_the_team(crm, team):
    assert my_day.sees_team(crm)  # the system user is an admin
    assert not my_day.sees_team(type(crm)(crm.engine, user="ann@example.com"))


def test_tasks_due_today_and_overdue_and_completing_one(crm, team):
    ann = team["ann"]["id"]
    deal = crm.deals.list(owner_id=ann, title="open usd")[0]
    noon = dt.datetime.combine(TODAY, dt.time(12), dt.UTC)
    overdue = crm.activities.create(
        type="task", subject="Send the quote", owner_id=ann, deal_id=deal["id"], due_at=noon - 3 * DAY
    )
    due = crm.activities.create(type="call", subject="Call back", owner_id=ann, due_at=noon)
    crm.activities.create(type="task", subject="Next week", owner_id=ann, due_at=noon + 7 * DAY)
    crm.activities.create(
        type="task", subject="Done", owner_id=ann, due_at=noon - DAY, status="completed", completed_at=noon - DAY
    )
    crm.activities.create(type="task", subject="Bob's", owner_id=team["bob"]["id"], due_at=noon)
    frame = my_day.tasks(crm, ann, on=TODAY)
    assert frame["subject"].to_list() == ["Send the quote", "Call back"]
    assert frame["overdue"].to_list() == [True, False]
    assert frame["deal"].to_list() == ["open usd", None]

    done = crm.activities.complete(overdue["id"], expected_version=overdue["version"])
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert crm.deals.get(deal["id"])["last_activity_at"] == done["completed_at"]
    assert my_day.tasks(crm, ann, on=TODAY)["id"].to_list() == [str(due["id"])]
    assert crm.activities.complete(overdue["id"])["version"] == done["version"]  # twice: nothing more
    cancelled = crm.activities.create(type="task", subject="Never", owner_id=ann, status="cancelled")
    with pytest.raises(ValidationError, match="cancelled"):
        crm.activities.complete(cancelled["id"])


def test_deals_that_need_attention(crm, team, engine):
    ann = team["ann"]["id"]
    frame = my_day.attention(crm, ann, on=TODAY)
    # every open deal of Ann's had no activity yet and was created today: only passed close dates
    with engine.connect() as conn:
        want = (
            conn.execute(
                sa.text(
                    f"WITH d AS ({DEALS}) SELECT title FROM d WHERE NOT won AND NOT lost "
                    "AND expected_close_date < :day ORDER BY expected_close_date, title"
                ),
                {"owner": ann, "day": TODAY},
            )
            .scalars()
            .all()
        )
    assert frame["title"].to_list() == want == ["open nok", "open eur"]
    assert "has passed" in frame["reason"][0]
    # a quiet deal: created long ago, or its last activity long ago
    quiet = crm.deals.list(owner_id=ann, title="open gbp")[0]
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE deals SET last_activity_at = :at WHERE id = :id"),
            {"at": dt.datetime.combine(TODAY - 40 * DAY, dt.time(9), dt.UTC), "id": quiet["id"]},
        )
    frame = my_day.attention(crm, ann, on=TODAY)
    assert "open gbp" in frame["title"].to_list()
    assert frame.filter(frame["title"] == "open gbp")["reason"][0] == "no activity for 40 days"


def test_recent_activity_on_the_owners_work(crm, team):
    ann, bob = team["ann"]["id"], team["bob"]["id"]
    deal = crm.deals.list(owner_id=ann, title="open usd")[0]
    crm.activities.create(type="note", subject="Bob's note on Ann's deal", owner_id=bob, deal_id=deal["id"])
    crm.activities.create(type="note", subject="Bob's own", owner_id=bob)
    crm.activities.create(type="call", subject="Ann called", owner_id=ann)
    subjects = my_day.recent(crm, ann, limit=50)["subject"].to_list()
    assert subjects[:2] == ["Ann called", "Bob's note on Ann's deal"]
    assert "Bob's own" not in subjects
    assert len(my_day.recent(crm, ann, limit=3)) == 3


def test_owners_to_choose_from(crm, team):
    assert [o["name"] for o in my_day.owners(crm)] == ["Ann Rep", "Bob Rep"]


# -- the widgets, without a browser ------------------------------------------------------------


def test_the_my_day_widget_shows_the_figures_and_completes_a_task(crm, team):
    from crm_kernel.widgets.my_day import MyDay

    ann = team["ann"]["id"]
    crm.activities.create(
        type="task", subject="Send the quote", owner_id=ann, due_at=dt.datetime.combine(TODAY, dt.time(9), dt.UTC)
    )
    page = MyDay(crm, owner_id=ann, on=TODAY)  # the system user is an admin: may look at Ann's day
    day = my_day.figures(crm, ann, on=TODAY)
    assert page.cards["open_pipeline"].raw == f"{day.open_pipeline.amount:.2f}"
    assert page.cards["open_pipeline"].value == "$3,775.00"
    assert "NOK" in page.cards["open_pipeline"].note
    assert page.cards["won_this_month"].trend == "up"
    assert page.cards["win_rate"].value == "80%"
    assert page.cards["closing_this_month"].raw == "3"
    assert [t["title"] for t in page.tasks.items] == ["Send the quote"]
    assert page.tasks.items[0]["href"].startswith("record.ipynb?entity=activities&id=")
    assert {d["title"] for d in page.attention.items} == {"open nok", "open eur"}
    assert "Bob Rep" in page.team.value and "Ann Rep" in page.team.value

    page.tasks._on_message(
        page.tasks, {"type": "complete", "id": page.tasks.items[0]["id"], "version": page.tasks.items[0]["version"]}, []
    )
    assert page.tasks.items == [] and page.tasks.error == ""
    assert crm.activities.list(owner_id=ann, type="task")[0]["status"] == "completed"
    page.owner.value = str(crm.user_id)
    assert page.cards["open_pipeline"].raw == "0.00"


def test_a_rep_sees_only_their_own_day(crm, team):
    from crm_kernel.widgets.my_day import MyDay

    page = MyDay(type(crm)(crm.engine, user="ann@example.com"), on=TODAY)
    assert page.owner.options == (("Ann Rep (me)", str(team["ann"]["id"])),)
    assert page.owner.layout.display == "none" and page.team.value == ""
    assert page.cards["open_pipeline"].raw == "3775.00"


# -- per role, against row-level security (the world of tests/conftest.py) ---------------------

# Whose deals each acting user reads, so whose day they may look at: the admin (Ada) and the
# analyst (Ana) everyone's, a manager their own and their team's (Mia: East; Max: West), a rep
# their own.
TEAM_VIEW = {
    "ada": {"rob", "rae", "sam", "mia"},
    "ana": {"rob", "rae", "sam", "mia"},
    "mia": {"rob", "rae", "mia"},
    "max": {"sam"},
    "rob": {"rob"},
}


@pytest.mark.parametrize("who", sorted(TEAM_VIEW))
def test_the_team_view_lists_only_owners_whose_deals_the_user_reads(app_engine, engine, world, who):
    names = {str(u["id"]): name for name, u in world["users"].items()}
    readable = {names[str(d["owner_id"])] for d in as_user(app_engine, who).deals.list()}
    assert readable == TEAM_VIEW[who]
    # bound by row-level security (the app's login) and not (the owner's): the same view
    for crm in (as_user(app_engine, who), CRM(engine, user=f"{who}@example.com")):
        assert my_day.sees_team(crm) is (who != "rob")
        assert my_day.read_only(crm) is (who == "ana")
        assert {names[o] for o in my_day.team(crm)["owner_id"]} == TEAM_VIEW[who]
        assert {names[o["id"]] for o in my_day.owners(crm)} == TEAM_VIEW[who]
        scope = my_day.visible_owners(crm)
        assert (scope is None) is (who in ("ada", "ana"))
        assert scope is None or {names[o] for o in scope} == TEAM_VIEW[who] | {who}  # Max owns no deal


def test_the_my_day_page_per_role(app_engine, world):
    from crm_kernel.widgets.my_day import MyDay

    names = {str(u["id"]): name for name, u in world["users"].items()}

    def team_rows(page) -> set[str]:
        return {names[o] for o in re.findall(r"data-owner='([^']+)'", page.team.value)}

    mia = MyDay(as_user(app_engine, "mia"))
    assert [label for label, _ in mia.owner.options] == ["Mia (me)", "Rae", "Rob"]
    assert team_rows(mia) == {"mia", "rae", "rob"} and mia.tasks.checkable
    ana = MyDay(as_user(app_engine, "ana"))
    assert [label for label, _ in ana.owner.options] == ["Ana (me)", "Mia", "Rae", "Rob", "Sam"]
    assert team_rows(ana) == {"mia", "rae", "rob", "sam"}
    assert not ana.tasks.checkable  # an analyst looks, and completes nothing
    ana.owner.value = str(world["users"]["sam"]["id"])
    assert ana.cards["open_pipeline"].raw == "1000.00"
    rob = MyDay(as_user(app_engine, "rob"))
    assert rob.owner.layout.display == "none" and rob.team.value == "" and rob.tasks.checkable
