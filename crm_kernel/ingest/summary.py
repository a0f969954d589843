"""What an ingest run did: counts, and the items it could not read (which one, and why)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .items import Malformed


@dataclass
class IngestSummary:
    """``created`` activities; items skipped as ``duplicates`` (ingested before),
    ``unknown_senders`` (from a known company's domain but not a contact, without
    ``create_contacts``) and ``unknown_domains`` (no company has the domain);
    ``contacts_created`` as leads; ``derived_ids`` lists the items that had no Message-ID
    or UID (their id was derived from their headers); ``errors`` the malformed ones."""

    source: str
    created: int = 0
    duplicates: int = 0
    unknown_senders: int = 0
    unknown_domains: int = 0
    contacts_created: int = 0
    derived_ids: list[str] = field(default_factory=list)
    errors: list[Malformed] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.created + self.duplicates + self.unknown_senders + self.unknown_domains + len(self.errors)

    def lines(self) -> list[str]:
        lines = [
            f"{self.source}: {self.seen:,} item(s) read",
            f"  {self.created:,} activities created",
            f"  {self.duplicates:,} skipped: ingested before",
            f"  {self.unknown_senders:,} skipped: unknown senders from known companies"
            + ("" if not self.unknown_senders else " (--create-contacts adds them as leads)"),
            f"  {self.unknown_domains:,} skipped: unknown domains",
        ]
        if self.contacts_created:
            lines.append(f"  {self.contacts_created:,} lead contacts created")
        if self.derived_ids:
            lines.append(f"  {len(self.derived_ids):,} without a Message-ID/UID: id derived from the headers")
            lines += [f"    {label}" for label in self.derived_ids]
        lines.append(f"  {len(self.errors):,} malformed")
        lines += [f"    {e.label}: {e.reason}" for e in self.errors]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())
