"""The query workbench in Voilà, as a sales manager uses it: a two-rule query built by clicking,
run, and the grid and the row count agree with the library's answer for the same spec."""

import os
import re
import shutil

import polars as pl
import pytest
from playwright.sync_api import expect

from crm_kernel import CRM

from .harness import (
    ROOT,
    choose_field,
    choose_operator,
    grid_rows,
    open_app,
    screenshot,
    settle,
    type_value,
)


@pytest.fixture(scope="module")
def crm(browser_database_url):
    """The demo database the dashboards server shows."""
    with CRM.connect(browser_database_url) as crm:
        yield crm


def two_rule_spec(crm) -> dict:
    """Deals worth at least the median value, in the stage most of those are in: a question
    whose answer is neither empty nor everything, whatever the demo data holds."""
    deals = crm.query({"entity": "deals", "select": ["value", "stage.name"]})
    threshold = int(deals["value"].cast(pl.Float64).median() // 100 * 100)
    stages = (
        deals.filter(pl.col("value") >= threshold)
        .group_by("stage.name")
        .len()
        .sort(["len", "stage.name"], descending=[True, False])
    )
    return {
        "entity": "deals",
        "where": {
            "combinator": "and",
            "rules": [
                {"field": "value", "operator": ">=", "value": threshold},
                {"field": "stage.name", "operator": "=", "value": stages["stage.name"][0]},
            ],
        },
    }


def test_two_rule_query_built_by_clicking(page, offsite_requests, crm):
    spec = two_rule_spec(crm)
    expected = crm.query(spec).height
    assert 2 <= expected < crm.deals.count(), "the demo data no longer suits this question"
    (value_rule, stage_rule) = spec["where"]["rules"]

    open_app(page, "workbench.ipynb", ".crm-workbench")
    expect(page.locator(".crm-entity select")).to_have_value(re.compile(r"^Deals?$"))

    for rule in (value_rule, stage_rule):
        page.locator(".crm-add-rule").click()
        settle(page)
        row = page.locator(".crm-rule").last
        choose_field(row.locator(".crm-rule-field select"), rule["field"])
        choose_operator(row.locator(".crm-rule-operator select"), rule["operator"])
        type_value(row.locator(".crm-rule-value").first, rule["value"])
    expect(page.locator(".crm-rule")).to_have_count(2)
    expect(page.locator(".crm-error")).to_have_text("")

    page.locator(".crm-run").click()

    expect(page.locator(".crm-row-count")).to_contain_text(re.compile(rf"\b{expected} rows\b"))
    expect(page.locator(".crm-result-grid").first).to_be_visible()
    assert grid_rows(page, "crm-datagrid", wait_for=expected) == expected
    shot = screenshot(page, "workbench-two-rules")
    if os.environ.get("CRM_DOCS_SCREENSHOTS"):  # refresh the README's picture
        shutil.copyfile(shot, ROOT / "docs" / "workbench.png")
    assert offsite_requests == []
