"""Mail a report's HTML through SMTP (``CRM_SMTP_URL``: ``smtp://user:password@host:port``,
``smtps://`` for TLS from the start, ``smtp+starttls://`` to upgrade; the sender is the URL's
``from`` query parameter, else ``crm@<host>``)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import Config
from ..errors import ConfigError, CrmError


class MailError(CrmError):
    """A report could not be sent."""


def send_report(html: Path, to: list[str] | str, subject: str, *, smtp_url: str | None = None) -> str:
    """Send ``html`` as the body of a mail to ``to``; returns its Message-ID."""
    url = smtp_url or Config.from_env().smtp_url
    if not url:
        raise ConfigError(
            "CRM_SMTP_URL is not set: say which SMTP server sends reports, e.g. smtp://mail.example.com:25"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise ConfigError(f"CRM_SMTP_URL must look like smtp://[user:password@]host[:port], not {parts.scheme}://...")
    recipients = [to] if isinstance(to, str) else list(to)
    sender = parse_qs(parts.query).get("from", [f"crm@{parts.hostname}"])[0]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(domain=parts.hostname)
    message.set_content(f"{subject}\n\nThe report is attached as HTML; open it in a browser.")
    message.add_alternative(Path(html).read_text(encoding="utf-8"), subtype="html")
    message.add_attachment(Path(html).read_bytes(), maintype="text", subtype="html", filename=Path(html).name)
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    try:
        with smtp_class(parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25), timeout=30) as smtp:
            if parts.scheme == "smtp+starttls":
                smtp.starttls()
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message, from_addr=sender, to_addrs=recipients)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(
            f"could not send the report to {', '.join(recipients)} through {parts.hostname}:{parts.port or 25}: {exc}"
        ) from exc
    return message["Message-ID"]
