"""RecordForm: one record's fields as inputs chosen by their catalog type, saved through its service.

    from crm_kernel.widgets import RecordForm
    form = RecordForm(crm, "companies", company_id)   # display it; form.save() is the Save button

Text fields are text boxes, numbers and money are text boxes too (so that what the user typed
reaches the service's validation as typed), dates are date pickers, enums drop-downs,
references a picker over the target's records; declared custom fields follow their type.
Saving sends only the changed fields with the version the form was loaded at:

- refused input (``ValidationError``) puts each message under its field and writes nothing;
- a record changed meanwhile (``ConflictError``) is refused too: the form takes the current
  record as its new base, refreshes the fields the user had not touched, keeps the user's
  edits, and says under each field someone else changed what it holds now. Saving again
  applies the user's edits over the current record.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import ipywidgets as widgets

from ..errors import ConflictError, CrmError, NotFoundError, ValidationError
from ..model import catalog
from ..model.catalog import Field
from ..model.currencies import format_money
from ..services.related import title_of

PICKER_OPTIONS = 50  # records a reference picker lists (the search box narrows them)
_LONG_TEXT = frozenset({"description"})
# Shown above the editable fields, not edited here.
_INFO = ("version", "updated_at", "created_at")


def _service(crm, entity: str):
    return crm.stages if entity == "pipeline_stages" else getattr(crm, entity)


def shown_value(value: Any) -> str:
    """A stored value as a person reads it (``"—"`` for none)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.replace("_", " ") if value.islower() and " " not in value and "@" not in value else value
    return str(value)


def _same(kind: str, before: Any, after: Any) -> bool:
    """Whether a form value says the same as the stored one (``"1200"`` is ``Decimal("1200.00")``)."""
    if kind == "boolean":  # an unset custom flag shows as an unticked box
        return bool(before) == bool(after)
    if kind == "tags":  # an unset multiselect shows as no choices
        return list(before or []) == list(after or [])
    if kind == "date":  # a custom field's date is stored as JSON text
        before, after = (dt.date.fromisoformat(v) if isinstance(v, str) else v for v in (before, after))
    if before is None or after is None:
        return before is None and after is None
    if kind in ("number", "money", "integer"):
        try:
            return Decimal(str(before)) == Decimal(str(after))
        except InvalidOperation:
            return False
    if kind == "timestamp" and isinstance(before, dt.datetime):
        try:  # the input shows whole seconds
            return dt.datetime.fromisoformat(str(after)) == before.replace(microsecond=0)
        except ValueError:
            return False
    if kind == "uuid":
        return str(before) == str(after)
    return before == after


