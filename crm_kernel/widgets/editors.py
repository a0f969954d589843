"""Value editors: the input a rule shows for its value, chosen by field type and operator arity.

An editor turns what the user typed into the spec's JSON value (numbers stay numbers, dates
become "2026-01-31", lists become lists) and shows a spec's value. A value an editor cannot
show (a malformed one loaded from a saved spec) is kept as it is until the user edits it, so
the validation message about it stays true.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..query import Operator
from ..query.dates import UNITS
from ..query.schema import NUMERIC_TYPES
from .fields import FieldChoice

VALUE_CLASS = "crm-rule-value"
_UNSET = object()
_INTEGER = re.compile(r"^[+-]?\d{1,40}$")  # longer ones stay text: Python cannot parse 4,300 digits

# A suggestion function: (text typed so far) -> (values, complete); complete means no value
# beyond those exists, so typing more needs no new look-up.
Suggest = Callable[[str], tuple[list[str], bool]]


class CannotShow(Exception):
    """The editor's inputs cannot represent this value."""


def parse_number(text: str) -> int | float | str | None:
    """``"10000"`` -> 10000, ``"0.5"`` -> 0.5, ``""`` -> None; anything else stays text (and the
    spec's validation says what is wrong with it)."""
    text = text.strip().replace("_", "")
    if not text:
        return None
    if _INTEGER.match(text):
        return int(text)
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return text
    return number if math.isfinite(number) else text


