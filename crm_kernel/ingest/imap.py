"""Fetching mail from an IMAP server with the standard library's ``imaplib``.

The folder is opened read-only (EXAMINE), so ingesting marks nothing as read. Messages are
listed with UID SEARCH ALL and fetched by UID in batches (``BODY.PEEK[]``), in the order the
server lists them.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator
from typing import Literal

from ..errors import IngestError
from .items import Malformed, Parsed
from .mail import parse_message

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
) -> tuple[int, Iterator[Parsed]]:
    """Log in, open ``folder`` and return the number of messages and an iterator fetching
    them; the connection is closed when the iterator is exhausted or closed."""
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
                yield from _fetch(client, uids[start : start + BATCH], folder, where)
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


def _fetch(client: imaplib.IMAP4, uids: list[str], folder: str, where: str) -> Iterator[Parsed]:
    status, data = client.uid("FETCH", ",".join(uids), "(UID BODY.PEEK[])")
    if status != "OK":
        for uid in uids:
            yield Malformed(f"{where} UID {uid}", f"the server would not send it: {_said(data)}")
        return
    got = {}
    for part in data:
        if isinstance(part, tuple) and len(part) == 2:  # (b'1 (UID 7 BODY[] {123}', b'raw')
            found = re.search(rb"UID (\d+)", part[0])
            if found:
                got[found.group(1).decode()] = part[1]
    for uid in uids:
        label = f"{where} UID {uid}"
        if uid in got:
            yield parse_message(got[uid], label, folder=folder)
        else:
            yield Malformed(label, "the server sent no body for it (deleted meanwhile?)")


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
