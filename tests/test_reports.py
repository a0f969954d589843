"""Reports: papermill runs a parameterised notebook into a notebook and an offline HTML page,
all or nothing; a failing cell is named; the HTML can be mailed through SMTP."""

from __future__ import annotations

import datetime as dt
import re
import socket
from email import message_from_bytes, policy
from pathlib import Path

import nbformat
import pytest

from crm_kernel import reports
from crm_kernel.errors import ConfigError, ValidationError
from crm_kernel.reports.runner import ReportError

TODAY = dt.date(2026, 3, 31)
CHART = re.compile(r'<img[^>]*src="data:image/svg\+xml;base64,')  # a chart drawn into the page


def _report(folder: Path, name: str, body: str, params: str = "owner = None\nlimit = 3\n") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell(params)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# The {name} report"), parameters, nbformat.v4.new_code_cell(body)]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "reports-src"
    path.mkdir()
    _report(
        path,
        "figures",
        "print(f'FIGURE owner={owner} limit={limit * 2}')\n"
        "import altair as alt, polars as pl\nalt.renderers.enable('svg')\n"
        "alt.Chart(pl.DataFrame({'stage': ['Lead', 'Won'], 'n': [3, 4]}))"
        ".mark_bar().encode(x='stage', y='n', tooltip=['stage', 'n'])",
    )
    _report(path, "broken", "x = 1\nraise RuntimeError('the pipeline is on fire')")
    return path


def test_the_registry_reads_titles_and_parameters(folder):
    found = {r.name: r for r in reports.available(folder)}
    assert set(found) == {"figures", "broken"}
    assert found["figures"].title == "The figures report"
    assert found["figures"].parameters["limit"]["default"] == "3"
    with pytest.raises(ConfigError, match="no report 'nope'; the reports are: broken, figures"):
        reports.find("nope", folder)


def test_a_run_writes_the_notebook_and_an_offline_html_page(folder, tmp_path):
    out = tmp_path / "out"
    run = reports.run("figures", {"owner": "ana@example.com", "limit": 21}, out=out, today=TODAY, folder=folder)
    assert run.notebook == out / "figures-2026-03-31.ipynb" and run.html == out / "figures-2026-03-31.html"
    assert sorted(p.name for p in out.iterdir()) == ["figures-2026-03-31.html", "figures-2026-03-31.ipynb"]
    html = run.html.read_text()
    assert "FIGURE owner=ana@example.com limit=42" in html
    assert len(CHART.findall(html)) == 1  # the chart is embedded, not a script that would fetch vega
    assert "print(f" not in html  # code hidden
    assert re.findall(r"""(?:src|href)=["']https?://""", html) == []
    assert 'import("http' not in html


def test_a_failing_report_names_the_cell_and_leaves_nothing(folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ReportError, match=r"report broken failed in cell 2: RuntimeError: the pipeline is on fire"):
        reports.run("broken", out=out, today=TODAY, folder=folder)
    assert list(out.iterdir()) == []


def test_unknown_parameters_are_refused_before_running(folder, tmp_path):
    with pytest.raises(ValidationError, match="report figures has no parameter 'ownr'"):
        reports.run("figures", {"ownr": "x"}, out=tmp_path / "out", folder=folder)


def test_mail_goes_through_smtp(folder, tmp_path, monkeypatch):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("CRM_SMTP_URL", f"smtp://127.0.0.1:{port}?from=reports@example.com")
        run = reports.run(
            "figures", out=tmp_path / "out", today=TODAY, folder=folder, mail_to=["boss@example.com", "ana@example.com"]
        )
    finally:
        controller.stop()
    assert run.mailed_to == ["boss@example.com", "ana@example.com"]
    assert len(received) == 1 and received[0].rcpt_tos == ["boss@example.com", "ana@example.com"]
    message = message_from_bytes(received[0].content, policy=policy.default)
    assert message["Subject"] == "The figures report \u2014 2026-03-31"
    assert message["From"] == "reports@example.com"
    html_parts = [p for p in message.walk() if p.get_content_type() == "text/html"]
    assert any("FIGURE owner=None" in p.get_payload(decode=True).decode() for p in html_parts)


def test_mail_without_a_server_says_what_to_set(folder, tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_SMTP_URL", raising=False)
    with pytest.raises(ConfigError, match="CRM_SMTP_URL is not set"):
        reports.send_report(tmp_path / "x.html", "a@example.com", "x")


def test_weekly_pipeline_report_on_a_fresh_snapshot(crm, engine, tmp_path):
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM exchange_rates WHERE currency <> 'USD'")
    crm.money.set_rate("EUR", "2026-01-01", "1.10")
    crm.money.set_rate("EUR", "2026-03-01", "1.20")
    acme = crm.companies.create(name="Acme")
    for title, value, currency in (("a", "1000.00", "EUR"), ("b", "500.00", "USD"), ("c", "700.00", "NOK")):
        crm.deals.create(company_id=acme["id"], title=title, value=value, currency=currency)
    won = crm.deals.create(company_id=acme["id"], title="w", value="100.00", currency="EUR")
    crm.deals.move(won["id"], "Won", changes={"actual_close_date": dt.date(2026, 3, 30)})
    run = reports.run("weekly_pipeline", {"period_end": "2026-03-31"}, out=tmp_path / "out", today=TODAY)
    assert run.snapshot is not None and run.parameters["snapshot"] == str(run.snapshot)
    html = run.html.read_text()
    # 1000 EUR at the latest rate (1.20) + 500 USD; the NOK deal has no rate and is named.
    assert "Open pipeline: $1,700.00 (1 deal in NOK without a rate is not included) in 3 deals" in html
    assert "Won: $120.00 in 1 deals" in html  # closed 30 March: the 1 March rate
    assert len(CHART.findall(html)) == 1


def test_quarterly_forecast_report_agrees_with_the_analytics(make_database, tmp_path, monkeypatch):
    from crm_kernel import CRM, demo
    from crm_kernel.db import connect_engine

    url = make_database("crm_report_forecast")
    engine = connect_engine(url)
    demo.load(engine, scale=0.05, seed=3, today=dt.date(2026, 9, 30))
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("CRM_HOME", str(tmp_path / "home"))
    run = reports.run("quarterly_forecast", {"period_end": "2026-09-30"}, out=tmp_path / "out", today=TODAY)
    html = run.html.read_text()
    now = dt.datetime(2026, 9, 30, 23, 59, tzinfo=dt.UTC)
    analytics = CRM(engine).analytics("duckdb", snapshot=run.snapshot, now=now)
    stage, learned = analytics.forecast(method="stage"), analytics.forecast(method="learned")
    nxt = stage.filter(stage["period"] > dt.date(2026, 7, 1)).row(0, named=True)
    nxt_learned = learned.filter(learned["period"] == nxt["period"])["forecast"][0]
    assert "Quarter 2026-07-01 to 2026-09-30, everyone, amounts in USD" in html
    assert (
        f"Next quarter ({nxt['period']}): {nxt['forecast']:,.2f} USD by stage, {nxt_learned:,.2f} learned, "
        f"from {nxt['deals']} deals"
    ) in html
    assert len(CHART.findall(html)) == 2  # the forecast and the waterfall
    engine.dispose()
