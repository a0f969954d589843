"""What the parsers hand to the writer: one neutral item per message or event, or a problem.

Parsers know nothing of the database; the writer knows nothing of MIME or iCalendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Address:
    """A person on a message or event: ``name`` as displayed, ``email`` as written."""

    email: str
    name: str = ""


@dataclass
class Item:
    """A message or event, ready to become an activity.

    ``source`` and ``external_id`` identify it across runs (activities.external_source and
    external_id); ``label`` says where it came from in reports (``inbox.mbox message 3``).
    """

    kind: Literal["email", "meeting"]
    source: Literal["email", "calendar"]
    external_id: str
    label: str
    subject: str
    body: str | None
    start: dt.datetime  # aware: the sent date, or the event's start
    sender: Address | None  # From, or the event's ORGANIZER
    recipients: list[Address] = field(default_factory=list)  # To + Cc, or ATTENDEEs
    end: dt.datetime | None = None
    all_day: bool = False
    cancelled: bool = False
    derived_id: bool = False  # no Message-ID / UID: external_id was derived from the content
    details: dict = field(default_factory=dict)  # kept in activities.external_data


@dataclass(frozen=True)
class Malformed:
    """An item that could not be read: ``label`` says which, ``reason`` why."""

    label: str
    reason: str


@dataclass(frozen=True)
class Known:
    """An item the source recognised by its id alone as ingested before, so it was not
    downloaded again (IMAP asks for Message-IDs first)."""

    label: str
    external_id: str


Parsed = Item | Malformed | Known