class ReferencePicker(widgets.HBox):
    """Pick a record of ``target`` by name: a drop-down of the first records, narrowed by a
    search box. ``value`` is the chosen id (text) or None."""

    def __init__(self, crm, target: str, *, nullable: bool = True, description: str = ""):
        self.crm, self.target, self.nullable = crm, target, nullable
        self.entity = catalog.entity(target)
        self.dropdown = widgets.Dropdown(
            options=[],
            description=description,
            style={"description_width": "150px"},
            layout=widgets.Layout(width="330px"),
        )
        self.search = widgets.Text(placeholder="Search…", continuous_update=False, layout=widgets.Layout(width="140px"))
        self.search.add_class("crm-picker-search")
        self.search.observe(lambda change: self._narrow(change["new"]), "value")
        super().__init__([self.dropdown, self.search])
        self.add_class("crm-reference-picker")
        self._narrow("")

    @property
    def value(self) -> str | None:
        return self.dropdown.value or None

    @value.setter
    def value(self, record_id) -> None:
        wanted = "" if record_id is None else str(record_id)
        if wanted not in [v for _, v in self.dropdown.options]:  # add it to the choices on offer
            self._options([c for c in self.dropdown.options if c[1]], keep=wanted or None)
        self.dropdown.value = wanted if wanted in [v for _, v in self.dropdown.options] else None

    def observe_value(self, handler: Callable) -> None:
        self.dropdown.observe(handler, "value")

    def _choices(self, text: str) -> list[tuple[str, str]]:
        """The first records by name, or those whose name contains ``text`` (through the query
        engine, so a large table is searched by the database)."""
        names = ["first_name", "last_name"] if self.target == "contacts" else [self.entity.title_field]
        order = list(self.entity.default_order) if self.target == "pipeline_stages" else names[::-1]
        rules = [{"field": "active", "operator": "=", "value": True}] if self.target == "users" else []
        if text.strip():
            rules.append(
                {
                    "combinator": "or",
                    "rules": [{"field": n, "operator": "contains", "value": text.strip()} for n in names],
                }
            )
        spec = {
            "entity": self.target,
            "select": ["id", *names],
            "order_by": [{"field": n.lstrip("-"), "dir": "asc"} for n in order],
            "limit": PICKER_OPTIONS,
        }
        if rules:
            spec["where"] = {"combinator": "and", "rules": rules}
        rows = self.crm.query(spec).to_dicts()
        return [(title_of(self.target, r), str(r["id"])) for r in rows]

    def _options(self, choices: list[tuple[str, str]], keep: str | None) -> None:
        if keep is not None and keep not in [v for _, v in choices]:
            try:
                record = _service(self.crm, self.target).get(keep, include_deleted=True)
                choices = [(title_of(self.target, record), keep), *choices]
            except CrmError:
                choices = [(f"(missing {keep})", keep), *choices]
        if self.nullable:
            choices = [("—", ""), *choices]
        self.dropdown.options = choices

    def _narrow(self, text: str) -> None:
        current = self.value
        self._options(self._choices(text), keep=current)
        self.dropdown.value = current or ("" if self.nullable else None)


