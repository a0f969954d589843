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
    spec = page.forecast_chart.chart.to_dict()
    assert any(p["name"] == "bar" for p in spec["params"])
    bars = {(r["owner"], str(r["period"])): r["forecast"] for r in page.frame.iter_rows(named=True)}
    assert bars == {("Ann Rep", "2026-04-01"): 400.0, ("Bob Rep", "2026-04-01"): 50.0, ("Ann Rep", "2026-07-01"): 70.0}

    page.show_deals("2026 Q2", str(ann["id"]))
    assert [d["title"] for d in page.deals.items] == ["Ann Q2 b", "Ann Q2 a"]  # largest forecast first
    assert page.deals.items[0]["href"].startswith("record.ipynb?entity=deals&id=")
    assert "2 deals of Ann Rep" in page.picked.value and "$400.00" in page.picked.value
    page.period.value = "month"  # redrawn, the list emptied
    assert page.deals.items == [] and {str(p) for p in page.frame["period"]} == {
        "2026-04-01",
        "2026-05-01",
        "2026-06-01",
        "2026-07-01",
    }
    others = page.others.chart.to_dict()
    assert len(others["vconcat"]) == 2


def test_the_chart_bundle_is_kept_for_the_next_kernel(tmp_path, monkeypatch):
    import altair as alt

    from crm_kernel.widgets.forecast import offline_charts

    monkeypatch.setattr(alt.JupyterChart, "_is_offline", False)  # as in a new kernel
    monkeypatch.setattr(alt.JupyterChart, "_esm", alt.JupyterChart._esm)
    chart = offline_charts(tmp_path)
    assert chart._is_offline and "vega-lite" in chart._esm and "cdn.jsdelivr" not in chart._esm
    kept = list(tmp_path.glob("jupyter-chart-altair-*.js"))
    assert len(kept) == 1 and kept[0].read_text() == chart._esm
    kept[0].write_text(chart._esm + "\n// kept")  # the next kernel reads the file, bundles nothing
    chart._is_offline = False
    assert offline_charts(tmp_path)._esm.endswith("// kept")
