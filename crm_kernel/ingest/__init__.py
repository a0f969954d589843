"""Mail and calendar into activities: ``crm.ingest.mbox(path)``, ``.eml(folder)``,
``.ics(path)`` and ``.imap(host, user, password)``.

    summary = crm.ingest.mbox("inbox.mbox", create_contacts=True)
    print(summary)        # created, duplicates, unknown senders and domains, malformed items

Messages become ``email`` activities, events ``meeting`` activities, linked to the contact
by address and to the company by domain (people.py). Running again adds nothing: an item is
identified by its Message-ID or UID (+ RECURRENCE-ID), unique in the database.

One job per module: mail.py and calendar.py parse, imap.py fetches, people.py matches,
writing.py writes through the CRM's services, summary.py counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .items import Address, Item, Malformed
from .summary import IngestSummary

if TYPE_CHECKING:
    import ssl

    from ..client import CRM

__all__ = ["Address", "Ingest", "IngestSummary", "Item", "Malformed"]


class Ingest:
    """``crm.ingest``. Every method returns an :class:`IngestSummary`; ``create_contacts``
    adds an unknown sender from a known company's domain as a lead contact instead of
    skipping the item; ``progress`` draws a progress bar on stderr."""

    def __init__(self, crm: CRM):
        self.crm = crm

    def mbox(self, path: str | os.PathLike, *, create_contacts: bool = False, progress: bool = False) -> IngestSummary:
        """Every message of an mbox file."""
        from .mail import mbox_messages

        total, items = mbox_messages(Path(path))
        return self._write(f"mbox {Path(path).name}", total, items, create_contacts, progress)

    def eml(self, folder: str | os.PathLike, *, create_contacts: bool = False, progress: bool = False) -> IngestSummary:
        """Every ``*.eml`` file in a folder and its subfolders."""
        from .mail import eml_messages

        total, items = eml_messages(Path(folder))
        return self._write(f"eml {Path(folder).name}", total, items, create_contacts, progress)

    def ics(self, path: str | os.PathLike, *, create_contacts: bool = False, progress: bool = False) -> IngestSummary:
        """Every event of an iCalendar file; a recurring series as its first instance plus
        the instances the file holds (see calendar.py)."""
        from .calendar import ics_events

        total, items = ics_events(Path(path), self.crm.config.timezone)
        return self._write(f"ics {Path(path).name}", total, items, create_contacts, progress)

    def imap(
        self,
        host: str,
        user: str,
        password: str | None = None,
        *,
        folder: str = "INBOX",
        port: int | None = None,
        security: str = "ssl",
        ssl_context: ssl.SSLContext | None = None,
        create_contacts: bool = False,
        progress: bool = False,
    ) -> IngestSummary:
        """Every message of an IMAP folder, opened read-only. ``password`` defaults to
        ``CRM_IMAP_PASSWORD``. ``security`` is ``ssl`` (port 993), ``starttls`` (143) or
        ``plain`` (143, unencrypted: a server on this machine); ``ssl_context`` replaces the
        machine's trust store."""
        from ..errors import IngestError
        from .imap import imap_messages
        from .writing import stored_ids

        password = password if password is not None else os.environ.get("CRM_IMAP_PASSWORD")
        if not password:
            raise IngestError("no IMAP password: pass password= or set CRM_IMAP_PASSWORD")

        def known(message_ids: list[str]) -> set[str]:
            with self.crm.transaction() as conn:
                return stored_ids(conn, "email", message_ids)

        total, items = imap_messages(
            host, user, password, folder=folder, port=port, security=security, ssl_context=ssl_context, known=known
        )
        try:
            return self._write(f"imap {host}/{folder}", total, items, create_contacts, progress)
        finally:
            items.close()  # logs out even when writing failed half-way

    def _write(self, source: str, total: int, items, create_contacts: bool, progress: bool) -> IngestSummary:
        from .writing import write

        return write(self.crm, total, items, IngestSummary(source), create_contacts=create_contacts, progress=progress)
