"""Parsing calendars: the VEVENTs of an iCalendar (.ics) file into items, with ``icalendar``.

Times keep their zone: a DTSTART with a TZID or in UTC is that instant; a floating time (no
zone) and an all-day date are read in ``CRM_TIMEZONE``. Without DTEND or DURATION an all-day
event lasts one day and a timed one ends when it starts (RFC 5545).

Recurring events are not expanded: an RRULE can be endless, and every run would have to
decide how far to go. The series is stored as its first instance (its DTSTART; the rule is
kept in ``external_data.rrule``), and every instance the file itself holds (a VEVENT with a
RECURRENCE-ID: a moved or changed occurrence) is stored as one more activity, identified by
UID + RECURRENCE-ID.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

from ..errors import IngestError
from .items import Address, Item, Malformed, Parsed

# Properties an event's activity is made of: one of them broken makes the event malformed;
# a broken property outside them (an X- extension, a bad GEO) is ignored.
_NEEDED = {"DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "UID", "SUMMARY", "ORGANIZER", "ATTENDEE"}


def ics_events(path: Path, timezone: str = "UTC") -> tuple[int, Iterator[Parsed]]:
    """The events of an .ics file: their number and an iterator over them, in file order."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"no calendar file at {path}")
    try:
        calendars = icalendar.Calendar.from_ical(path.read_bytes(), multiple=True)
    except ValueError as exc:
        raise IngestError(f"{path} is not an iCalendar file: {exc}") from None
    events = [e for cal in calendars for e in cal.walk("VEVENT")]
    zone = ZoneInfo(timezone)
    return len(events), (parse_event(e, f"{path.name} event {n}", zone) for n, e in enumerate(events, 1))


def parse_event(event: icalendar.Event, label: str, zone: dt.tzinfo) -> Parsed:
    """One VEVENT as an :class:`Item`, or :class:`Malformed` saying why not."""
    uid = str(event.get("UID", "")).strip()
    if uid:
        label = f"{label} (UID {uid})"
    broken = [f"{name}: {problem}" for name, problem in event.errors if name in _NEEDED]
    if broken:
        return Malformed(label, "; ".join(broken))
    if "DTSTART" not in event:
        return Malformed(label, "no DTSTART: the event has no start")
    try:
        return _item(event, uid, label, zone)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return Malformed(label, f"unreadable event: {exc}")


def _item(event: icalendar.Event, uid: str, label: str, zone: dt.tzinfo) -> Parsed:
    raw_start = event.decoded("DTSTART")
    all_day = not isinstance(raw_start, dt.datetime)
    start = _instant(raw_start, zone)
    if "DTEND" in event:
        end = _instant(event.decoded("DTEND"), zone)
    elif "DURATION" in event:
        end = start + event.decoded("DURATION")
    else:  # RFC 5545: a day without DTEND lasts the day, a time without one ends as it starts
        end = start + dt.timedelta(days=1) if all_day else start
    if end is not None and end < start:
        return Malformed(label, f"it ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    derived = not uid
    if derived:
        uid = _derived_uid(event)
    external_id = uid
    details: dict = {"uid": uid}
    if "RECURRENCE-ID" in event:
        instance = _instant(event.decoded("RECURRENCE-ID"), zone)
        external_id = f"{uid}/{instance.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
        details["recurrence_id"] = instance.isoformat()
    if "RRULE" in event:
        details["rrule"] = event["RRULE"].to_ical().decode()
    if all_day:
        details["start_date"] = raw_start.isoformat()
    for name in ("LOCATION", "URL", "STATUS"):
        if name in event:
            details[name.lower()] = str(event[name])
    return Item(
        kind="meeting",
        source="calendar",
        external_id=external_id,
        label=label,
        subject=_text(event.get("SUMMARY")) or "(no title)",
        body=_text(event.get("DESCRIPTION")) or None,
        start=start,
        end=end,
        all_day=all_day,
        sender=_person(event.get("ORGANIZER")),
        recipients=[p for p in map(_person, _listed(event.get("ATTENDEE"))) if p is not None],
        cancelled=str(event.get("STATUS", "")).upper() == "CANCELLED",
        derived_id=derived,
        details=details,
    )


def _instant(value: dt.date | dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """An aware datetime: a date is its midnight, a floating time is read in ``zone``."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _listed(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _person(value) -> Address | None:
    """An ORGANIZER or ATTENDEE (``mailto:`` URI with an optional CN) as an address."""
    if value is None:
        return None
    uri = str(value).strip()
    if uri.lower().startswith("mailto:"):
        uri = uri[len("mailto:") :]
    if "@" not in uri:
        return None
    name = getattr(value, "params", {}).get("CN", "")
    return Address(uri, _text(name))


def _text(value) -> str:
    return "" if value is None else str(value).replace("\x00", "").strip()


def _derived_uid(event: icalendar.Event) -> str:
    """A stable stand-in for a missing UID: a hash of the start, title and organizer."""
    key = "\n".join(str(event.get(name, "")) for name in ("DTSTART", "SUMMARY", "ORGANIZER", "LOCATION"))
    return f"derived-{hashlib.sha256(key.encode()).hexdigest()[:32]}@crm.local"
