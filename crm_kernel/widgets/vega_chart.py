"""``VegaChart``: a Vega-Lite spec, a plain dict, drawn in the page by vega-embed, and the
points clicked in it sent back to the kernel; no altair (seconds to import, pandas with it).

    from crm_kernel.analytics import specs
    from crm_kernel.widgets.vega_chart import VegaChart
    chart = VegaChart(specs.forecast_by_owner(frame, select="bar"))
    chart.observe(lambda change: print(change["new"]), "selections")
    # a click on a bar: {"bar": [{"period_label": "2026 Q2", "owner_id": "..."}]}

vega, vega-lite and vega-embed come from the installed vl-convert package, bundled with
``vega_chart.js`` (:func:`bundle`), so nothing is fetched to draw a chart and tooltips work.
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import metadata
from pathlib import Path

import anywidget
import traitlets

from ..config import Config, make_private_dir

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("vega_chart.js")
SVG = {"renderer": "svg", "actions": False}


def bundle(cache: Path | None = None) -> str:
    """``vega_chart.js`` with vega, vega-lite and vega-embed, as one script (no imports).

    vl-convert bundles it, which takes 5 to 20 s and a JavaScript runtime's memory, so the
    bundle is kept in ``$CRM_HOME/cache/`` per vl-convert version and source, and the next
    page's kernel reads it from there without importing vl-convert at all.
    """
    source = SOURCE.read_text(encoding="utf-8")
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    version = metadata.version("vl-convert-python")
    folder = cache or Config.from_env().home / "cache"
    kept = folder / f"vega-chart-vl-convert-{version}-{digest}.js"
    if kept.is_file():
        return kept.read_text(encoding="utf-8")
    import vl_convert

    bundled = vl_convert.javascript_bundle(source)
    try:
        make_private_dir(folder)
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")
        partial.write_text(bundled, encoding="utf-8")
        partial.replace(kept)  # whole or not at all: another kernel may be reading it
    except OSError as exc:  # a read-only home costs the next page the bundling time, nothing more
        log.warning("could not keep the chart bundle in %s: %s", folder, exc)
    return bundled


class VegaChart(anywidget.AnyWidget):
    """A chart of ``spec`` (Vega-Lite, data inline); ``selections`` maps each point selection
    of the spec to the points chosen in the page, emptied whenever the spec changes."""

    spec = traitlets.Dict().tag(sync=True)
    embed_options = traitlets.Dict().tag(sync=True)
    selections = traitlets.Dict().tag(sync=True)

    def __init__(self, spec: dict, embed_options: dict | None = None, **kwargs):
        if "_esm" not in VegaChart.__dict__:  # bundled or read once per kernel, by the first chart
            VegaChart._esm = bundle()
        super().__init__(spec=spec, embed_options=SVG if embed_options is None else embed_options, **kwargs)

    @traitlets.observe("spec")
    def _forget_selections(self, _change) -> None:
        self.selections = {}
