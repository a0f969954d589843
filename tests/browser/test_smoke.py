"""The harness itself: `crm serve` lists the apps, and stock ipywidgets and an ipydatagrid
render and answer clicks in Chromium with nothing fetched from outside the machine."""

import re

from playwright.sync_api import expect

from .harness import choose, grid_rows, open_app, screenshot, type_value


def test_tree_page_lists_the_workbench(page, offsite_requests):
    page.goto("")
    link = page.locator("a[href$='voila/render/workbench.ipynb']").or_(page.get_by_text("workbench.ipynb"))
    expect(link.first).to_be_visible()
    assert offsite_requests == []


def test_widgets_render_and_answer_clicks(page, offsite_requests):
    open_app(page, "smoke.ipynb", ".smoke-grid")
    expect(page.locator(".jp-CodeCell .jp-InputArea")).to_have_count(0)  # code hidden
    assert "import ipywidgets" not in page.content()

    choose(page.locator(".smoke-kind select"), lambda text: text == "Pears", "Pears")
    type_value(page.locator(".smoke-count"), 7)
    page.locator(".smoke-fill").click()

    expect(page.locator(".smoke-said")).to_have_text(re.compile(r"^7 rows of pear$"))
    assert grid_rows(page, "smoke-grid", wait_for=7) == 7
    # the button's icon comes from Font Awesome, served by Voilà itself
    page.wait_for_function("""() => [...document.fonts].some(
        f => f.family.includes("Font Awesome") && f.status === "loaded")""")
    screenshot(page, "smoke-filled")
    assert offsite_requests == []
