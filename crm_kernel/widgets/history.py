"""The runs of this session, newest first; clicking one loads its spec back into the builder."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets


@dataclass
class Run:
    at: dt.datetime
    spec: dict
    backend: str
    rows: int | None
    seconds: float

    def summary(self) -> str:
        rules = _count_rules(self.spec.get("where"))
        shape = (
            f"grouped by {', '.join(_key(k) for k in self.spec['group_by'])}"
            if self.spec.get("group_by")
            else ("aggregated" if self.spec.get("aggregates") else f"{rules} rule{'s' if rules != 1 else ''}")
        )
        rows = f"{self.rows}" if self.rows is not None else "?"
        return (
            f"{self.at:%H:%M:%S} · {self.spec['entity']} · {shape} · {rows} rows · "
            f"{self.seconds * 1000:.1f} ms · {self.backend}"
        )


def _count_rules(group) -> int:
    if not group:
        return 0
    return sum(_count_rules(r) if "rules" in r else 1 for r in group.get("rules", []))


def _key(item) -> str:
    return item if isinstance(item, str) else item.get("field", "?")


class RunHistory(widgets.VBox):
    """Recent runs as buttons; ``on_pick(spec)`` is called with a copy of the clicked run's spec."""

    def __init__(self, on_pick: Callable[[dict], None], keep: int = 20):
        self.on_pick, self.keep = on_pick, keep
        self.runs: list[Run] = []
        self.empty = widgets.HTML("<i>No runs yet in this session.</i>")
        super().__init__([self.empty])
        self.add_class("crm-history")

    def add(self, spec: dict, backend: str, rows: int | None, seconds: float) -> Run:
        run = Run(dt.datetime.now(), copy.deepcopy(spec), backend, rows, seconds)
        self.runs = [run, *self.runs][: self.keep]
        self.children = [self._button(r) for r in self.runs]
        return run

    def _button(self, run: Run) -> widgets.Button:
        button = widgets.Button(
            description=run.summary(),
            tooltip=json.dumps(run.spec, indent=1)[:2000],
            layout=widgets.Layout(width="auto"),
        )
        button.add_class("crm-history-item")
        button.on_click(lambda _: self.on_pick(copy.deepcopy(run.spec)))
        return button
