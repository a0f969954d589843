"""Timeline and LogActivity: a record's activities, newest first, and buttons to log new ones.

    from crm_kernel.widgets import LogActivity, Timeline
    timeline = Timeline(crm, "deals", deal_id)               # a page of 10; ◀ / ▶ page through
    LogActivity(crm, "deals", deal_id, on_logged=lambda a: timeline.refresh())

Activities are written through ``crm.activities`` only; the timeline reads
:func:`crm_kernel.services.related.timeline`.
"""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from collections.abc import Callable

import ipywidgets as widgets

from ..errors import CrmError, ValidationError
from ..services.related import TIMELINE_KEYS, timeline

PAGE_SIZE = 10
KINDS = {"call": "Call", "note": "Note", "meeting": "Meeting", "task": "Task"}
_ICONS = {
    "call": "☎",
    "email": "✉",
    "meeting": "👥",
    "task": "☐",
    "note": "✎",
    "linkedin_message": "in",
    "stage_change": "→",
}
# Office hours: a task due on a day is due at its end, a meeting on a day starts in the morning.
_DUE_HOUR, _MEETING_HOUR = 17, 9


class Timeline(widgets.VBox):
    """The activities of a company, contact or deal, a page at a time, newest first.
    ``entries`` holds the page on screen, ``total`` how many there are."""

    def __init__(self, crm, entity: str, record_id, *, page_size: int = PAGE_SIZE):
        if entity not in TIMELINE_KEYS:
            raise ValidationError({"entity": f"{entity} has no timeline; use one of {', '.join(TIMELINE_KEYS)}"})
        self.crm, self.entity, self.record_id, self.page_size = crm, entity, str(record_id), page_size
        self.tz = zoneinfo.ZoneInfo(crm.config.timezone)
        self.start, self.total, self.entries = 0, 0, []
        self.list = widgets.HTML("")
        self.list.add_class("crm-timeline-list")
        self.previous_button = widgets.Button(description="◀ Newer", layout=widgets.Layout(width="100px"))
        self.previous_button.add_class("crm-timeline-newer")
        self.next_button = widgets.Button(description="Older ▶", layout=widgets.Layout(width="100px"))
        self.next_button.add_class("crm-timeline-older")
        self.position = widgets.Label("")
        self.previous_button.on_click(lambda _: self.show(max(0, self.start - self.page_size)))
        self.next_button.on_click(lambda _: self.show(self.start + self.page_size))
        super().__init__(
            [
                self.list,
                widgets.HBox(
                    [self.previous_button, self.position, self.next_button], layout=widgets.Layout(align_items="center")
                ),
            ]
        )
        self.add_class("crm-timeline")
        self.show(0)

    def refresh(self) -> None:
        """Back to the newest page (after something was logged)."""
        self.show(0)

    def show(self, start: int) -> None:
        self.entries, self.total = timeline(self.crm, self.entity, self.record_id, limit=self.page_size, offset=start)
        self.start = start
        self.list.value = self._html()
        last = start + len(self.entries)
        self.position.value = f"{start + 1}–{last} of {self.total}" if self.entries else ""
        self.previous_button.disabled = start == 0
        self.next_button.disabled = last >= self.total

    def _when(self, at: dt.datetime | None) -> str:
        return at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if at else ""

    def _html(self) -> str:
        if not self.entries:
            return "<p class='crm-timeline-empty' style='color:#666'>No activities yet.</p>"
        items = []
        for a in self.entries:
            kind = a["type"]
            notes = (
                f"<div class='crm-timeline-notes' style='color:#444;white-space:pre-wrap'>"
                f"{html.escape(a['description'])}</div>"
                if a["description"]
                else ""
            )
            status = "" if a["status"] == "completed" else f" · {html.escape(a['status'].replace('_', ' '))}"
            items.append(
                f"<li class='crm-timeline-entry crm-activity-{kind}' style='margin:0 0 6px 0'>"
                f"<span class='crm-timeline-type' style='display:inline-block;min-width:92px;font-weight:600'>"
                f"{_ICONS.get(kind, '•')} {html.escape(kind.replace('_', ' '))}</span> "
                f"<span class='crm-timeline-subject'>{html.escape(a['subject'])}</span>"
                f"<div style='color:#666;font-size:90%'><span class='crm-timeline-when'>{self._when(a['at'])}</span>"
                f" · <span class='crm-timeline-who'>{html.escape(a['who'] or 'unknown')}</span>{status}</div>"
                f"{notes}</li>"
            )
        return "<ol style='list-style:none;padding:0;margin:0'>" + "".join(items) + "</ol>"


