"""Matching people: which contact, company and user a message or event is about.

Addresses are compared without case and without plus-addressing (``Jane+crm@Acme.com`` is
``jane@acme.com``). A company is found by its domain through ``crm_mail_domain()``
(sql/013_ingest.sql: no scheme, ``www.``, port or path), the sender's own domain first and then
its parents down to two labels (``eu.mail.acme.com``, ``mail.acme.com``, ``acme.com``); when
several live companies share a domain the oldest is taken.

Direction: a message (or event) sent by a CRM user is outbound and is about its recipients
(attendees); anything else is inbound and is about its sender (organizer; an event without
one is about its attendees).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from .items import Address, Item


def normalise_address(address: str) -> str:
    """``Jane.Doe+crm@Acme.COM.`` -> ``jane.doe@acme.com``."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain.rstrip('.')}"


def mail_domain(value: str | None) -> str | None:
    """A company's domain as mail uses it; the same as SQL's ``crm_mail_domain()``."""
    if value is None:
        return None
    v = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value.strip().lower())
    v = re.sub(r"[/:?#].*$", "", v)
    return re.sub(r"^www\.|\.$", "", v) or None


def candidate_domains(address: str) -> list[str]:
    """The address's domain and its parents down to two labels, most specific first."""
    domain = mail_domain(address.rpartition("@")[2])
    if domain is None:
        return []
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


@dataclass(frozen=True)
class Match:
    """Who an item is about. ``outcome`` is ``linked`` (contact or new contact found),
    ``unknown_sender`` (a known company's domain, no such contact) or ``unknown_domain``."""

    outcome: Literal["linked", "unknown_sender", "unknown_domain"]
    direction: Literal["inbound", "outbound"]
    owner_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    person: Address | None = None  # the counterpart: whose contact this is (or would be)


class Directory:
    """Lookups of users, contacts and companies through one connection (so that row-level
    security sees what the acting user may see)."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn  # the writer points it at each of its transactions in turn
        self._users: dict[str, uuid.UUID] | None = None
        self._companies: dict[str, uuid.UUID | None] = {}
        self._contacts: dict[str, tuple[uuid.UUID, uuid.UUID | None] | None] = {}

    def user(self, address: str) -> uuid.UUID | None:
        if self._users is None:  # a handful of rows, read once a run
            rows = self.conn.execute(
                sa.text(
                    "SELECT id, email FROM users WHERE deleted_at IS NULL AND email IS NOT NULL ORDER BY created_at, id"
                )
            )
            self._users = {}
            for row in rows:
                self._users.setdefault(normalise_address(row.email), row.id)
        return self._users.get(normalise_address(address))

    def contact(self, address: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
        """A live contact with this address (as written, or without its +tag). Remembered for
        the run: a mailbox holds many messages from the same people."""
        key = address.strip().lower()
        if key not in self._contacts:
            wanted = sorted({key, normalise_address(address)})
            row = self.conn.execute(
                sa.text(
                    "SELECT id, company_id FROM contacts WHERE lower(email) = ANY(:wanted) AND deleted_at IS NULL "
                    "ORDER BY lower(email) = :exact DESC, created_at, id LIMIT 1"
                ),
                {"wanted": wanted, "exact": normalise_address(address)},
            ).first()
            self._contacts[key] = (row.id, row.company_id) if row else None
        return self._contacts[key]

    def added_contact(self, address: str, contact_id: uuid.UUID, company_id: uuid.UUID | None) -> None:
        """A contact the writer created (and kept) for ``address``."""
        for key in {address.strip().lower(), normalise_address(address)}:
            self._contacts[key] = (contact_id, company_id)

    def company(self, address: str) -> uuid.UUID | None:
        """The company whose domain is the address's (or a parent of it)."""
        domains = candidate_domains(address)
        if not domains:
            return None
        key = domains[0]
        if key not in self._companies:  # companies are not changed by an ingest: cache per run
            row = self.conn.execute(
                sa.text(
                    "SELECT id FROM companies WHERE crm_mail_domain(domain) = ANY(:domains) AND deleted_at IS NULL "
                    "ORDER BY length(crm_mail_domain(domain)) DESC, created_at, id LIMIT 1"
                ),
                {"domains": domains},
            ).first()
            self._companies[key] = row.id if row else None
        return self._companies[key]

    def match(self, item: Item) -> Match:
        """Who ``item`` is about: its first counterpart that is a contact, else the first whose
        domain is a known company's."""
        owner = self.user(item.sender.email) if item.sender else None
        if owner is not None:
            direction, people = "outbound", item.recipients
        else:  # an event may have no organizer: then it is about its attendees
            direction, people = "inbound", [item.sender] if item.sender else item.recipients
            owner = next((u for u in (self.user(p.email) for p in item.recipients) if u is not None), None)
        people = [p for p in people if self.user(p.email) is None]  # colleagues are not counterparts
        for person in people:
            found = self.contact(person.email)
            if found is not None:
                contact_id, company_id = found
                return Match("linked", direction, owner, contact_id, company_id or self.company(person.email), person)
        for person in people:
            company_id = self.company(person.email)
            if company_id is not None:
                return Match("unknown_sender", direction, owner, None, company_id, person)
        return Match("unknown_domain", direction, owner)