class FieldEditor(widgets.VBox):
    """One field: its label, an input fitting its type, a note (money converted, someone
    else's change) and an error message. ``name`` is the field's name, or
    ``custom_fields.<key>`` for a custom field."""

    def __init__(
        self,
        crm,
        name: str,
        label: str,
        kind: str,
        *,
        field: Field | None = None,
        nullable: bool = True,
        readonly: bool = False,
        options: list[str] | None = None,
    ):
        self.crm, self.name, self.kind, self.field = crm, name, kind, field
        self.options = options  # a multiselect's: the only tags its input takes
        self.nullable = nullable
        self.input = self._make_input(label, readonly)
        # Under the input, not under its label.
        self.note = widgets.HTML("", layout=widgets.Layout(margin="0 0 0 158px"))
        self.note.add_class("crm-field-note")
        self.error = widgets.HTML("", layout=widgets.Layout(margin="0 0 0 158px"))
        self.error.add_class("crm-field-error")
        super().__init__([self.input, self.note, self.error], layout=widgets.Layout(margin="0 0 4px 0"))
        self.add_class("crm-field")
        self.add_class("crm-field-" + name.replace(".", "-"))

    def _make_input(self, label: str, readonly: bool):
        style = {"description_width": "150px"}
        wide = widgets.Layout(width="480px")
        f = self.field
        if self.kind == "uuid" and f is not None and f.references:
            return ReferencePicker(self.crm, f.references, nullable=self.nullable, description=label)
        if self.kind == "enum":
            options = ([("—", "")] if self.nullable else []) + [(v.replace("_", " "), v) for v in f.values]
            return widgets.Dropdown(options=options, description=label, style=style, disabled=readonly)
        if self.kind == "boolean":
            return widgets.Checkbox(description=label, indent=True, style=style, disabled=readonly)
        if self.kind == "date":
            return widgets.DatePicker(description=label, style=style, disabled=readonly)
        if self.kind == "tags":
            box = widgets.TagsInput(
                value=[],
                allow_duplicates=False,
                allowed_tags=list(self.options or []),
                layout=widgets.Layout(width="330px"),
            )
            return widgets.HBox(
                [widgets.Label(label, layout=widgets.Layout(width="150px")), box], layout=widgets.Layout(width="480px")
            )
        if self.kind == "text" and self.name in _LONG_TEXT:
            return widgets.Textarea(
                description=label, style=style, layout=widgets.Layout(width="480px", height="70px"), disabled=readonly
            )
        placeholder = {"timestamp": "2026-01-31 09:30", "integer": "a whole number"}.get(self.kind, "")
        return widgets.Text(description=label, style=style, layout=wide, placeholder=placeholder, disabled=readonly)

    # -- values ------------------------------------------------------------------------------

    @property
    def value(self) -> Any:
        """What the input holds, as the service takes it (blank text is None where the field
        may be empty; a required field gets the blank, which the service refuses by name)."""
        if self.kind == "tags":
            return list(self.input.children[1].value)
        raw = self.input.value
        if isinstance(raw, str) and not raw.strip():
            return raw if not self.nullable and self.kind == "text" else None
        return raw

    @value.setter
    def value(self, stored: Any) -> None:
        if self.kind == "tags":
            self.input.children[1].value = list(stored or [])
        elif isinstance(self.input, (widgets.Text, widgets.Textarea)):
            if stored is None:
                self.input.value = ""
            elif isinstance(stored, dt.datetime):
                self.input.value = stored.isoformat(sep=" ", timespec="seconds")
            else:
                self.input.value = str(stored)
        elif isinstance(self.input, widgets.Checkbox):
            self.input.value = bool(stored)
        elif isinstance(self.input, widgets.DatePicker):
            self.input.value = dt.date.fromisoformat(stored) if isinstance(stored, str) else stored
        elif isinstance(self.input, ReferencePicker):
            self.input.value = stored
        else:  # an enum's drop-down: "" is its "—"
            self.input.value = "" if stored is None and self.nullable else stored

    def differs(self, stored: Any) -> bool:
        return not _same(self.kind, stored, self.value)

    def show_error(self, message: str | None) -> None:
        self.error.value = f"<span style='color:#b00020'>{html.escape(message)}</span>" if message else ""

    def show_note(self, text: str | None, css: str = "#555") -> None:
        self.note.value = f"<span style='color:{css};font-size:90%'>{text}</span>" if text else ""


def _custom_value(kind: str, value: Any) -> Any:
    """A custom field's form value as JSON stores it; ``ValueError`` says why it cannot be."""
    if value is None:
        return None
    if kind == "integer":
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number") from None
    if kind == "number":
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind == "multiselect":
        return list(value) or None
    return value


