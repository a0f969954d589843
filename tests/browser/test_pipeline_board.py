"""The pipeline board in Voilà, as sales staff use it: a card dragged with the mouse to another
column is moved in the database, and a second page open on the board shows the move without
a reload; the keyboard moves a card too; a stage that needs a close reason asks for it."""

import re

import pytest
from playwright.sync_api import expect

from crm_kernel import CRM

from .conftest import _shut_down_kernel
from .harness import open_app, screenshot, settle

BOARD = ".crm-board .pb-card"


@pytest.fixture(scope="module")
def crm(browser_database_url):
    """The demo database the dashboards server shows."""
    with CRM.connect(browser_database_url) as crm:
        yield crm


@pytest.fixture
def second_page(page):
    """Another page on the same server (the same refusal of off-site requests), shut down after."""
    other = page.context.new_page()
    yield other
    try:
        screenshot(other, "pipeline-board-second-page")
        _shut_down_kernel(other)
    finally:
        other.close()


def column(page, stage_id: str):
    return page.locator(f'.pb-column[data-stage="{stage_id}"]')


def stage_name(crm, deal_id) -> str:
    return crm.stages.get(crm.deals.get(deal_id)["stage_id"])["name"]


def test_drag_a_card_and_a_second_page_sees_it(page, second_page, offsite_requests, crm):
    lead, qualified = (str(crm.stages.resolve(name)["id"]) for name in ("Lead", "Qualified"))
    open_app(page, "pipeline.ipynb", BOARD)
    open_app(second_page, "pipeline.ipynb", BOARD)
    expect(page.locator(".pb-column")).to_have_count(6)
    for shown in (page, second_page):  # listening, and saying so
        expect(shown.locator(".pb-connection")).to_have_attribute("data-state", "live")
        expect(shown.locator(".pb-connection")).to_have_text("● live")
    count = column(page, qualified).locator(".pb-count")
    before = int(count.inner_text().replace(",", ""))

    card = column(page, lead).locator(".pb-card").first
    deal_id = card.get_attribute("data-id")
    card.drag_to(column(page, qualified).locator(".pb-cards"))
    settle(page)

    moved = f'.pb-card[data-id="{deal_id}"]'
    expect(column(page, qualified).locator(moved)).to_be_visible()
    expect(count).to_have_text(str(before + 1))
    expect(page.locator(".pb-notice-success")).to_contain_text("Qualified")
    assert stage_name(crm, deal_id) == "Qualified"
    # The other page hears of it through LISTEN crm_changes: no reload, no click.
    expect(column(second_page, qualified).locator(moved)).to_be_visible()
    expect(column(second_page, lead).locator(moved)).to_have_count(0)
    expect(column(second_page, qualified).locator(".pb-count")).to_have_text(str(before + 1))
    screenshot(page, "pipeline-board-after-drag")

    # The keyboard alternative: focus a card, press the right arrow.
    card = column(page, lead).locator(".pb-card").first
    keyed = card.get_attribute("data-id")
    card.focus()
    page.keyboard.press("ArrowRight")
    settle(page)
    expect(column(page, qualified).locator(f'.pb-card[data-id="{keyed}"]')).to_be_visible()
    assert stage_name(crm, keyed) == "Qualified"
    expect(column(second_page, qualified).locator(f'.pb-card[data-id="{keyed}"]')).to_be_visible()
    assert offsite_requests == []


def test_moving_to_lost_asks_for_the_close_reason(page, offsite_requests, crm):
    lead = str(crm.stages.resolve("Lead")["id"])
    open_app(page, "pipeline.ipynb", BOARD)
    card = column(page, lead).locator(".pb-card").first
    deal_id = card.get_attribute("data-id")
    card.click()  # the side panel
    settle(page)
    panel = page.locator(".pb-panel")
    expect(panel.locator("h3")).to_have_text(card.locator(".pb-card-title").inner_text())
    panel.locator(".pb-stage-select").select_option(label="Lost")
    panel.locator(".pb-panel-move button").click()
    settle(page)

    prompt = page.locator(".pb-prompt")
    expect(prompt).to_contain_text(re.compile("Close reason is required in stage Lost"))
    screenshot(page, "pipeline-board-close-reason")
    prompt.locator('[data-field="close_reason"]').fill("Chose a competitor")
    prompt.locator("button[type=submit]").click()
    settle(page)
    expect(prompt).to_be_hidden()
    assert stage_name(crm, deal_id) == "Lost"
    assert crm.deals.get(deal_id)["close_reason"] == "Chose a competitor"
    assert offsite_requests == []
