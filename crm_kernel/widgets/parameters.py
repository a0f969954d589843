"""The values of a query's parameters, asked for before it runs.

A rule whose ``valueSource`` is ``"parameter"`` names a parameter instead of holding a value;
this form shows one input per parameter the builder's spec names (labelled and pre-filled from
the spec's ``"parameters"`` declarations) and keeps what is typed in ``source.params``, which
every query of the workbench (count, page, export) runs with.
"""

from __future__ import annotations

import json

import ipywidgets as widgets


def read_value(text: str):
    """What an input holds: JSON for a list or object (``[...]``, ``{"amount": 30, ...}``), else
    the text itself, which the query engine converts for the rule's field (numbers, dates)."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text  # the engine names the parameter and what is wrong with it
    return text


class ParameterForm(widgets.HBox):
    """One text input per parameter of ``builder``'s spec; hidden when there is none."""

    def __init__(self, builder, source):
        self.builder, self.source = builder, source
        self.inputs: dict[str, widgets.Text] = {}
        super().__init__(layout=widgets.Layout(flex_flow="row wrap", display="none"))
        self.add_class("crm-parameters")
        builder.on_change(lambda _: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        wanted = self.builder.parameters()
        if list(wanted) == list(self.inputs):
            return
        inputs = {}
        for name, declaration in wanted.items():
            box = self.inputs.get(name) or self._input(name, declaration)
            inputs[name] = box
        self.inputs = inputs
        self.children = [widgets.HTML("<b>Parameters</b>"), *inputs.values()] if inputs else []
        self.layout.display = "" if inputs else "none"
        for name in list(self.source.params):
            if name not in inputs:
                del self.source.params[name]

    def _input(self, name: str, declaration: dict) -> widgets.Text:
        label = str(declaration.get("label") or name)
        default = declaration.get("default")
        shown = "" if default is None else (json.dumps(default) if isinstance(default, dict | list) else str(default))
        box = widgets.Text(
            value=shown,
            description=label,
            placeholder=str(declaration.get("type") or "value"),
            style={"description_width": "initial"},
            layout=widgets.Layout(width="260px"),
        )
        box.add_class("crm-parameter")
        if shown:
            self.source.params[name] = read_value(shown)

        def changed(change, name=name):
            if change["new"].strip():
                self.source.params[name] = read_value(change["new"])
            else:
                self.source.params.pop(name, None)  # empty: the declared default, or "has no value"

        box.observe(changed, "value")
        return box

    def set(self, **values) -> None:
        """Fill inputs from Python: ``form.set(min_value=10000)``."""
        for name, value in values.items():
            self.inputs[name].value = json.dumps(value) if isinstance(value, dict | list) else str(value)