class LogActivity(widgets.VBox):
    """Buttons to log a call, note, meeting or task on a record, each opening a small form
    (subject, notes, a day for a meeting or a task). ``on_logged(activity)`` runs after a log."""

    def __init__(
        self,
        crm,
        entity: str,
        record_id,
        *,
        on_logged: Callable[[dict], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        if entity not in TIMELINE_KEYS:
            raise ValidationError({"entity": f"activities are logged on {', '.join(TIMELINE_KEYS)}, not {entity}"})
        self.crm, self.entity, self.record_id = crm, entity, str(record_id)
        self.on_logged = on_logged
        self.tz = zoneinfo.ZoneInfo(crm.config.timezone)
        self.clock = clock or (lambda: dt.datetime.now(self.tz))
        self.kind: str | None = None
        self.buttons = {}
        for kind, label in KINDS.items():
            button = widgets.Button(description=f"Log {label.lower()}", layout=widgets.Layout(width="120px"))
            button.add_class(f"crm-log-{kind}")
            button.on_click(lambda _, k=kind: self.show_form(k))
            self.buttons[kind] = button
        self.subject = widgets.Text(
            description="Subject", placeholder="What it was about", layout=widgets.Layout(width="480px")
        )
        self.subject.add_class("crm-log-subject")
        self.notes = widgets.Textarea(description="Notes", layout=widgets.Layout(width="480px", height="60px"))
        self.notes.add_class("crm-log-notes")
        self.day = widgets.DatePicker(description="Due")
        self.day.add_class("crm-log-day")
        self.save_button = widgets.Button(
            description="Log it", button_style="primary", layout=widgets.Layout(width="100px")
        )
        self.save_button.add_class("crm-log-save")
        self.cancel_button = widgets.Button(description="Cancel", layout=widgets.Layout(width="90px"))
        self.save_button.on_click(lambda _: self.submit())
        self.cancel_button.on_click(lambda _: self.close_form())
        self.title = widgets.HTML("")
        self.form = widgets.VBox(
            [self.title, self.subject, self.notes, self.day, widgets.HBox([self.save_button, self.cancel_button])],
            layout=widgets.Layout(display="none", border="1px solid #ddd", padding="6px"),
        )
        self.form.add_class("crm-log-form")
        self.message = widgets.HTML("")
        self.message.add_class("crm-log-message")
        super().__init__([widgets.HBox(list(self.buttons.values())), self.form, self.message])
        self.add_class("crm-log-activity")

    def show_form(self, kind: str) -> None:
        """What a "Log …" button does: show the form for ``kind``."""
        if kind not in KINDS:
            raise ValidationError({"type": f"log one of {', '.join(KINDS)}, not {kind!r}"}, "activities")
        self.kind = kind
        self.title.value = f"<b>Log a {KINDS[kind].lower()}</b>"
        self.day.description = {"task": "Due", "meeting": "On"}.get(kind, "")
        self.day.layout.display = "" if kind in ("task", "meeting") else "none"
        self.form.layout.display = ""
        self.message.value = ""

    def close_form(self) -> None:
        self.form.layout.display = "none"
        self.subject.value, self.notes.value, self.day.value = "", "", None
        self.kind = None

    def submit(
        self, kind: str | None = None, subject: str | None = None, notes: str | None = None, day: dt.date | None = None
    ) -> dict | None:
        """Log the form's activity (or the one given); returns it, or None when refused (the
        message says why)."""
        if kind is not None:
            self.show_form(kind)
            self.subject.value, self.notes.value, self.day.value = subject or "", notes or "", day
        if self.kind is None:
            return None
        try:
            activity = self.crm.activities.create(self.values())
        except CrmError as exc:
            problems = (
                "; ".join(f"{n.replace('_', ' ')} {p}" for n, p in exc.errors.items())
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            self.message.value = f"<span style='color:#b00020'>Not logged: {html.escape(problems)}</span>"
            return None
        self.message.value = (
            f"<span style='color:#1b5e20'>Logged {html.escape(KINDS[self.kind].lower())} "
            f"“{html.escape(activity['subject'])}”.</span>"
        )
        self.close_form()
        if self.on_logged is not None:
            self.on_logged(activity)
        return activity

    def values(self) -> dict:
        """The activity the form describes, tied to the record (and, for a deal, its company
        and contact; for a contact, its company)."""
        values = {
            "type": self.kind,
            "subject": self.subject.value.strip(),
            "description": self.notes.value.strip() or None,
            "owner_id": self.crm.user_id,
            TIMELINE_KEYS[self.entity]: self.record_id,
        }
        if self.entity == "deals":
            deal = self.crm.deals.get(self.record_id)
            values.update(company_id=deal["company_id"], contact_id=deal["contact_id"])
        elif self.entity == "contacts":
            values["company_id"] = self.crm.contacts.get(self.record_id)["company_id"]
        now = self.clock()
        day = self.day.value
        if self.kind == "task":
            values["status"] = "pending"
            if day is not None:
                values["due_at"] = dt.datetime.combine(day, dt.time(_DUE_HOUR), tzinfo=self.tz)
        elif self.kind == "meeting" and day is not None:
            at = dt.datetime.combine(day, dt.time(_MEETING_HOUR), tzinfo=self.tz)
            values["scheduled_at"] = at
            if at <= now:
                values.update(status="completed", completed_at=at)
            else:
                values["status"] = "pending"
        else:
            values.update(status="completed", completed_at=now)
        return values
