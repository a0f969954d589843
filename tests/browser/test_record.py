"""A company's record page in Voilà, as sales staff use it: opened by its address, a field
edited, saved and still there after a reload; a save over someone else's change refused with
the current values on screen; a note logged lands in the timeline; a related deal's link opens
that deal's page."""

import os
import re
import shutil

import pytest
from playwright.sync_api import expect

from crm_kernel import CRM

from .harness import APP_READY_MS, ROOT, open_app, screenshot, settle

PAGE = ".crm-record-page"


@pytest.fixture(scope="module")
def crm(browser_database_url):
    """The demo database the dashboards server shows."""
    with CRM.connect(browser_database_url) as crm:
        yield crm


@pytest.fixture(scope="module")
def company(crm) -> dict:
    """A demo company with people and deals."""
    for deal in crm.deals.list(limit=200, order_by="title"):
        company = crm.companies.get(deal["company_id"])
        if crm.contacts.count(company_id=company["id"]):
            return company
    raise AssertionError("the demo data has no company with both people and deals")


def field(page, name: str):
    return page.locator(f".crm-field-{name} input").first


def open_record(page, entity: str, record_id) -> None:
    open_app(page, f"record.ipynb?entity={entity}&id={record_id}", PAGE)


def leaving(page) -> None:
    """Before the page navigates away: give it the _xsrf cookie Voilà's render page lacks, so
    that Voilà's own shutdown beacon on unload is accepted and the old kernel goes."""
    page.evaluate("""() => {
        if (!/\\b_xsrf=/.test(document.cookie)) {
            const token = [...crypto.getRandomValues(new Uint8Array(16))]
                .map(b => b.toString(16).padStart(2, "0")).join("");
            document.cookie = `_xsrf=${token}; path=/`;
        }
    }""")


def save(page) -> None:
    page.locator("button.crm-record-save").click()
    settle(page)


def test_edit_save_and_reload(page, offsite_requests, crm, company):
    cid = company["id"]
    open_record(page, "companies", cid)
    expect(page.locator(".crm-record-title")).to_have_text(company["name"])
    expect(field(page, "name")).to_have_value(company["name"])
    field(page, "industry").fill("Space logistics")
    settle(page)
    save(page)
    expect(page.locator(".crm-record-message")).to_contain_text("Saved")
    assert crm.companies.get(cid)["industry"] == "Space logistics"
    screenshot(page, "record-page")
    if os.environ.get("CRM_DOCS_SCREENSHOTS"):
        shutil.copyfile(ROOT / "test-artifacts" / "browser" / "record-page.png", ROOT / "docs" / "record.png")
    leaving(page)
    open_record(page, "companies", cid)  # a reload: the page shows what was stored
    expect(field(page, "industry")).to_have_value("Space logistics")
    assert offsite_requests == []


def test_a_stale_save_is_refused_a_note_is_logged_and_a_deal_opens(page, offsite_requests, crm, company):
    cid = company["id"]
    open_record(page, "companies", cid)
    # Someone else saves first: the page's save is refused and shows what holds now.
    field(page, "industry").fill("Orbital freight")
    field(page, "phone").fill("+1 555 0100")
    settle(page)
    crm.companies.update(cid, industry="Rockets", website="https://elsewhere.example")
    save(page)
    message = page.locator(".crm-record-message")
    expect(message).to_contain_text("someone else changed this record")
    expect(message).to_contain_text(re.compile("Industry.*Website"))
    expect(page.locator(".crm-field-industry .crm-field-note")).to_contain_text("it is now Rockets")
    expect(field(page, "industry")).to_have_value("Orbital freight")  # the user's edits stay
    expect(field(page, "phone")).to_have_value("+1 555 0100")
    expect(field(page, "website")).to_have_value("https://elsewhere.example")  # theirs, shown
    stored = crm.companies.get(cid)
    assert (stored["industry"], stored["phone"]) == ("Rockets", company["phone"])
    screenshot(page, "record-page-conflict")

    # Log a note: it appears at the top of the timeline.
    page.locator("button.crm-log-note").click()
    settle(page)
    page.locator(".crm-log-subject input").fill("Asked about the spring launch")
    page.locator(".crm-log-notes textarea").fill("Call back in March")
    settle(page)
    page.locator("button.crm-log-save").click()
    settle(page)
    expect(page.locator(".crm-log-message")).to_contain_text("Logged note")
    first = page.locator(".crm-timeline-entry").first
    expect(first).to_contain_text("Asked about the spring launch")
    expect(first.locator(".crm-timeline-type")).to_contain_text("note")
    notes = crm.activities.list(company_id=cid, type="note", subject="Asked about the spring launch")
    assert [n["description"] for n in notes] == ["Call back in March"]

    # A related deal's link opens its own record page.
    link = page.locator(".crm-related-deals a.crm-record-link").first
    deal = crm.deals.get(link.get_attribute("data-id"))
    assert deal["company_id"] == cid
    leaving(page)
    link.click()
    page.wait_for_url(re.compile(rf"record\.ipynb\?entity=deals&id={deal['id']}"), timeout=APP_READY_MS)
    page.locator(PAGE).wait_for(state="visible", timeout=APP_READY_MS)
    expect(page.locator(".crm-record-title")).to_have_text(deal["title"])
    expect(page.locator(".crm-related-company a.crm-record-link")).to_have_text(stored["name"])
    screenshot(page, "record-page-deal")
    assert offsite_requests == []


def test_a_wrong_address_is_a_sentence_not_a_traceback(page, offsite_requests):
    open_app(page, "record.ipynb?entity=companies&id=00000000-0000-0000-0000-0000000000ff", ".crm-record-missing")
    expect(page.locator(".crm-record-missing")).to_contain_text("Not found: no company with id")
    assert offsite_requests == []


def test_a_board_card_opens_its_deal_page(page, offsite_requests, crm):
    open_app(page, "pipeline.ipynb", ".crm-board .pb-card")
    card = page.locator(".crm-board .pb-card").first
    deal = crm.deals.get(card.get_attribute("data-id"))
    link = card.locator("a.pb-card-open")
    expect(link).to_have_attribute("href", f"record.ipynb?entity=deals&id={deal['id']}")
    leaving(page)
    link.click()
    page.wait_for_url(re.compile(rf"/voila/render/record\.ipynb\?entity=deals&id={deal['id']}$"), timeout=APP_READY_MS)
    page.locator(PAGE).wait_for(state="visible", timeout=APP_READY_MS)
    expect(page.locator(".crm-record-title")).to_have_text(deal["title"])
    expect(page.locator(".crm-field-title input").first).to_have_value(deal["title"])
    assert offsite_requests == []
