"""The forecast app's widget without a browser: the chart's bars are the forecast per period and
owner, and a bar chosen lists exactly its deals, each linking to its record page."""

from __future__ import annotations

import datetime as dt

from crm_kernel.widgets.forecast import ForecastPage


def test_a_bar_lists_its_deals(crm):
    crm.money.set_rate("EUR", "2026-01-01", "1.50")
    ann = crm.users.create(email="ann@example.com", full_name="Ann Rep", role="rep")
    bob = crm.users.create(email="bob@example.com", full_name="Bob Rep", role="rep")
    acme = crm.companies.create(name="Acme")
    for owner, title, value, currency, close in [
        (ann, "Ann Q2 a", "1000.00", "USD", "2026-04-10"),
        (ann, "Ann Q2 b", "2000.00", "EUR", "2026-06-30"),
        (bob, "Bob Q2", "500.00", "USD", "2026-05-01"),
        (ann, "Ann Q3", "700.00", "USD", "2026-07-01"),
    ]:
        crm.deals.create(
            company_id=acme["id"],
            owner_id=owner["id"],
            title=title,
            value=value,
            currency=currency,
            expected_close_date=close,
        )
    page = ForecastPage(crm, on=dt.date(2026, 4, 15))
    spec = page.forecast_chart.spec
    assert any(p["name"] == "bar" for p in spec["params"])
    assert {(r["owner"], r["period_label"]) for r in spec["data"]["values"]} == {
        ("Ann Rep", "2026 Q2"),
        ("Bob Rep", "2026 Q2"),
        ("Ann Rep", "2026 Q3"),
    }
    bars = {(r["owner"], str(r["period"])): r["forecast"] for r in page.frame.iter_rows(named=True)}
    assert bars == {("Ann Rep", "2026-04-01"): 400.0, ("Bob Rep", "2026-04-01"): 50.0, ("Ann Rep", "2026-07-01"): 70.0}

    page.show_deals("2026 Q2", str(ann["id"]))
    assert [d["title"] for d in page.deals.items] == ["Ann Q2 b", "Ann Q2 a"]  # largest forecast first
    assert page.deals.items[0]["href"].startswith("record.ipynb?entity=deals&id=")
    assert "2 deals of Ann Rep" in page.picked.value and "$400.00" in page.picked.value
    page.forecast_chart.selections = {"bar": [{"period_label": "2026 Q2", "owner_id": str(bob["id"])}]}  # a click
    assert [d["title"] for d in page.deals.items] == ["Bob Q2"] and "1 deals of Bob Rep" in page.picked.value
    page.forecast_chart.selections = {"bar": []}  # a click beside the bars
    assert page.deals.items == [] and "Click a bar" in page.picked.value
    page.forecast_chart.selections = {"bar": [{"period_label": "2026 Q2", "owner_id": str(ann["id"])}]}
    page.period.value = "month"  # redrawn, the list emptied
    assert (
        page.forecast_chart.selections == {}
        and page.deals.items == []
        and {str(p) for p in page.frame["period"]}
        == {
            "2026-04-01",
            "2026-05-01",
            "2026-06-01",
            "2026-07-01",
        }
    )
    others = page.others.spec
    assert [c["title"] for c in others["vconcat"][0]["hconcat"]] == [
        "Funnel: deals of the last 90 days",
        "Pipeline since 2026-04-01",
    ]
    assert others["vconcat"][1]["title"] == "Won and lost per month"


def test_the_chart_bundle_is_kept_for_the_next_kernel(tmp_path):
    from crm_kernel.widgets.vega_chart import bundle

    script = bundle(tmp_path)
    assert "vega-lite" in script and "cdn.jsdelivr" not in script
    kept = list(tmp_path.glob("vega-chart-vl-convert-*.js"))
    assert len(kept) == 1 and kept[0].read_text() == script
    kept[0].write_text(script + "\n// kept")  # the next kernel reads the file, bundles nothing
    assert bundle(tmp_path).endswith("// kept")