def _number_text(value) -> str:
    if isinstance(value, bool):
        raise CannotShow(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise CannotShow(value)


class Editor:
    """One value input. ``widget`` is displayed; ``get()`` reads the spec value."""

    widget: widgets.Widget
    has_value = True  # False: the rule carries no "value" (null, notNull, today, ...)

    def __init__(self):
        self._raw = _UNSET
        self._setting = False
        self._callbacks: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def get(self) -> Any:
        return self._raw if self._raw is not _UNSET else self.read()

    def set(self, value: Any) -> None:
        self._setting = True
        try:
            self.write(value)
            self._raw = _UNSET
        except CannotShow:
            self._raw = value
        finally:
            self._setting = False

    def _changed(self, _change=None) -> None:
        if self._setting:
            return
        self._raw = _UNSET
        for callback in self._callbacks:
            callback()

    def _watch(self, *inputs: widgets.Widget) -> None:
        for w in inputs:
            w.observe(self._changed, "value")

    def _use(self, widget: widgets.Widget) -> None:
        """Make ``widget`` this editor's input: shown, found by the value CSS class, watched."""
        self.widget = widget
        widget.add_class(VALUE_CLASS)
        self._watch(widget)

    # subclasses
    def read(self) -> Any:
        raise NotImplementedError

    def write(self, value: Any) -> None:
        raise NotImplementedError


class NoValue(Editor):
    has_value = False

    def __init__(self):
        super().__init__()
        self.widget = widgets.HBox()

    def read(self):
        return None

    def write(self, value):
        pass


class TextValue(Editor):
    """Text with autocomplete: distinct values of the field, looked up on first use."""

    def __init__(self, suggest: Suggest | None = None):
        super().__init__()
        self.suggest = suggest
        self.widget = widgets.Combobox(
            value="", placeholder="text", ensure_option=False, layout=widgets.Layout(width="220px")
        )
        self.widget.add_class(VALUE_CLASS)
        self._looked_up: dict[str, list[str]] = {}
        self._complete = False
        self.widget.observe(self._typed, "value")
        self._watch(self.widget)

    def read(self):
        return self.widget.value

    def write(self, value):
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise CannotShow(value)
        self.widget.value = value

    def _typed(self, change) -> None:
        if not self._setting:
            self.load_suggestions(change["new"])

    def load_suggestions(self, text: str = "") -> list[str]:
        """Fetch distinct values (once, then again only while the known ones are a truncated
        list and the text typed narrows it)."""
        if self.suggest is None:
            return []
        if not self._looked_up:
            self._complete = self._fetch("")
        key = "" if self._complete else text.strip()
        if key not in self._looked_up:
            self._fetch(key)
        self.widget.options = tuple(self._looked_up[key])
        return self._looked_up[key]

    def _fetch(self, text: str) -> bool:
        try:
            values, complete = self.suggest(text)
        except Exception:  # suggestions are a convenience: a failed look-up never breaks typing
            values, complete = [], True
        self._looked_up[text] = values
        return complete


class NumberValue(Editor):
    """A number typed as text: ``"10000"`` becomes 10000, ``"0.25"`` 0.25."""

    def __init__(self):
        super().__init__()
        self._use(widgets.Text(value="", placeholder="number", layout=widgets.Layout(width="160px")))

    def read(self):
        return parse_number(self.widget.value)

    def write(self, value):
        self.widget.value = _number_text(value)


class TextInput(Editor):
    """Plain text (ids, JSON fields)."""

    def __init__(self, placeholder: str = "text"):
        super().__init__()
        self._use(widgets.Text(value="", placeholder=placeholder, layout=widgets.Layout(width="300px")))

    def read(self):
        return self.widget.value

    def write(self, value):
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise CannotShow(value)
        self.widget.value = value


class JsonValue(Editor):
    """A JSON value typed as text: the group over a multi-valued field's elements."""

    def __init__(self, placeholder: str = '{"rules": [{"field": "", "operator": "=", "value": "vip"}]}'):
        super().__init__()
        self._use(widgets.Text(value="", placeholder=placeholder, layout=widgets.Layout(width="420px")))

    def read(self):
        try:
            return json.loads(self.widget.value) if self.widget.value.strip() else None
        except json.JSONDecodeError:
            return self.widget.value  # the spec's check says what is wrong

    def write(self, value):
        self.widget.value = "" if value is None else json.dumps(value)


class _PickerValue(Editor):
    """A date or date-time picker; the spec holds the ISO text."""

    def read(self):
        return self.widget.value.isoformat() if self.widget.value else None


class DateValue(_PickerValue):
    def __init__(self):
        super().__init__()
        self._use(widgets.DatePicker(value=None, layout=widgets.Layout(width="170px")))

    def write(self, value):
        if value is None:
            self.widget.value = None
            return
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            self.widget.value = value
            return
        try:
            self.widget.value = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise CannotShow(value) from None


class TimestampValue(_PickerValue):
    """A local date and time; the engine reads it in the CRM's time zone (CRM_TIMEZONE)."""

    def __init__(self):
        super().__init__()
        self._use(widgets.NaiveDatetimePicker(value=None, layout=widgets.Layout(width="220px")))

    def write(self, value):
        if value is None:
            self.widget.value = None
            return
        try:
            stamp = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise CannotShow(value) from None
        if stamp.tzinfo is not None:
            raise CannotShow(value)  # shown as is would lose its zone: keep it untouched
        self.widget.value = stamp


class ChoiceValue(Editor):
    """One of a fixed list: enum values, true/false."""

    def __init__(self, options: list[tuple[str, Any]], value: Any = None):
        super().__init__()
        self.widget = widgets.Dropdown(options=options, value=value, layout=widgets.Layout(width="200px"))
        self.widget.add_class(VALUE_CLASS)
        self._values = [v for _, v in options]
        self._watch(self.widget)

    def read(self):
        return self.widget.value

    def write(self, value):
        if value is None:
            self.widget.value = None
            return
        matches = [v for v in self._values if v == value and type(v) is type(value)]
        if not matches:
            raise CannotShow(value)
        self.widget.value = matches[0]


class ManyValues(Editor):
    """A list: a multi-select for enums and multiselect options, tags for everything else."""

    def __init__(self, choice: FieldChoice):
        super().__init__()
        self.numeric = choice.type in NUMERIC_TYPES
        if choice.values:  # an enum's values, a multiselect's options
            self.widget = widgets.SelectMultiple(
                options=list(choice.values),
                value=(),
                rows=min(len(choice.values), 6),
                layout=widgets.Layout(width="220px"),
            )
            self._values = set(choice.values)
        else:
            self.widget = widgets.TagsInput(value=[], allow_duplicates=False, layout=widgets.Layout(width="320px"))
            self._values = None
        self.widget.add_class(VALUE_CLASS)
        self._watch(self.widget)

    def read(self):
        items = list(self.widget.value)
        if self.numeric:
            return [parse_number(str(item)) for item in items]
        return items

    def write(self, value):
        if value is None:
            value = []
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise CannotShow(value)
        if self._values is not None:
            if not all(isinstance(v, str) and v in self._values for v in value):
                raise CannotShow(value)
            self.widget.value = tuple(value)
            return
        if self.numeric:
            if any(isinstance(v, bool) or not isinstance(v, int | float | str) for v in value):
                raise CannotShow(value)
        elif not all(isinstance(v, str) for v in value):
            raise CannotShow(value)
        self.widget.value = [str(v) for v in value]


class PairValue(Editor):
    """Two bounds for between / notBetween."""

    def __init__(self, make: Callable[[], Editor]):
        super().__init__()
        self.low, self.high = make(), make()
        self.widget = widgets.HBox([self.low.widget, widgets.Label("and"), self.high.widget])
        self.low.on_change(self._changed)
        self.high.on_change(self._changed)

    def read(self):
        return [self.low.get(), self.high.get()]

    def write(self, value):
        if value is None:
            value = [None, None]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise CannotShow(value)
        self.low.set(value[0])
        self.high.set(value[1])


class RelativeValue(Editor):
    """``{"amount": 30, "unit": "day"}`` for inLast / inNext / olderThan."""

    def __init__(self):
        super().__init__()
        self.amount = widgets.BoundedIntText(value=30, min=0, max=100_000, layout=widgets.Layout(width="90px"))
        self.amount.add_class(VALUE_CLASS)
        self.unit = widgets.Dropdown(
            options=[(f"{u}s", u) for u in UNITS], value="day", layout=widgets.Layout(width="110px")
        )
        self.unit.add_class("crm-rule-unit")
        self.widget = widgets.HBox([self.amount, self.unit])
        self._watch(self.amount, self.unit)

    def read(self):
        return {"amount": self.amount.value, "unit": self.unit.value}

    def write(self, value):
        if value is None:
            return
        if not isinstance(value, dict) or set(value) - {"amount", "unit"}:
            raise CannotShow(value)
        amount, unit = value.get("amount"), value.get("unit", "day")
        if isinstance(amount, str) and _INTEGER.match(amount.strip()):
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= 100_000 or unit not in UNITS:
            raise CannotShow(value)
        self.amount.value, self.unit.value = amount, unit


class FieldValue(Editor):
    """Another field of the same record, for ``valueSource: "field"``."""

    def __init__(self, choices: list[FieldChoice]):
        super().__init__()
        self._paths = [c.path for c in choices]
        self._use(
            widgets.Dropdown(
                options=[(c.label, c.path) for c in choices],
                value=self._paths[0] if self._paths else None,
                layout=widgets.Layout(width="260px"),
            )
        )

    def read(self):
        return self.widget.value

    def write(self, value):
        if value not in self._paths:
            raise CannotShow(value)
        self.widget.value = value


def scalar_editor(choice: FieldChoice, suggest: Suggest | None = None) -> Editor:
    match choice.type:
        case "text":
            return TextValue(suggest)
        case "integer" | "number" | "money":
            return NumberValue()
        case "date":
            return DateValue()
        case "timestamp":
            return TimestampValue()
        case "enum":
            return ChoiceValue([(v.replace("_", " "), v) for v in choice.values])
        case "tags" if choice.values:  # a multiselect: one of its options
            return ChoiceValue([(v, v) for v in choice.values])
        case "boolean":
            return ChoiceValue([("true", True), ("false", False)], value=True)
        case "uuid":
            return TextInput("id (uuid)")
    return TextInput()


def editor_for(
    choice: FieldChoice,
    operator: Operator,
    *,
    suggest: Suggest | None = None,
    compare_with: list[FieldChoice] | None = None,
) -> Editor:
    """The editor for a rule on ``choice`` with ``operator``; ``compare_with`` is given when
    the rule compares with another field."""
    if compare_with is not None:
        return FieldValue(compare_with)
    if choice.type == "tags" and operator.name == "=":
        return JsonValue()  # a group over the elements, with the rule's match mode
    match operator.arity:
        case "none" | "period":
            return NoValue()
        case "relative":
            return RelativeValue()
        case "list":
            return ManyValues(choice)
        case "pair":
            return PairValue(lambda: scalar_editor(choice))
    return scalar_editor(choice, suggest)


def adapt(value: Any, old_arity: str | None, new_arity: str) -> Any:
    """Carry a value over when the operator changes shape (one value <-> a list <-> a pair)."""
    if value is None or old_arity == new_arity:
        return value
    if old_arity == "one" and new_arity == "list":
        return [] if value == "" else [value]
    if old_arity == "one" and new_arity == "pair":
        return [value, None]
    if old_arity in ("list", "pair") and new_arity == "one" and isinstance(value, list):
        return value[0] if value else None
    if old_arity == "pair" and new_arity == "list" and isinstance(value, list):
        return [v for v in value if v not in (None, "")]
    if old_arity == "list" and new_arity == "pair" and isinstance(value, list):
        return (list(value) + [None, None])[:2]
    return None
