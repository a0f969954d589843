"""Fetching mail from an IMAP server with the standard library's ``imaplib``.

The folder is opened read-only (EXAMINE), so ingesting marks nothing as read. Messages are
listed with UID SEARCH ALL and fetched by UID in batches (``BODY.PEEK[]``), in the order the
server lists them. Given ``known``, a batch's Message-IDs are fetched first (a few dozen bytes a
message) and the messages already ingested are not downloaded again: a re-run over a big
mailbox moves its headers, not its attachments. A message without a Message-ID is downloaded
every time (its id is derived from its content).
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Collection, Iterator
from typing import Literal

from ..errors import IngestError
from .items import Known, Malformed, Parsed
from .mail import message_id, parse_message

Security = Literal["ssl", "starttls", "plain"]
PORTS = {"ssl": 993, "starttls": 143, "plain": 143}
BATCH = 50  # UIDs per FETCH: few round trips, bounded memory


def imap_messages(
    host: str,
    user: str,
    password: str,
    *,
    folder: str = "INBOX",
    port: int | None = None,
    security: Security = "ssl",
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 60,
    known: Callable[[list[str]], Collection[str]] | None = None,
) -> tuple[int, Iterator[Parsed]]:
    """Log in, open ``folder`` and return the number of messages and an iterator fetching
    them; the connection is closed when the iterator is exhausted or closed. ``known`` is
    given Message-IDs and answers those ingested before: their messages come as
    :class:`Known`, not downloaded."""
    if security not in PORTS:
        raise IngestError(f"unknown IMAP security {security!r}; use ssl, starttls or plain")
    port = port or PORTS[security]
    where = f"{user}@{host}:{port}/{folder}"
    client = _connect(host, port, security, ssl_context, timeout)
    try:
        client.login(user, password)
        status, data = client.select(_quoted(folder), readonly=True)
        if status != "OK":
            raise IngestError(f"IMAP folder {folder!r} cannot be opened on {host}: {_said(data)}")
        status, data = client.uid("SEARCH", None, "ALL")
        if status != "OK":
            raise IngestError(f"IMAP search failed in {folder!r} on {host}: {_said(data)}")
        uids = [u.decode() for u in (data[0] or b"").split()]
    except imaplib.IMAP4.error as exc:
        _logout(client)
        raise IngestError(f"IMAP server {host} refused {user!r}: {exc}") from None
    except BaseException:
        _logout(client)
        raise

    def each() -> Iterator[Parsed]:
        try:
            for start in range(0, len(uids), BATCH):
                batch = uids[start : start + BATCH]
                if known is not None:
                    ids = _message_ids(client, batch)
                    have = set(known(sorted(set(ids.values())))) if ids else set()
                    for uid in batch:
                        if ids.get(uid) in have:
                            yield Known(f"{where} UID {uid}", ids[uid])
                    batch = [uid for uid in batch if ids.get(uid) not in have]
                if batch:
                    yield from _fetch(client, batch, folder, where)
        finally:
            _logout(client)

    return len(uids), each()


def _connect(host: str, port: int, security: Security, context: ssl.SSLContext | None, timeout: float) -> imaplib.IMAP4:
    try:
        if security == "ssl":
            return imaplib.IMAP4_SSL(host, port, ssl_context=context or ssl.create_default_context(), timeout=timeout)
        client = imaplib.IMAP4(host, port, timeout=timeout)
        if security == "starttls":
            client.starttls(ssl_context=context or ssl.create_default_context())
        return client
    except (OSError, imaplib.IMAP4.error) as exc:  # refused, unknown host, TLS failure
        raise IngestError(f"cannot reach IMAP server {host}:{port} ({security}): {exc}") from None


def _message_ids(client: imaplib.IMAP4, uids: list[str]) -> dict[str, str]:
    """The batch's Message-IDs by UID; a message without one (or a server that would not say)
    is left out, so it is downloaded."""
    status, data = client.uid("FETCH", ",".join(uids), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    if status != "OK":
        return {}
    return {uid: found for uid, header in _literals(data).items() if (found := message_id(header))}


def _fetch(client: imaplib.IMAP4, uids: list[str], folder: str, where: str) -> Iterator[Parsed]:
    status, data = client.uid("FETCH", ",".join(uids), "(UID BODY.PEEK[])")
    if status != "OK":
        for uid in uids:
            yield Malformed(f"{where} UID {uid}", f"the server would not send it: {_said(data)}")
        return
    got = _literals(data)
    for uid in uids:
        label = f"{where} UID {uid}"
        if uid in got:
            yield parse_message(got[uid], label, folder=folder)
        else:
            yield Malformed(label, "the server sent no body for it (deleted meanwhile?)")


def _literals(data) -> dict[str, bytes]:
    """A FETCH answer's literals by UID: imaplib gives (b'1 (UID 7 BODY[] {123}', b'raw')."""
    got = {}
    for part in data:
        if isinstance(part, tuple) and len(part) == 2:
            found = re.search(rb"UID (\d+)", part[0])
            if found:
                got[found.group(1).decode()] = part[1]
    return got


def _quoted(folder: str) -> str:
    """imaplib sends the name as given: a name with spaces must be a quoted string."""
    escaped = folder.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _said(data) -> str:
    return " ".join(d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data or [] if d)


def _logout(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (imaplib.IMAP4.error, OSError):  # a timeout is an OSError
        pass
