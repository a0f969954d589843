"""The forecast app in Voilà: its charts are drawn with nothing fetched from the internet, and a
click on a forecast bar lists exactly that bar's deals (checked against SQL), each linking to
its record page."""

from __future__ import annotations

import os
import shutil

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm_kernel import CRM
from crm_kernel.widgets.vega_chart import bundle

from .harness import ROOT, open_app, screenshot, settle

READY = ".crm-forecast-chart svg .mark-rect path"
FORECAST_READY_MS = 240_000  # four analytics over the history: the slowest app
BAR_DEALS = """
    SELECT d.id::text FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
    WHERE d.deleted_at IS NULL AND NOT s.is_closed_won AND NOT s.is_closed_lost
      AND d.owner_id IS NOT DISTINCT FROM CAST(NULLIF(:owner, '') AS uuid)
      AND date_trunc('quarter', d.expected_close_date)::date = CAST(:start AS date)
"""


@pytest.fixture(scope="module")
def crm(browser_database_url):
    with CRM.connect(browser_database_url) as crm:
        yield crm


@pytest.fixture(scope="module", autouse=True)
def chart_bundle():
    """The chart bundle kept in the CRM home the server shares, as after a first forecast page
    (bundling takes up to 20 s on a busy machine, on top of the page's own work)."""
    bundle()


def test_the_charts_render_and_a_bar_lists_its_deals(page, offsite_requests, crm):
    open_app(page, "forecast.ipynb", READY, timeout_ms=FORECAST_READY_MS)
    # every chart drew its marks: the forecast's bars, and funnel, waterfall and won/lost below
    expect(page.locator(".crm-forecast-others svg")).to_be_visible()
    expect(page.locator(".crm-forecast-others svg [aria-roledescription='bar']").first).to_be_attached()
    assert page.locator(".crm-forecast-others svg .mark-rect").count() >= 3  # funnel, waterfall, won/lost
    for title in ("Funnel", "Pipeline since", "Won and lost per month"):
        expect(page.locator(".crm-forecast-others svg")).to_contain_text(title)
    assert page.locator(".crm-forecast-chart svg .mark-rect path").count() > 1
    expect(page.locator(".crm-forecast-deals .crm-list-empty")).to_have_text("No bar chosen")

    bar = page.locator(".crm-forecast-chart svg .mark-rect path").first
    bar.hover()  # the tooltip, drawn by vega-tooltip from the bundled script
    expect(page.locator("#vg-tooltip-element")).to_be_visible()
    expect(page.locator("#vg-tooltip-element")).to_contain_text("forecast")
    bar.click()
    settle(page)
    heading = page.locator(".crm-forecast-picked h3")
    expect(heading).to_be_visible()
    settle(page)
    start, owner = heading.get_attribute("data-start"), heading.get_attribute("data-owner")
    with crm.engine.connect() as conn:
        want = set(conn.execute(sa.text(BAR_DEALS), {"owner": owner, "start": start}).scalars())
    rows = page.locator(".crm-forecast-deals .crm-list-row")
    expect(rows).to_have_count(len(want))
    assert want and {rows.nth(i).get_attribute("data-id") for i in range(rows.count())} == want
    href = rows.first.locator("a").evaluate("a => a.href")
    assert "/voila/render/record.ipynb?entity=deals&id=" in href
    page.set_viewport_size({"width": 1280, "height": 1800})  # the whole app in one picture
    shot = screenshot(page, "forecast")
    if os.environ.get("CRM_DOCS_SCREENSHOTS"):  # refresh the README's picture
        shutil.copyfile(shot, ROOT / "docs" / "forecast.png")
    assert offsite_requests == []
