"""``KpiCard``: one figure with a label, a second line and a trend, for JupyterLab and Voilà.

    from crm_kernel.widgets.kpi import KpiCard
    KpiCard(label="Open pipeline", value="$12,400.00", raw="12400.00", detail="8 deals")
    KpiCard.money("won", "Won this month", total, detail="vs $900.00 last month", trend="up")

The card shows text the caller formatted; ``raw`` keeps the plain figure beside it (in the
page as ``data-value``) so that what is shown can be checked against the database.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

from ..model.money import Total

_HERE = Path(__file__).parent


class KpiCard(anywidget.AnyWidget):
    """A labelled figure; ``trend`` is ``"up"``, ``"down"``, ``"flat"`` or ``""``."""

    _esm = _HERE / "kpi.js"
    _css = _HERE / "my_day.css"

    key = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
    value = traitlets.Unicode("").tag(sync=True)
    raw = traitlets.Unicode("").tag(sync=True)
    detail = traitlets.Unicode("").tag(sync=True)
    trend = traitlets.Enum(("up", "down", "flat", ""), default_value="").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)

    @classmethod
    def money(cls, key: str, label: str, total: Total, **more) -> KpiCard:
        """A card for a :class:`Total`: its amount formatted, the deals it left out as the note."""
        return cls(key=key, label=label, **money_traits(total), **more)


def money_traits(total: Total) -> dict:
    """The ``value``, ``raw`` and ``note`` of a card showing ``total``."""
    return {"value": Total(total.amount, total.currency).format(), "raw": f"{total.amount:.2f}", "note": total.note()}
