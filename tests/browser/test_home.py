"""My day in Voilà: every KPI card shows the figure SQL computes here for the owner chosen,
a tick completes a task (gone from the list, completed in the database), and every listed
record links to its record page. The server acts as the system user, an admin, who may look at
any rep's day."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm_kernel import CRM
from crm_kernel.model.currencies import format_money
from tests.test_my_day import DEALS

from .harness import ROOT, choose, open_app, screenshot, settle

READY = ".crm-my-day .crm-kpi[data-kpi='open_pipeline']"
TODAY = "(now() AT TIME ZONE current_setting('TimeZone'))::date"
OPEN = "FROM d WHERE NOT won AND NOT lost"
THIS_MONTH = f"date_trunc('month', {{column}}) = date_trunc('month', {TODAY})"
WINDOW = f"FROM d WHERE actual_close_date BETWEEN {TODAY} - 89 AND {TODAY}"
# Each card's figure, as SQL over the owner's deals (d: converted, won, lost; see test_my_day).
KPI_SQL = {
    "open_pipeline": f"SELECT coalesce(sum(converted), 0) {OPEN}",
    "weighted_pipeline": f"SELECT coalesce(sum(round(converted * coalesce(probability, 0), 2)), 0) {OPEN}",
    "won_this_month": "SELECT coalesce(sum(converted), 0) FROM d WHERE won AND "
    + THIS_MONTH.format(column="actual_close_date"),
    "win_rate": "SELECT round(count(*) FILTER (WHERE won)::numeric / nullif(count(*), 0), 4) "
    f"{WINDOW} AND (won OR lost)",
    "average_deal_size": f"SELECT coalesce(round(avg(converted), 2), 0) {WINDOW} AND won AND converted IS NOT NULL",
    "closing_this_month": f"SELECT count(*) {OPEN} AND " + THIS_MONTH.format(column="expected_close_date"),
}


@pytest.fixture(scope="module")
def crm(browser_database_url):
    with CRM.connect(browser_database_url) as crm:
        yield crm


@pytest.fixture(scope="module")
def rep(crm):
    """The demo user with the most open deals, given a task due yesterday and one due today."""
    with crm.engine.connect() as conn:
        owner = conn.execute(
            sa.text(
                "SELECT u.id, u.full_name FROM deals d JOIN users u ON u.id = d.owner_id "
                "JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.deleted_at IS NULL AND u.active "
                "AND NOT s.is_closed_won AND NOT s.is_closed_lost GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1"
            )
        ).one()
    now = dt.datetime.now(dt.UTC)
    deal = crm.deals.list(owner_id=owner.id, limit=1)[0]
    late = crm.activities.create(
        type="task",
        subject="Send the signed order form",
        owner_id=owner.id,
        deal_id=deal["id"],
        due_at=now - dt.timedelta(days=1),
    )
    due = crm.activities.create(type="call", subject="Call back about pricing", owner_id=owner.id, due_at=now)
    return {"id": str(owner.id), "name": owner.full_name, "late": late, "due": due}


def kpi_in_sql(crm, owner_id: str, key: str):
    with crm.engine.connect() as conn:
        return conn.execute(sa.text(f"WITH d AS ({DEALS}) {KPI_SQL[key]}"), {"owner": owner_id}).scalar()


def open_day_of(page, rep):
    open_app(page, "home.ipynb", READY)
    choose(page.locator(".crm-day-owner select"), lambda text: text == rep["name"], rep["name"])
    expect(page.locator(".crm-day-tasks .crm-list-title", has_text="Call back about pricing")).to_be_visible()


def test_every_kpi_is_the_figure_sql_gives(page, offsite_requests, crm, rep):
    open_day_of(page, rep)
    currency = crm.money.reporting_currency()
    for key in KPI_SQL:
        card = page.locator(f".crm-kpi[data-kpi='{key}']")
        want = kpi_in_sql(crm, rep["id"], key)
        shown = card.get_attribute("data-value")
        value = card.locator(".crm-kpi-value").inner_text()
        if key == "win_rate":
            assert (shown or None) == (None if want is None else f"{want:.4f}"), key
            assert value == ("—" if want is None else f"{want:.0%}")
        elif key == "closing_this_month":
            assert int(shown) == want and value == f"{want:,}", key
        else:
            assert Decimal(shown) == want, key
            assert value == format_money(want, currency), key
    assert page.locator(".crm-kpi").count() == len(KPI_SQL)
    page.set_viewport_size({"width": 1280, "height": 1800})  # the whole app in one picture
    shot = screenshot(page, "home")
    if os.environ.get("CRM_DOCS_SCREENSHOTS"):  # refresh the README's picture
        shutil.copyfile(shot, ROOT / "docs" / "home.png")
    assert offsite_requests == []


def test_ticking_a_task_completes_it(page, offsite_requests, crm, rep):
    open_day_of(page, rep)
    late = str(rep["late"]["id"])
    row = page.locator(f".crm-day-tasks .crm-list-row[data-id='{late}']")
    expect(row).to_have_attribute("data-badge", "overdue")
    expect(page.locator(f".crm-day-tasks .crm-list-row[data-id='{rep['due']['id']}']")).to_be_visible()
    row.locator(".crm-list-tick").check()
    settle(page)
    expect(row).to_have_count(0)
    done = crm.activities.get(late)
    assert done["status"] == "completed" and done["completed_at"] is not None
    expect(page.locator(f".crm-day-tasks .crm-list-row[data-id='{rep['due']['id']}']")).to_be_visible()
    assert offsite_requests == []


def test_listed_records_link_to_their_record_page(page, offsite_requests, crm, rep):
    open_day_of(page, rep)
    for section in ("tasks", "attention", "recent"):  # every section shows its rows
        expect(page.locator(f".crm-day-{section} .crm-list-row").first).to_be_visible()
    expect(page.locator(".crm-day-team tbody tr").first).to_be_visible()
    links = page.locator(
        ".crm-day-attention a.crm-list-title, .crm-day-recent a.crm-list-title, .crm-day-tasks a.crm-list-title"
    )
    assert links.count() > 0
    for at in range(links.count()):
        href = links.nth(at).evaluate("a => a.href")
        url = urlparse(href)
        assert url.path == "/voila/render/record.ipynb", href
        query = parse_qs(url.query)
        assert query["entity"][0] in ("deals", "activities") and query["id"][0]
    # the team view lists every owner with the same open pipeline as their own day
    team_row = page.locator(f".crm-day-team tr[data-owner='{rep['id']}'] td[data-kpi='open_pipeline']")
    expect(team_row).to_have_text(
        format_money(kpi_in_sql(crm, rep["id"], "open_pipeline"), crm.money.reporting_currency())
    )
    assert offsite_requests == []