class RecordForm(widgets.VBox):
    """A record's editable fields and Save. ``record`` is the record as last loaded or saved,
    ``message`` the outcome of the last save; ``on_saved(record)`` is called after a save."""

    def __init__(self, crm, entity: str, record_id, *, on_saved: Callable[[dict], None] | None = None):
        self.crm = crm
        self.entity = catalog.entity(entity)
        self.service = _service(crm, entity)
        self.on_saved = on_saved
        self.record = self.service.get(record_id)
        self.editors: dict[str, FieldEditor] = {}
        for f in self.entity.writable_fields:
            if f.type in ("json", "search"):
                continue  # custom fields get an editor each below; other JSON is not edited here
            label = f.relation.replace("_", " ").capitalize() if f.references else f.label  # "Owner", not "Owner id"
            self.editors[f.name] = FieldEditor(crm, f.name, label, f.type, field=f, nullable=f.nullable)
        self.custom_types: dict[str, str] = {}
        for definition in crm.custom_fields.list(entity=entity, limit=None, order_by="key"):
            key = definition["key"]
            self.custom_types[key] = definition["type"]
            kind = (
                definition["type"]
                if definition["type"] in ("boolean", "date", "timestamp")
                else (
                    "number"
                    if definition["type"] in ("number", "integer")
                    else "tags"
                    if definition["type"] == "multiselect"
                    else "text"
                )
            )
            self.editors[f"custom_fields.{key}"] = FieldEditor(
                crm, f"custom_fields.{key}", definition["label"] or key, kind, options=definition.get("options")
            )
        self.info = widgets.HTML("")
        self.info.add_class("crm-record-info")
        self.message = widgets.HTML("")
        self.message.add_class("crm-record-message")
        self.save_button = widgets.Button(
            description="Save", button_style="primary", icon="", layout=widgets.Layout(width="100px")
        )
        self.save_button.add_class("crm-record-save")
        self.save_button.on_click(lambda _: self.save())
        own = [e for n, e in self.editors.items() if not n.startswith("custom_fields.")]
        custom = [e for n, e in self.editors.items() if n.startswith("custom_fields.")]
        parts = [self.info, *own]
        if custom:
            heading = widgets.HTML("<h4 style='margin:8px 0 4px'>Custom fields</h4>")
            parts += [heading, *custom]
        # A fixed width: a long message wraps under Save instead of pushing the page's side column away.
        self.message.layout = widgets.Layout(width="400px")
        super().__init__(
            [*parts, widgets.HBox([self.save_button, self.message], layout=widgets.Layout(align_items="center"))],
            layout=widgets.Layout(width="560px", flex="0 0 auto"),
        )
        self.add_class("crm-record-form")
        if "value" in self.editors:
            self.editors["value"].input.observe(lambda _: self._show_money(), "value")
        if "currency" in self.editors:
            self.editors["currency"].input.observe(lambda _: self._show_money(), "value")
        self.load(self.record)

    # -- what callers do -----------------------------------------------------------------------

    def load(self, record: dict) -> None:
        """Show ``record``: every input, no messages."""
        self.record = record
        for name, editor in self.editors.items():
            editor.value = self._stored(name, record)
            editor.show_error(None)
            editor.show_note(None)
        self._show_info()
        self._show_money()

    def reload(self) -> None:
        self.load(self.service.get(self.record["id"]))
        self.message.value = ""

    def changes(self) -> dict:
        """The fields whose input differs from the loaded record, as the service takes them.
        A custom field that cannot be converted raises ``ValidationError`` naming it."""
        out: dict[str, Any] = {}
        custom = dict(self.record.get("custom_fields") or {})
        custom_changed, errors = False, {}
        for name, editor in self.editors.items():
            if not editor.differs(self._stored(name, self.record)):
                continue
            if name.startswith("custom_fields."):
                key = name.split(".", 1)[1]
                try:
                    value = _custom_value(self.custom_types[key], editor.value)
                except ValueError as exc:
                    errors[name] = str(exc)
                    continue
                if value is None:
                    custom.pop(key, None)
                else:
                    custom[key] = value
                custom_changed = True
            else:
                out[name] = editor.value
        if errors:
            raise ValidationError(errors, self.entity.name)
        if custom_changed:
            out["custom_fields"] = custom
        return out

    def save(self) -> bool:
        """What Save does; True when the record was written (or nothing had changed)."""
        for editor in self.editors.values():
            editor.show_error(None)
        try:
            changes = self.changes()
            if not changes:
                self._say("Nothing to save: no field was changed.", "#555")
                return True
            saved = self.service.update(self.record["id"], changes, expected_version=self.record["version"])
        except ValidationError as exc:
            self._refused(exc)
            return False
        except ConflictError as exc:
            self._conflict(exc.current or self.service.get(self.record["id"]))
            return False
        except NotFoundError as exc:
            self._say(f"Not saved: {exc}", "#b00020")
            return False
        except CrmError as exc:
            self._say(f"Not saved: {exc}", "#b00020")
            return False
        names = ", ".join(self._label(n) for n in changes)
        self.load(saved)
        self._say(f"Saved: {names}.", "#1b5e20")
        if self.on_saved is not None:
            self.on_saved(saved)
        return True

    # -- inside --------------------------------------------------------------------------------

    def _stored(self, name: str, record: dict) -> Any:
        if name.startswith("custom_fields."):
            return (record.get("custom_fields") or {}).get(name.split(".", 1)[1])
        return record.get(name)

    def _label(self, name: str) -> str:
        if name == "custom_fields":
            return "custom fields"
        editor = self.editors.get(name)
        return editor.input.description if editor and hasattr(editor.input, "description") else name

    def _say(self, text: str, colour: str) -> None:
        self.message.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def _refused(self, exc: ValidationError) -> None:
        unplaced = []
        for name, problem in exc.errors.items():
            editor = self.editors.get(name)
            if editor is None and name == "stage":
                editor = self.editors.get("stage_id")
            if editor is None:
                unplaced.append(f"{name}: {problem}")
            else:
                editor.show_error(problem)
        detail = f" {'; '.join(unplaced)}." if unplaced else ""
        self._say(f"Not saved: fix the fields marked below.{detail}", "#b00020")

    def _conflict(self, current: dict) -> None:
        """Someone else saved first: take their record as the base, keep the user's edits."""
        base = self.record
        edited = {n for n, e in self.editors.items() if e.differs(self._stored(n, base))}
        changed = [
            n for n in self.editors if not _same(self.editors[n].kind, self._stored(n, base), self._stored(n, current))
        ]
        self.record = current
        for name, editor in self.editors.items():
            editor.show_note(None)
            if name not in edited:
                editor.value = self._stored(name, current)
            elif name in changed:
                editor.show_note(
                    "Someone else changed this; it is now "
                    f"<b>{html.escape(shown_value(self._stored(name, current)))}</b>."
                    " Your edit is kept.",
                    "#8a5300",
                )
        for name in changed:
            if name not in edited:
                self.editors[name].show_note("Changed by someone else (shown as it is now).", "#8a5300")
        names = ", ".join(self._label(n) for n in changed) or "no field shown here"
        self._say(
            f"Not saved: someone else changed this record meanwhile ({names}). "
            "Their values are shown; your edits are kept. Save again to apply them.",
            "#8a5300",
        )
        self._show_info()
        self._show_money()

    def _show_info(self) -> None:
        r = self.record
        by = r.get("updated_at")
        self.info.value = (
            f"<span style='color:#666;font-size:90%'>Version {r.get('version')} · updated "
            f"{html.escape(shown_value(by))}</span>"
        )

    def _show_money(self) -> None:
        """Money in its own currency and in the reporting currency."""
        for name, editor in self.editors.items():
            if editor.kind != "money":
                continue
            editor.show_note(
                money_note(
                    self.crm,
                    self.record,
                    name,
                    editor.value,
                    self.editors["currency"].value if "currency" in self.editors else None,
                )
            )


def money_note(crm, record: dict, name: str, amount, currency: str | None) -> str:
    """``"€1,200.00 · $1,302.00 in USD"``: an amount in its currency and converted."""
    try:
        value = Decimal(str(amount)) if amount is not None else None
    except InvalidOperation:
        return ""
    if value is None:
        return ""
    reporting = crm.money.reporting_currency()
    currency = (currency or reporting).upper()
    try:
        own = format_money(value, currency)
    except Exception:  # noqa: BLE001 - a currency being typed; the service validates it on save
        return ""
    if currency == reporting:
        return html.escape(own)
    on = record.get("actual_close_date")
    try:
        rate = crm.money.rate(currency, on=on)
    except CrmError:
        rate = None
    if rate is None:
        return f"{html.escape(own)} · no {html.escape(currency)} exchange rate into {reporting}"
    converted = (value * rate).quantize(Decimal("0.01"))
    return f"{html.escape(own)} · {html.escape(format_money(converted, reporting))} in {reporting}"
