"""The Vega-Lite specs the forecast app draws (plain dicts, no altair): each renders, through
vl-convert's own vega, to an SVG with one bar per row (two per month for won and lost) and
its title; and ``charts``' altair chart of the same frame is that spec, validated."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest
import vl_convert

from crm_kernel import CRM
from crm_kernel import demo as demo_data
from crm_kernel.analytics import specs
from crm_kernel.db import connect_engine

TODAY = dt.date(2026, 1, 15)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def analytics(make_database_module):
    url = make_database_module("crm_specs")
    engine = connect_engine(url)
    demo_data.load(engine, scale=0.05, seed=1, today=TODAY, replace=True)
    yield CRM(engine).analytics
    engine.dispose()


CASES = {
    "forecast_by_owner": (lambda a: a.forecast(by="owner"), {"select": "bar"}, "Forecast by owner", 1),
    "funnel": (lambda a: a.funnel(TODAY - dt.timedelta(days=89), TODAY), {}, "Funnel", 1),
    "waterfall": (lambda a: a.waterfall(dt.date(2026, 1, 1), TODAY), {}, "Pipeline waterfall", 1),
    "win_loss": (lambda a: a.win_rate(by="month", start=dt.date(2025, 2, 1), end=TODAY), {}, "Won and lost", 2),
}


def bars(svg: str) -> int:
    """The bars Vega drew: the paths of the SVG's rect marks."""
    root = ET.fromstring(svg)
    return sum(
        len(list(g.iter(f"{SVG}path"))) for g in root.iter(f"{SVG}g") if "mark-rect" in (g.get("class") or "").split()
    )


@pytest.mark.parametrize("name", CASES)
def test_each_spec_renders_a_bar_per_row_with_its_title(analytics, name):
    call, options, title, per_row = CASES[name]
    frame = call(analytics)
    assert frame.height > 0
    spec = getattr(specs, name)(frame, **options)
    json.dumps(spec)  # as the widget sends it to the page
    svg = vl_convert.vegalite_to_svg(specs.sized(spec, 600, 200))
    assert bars(svg) == per_row * frame.height
    assert title in svg


@pytest.mark.parametrize("name", CASES)
def test_the_notebooks_altair_chart_is_the_spec(analytics, name):
    from crm_kernel.analytics import charts

    call, options, _, _ = CASES[name]
    frame = call(analytics)
    spec = getattr(specs, name)(frame, **options)
    made = getattr(charts, name)(frame, **options).to_dict()  # validated against Vega-Lite's schema
    assert {k: v for k, v in made.items() if k not in ("$schema", "config")} == json.loads(json.dumps(spec))


def test_the_forecast_bar_picked_is_a_point_selection_over_its_period_and_owner(analytics):
    spec = specs.forecast_by_owner(analytics.forecast(by="owner"), select="bar")
    assert spec["params"] == [
        {"name": "bar", "select": {"type": "point", "fields": ["period_label", "owner_id"], "on": "click"}}
    ]
    assert "params" not in specs.forecast_by_owner(analytics.forecast(by="owner"))
