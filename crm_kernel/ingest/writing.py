"""Writing: parsed items become activities (and, when asked, lead contacts) through the
CRM's services, so validation, row-level security, audit rows and change notifications apply
as to any other write.

Items are written in transactions of ``CHUNK`` items, each item under a savepoint of its own:
one item that fails leaves nothing of itself behind (no contact without its activity) and the
others are kept. A duplicate is found by its (external_source, external_id) before anything is
written; one that slips past (a concurrent run, a row the acting user may not see) is caught by
the unique index ``activities_external_key`` and counted as a duplicate all the same.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import ValidationError
from ..model import catalog
from ..model.validation import clean_create
from .items import Address, Item, Known, Malformed, Parsed
from .people import Directory, Match, normalise_address
from .summary import IngestSummary

if TYPE_CHECKING:
    from ..client import CRM

# A transaction per item costs a commit (a WAL flush) each; savepoints in a shared transaction
# do not, and a chunk bounds how much a lost connection takes back (re-running is harmless).
CHUNK = 200
_DUPLICATE = "activities_external_key"


def write(
    crm: CRM,
    total: int,
    items: Iterable[Parsed],
    summary: IngestSummary,
    *,
    create_contacts: bool = False,
    progress: bool = False,
) -> IngestSummary:
    """Write ``items`` (``total`` of them, for the progress bar) and count what happened in
    ``summary``."""
    items = iter(items)
    directory = None
    with _progress(progress, total, summary.source) as advance:
        while chunk := list(islice(items, CHUNK)):
            with crm.transaction() as conn:
                if directory is None:
                    directory = Directory(conn)
                directory.conn = conn  # its lookups so far hold: this run made every change since
                stored = _stored(conn, [p for p in chunk if isinstance(p, Item)])
                for parsed in chunk:
                    _one(crm, conn, directory, parsed, summary, create_contacts, stored)
                    advance()
    return summary


def _one(
    crm: CRM,
    conn: sa.Connection,
    directory: Directory,
    parsed: Parsed,
    summary: IngestSummary,
    create_contacts: bool,
    stored: set[tuple[str, str]],
) -> None:
    if isinstance(parsed, Malformed):
        summary.errors.append(parsed)
        return
    if isinstance(parsed, Known):
        summary.duplicates += 1
        return
    item = parsed
    key = (item.source, item.external_id)
    if key in stored:
        summary.duplicates += 1
        return
    match = directory.match(item)
    if match.outcome == "unknown_domain":
        summary.unknown_domains += 1
        return
    if match.outcome == "unknown_sender" and not create_contacts:
        summary.unknown_senders += 1
        return
    try:
        with conn.begin_nested():
            contact_id = match.contact_id
            if contact_id is None:
                contact_id = crm.contacts.insert(conn, _lead(match))["id"]
            values = _activity(item, match, contact_id)
            crm.activities.log(conn, clean_create(catalog.entity("activities"), values))
    except sa.exc.IntegrityError as exc:
        if getattr(exc.orig.diag, "constraint_name", None) == _DUPLICATE:
            summary.duplicates += 1
            stored.add(key)
        else:
            summary.errors.append(Malformed(item.label, f"refused by the database: {exc.orig.diag.message_primary}"))
        return
    except (ValidationError, sa.exc.DataError) as exc:
        summary.errors.append(Malformed(item.label, str(exc.orig if isinstance(exc, sa.exc.DataError) else exc)))
        return
    stored.add(key)
    summary.created += 1
    if match.contact_id is None:
        summary.contacts_created += 1
        directory.added_contact(match.person.email, contact_id, match.company_id)
    if item.derived_id:
        summary.derived_ids.append(item.label)


def _stored(conn: sa.Connection, items: list[Item]) -> set[tuple[str, str]]:
    """Which of ``items`` are activities already: one query a chunk, not one an item."""
    found = set()
    for source in {item.source for item in items}:
        ids = [item.external_id for item in items if item.source == source]
        found |= {(source, external_id) for external_id in stored_ids(conn, source, ids)}
    return found


def stored_ids(conn: sa.Connection, source: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` (external ids from ``source``) are activities already, as far as the
    acting user can see; one the user cannot see is caught by the unique index on writing."""
    rows = conn.execute(
        sa.text("SELECT external_id FROM activities WHERE external_source = :source AND external_id = ANY(:ids)"),
        {"source": source, "ids": ids},
    )
    return set(rows.scalars())


def _activity(item: Item, match: Match, contact_id) -> dict:
    """The activity's values: the original date in its fields, who took part in custom_fields,
    the source's own details in external_data."""
    people = [a for a in ([item.sender] if item.sender else []) + item.recipients]
    custom = {"direction": match.direction, "participants": _unique(normalise_address(a.email) for a in people)}
    values = {
        "type": item.kind,
        "subject": item.subject,
        "description": item.body,
        "contact_id": contact_id,
        "company_id": match.company_id,
        "owner_id": match.owner_id,
        "external_source": item.source,
        "external_id": item.external_id,
        "external_data": {**item.details, "derived_id": item.derived_id},
    }
    if item.kind == "email":
        values.update(status="completed", scheduled_at=item.start, completed_at=item.start)
    else:
        over = item.end is not None and item.end <= dt.datetime.now(dt.UTC)
        values.update(
            scheduled_at=item.start,
            status="cancelled" if item.cancelled else "completed" if over else "pending",
            completed_at=item.end if over and not item.cancelled else None,
            duration_minutes=None if item.end is None else int((item.end - item.start).total_seconds() // 60),
        )
        custom.update(all_day=item.all_day, ends_at=item.end)
    values["custom_fields"] = custom
    return values


def _lead(match: Match) -> dict:
    """A new lead contact for an unknown sender from a known company."""
    first, last = person_name(match.person)
    return {
        "first_name": first,
        "last_name": last,
        "email": normalise_address(match.person.email),
        "company_id": match.company_id,
        "lifecycle_stage": "lead",
        "lead_source": "email ingest",
        "owner_id": match.owner_id,
    }


def person_name(person: Address) -> tuple[str, str]:
    """First and last name from ``Jane Doe``, ``Doe, Jane`` or, without a name, ``jane.doe@``."""
    name = person.name.strip().strip("\"'")
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    if name:
        first, _, last = name.rpartition(" ")
        return (first.strip(), last.strip()) if first else (last, "")
    words = [w.capitalize() for w in re.split(r"[._-]+", person.email.partition("@")[0].split("+")[0]) if w]
    return (" ".join(words[:-1]), words[-1]) if len(words) > 1 else ((words or ["?"])[0], "")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


@contextmanager
def _progress(show: bool, total: int, label: str) -> Iterator:
    """A rich progress bar on stderr when ``show`` (the CLI), else nothing."""
    if not show:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
