"""The landing page at `/`: the apps in the order a rep uses them, each with the title and line
of its notebook, every link naming a served notebook, and a click opening My day. (Only one
app is opened: each opened page runs its notebook in a kernel of its own.)"""

from __future__ import annotations

from playwright.sync_api import expect

from crm_kernel import serve as serving

from .harness import screenshot


def test_the_landing_page_lists_the_apps_in_order_and_they_open(page, dashboards, offsite_requests):
    response = page.goto("")
    assert response is not None and response.ok
    entries = serving.app_entries(dashboards.folder)
    names = [e.name for e in entries]
    # My day, then Pipeline, then Forecast and the workbench; the test-only apps after them, by name
    assert names[:2] == ["home.ipynb", "pipeline.ipynb"]
    assert names.index("forecast.ipynb") < names.index("workbench.ipynb")
    assert "record.ipynb" not in names
    apps = page.locator(".crm-app")
    expect(apps).to_have_count(len(entries))
    assert [apps.nth(i).get_attribute("data-app") for i in range(apps.count())] == names
    day = page.locator(".crm-app[data-app='home.ipynb']")
    expect(day.locator(".crm-app-title")).to_have_text("My day")
    expect(day.locator(".crm-app-line")).to_contain_text("tasks due today")
    expect(page.locator(".crm-app[data-app='forecast.ipynb'] .crm-app-title")).to_have_text("Forecast")
    screenshot(page, "landing")

    for entry in entries:
        href = page.locator(f".crm-app[data-app='{entry.name}'] a").get_attribute("href")
        assert href.endswith(f"/voila/render/{entry.name}") and (dashboards.folder / entry.name).exists()
    with page.expect_navigation():
        day.locator("a").click()
    expect(page).to_have_url(f"{dashboards.url}voila/render/home.ipynb")
    expect(page.locator(".crm-my-day .crm-kpi").first).to_be_visible(timeout=120_000)
    assert offsite_requests == []
