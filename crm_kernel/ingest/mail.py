"""Parsing mail: RFC 5322 messages (one .eml file, an mbox's entry, an IMAP fetch) into items.

Messages are parsed with the standard library's ``compat32`` policy and decoded here: RFC 2047
encoded words in headers (``=?utf-8?q?...?=``), raw UTF-8 headers, transfer encodings and
charsets of the parts. The modern ``email.policy.default`` does all that by itself but took
60 ms a message against 3 ms here (its structured headers are re-parsed on every look), which
decides how long a big mailbox takes. The body is the text part when there is one, else the
HTML part turned into text; attachments (and attached messages) are ignored. A message without
a Message-ID gets an id derived from its headers and body (the same message gives the same id
on every run) and says so.
"""

from __future__ import annotations

import datetime as dt
import email
import email.errors
import email.header
import email.message
import email.policy
import email.utils
import hashlib
import mailbox
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import IngestError
from .html_text import html_to_text
from .items import Address, Item, Malformed, Parsed


def parse_message(raw: bytes, label: str, *, folder: str | None = None) -> Parsed:
    """One message's bytes as an :class:`Item`, or :class:`Malformed` saying why not."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        return _item(msg, raw, label, folder)
    except _Refused as exc:
        return Malformed(label, str(exc))
    except (ValueError, TypeError, LookupError, IndexError, AttributeError, email.errors.MessageError) as exc:
        # the parser is lenient; what still escapes it is a message it cannot read
        return Malformed(label, f"unreadable message: {exc}")


def message_id(header: bytes) -> str:
    """The Message-ID of a message's header (or of only its Message-ID line) as
    :func:`parse_message` reads it, so the two agree on what is known; "" when it has none."""
    return _raw_header(email.message_from_bytes(header, policy=email.policy.compat32), "Message-ID")


class _Refused(Exception):
    pass


def _item(msg: email.message.Message, raw: bytes, label: str, folder: str | None) -> Item:
    senders = _addresses(msg, "From")
    if not senders:
        raise _Refused("no sender: the From header is missing or holds no address")
    start = _date(msg)
    to, cc = _addresses(msg, "To"), _addresses(msg, "Cc")
    subject = _header(msg, "Subject") or "(no subject)"
    message_id = _raw_header(msg, "Message-ID")
    derived = not message_id
    if derived:
        message_id = derived_message_id(msg, raw)
    body, attachments = _content(msg)
    details = {
        "message_id": message_id,
        "from": _shown(senders[0]),
        "to": [_shown(a) for a in to],
        "cc": [_shown(a) for a in cc],
        "date": _raw_header(msg, "Date"),
        "in_reply_to": _raw_header(msg, "In-Reply-To") or None,
        "attachments": attachments,
    }
    if folder:
        details["folder"] = folder
    return Item(
        kind="email",
        source="email",
        external_id=message_id,
        label=label,
        subject=subject,
        body=body,
        start=start,
        sender=senders[0],
        recipients=to + cc,
        derived_id=derived,
        details=details,
    )


def _raw_header(msg, name: str) -> str:
    """A header as sent, unfolded; raw 8-bit bytes read as UTF-8."""
    values = _get_all(msg, name)
    return _clean(_unfold(_text_of(values[0]))).strip() if values else ""


def _get_all(msg, name: str) -> list[str]:
    """The header's values as stored: compat32's ``get`` would turn raw 8-bit ones into a
    Header that has lost its bytes."""
    name = name.lower()
    return [value for key, value in msg.raw_items() if key.lower() == name]


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value)  # RFC 5322 2.2.3: unfolding removes the line breaks


def _header(msg, name: str) -> str:
    return decode_words(_raw_header(msg, name)).strip()


def _text_of(value) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; such headers are UTF-8 nearly always."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded: ``=?iso-8859-1?q?J=F6rg?=`` -> ``Jörg``."""
    if "=?" not in value:
        return value
    try:
        return _clean(str(email.header.make_header(email.header.decode_header(value))))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return value  # a broken encoded word is shown as written


def _addresses(msg, name: str) -> list[Address]:
    """Every address in the header(s) ``name``, display names decoded."""
    values = [_unfold(_text_of(v)) for v in _get_all(msg, name)]
    return [
        Address(addr.strip(), decode_words(display).strip())
        for display, addr in email.utils.getaddresses(values)
        if "@" in addr
    ]


def _date(msg) -> dt.datetime:
    text = _raw_header(msg, "Date")
    if not text:
        raise _Refused("no Date header")
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        raise _Refused(f"unreadable Date header {text!r}") from None
    # RFC 5322: "-0000" means the zone is unknown; the time is UTC then
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _content(msg) -> tuple[str | None, list[str]]:
    """The body (the first text/plain part, else the first text/html part as text) and the
    names of the attachments."""
    plain = html = None
    attachments = []
    for part, attached in _leaves(msg):
        if attached:
            attachments.append(part.get_filename() or part.get_content_type())
        elif part.get_content_type() == "text/plain" and plain is None:
            plain = _decoded_payload(part)
        elif part.get_content_type() == "text/html" and html is None:
            html = _decoded_payload(part)
    text = plain if plain and plain.strip() else html_to_text(html) if html else plain
    text = _clean(text or "").strip()
    return text or None, attachments


def _leaves(part) -> Iterator[tuple[email.message.Message, bool]]:
    """The parts that hold content, and whether each is an attachment (an attached message is
    one attachment: its own parts are not this message's body)."""
    if part.get_content_disposition() == "attachment" or part.get_content_maintype() == "message":
        yield part, True
    elif part.is_multipart():
        for sub in part.get_payload():
            yield from _leaves(sub)
    else:
        yield part, part.get_content_maintype() != "text"


def _decoded_payload(part) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        text = payload.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def _clean(text: str) -> str:
    """PostgreSQL's text cannot hold NUL."""
    return text.replace("\x00", "")


def _shown(a: Address) -> str:
    return f"{a.name} <{a.email}>" if a.name else a.email  # as read: formataddr would re-encode it


def derived_message_id(msg, raw: bytes) -> str:
    """A stable stand-in for a missing Message-ID: a hash of the headers that identify a
    message (date, sender, recipients, subject) and of its body."""
    h = hashlib.sha256()
    for name in ("Date", "From", "To", "Cc", "Subject"):
        h.update(f"{name}:{' '.join(_raw_header_all(msg, name))}\n".encode())
    _, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    h.update(body)
    return f"<derived-{h.hexdigest()[:32]}@crm.local>"


def _raw_header_all(msg, name: str) -> list[str]:
    return [re.sub(r"\s+", " ", _text_of(v)).strip() for v in _get_all(msg, name)]


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
