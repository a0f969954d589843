"""Finding records in Voilà, as sales staff do: in the Find app a name typed with typos shows
the record as they type and a click opens its record page; in the pipeline app Ctrl+K opens
the palette over the board, typing finds a record (or an app) and Enter opens it."""

import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from crm_kernel import CRM

from .harness import open_app, screenshot, settle

RECORD_PAGE = "**/voila/render/record.ipynb?*"


@pytest.fixture(scope="module")
def crm(browser_database_url):
    """The demo database the dashboards server shows."""
    with CRM.connect(browser_database_url) as crm:
        yield crm


@pytest.fixture(scope="module")
def records(crm):
    """Names no demo record has, so that each search has one right answer."""
    company = crm.companies.create(name="Quillfeather Lumière", domain="quillfeather.example")
    contact = crm.contacts.create(
        first_name="Zebulon", last_name="Ashcombe", email="zeb@quillfeather.example", company_id=company["id"]
    )
    return {"company": company, "contact": contact}


@pytest.fixture
def record_pages(page):
    """The record page is another app's; here it is a stand-in that records which URL was opened."""
    opened = []

    def stand_in(route):
        opened.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>Record</title><p>record page")

    page.route(RECORD_PAGE, stand_in)
    return opened


def record_url(entity: str, record: dict) -> str:
    return "voila/render/record.ipynb?" + urlencode({"entity": entity, "id": str(record["id"])})


def kernel_id(page) -> str:
    return page.evaluate("() => window.jupyterapp.widgetManager._kernel.id")


def shut_down(page, dashboards, kernel: str) -> None:
    """Stop the kernel of an app the page has navigated away from, so kernels do not pile up:
    as the page's signed-in user (only a kernel's owner may stop it), with an XSRF token pair of
    our own. Voilà's own beacon on unload may have stopped it already (404)."""
    token = secrets.token_hex(16)
    cookies = "; ".join(
        [*(f"{c['name']}={c['value']}" for c in page.context.cookies() if c["name"] != "_xsrf"), f"_xsrf={token}"]
    )
    request = urllib.request.Request(
        f"{dashboards.url}voila/api/shutdown/{kernel}",
        data=urllib.parse.urlencode({"_xsrf": token}).encode(),
        headers={"Cookie": cookies},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status < 400, response.status
    except urllib.error.HTTPError as exc:
        assert exc.code == 404, exc.code  # gone already: the page's own beacon stopped it


def forget_the_unload_beacon(browser_errors) -> None:
    """Leaving a Voilà app, Voilà's own kernel-shutdown beacon is refused (403, see
    conftest._shut_down_kernel): the one error that leaving an app may log, and nothing else."""
    left = browser_errors.forget()
    assert all(re.search(r"403 \(Forbidden\) \(https?://[^ ]+/voila/api/shutdown/[\w-]+\)$", p) for p in left), left


def test_find_a_contact_with_typos_and_open_it(
    page, dashboards, offsite_requests, browser_errors, records, record_pages
):
    contact = records["contact"]
    open_app(page, "find.ipynb", ".crm-search-box .crm-search-input")
    box = page.locator(".crm-search-box .crm-search-input")
    expect(box).to_be_focused()  # the page opens ready to type
    box.press_sequentially("zebulon ashcmbe", delay=40)  # a letter missing, typed key by key
    settle(page)
    hit = page.locator(f'.crm-search-item[data-entity="contacts"][data-id="{contact["id"]}"]')
    expect(hit).to_be_visible()
    expect(hit.locator(".crm-search-title")).to_have_text("Zebulon Ashcombe")
    expect(hit.locator(".crm-search-subtitle")).to_contain_text("zeb@quillfeather.example")
    expect(page.locator(".crm-search-item").first).to_have_attribute("data-id", str(contact["id"]))
    screenshot(page, "find-results")
    browser_errors.check()  # nothing went wrong while typing

    kernel = kernel_id(page)
    hit.click()
    page.wait_for_url(RECORD_PAGE)
    forget_the_unload_beacon(browser_errors)
    assert page.url == dashboards.url + record_url("contacts", contact)
    assert record_pages == [page.url]
    shut_down(page, dashboards, kernel)
    assert offsite_requests == []


def test_ctrl_k_in_the_pipeline_finds_a_record_and_enter_opens_it(
    page, dashboards, offsite_requests, browser_errors, records, record_pages
):
    company = records["company"]
    open_app(page, "pipeline.ipynb", ".crm-board .pb-card")
    palette = page.locator(".crm-palette-backdrop")
    expect(palette).to_be_hidden()
    page.locator(".crm-board .pb-card").first.click()  # the focus anywhere on the board: Ctrl+K still works
    settle(page)
    page.keyboard.press("Control+k")
    expect(palette).to_be_visible()
    field = palette.locator(".crm-palette-input")
    expect(field).to_be_focused()
    # Apps first: the other apps are listed before anything is typed.
    expect(palette.locator('.crm-search-app[data-id="workbench.ipynb"]')).to_be_visible()
    expect(palette.locator('.crm-search-app[data-id="record.ipynb"]')).to_have_count(0)
    page.keyboard.press("Escape")
    expect(palette).to_be_hidden()

    page.keyboard.press("Control+k")
    expect(field).to_have_value("")  # opened afresh
    field.press_sequentially("quillfeather lumiere", delay=30)  # no accent typed; the name has one
    settle(page)
    hit = palette.locator(f'.crm-search-item[data-entity="companies"][data-id="{company["id"]}"]')
    expect(hit).to_be_visible()
    expect(hit.locator(".crm-search-title")).to_have_text("Quillfeather Lumière")
    first = palette.locator(".crm-search-item").first
    expect(first).to_have_attribute("data-id", str(company["id"]))
    expect(first).to_have_attribute("aria-selected", "true")
    screenshot(page, "pipeline-palette")
    browser_errors.check()

    kernel = kernel_id(page)
    page.keyboard.press("Enter")
    page.wait_for_url(RECORD_PAGE)
    forget_the_unload_beacon(browser_errors)
    assert page.url == dashboards.url + record_url("companies", company)
    shut_down(page, dashboards, kernel)
    assert offsite_requests == []


def test_the_palette_opens_apps_with_the_arrows(page, dashboards, offsite_requests, browser_errors):
    open_app(page, "workbench.ipynb", ".crm-workbench")
    page.keyboard.press("Control+k")
    field = page.locator(".crm-palette-input")
    expect(field).to_be_focused()
    field.press_sequentially("pipe", delay=30)
    app = page.locator('.crm-palette .crm-search-item[data-kind="app"]')
    expect(app).to_have_count(1)
    expect(app).to_have_attribute("data-id", "pipeline.ipynb")
    kernel = kernel_id(page)
    page.keyboard.press("ArrowDown")  # the arrows move the choice (round the list) and back
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    page.wait_for_url("**/voila/render/pipeline.ipynb")
    forget_the_unload_beacon(browser_errors)
    shut_down(page, dashboards, kernel)
    expect(page.locator(".crm-board .pb-card").first).to_be_visible()
    assert offsite_requests == []
