"""RecordPage: one company, contact, deal or activity to read and edit, as
``dashboards/record.ipynb?entity=companies&id=<uuid>`` shows it.

    from crm_kernel.widgets.record_page import RecordPage, record_page, record_url
    RecordPage(crm, "deals", deal_id)         # form, related records, log buttons, timeline
    record_page(crm, {"entity": "deals", "id": "..."})   # the same, or a message saying what is wrong
    record_url("deals", deal_id)              # "record.ipynb?entity=deals&id=..."

Every related record links to its own page; the links are relative, so they work from any
page Voilà serves (``/voila/render/...``).
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

import ipywidgets as widgets

from ..errors import CrmError, NotFoundError, ValidationError
from ..model import catalog
from ..services.related import PAGE_ENTITIES, TIMELINE_KEYS, Group, related, title_of
from .record_form import RecordForm, money_note
from .timeline import LogActivity, Timeline

RECORD_APP = "record.ipynb"


def record_url(entity: str, record_id, app: str = RECORD_APP) -> str:
    """The record page's address relative to the dashboards: ``record.ipynb?entity=deals&id=...``."""
    return f"{app}?{urlencode({'entity': entity, 'id': str(record_id)})}"


def _link(entity: str, record_id, text: str) -> str:
    return (
        f"<a class='crm-record-link' style='color:#1565c0' data-entity='{entity}' "
        f"data-id='{html.escape(str(record_id))}' "
        f"href='{html.escape(record_url(entity, record_id))}'>{html.escape(text)}</a>"
    )


class RelatedRecords(widgets.HTML):
    """The records related to one record, grouped, each linking to its page."""

    def __init__(self, crm, entity: str, record: dict):
        super().__init__("")
        self.crm, self.entity = crm, entity
        self.add_class("crm-related")
        self.show(record)

    def show(self, record: dict) -> None:
        self.groups: list[Group] = related(self.crm, self.entity, record)
        parts = []
        for group in self.groups:
            items = []
            for link in group.links:
                name = _link(link.entity, link.id, link.title) if link.has_page else html.escape(link.title)
                detail = f" <span style='color:#666'>· {html.escape(link.detail)}</span>" if link.detail else ""
                items.append(f"<li>{name}{detail}</li>")
            if not items:
                items.append("<li style='color:#666'>none</li>")
            more = (
                f"<li style='color:#666'>… and {group.total - len(group.links)} more</li>"
                if group.total > len(group.links)
                else ""
            )
            slug = group.label.lower()
            parts.append(
                f"<section class='crm-related-{slug}'><h4 style='margin:8px 0 2px'>{html.escape(group.label)}"
                f" <span style='color:#666;font-weight:normal'>({group.total})</span></h4>"
                f"<ul style='margin:0;padding-left:18px'>{''.join(items)}{more}</ul></section>"
            )
        self.value = "".join(parts)


class RecordPage(widgets.VBox):
    """A record's page: its name, its fields to edit, its related records and, for companies,
    contacts and deals, buttons to log activities and its timeline."""

    def __init__(self, crm, entity: str, record_id, *, page_size: int | None = None):
        self.crm, self.entity = crm, catalog.entity(entity)
        self.form = RecordForm(crm, entity, record_id, on_saved=self._saved)
        self.heading = widgets.HTML("")
        self.heading.add_class("crm-record-heading")
        self.related = RelatedRecords(crm, entity, self.form.record)
        side = [widgets.HTML("<h3 style='margin:0'>Related</h3>"), self.related]
        self.timeline: Timeline | None = None
        self.log_activity: LogActivity | None = None
        if entity in TIMELINE_KEYS:
            self.timeline = Timeline(crm, entity, record_id, **({"page_size": page_size} if page_size else {}))
            self.log_activity = LogActivity(crm, entity, record_id, on_logged=lambda _: self._logged())
            side += [widgets.HTML("<h3 style='margin:12px 0 4px'>Activity</h3>"), self.log_activity, self.timeline]
        body = widgets.HBox(
            [self.form, widgets.VBox(side, layout=widgets.Layout(margin="0 0 0 24px", min_width="360px"))],
            layout=widgets.Layout(align_items="flex-start", flex_flow="row wrap"),
        )
        super().__init__([self.heading, body])
        self.add_class("crm-record-page")
        self._show_heading()

    def _saved(self, record: dict) -> None:
        self._show_heading()
        self.related.show(record)

    def _logged(self) -> None:
        if self.timeline is not None:
            self.timeline.refresh()

    def _show_heading(self) -> None:
        record = self.form.record
        title = title_of(self.entity.name, record)
        extra = ""
        if self.entity.name == "deals":
            extra = money_note(self.crm, record, "value", record.get("value"), record.get("currency"))
            weighted = money_note(
                self.crm, record, "weighted_value", record.get("weighted_value"), record.get("currency")
            )
            extra = f"Value {extra or '—'}" + (f" · weighted {weighted}" if weighted else "")
        elif self.entity.name == "companies" and record.get("annual_revenue") is not None:
            extra = f"Annual revenue {money_note(self.crm, record, 'annual_revenue', record['annual_revenue'], None)}"
        sub = f"<div class='crm-record-money' style='color:#444'>{extra}</div>" if extra else ""
        self.heading.value = (
            f"<div style='color:#666;text-transform:uppercase;font-size:80%'>"
            f"{html.escape(self.entity.singular)}</div>"
            f"<h2 class='crm-record-title' style='margin:0 0 4px'>{html.escape(title)}</h2>{sub}"
        )


def page_message(text: str) -> widgets.HTML:
    """What the page shows instead of a record: a plain sentence, never a traceback."""
    message = widgets.HTML(
        f"<div style='padding:16px;border:1px solid #e0b4b4;background:#fff6f6;"
        f"color:#9f3a38;max-width:640px'>{html.escape(text)}</div>"
    )
    message.add_class("crm-record-missing")
    return message


def record_page(crm, query: dict[str, str]) -> widgets.Widget:
    """The page for ``?entity=...&id=...``: a :class:`RecordPage`, or a message saying what
    is missing or unknown."""
    entity, record_id = (query.get("entity") or "").strip(), (query.get("id") or "").strip()
    names = ", ".join(PAGE_ENTITIES)
    if not entity:
        return page_message(f"No record named: open this page as record.ipynb?entity=<{names}>&id=<record id>.")
    if entity not in PAGE_ENTITIES:
        return page_message(f"Unknown kind of record {entity!r}: use one of {names}.")
    if not record_id:
        return page_message(f"No {catalog.entity(entity).singular.lower()} named: the address needs &id=<record id>.")
    try:
        return RecordPage(crm, entity, record_id)
    except ValidationError as exc:
        return page_message(f"{record_id!r} is not a record id: {'; '.join(exc.errors.values())}.")
    except NotFoundError as exc:
        return page_message(f"Not found: {exc}. It may have been deleted.")
    except CrmError as exc:
        return page_message(f"This record cannot be shown: {exc}")
