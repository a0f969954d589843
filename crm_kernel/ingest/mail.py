"""Parsing mail: RFC 5322 messages (one .eml file, an mbox's entry, an IMAP fetch) into items.

Headers are decoded (RFC 2047 encoded words included) by the standard library's modern
``email.policy.default``. The body is the text part when there is one, else the HTML part
turned into text; attachments are ignored. A message without a Message-ID gets an id derived
from its headers (the same message gives the same id on every run) and says so.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import mailbox
from collections.abc import Iterator
from pathlib import Path

from ..errors import IngestError
from .html_text import html_to_text
from .items import Address, Item, Malformed, Parsed


def parse_message(raw: bytes, label: str, *, folder: str | None = None) -> Parsed:
    """One message's bytes as an :class:`Item`, or :class:`Malformed` saying why not."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        return _item(msg, raw, label, folder)
    except _Refused as exc:
        return Malformed(label, str(exc))
    except (ValueError, TypeError, LookupError, IndexError, AttributeError) as exc:
        # the standard parser is lenient; what still escapes it is a message it cannot read
        return Malformed(label, f"unreadable message: {exc}")


class _Refused(Exception):
    pass


def _item(msg: email.message.EmailMessage, raw: bytes, label: str, folder: str | None) -> Item:
    senders = _addresses(msg, "From")
    if not senders:
        raise _Refused("no sender: the From header is missing or holds no address")
    start = _date(msg)
    recipients = _addresses(msg, "To") + _addresses(msg, "Cc")
    subject = _clean(_header(msg, "Subject")).strip() or "(no subject)"
    message_id = _header(msg, "Message-ID").strip()
    derived = not message_id
    if derived:
        message_id = derived_message_id(msg, raw)
    details = {
        "message_id": message_id,
        "from": _shown(senders[0]),
        "to": [_shown(a) for a in _addresses(msg, "To")],
        "cc": [_shown(a) for a in _addresses(msg, "Cc")],
        "date": _header(msg, "Date"),
        "in_reply_to": _header(msg, "In-Reply-To") or None,
        "attachments": [part.get_filename() or part.get_content_type() for part in msg.iter_attachments()]
        if msg.is_multipart() else [],
    }
    if folder:
        details["folder"] = folder
    return Item(kind="email", source="email", external_id=message_id, label=label, subject=subject,
                body=_body(msg), start=start, sender=senders[0], recipients=recipients,
                derived_id=derived, details=details)


def _header(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError) as exc:  # a header the modern policy cannot parse
        raise _Refused(f"unreadable {name} header: {exc}") from exc
    return str(value) if value is not None else ""


def _addresses(msg, name: str) -> list[Address]:
    """Every address in the header(s) ``name``; display names decoded, groups flattened."""
    found = []
    for value in msg.get_all(name) or []:
        try:
            pairs = [(a.display_name, a.addr_spec) for a in value.addresses]
        except (AttributeError, ValueError, IndexError):  # unparsable: the lenient old parser
            pairs = email.utils.getaddresses([str(value)])
        found += [Address(addr.strip(), _clean(display).strip()) for display, addr in pairs if "@" in addr]
    return found


def _date(msg) -> dt.datetime:
    text = _header(msg, "Date").strip()
    if not text:
        raise _Refused("no Date header")
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError):
        raise _Refused(f"unreadable Date header {text!r}") from None
    # RFC 5322: "-0000" means the zone is unknown; the time is UTC then
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _body(msg) -> str | None:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return None
    try:
        text = part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # an unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return _clean(text).strip() or None


def _clean(text: str) -> str:
    """PostgreSQL's text cannot hold NUL."""
    return text.replace("\x00", "")


def _shown(a: Address) -> str:
    return f"{a.name} <{a.email}>" if a.name else a.email  # as read: formataddr would re-encode it


def derived_message_id(msg, raw: bytes) -> str:
    """A stable stand-in for a missing Message-ID: a hash of the headers that identify a
    message (date, sender, recipients, subject), and of the body when all of those are equal."""
    h = hashlib.sha256()
    for name in ("Date", "From", "To", "Cc", "Subject"):
        h.update(f"{name}:{' '.join(str(v) for v in (msg.get_all(name) or []))}\n".encode())
    _, _, body = raw.partition(b"\n\n")
    h.update(body.replace(b"\r\n", b"\n"))
    return f"<derived-{h.hexdigest()[:32]}@crm.local>"


# -- sources ------------------------------------------------------------------------------


def mbox_messages(path: Path) -> tuple[int, Iterator[Parsed]]:
    """The messages of an mbox file: their number and an iterator over them, in file order."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"no mbox file at {path}")
    with path.open("rb") as f:
        head = f.read(5)
    if head and head != b"From ":
        raise IngestError(f"{path} is not an mbox file (it does not start with a 'From ' line)")
    box = mailbox.mbox(path, factory=None, create=False)
    keys = box.keys()

    def each() -> Iterator[Parsed]:
        try:
            for n, key in enumerate(keys, 1):
                yield parse_message(box.get_bytes(key), f"{path.name} message {n}")
        finally:
            box.close()

    return len(keys), each()


def eml_messages(folder: Path) -> tuple[int, Iterator[Parsed]]:
    """The ``*.eml`` files in a folder and its subfolders, in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(f"no folder at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")

    def each() -> Iterator[Parsed]:
        for file in files:
            label = str(file.relative_to(folder))
            try:
                raw = file.read_bytes()
            except OSError as exc:
                yield Malformed(label, f"cannot read the file: {exc.strerror}")
                continue
            yield parse_message(raw, label)

    return len(files), each()
