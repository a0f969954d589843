"""Mail and calendar into activities: mbox, eml, ics and IMAP (a real server on loopback)."""

from __future__ import annotations

import datetime as dt
import mailbox
import ssl
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import cli
from crm_kernel.errors import IngestError, ValidationError
from crm_kernel.ingest import Address
from crm_kernel.ingest.html_text import html_to_text
from crm_kernel.ingest.mail import parse_message
from crm_kernel.ingest.people import mail_domain, normalise_address
from crm_kernel.ingest.writing import person_name

from .imap_server import FakeImap, self_signed

UTC = dt.UTC


# -- the CRM the mail is about -----------------------------------------------------------


@pytest.fixture
def people(crm):
    """Two companies (domains typed as people do), their contacts, and a user of ours."""
    acme = crm.companies.create(name="Acme", domain="WWW.Acme.com")
    globex = crm.companies.create(name="Globex", domain="https://globex.io/")
    jane = crm.contacts.create(first_name="Jane", last_name="Doe", email="Jane@acme.com", company_id=acme["id"])
    bob = crm.contacts.create(first_name="Bob", last_name="Stone", email="bob@globex.io", company_id=globex["id"])
    sam = crm.users.create(email="sam@ourco.com", full_name="Sam Rep")
    return {"acme": acme, "globex": globex, "jane": jane, "bob": bob, "sam": sam}


def activities(crm) -> list[dict]:
    return crm.activities.list(limit=None, order_by=["scheduled_at", "subject"])


def by_subject(crm) -> dict[str, dict]:
    return {a["subject"]: a for a in activities(crm)}


def audit_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()


# -- messages made here -------------------------------------------------------------------

MULTIPART = b"""\
From: Jane Doe <jane@acme.com>
To: Sam Rep <sam@ourco.com>
Subject: Renewal terms
Date: Tue, 03 Mar 2026 09:15:00 +0100
Message-ID: <renewal-1@acme.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Hello Sam,
the plain text part.

--inner
Content-Type: text/html; charset=utf-8

<p>Hello Sam, the <b>HTML</b> part.</p>
--inner--

--outer
Content-Type: application/pdf; name="terms.pdf"
Content-Disposition: attachment; filename="terms.pdf"
Content-Transfer-Encoding: base64

SEVMTE8gQVRUQUNITUVOVA==
--outer--
"""

HTML_ONLY = b"""\
From: bob@globex.io
To: sam@ourco.com
Subject: Pricing
Date: Wed, 04 Mar 2026 18:00:00 -0500
Message-ID: <pricing-7@globex.io>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><style>p {color: red}</style><script>alert(1)</script></head>
<body><h1>Price list</h1><p>Gold &amp; Silver: 10&nbsp;&euro;</p><ul><li>one</li><li>two</li></ul></body></html>
"""

# RFC 2047 encoded words in Subject and From (ISO-8859-1 and UTF-8), a plus-addressed sender.
NON_ASCII = b"""\
From: =?iso-8859-1?q?J=F6rg_M=FCller?= <Jane+Sales@ACME.com>
To: sam@ourco.com
Subject: =?utf-8?q?Angebot_f=C3=BCr_M=C3=BCnchen?=
Date: Thu, 05 Mar 2026 10:00:00 +0000
Message-ID: <angebot@acme.com>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Gr\xc3\xbc\xc3\x9fe aus M\xc3\xbcnchen
"""

NO_MESSAGE_ID = b"""\
From: bob@globex.io
To: sam@ourco.com
Subject: No id here
Date: Fri, 06 Mar 2026 12:00:00 +0000

A message without a Message-ID.
"""

# Sent by our user: outbound, about its recipient.
OUTBOUND = b"""\
From: Sam Rep <sam@ourco.com>
To: Jane Doe <jane@acme.com>
Subject: Re: Renewal terms
Date: Sat, 07 Mar 2026 08:00:00 +0000
Message-ID: <reply-1@ourco.com>

Thanks Jane.
"""

UNKNOWN_DOMAIN = b"""\
From: someone@nowhere.example
To: sam@ourco.com
Subject: Spam
Date: Sat, 07 Mar 2026 09:00:00 +0000
Message-ID: <spam@nowhere.example>

Buy now.
"""

# From a known company's domain (a subdomain of it, even), but not a contact yet.
UNKNOWN_SENDER = b"""\
From: "Doe, John" <john.doe@eu.acme.com>
To: sam@ourco.com
Subject: Introduction
Date: Sat, 07 Mar 2026 10:00:00 +0000
Message-ID: <intro@acme.com>

Hi, I am new at Acme.
"""

NO_SENDER = b"""\
To: sam@ourco.com
Subject: Who sent this?
Date: Sat, 07 Mar 2026 11:00:00 +0000
Message-ID: <nosender@acme.com>

Nobody.
"""

BAD_DATE = b"""\
From: jane@acme.com
To: sam@ourco.com
Subject: When?
Date: the day after tomorrow
Message-ID: <baddate@acme.com>

Sometime.
"""

GOOD = [MULTIPART, HTML_ONLY, NON_ASCII, NO_MESSAGE_ID, OUTBOUND]


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(raw)
    box.close()
    return path


def write_eml(folder: Path, messages: dict[str, bytes]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, raw in messages.items():
        (folder / name).write_bytes(raw)
    return folder


# -- pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, normal",
    [
        ("Jane.Doe+crm@Acme.COM", "jane.doe@acme.com"),
        ("jane@acme.com.", "jane@acme.com"),
        ("plain@x.org", "plain@x.org"),
    ],
)
def test_addresses_ignore_case_and_plus_tags(written, normal):
    assert normalise_address(written) == normal


DOMAINS = [
    ("acme.com", "acme.com"),
    ("WWW.Acme.com", "acme.com"),
    ("https://www.acme.com/about?x=1", "acme.com"),
    ("http://acme.com:8080", "acme.com"),
    ("acme.com.", "acme.com"),
    ("  Sub.Acme.co.uk ", "sub.acme.co.uk"),
    ("www.", None),
    ("", None),
]


@pytest.mark.parametrize("value, domain", DOMAINS)
def test_company_domains_are_normalised_alike_in_python_and_sql(engine, value, domain):
    assert mail_domain(value) == domain
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT crm_mail_domain(:v)"), {"v": value}).scalar() == domain


def test_html_becomes_text():
    text = html_to_text("<style>x{}</style><h1>Title</h1><p>A &amp; B<br>next</p><ul><li>one</li><li>two</li></ul>")
    assert text == "Title\n\nA & B\nnext\n\n- one\n- two"


@pytest.mark.parametrize(
    "address, name",
    [
        (Address("john.doe@acme.com", "Doe, John"), ("John", "Doe")),
        (Address("x@acme.com", "Mary Ann Lee"), ("Mary Ann", "Lee")),
        (Address("mary.ann.lee+x@acme.com"), ("Mary Ann", "Lee")),
        (Address("cher@acme.com", "Cher"), ("Cher", "")),
    ],
)
def test_lead_names_come_from_the_display_name_or_the_address(address, name):
    assert person_name(address) == name


RAW_8BIT = (
    b"From: J\xc3\xb6rg <joerg@acme.com>\nTo: sam@ourco.com\nSubject: Gr\xc3\xbc\xc3\x9fe,\n folded\n"
    b"Date: Mon, 09 Mar 2026 10:00:00 -0000\nMessage-ID: <8bit@acme.com>\nMIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: quoted-printable\n\nS=FC=DF\n--b\nContent-Type: message/rfc822\n\n"
    b"From: x@y.z\nSubject: forwarded\n\nThe forwarded text.\n--b--\n"
)


def test_raw_utf8_headers_charsets_and_attached_messages():
    item = parse_message(RAW_8BIT, "m")
    assert item.subject == "Grüße, folded"
    assert item.sender == Address("joerg@acme.com", "Jörg")
    assert item.body == "Süß"  # the attached message is not the body
    assert item.details["attachments"] == ["message/rfc822"]
    assert item.start == dt.datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # -0000: the zone is unknown, UTC


def test_the_derived_id_is_the_same_for_the_same_message_only():
    first = parse_message(NO_MESSAGE_ID, "a").external_id
    assert parse_message(NO_MESSAGE_ID.replace(b"\n", b"\r\n"), "b").external_id == first
    assert parse_message(NO_MESSAGE_ID.replace(b"12:00:00", b"12:00:01"), "c").external_id != first


# -- mbox ---------------------------------------------------------------------------------


def test_mbox_messages_become_linked_email_activities(crm, people, tmp_path):
    summary = crm.ingest.mbox(write_mbox(tmp_path / "inbox.mbox", GOOD))
    assert (summary.created, summary.duplicates, summary.unknown_senders, summary.unknown_domains) == (5, 0, 0, 0)
    assert summary.errors == []
    got = by_subject(crm)
    assert set(got) == {"Renewal terms", "Pricing", "Angebot für München", "No id here", "Re: Renewal terms"}
    assert all(a["type"] == "email" and a["status"] == "completed" for a in got.values())

    renewal = got["Renewal terms"]
    assert renewal["description"] == "Hello Sam,\nthe plain text part."  # text part, attachment ignored
    assert renewal["contact_id"] == people["jane"]["id"] and renewal["company_id"] == people["acme"]["id"]
    assert renewal["owner_id"] == people["sam"]["id"]
    assert renewal["completed_at"] == dt.datetime(2026, 3, 3, 8, 15, tzinfo=UTC)  # +0100 honoured
    assert renewal["external_source"] == "email" and renewal["external_id"] == "<renewal-1@acme.com>"
    assert renewal["external_data"]["attachments"] == ["terms.pdf"]
    assert renewal["custom_fields"]["direction"] == "inbound"
    assert renewal["custom_fields"]["participants"] == ["jane@acme.com", "sam@ourco.com"]

    pricing = got["Pricing"]
    assert pricing["description"] == "Price list\n\nGold & Silver: 10 €\n\n- one\n- two"
    assert "alert" not in pricing["description"] and "color" not in pricing["description"]
    assert pricing["company_id"] == people["globex"]["id"]
    assert pricing["completed_at"] == dt.datetime(2026, 3, 4, 23, 0, tzinfo=UTC)

    german = got["Angebot für München"]
    assert german["description"] == "Grüße aus München"
    assert german["contact_id"] == people["jane"]["id"]  # Jane+Sales@ACME.com is Jane
    assert german["external_data"]["from"] == "Jörg Müller <Jane+Sales@ACME.com>"

    reply = got["Re: Renewal terms"]
    assert reply["custom_fields"]["direction"] == "outbound"
    assert reply["contact_id"] == people["jane"]["id"] and reply["owner_id"] == people["sam"]["id"]


def test_a_message_without_message_id_gets_a_stable_derived_id(crm, people, tmp_path):
    summary = crm.ingest.mbox(write_mbox(tmp_path / "a.mbox", [NO_MESSAGE_ID]))
    assert summary.derived_ids == ["a.mbox message 1"]
    assert "without a Message-ID" in str(summary)
    first = activities(crm)[0]
    assert first["external_id"].startswith("<derived-") and first["external_data"]["derived_id"] is True
    # The same message elsewhere (another file, another position) is the same activity.
    again = crm.ingest.mbox(write_mbox(tmp_path / "b.mbox", [MULTIPART, NO_MESSAGE_ID]))
    assert (again.created, again.duplicates) == (1, 1)
    assert crm.activities.count() == 2


def test_ingesting_again_adds_nothing(crm, people, engine, tmp_path):
    path = write_mbox(tmp_path / "inbox.mbox", GOOD + [UNKNOWN_DOMAIN])
    before = audit_count(engine)
    first = crm.ingest.mbox(path)
    assert (first.created, first.unknown_domains) == (5, 1)
    count, audits = crm.activities.count(), audit_count(engine)
    assert audits == before + 5  # one audit row per activity created

    second = crm.ingest.mbox(path)
    assert (second.created, second.duplicates, second.unknown_domains) == (0, 5, 1)
    assert crm.activities.count() == count and audit_count(engine) == audits


def test_a_deleted_activity_is_not_brought_back(crm, people, tmp_path):
    path = write_mbox(tmp_path / "inbox.mbox", [MULTIPART])
    crm.ingest.mbox(path)
    crm.activities.delete(activities(crm)[0]["id"])
    assert crm.ingest.mbox(path).duplicates == 1
    assert crm.activities.count() == 0


def test_the_database_refuses_a_second_activity_with_the_same_external_id(crm, people):
    crm.activities.create(type="email", subject="x", external_source="email", external_id="<m@x>")
    with pytest.raises(ValidationError):
        crm.activities.create(type="email", subject="y", external_source="email", external_id="<m@x>")
    with pytest.raises(ValidationError):  # an id without its source would escape the unique index
        crm.activities.create(type="email", subject="z", external_id="<n@x>")
    assert crm.activities.count() == 1


def test_unknown_senders_are_skipped_and_counted(crm, people, tmp_path):
    summary = crm.ingest.mbox(write_mbox(tmp_path / "in.mbox", [UNKNOWN_SENDER, UNKNOWN_DOMAIN, MULTIPART]))
    assert (summary.created, summary.unknown_senders, summary.unknown_domains) == (1, 1, 1)
    assert "1 skipped: unknown senders" in str(summary)
    assert crm.contacts.count() == 2


def test_unknown_senders_from_known_companies_become_leads_when_asked(crm, people, engine, tmp_path):
    path = write_mbox(tmp_path / "in.mbox", [UNKNOWN_SENDER, UNKNOWN_DOMAIN])
    before = audit_count(engine)
    summary = crm.ingest.mbox(path, create_contacts=True)
    assert (summary.created, summary.contacts_created, summary.unknown_domains) == (1, 1, 1)
    john = crm.contacts.list(email="john.doe@eu.acme.com")[0]
    assert (john["first_name"], john["last_name"]) == ("John", "Doe")
    assert john["company_id"] == people["acme"]["id"] and john["lifecycle_stage"] == "lead"
    intro = by_subject(crm)["Introduction"]
    assert intro["contact_id"] == john["id"] and intro["company_id"] == people["acme"]["id"]
    with engine.connect() as conn:
        audited = (
            conn.execute(sa.text("SELECT entity FROM audit_log WHERE id > :n ORDER BY id"), {"n": before})
            .scalars()
            .all()
        )
    assert audited == ["contacts", "activities"]
    # Once a contact, the sender's next message links without creating anyone.
    again = crm.ingest.mbox(path, create_contacts=True)
    assert (again.created, again.duplicates, again.contacts_created) == (0, 1, 0)


def test_a_message_that_fails_to_write_leaves_nothing_of_itself(crm, people, engine, tmp_path):
    # A declared custom field the ingest's value does not fit: the activity is refused after
    # its new contact was inserted; the contact must go with it, the other message stays.
    crm.custom_fields.define("activities", "direction", "integer")
    audits = audit_count(engine)
    summary = crm.ingest.mbox(write_mbox(tmp_path / "in.mbox", [UNKNOWN_SENDER]), create_contacts=True)
    assert summary.created == 0 and summary.contacts_created == 0
    assert [e.label for e in summary.errors] == ["in.mbox message 1"]
    assert "direction" in summary.errors[0].reason
    assert crm.contacts.count() == 2 and crm.activities.count() == 0
    assert audit_count(engine) == audits


def test_a_missing_mbox_or_one_that_is_not_an_mbox_is_an_error(crm, tmp_path):
    with pytest.raises(IngestError, match="no mbox file"):
        crm.ingest.mbox(tmp_path / "missing.mbox")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(IngestError, match="not an mbox"):
        crm.ingest.mbox(tmp_path / "notes.txt")


# -- eml ----------------------------------------------------------------------------------


def test_eml_folder_with_malformed_messages(crm, people, tmp_path):
    folder = write_eml(
        tmp_path / "mail",
        {
            "1-renewal.eml": MULTIPART,
            "2-nosender.eml": NO_SENDER,
            "3-pricing.EML": HTML_ONLY,
            "4-baddate.eml": BAD_DATE,
            "notes.txt": b"not mail",
        },
    )
    (folder / "sub").mkdir()
    (folder / "sub" / "5-german.eml").write_bytes(NON_ASCII)
    summary = crm.ingest.eml(folder)
    assert summary.created == 3
    reasons = {e.label: e.reason for e in summary.errors}
    assert set(reasons) == {"2-nosender.eml", "4-baddate.eml"}
    assert "no sender" in reasons["2-nosender.eml"]
    assert "Date" in reasons["4-baddate.eml"]
    assert set(by_subject(crm)) == {"Renewal terms", "Pricing", "Angebot für München"}
    assert "2-nosender.eml: no sender" in str(summary)
    # eml and mbox share identities: the same messages from an mbox are duplicates.
    again = crm.ingest.mbox(write_mbox(tmp_path / "same.mbox", [MULTIPART, HTML_ONLY]))
    assert (again.created, again.duplicates) == (0, 2)


# -- ics ----------------------------------------------------------------------------------

CALENDAR = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//crm tests//EN
BEGIN:VEVENT
UID:kickoff@acme.com
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:20260310T100000
DTEND;TZID=Europe/Berlin:20260310T113000
SUMMARY:Kickoff with Acme
DESCRIPTION:Agenda: scope\\, dates
LOCATION:Berlin office
ORGANIZER;CN=Sam Rep:mailto:sam@ourco.com
ATTENDEE;CN=Jane Doe:mailto:jane@acme.com
ATTENDEE:mailto:sam@ourco.com
END:VEVENT
BEGIN:VEVENT
UID:offsite@globex.io
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20260320
DTEND;VALUE=DATE:20260322
SUMMARY:Globex offsite
ORGANIZER:mailto:bob@globex.io
END:VEVENT
BEGIN:VEVENT
UID:weekly@acme.com
DTSTAMP:20260101T000000Z
DTSTART:20260302T150000Z
DURATION:PT30M
RRULE:FREQ=WEEKLY;BYDAY=MO
SUMMARY:Weekly sync
ORGANIZER:mailto:jane@acme.com
END:VEVENT
BEGIN:VEVENT
UID:weekly@acme.com
DTSTAMP:20260101T000000Z
RECURRENCE-ID:20260309T150000Z
DTSTART:20260310T160000Z
DURATION:PT45M
SUMMARY:Weekly sync (moved)
ORGANIZER:mailto:jane@acme.com
END:VEVENT
BEGIN:VEVENT
UID:broken@acme.com
DTSTAMP:20260101T000000Z
DTSTART:the-tenth
SUMMARY:Broken start
ORGANIZER:mailto:jane@acme.com
END:VEVENT
BEGIN:VEVENT
UID:nostart@acme.com
DTSTAMP:20260101T000000Z
SUMMARY:No start
ORGANIZER:mailto:jane@acme.com
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20260101T000000Z
DTSTART:20260401T090000
SUMMARY:Floating breakfast
ORGANIZER:mailto:bob@globex.io
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:stranger@nowhere.example
DTSTAMP:20260101T000000Z
DTSTART:20260402T090000Z
SUMMARY:Unknown
ORGANIZER:mailto:x@nowhere.example
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def ics_file(tmp_path) -> Path:
    path = tmp_path / "team.ics"
    path.write_text(CALENDAR.replace("\n", "\r\n"))
    return path


def test_ics_events_become_meetings(crm, people, ics_file):
    summary = crm.ingest.ics(ics_file)
    assert (summary.created, summary.unknown_domains) == (5, 1)
    reasons = {e.label: e.reason for e in summary.errors}
    assert set(reasons) == {"team.ics event 5 (UID broken@acme.com)", "team.ics event 6 (UID nostart@acme.com)"}
    assert "DTSTART" in reasons["team.ics event 5 (UID broken@acme.com)"]
    assert "no DTSTART" in reasons["team.ics event 6 (UID nostart@acme.com)"]
    got = by_subject(crm)
    assert all(a["type"] == "meeting" for a in got.values())

    kickoff = got["Kickoff with Acme"]  # organised by our user: outbound, about the attendee
    assert kickoff["scheduled_at"] == dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 10:00 Berlin (CET)
    assert kickoff["duration_minutes"] == 90
    assert kickoff["custom_fields"]["ends_at"] == "2026-03-10T11:30:00+01:00"
    assert kickoff["description"] == "Agenda: scope, dates"
    assert kickoff["contact_id"] == people["jane"]["id"] and kickoff["owner_id"] == people["sam"]["id"]
    assert kickoff["custom_fields"]["direction"] == "outbound"
    assert kickoff["external_data"]["location"] == "Berlin office"

    offsite = got["Globex offsite"]  # all day, two days
    assert offsite["custom_fields"]["all_day"] is True
    assert offsite["scheduled_at"] == dt.datetime(2026, 3, 20, tzinfo=UTC)
    assert offsite["duration_minutes"] == 2 * 24 * 60
    assert offsite["external_data"]["start_date"] == "2026-03-20"
    assert offsite["contact_id"] == people["bob"]["id"]


def test_a_recurring_event_is_its_first_instance_plus_the_instances_the_file_holds(crm, people, ics_file):
    crm.ingest.ics(ics_file)
    weekly = [a for a in activities(crm) if a["subject"].startswith("Weekly sync")]
    assert [(a["subject"], a["external_id"]) for a in weekly] == [
        ("Weekly sync", "weekly@acme.com"),
        ("Weekly sync (moved)", "weekly@acme.com/20260309T150000Z"),
    ]
    assert weekly[0]["scheduled_at"] == dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert weekly[0]["external_data"]["rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    assert weekly[1]["duration_minutes"] == 45


def test_floating_times_and_all_day_dates_are_read_in_crm_timezone(engine, people, ics_file):
    from crm_kernel import CRM
    from crm_kernel.config import Config

    crm = CRM(engine, config=Config.from_env({"CRM_TIMEZONE": "America/New_York"}))
    summary = crm.ingest.ics(ics_file)
    assert summary.derived_ids == ["team.ics event 7"]  # the breakfast has no UID
    got = by_subject(crm)
    breakfast = got["Floating breakfast"]
    assert breakfast["scheduled_at"] == dt.datetime(2026, 4, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert breakfast["status"] == "cancelled" and breakfast["external_id"].startswith("derived-")
    assert got["Globex offsite"]["scheduled_at"] == dt.datetime(2026, 3, 20, tzinfo=ZoneInfo("America/New_York"))


def test_an_event_without_organizer_is_about_its_attendees(crm, people, tmp_path):
    path = tmp_path / "one.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:lunch@x\r\n"
        "DTSTART:20200305T120000Z\r\nSUMMARY:Lunch\r\nATTENDEE:mailto:sam@ourco.com\r\n"
        "ATTENDEE:mailto:BOB@globex.io\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert crm.ingest.ics(path).created == 1
    lunch = activities(crm)[0]
    assert lunch["contact_id"] == people["bob"]["id"] and lunch["owner_id"] == people["sam"]["id"]
    # No DTEND: it ends as it starts (RFC 5545), and it is over.
    assert lunch["duration_minutes"] == 0 and lunch["status"] == "completed"
    assert lunch["completed_at"] == dt.datetime(2020, 3, 5, 12, 0, tzinfo=UTC)


def test_ingesting_a_calendar_again_adds_nothing(crm, people, engine, ics_file):
    crm.ingest.ics(ics_file)
    count, audits = crm.activities.count(), audit_count(engine)
    again = crm.ingest.ics(ics_file)
    assert (again.created, again.duplicates, len(again.errors)) == (0, 5, 2)
    assert crm.activities.count() == count and audit_count(engine) == audits


def test_a_file_that_is_not_a_calendar_is_an_error(crm, tmp_path):
    (tmp_path / "x.ics").write_text("hello, world\n")
    with pytest.raises(IngestError, match="not an iCalendar file"):
        crm.ingest.ics(tmp_path / "x.ics")


# -- IMAP ---------------------------------------------------------------------------------


@pytest.fixture
def imap_server():
    folders = {"INBOX": [MULTIPART, HTML_ONLY, UNKNOWN_DOMAIN, NO_SENDER], "Sent Items": [OUTBOUND]}
    with FakeImap(folders, user="sam", password='pa ss"word') as server:
        yield server


def test_imap_folder_is_ingested_read_only(crm, people, imap_server):
    summary = crm.ingest.imap("127.0.0.1", "sam", 'pa ss"word', port=imap_server.port, security="plain")
    assert (summary.created, summary.unknown_domains) == (2, 1)
    assert [e.label for e in summary.errors] == [f"sam@127.0.0.1:{imap_server.port}/INBOX UID 104"]
    assert set(by_subject(crm)) == {"Renewal terms", "Pricing"}
    assert by_subject(crm)["Renewal terms"]["external_data"]["folder"] == "INBOX"
    assert "EXAMINE" in imap_server.commands and "SELECT" not in imap_server.commands
    assert "UID SEARCH" in imap_server.commands and "UID FETCH" in imap_server.commands
    assert imap_server.commands[-1] == "LOGOUT"

    sent = crm.ingest.imap(
        "127.0.0.1", "sam", 'pa ss"word', port=imap_server.port, security="plain", folder="Sent Items"
    )
    assert sent.created == 1 and by_subject(crm)["Re: Renewal terms"]["custom_fields"]["direction"] == "outbound"

    again = crm.ingest.imap("127.0.0.1", "sam", 'pa ss"word', port=imap_server.port, security="plain")
    assert (again.created, again.duplicates) == (0, 2)
    assert crm.activities.count() == 3


def test_imap_again_downloads_only_the_bodies_it_has_not_ingested(crm, people):
    """Message-IDs first: a message ingested before is not downloaded again; one without a
    Message-ID cannot be known by its header, so it is downloaded every time."""
    folders = {"INBOX": [MULTIPART, HTML_ONLY]}
    with FakeImap(folders, user="sam", password="pw") as server:

        def ingest():
            server.sent.clear()
            summary = crm.ingest.imap("127.0.0.1", "sam", "pw", port=server.port, security="plain")
            return summary, [uid for uid, part in server.sent if part == "body"]

        first, bodies = ingest()
        assert first.created == 2 and bodies == [101, 102]
        again, bodies = ingest()
        assert (again.created, again.duplicates, again.errors) == (0, 2, [])
        assert bodies == [] and sorted(server.sent) == [(101, "message-id"), (102, "message-id")]

        folders["INBOX"].append(OUTBOUND)
        third, bodies = ingest()
        assert (third.created, third.duplicates) == (1, 2) and bodies == [103]

        folders["INBOX"].append(NO_MESSAGE_ID)
        fourth, bodies = ingest()
        assert (fourth.created, fourth.duplicates) == (1, 3) and bodies == [104]
        fifth, bodies = ingest()
        assert (fifth.created, fifth.duplicates) == (0, 4) and bodies == [104]
    assert crm.activities.count() == 4


def test_imap_refusals_are_clear_errors(crm, imap_server):
    with pytest.raises(IngestError, match="refused 'sam'"):
        crm.ingest.imap("127.0.0.1", "sam", "wrong", port=imap_server.port, security="plain")
    with pytest.raises(IngestError, match="'Archive' cannot be opened"):
        crm.ingest.imap("127.0.0.1", "sam", 'pa ss"word', port=imap_server.port, security="plain", folder="Archive")
    with pytest.raises(IngestError, match="cannot reach"):
        crm.ingest.imap("127.0.0.1", "sam", "x", port=imap_server.port, security="ssl")  # not TLS
    with pytest.raises(IngestError, match="unknown IMAP security"):
        crm.ingest.imap("127.0.0.1", "sam", "x", port=imap_server.port, security="tls1.0")


def test_imap_password_from_the_environment(crm, people, imap_server, monkeypatch):
    monkeypatch.delenv("CRM_IMAP_PASSWORD", raising=False)
    with pytest.raises(IngestError, match="no IMAP password"):
        crm.ingest.imap("127.0.0.1", "sam", port=imap_server.port, security="plain")
    monkeypatch.setenv("CRM_IMAP_PASSWORD", 'pa ss"word')
    assert crm.ingest.imap("127.0.0.1", "sam", port=imap_server.port, security="plain").created == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_over_tls_checks_the_servers_certificate(crm, people, certificate, security):
    cert, server_context = certificate
    folders = {"INBOX": [MULTIPART]}
    tls = {"tls": server_context} if security == "ssl" else {"starttls": server_context}
    with FakeImap(folders, user="sam", password="pw", **tls) as server:
        trusting = ssl.create_default_context(cafile=str(cert))
        summary = crm.ingest.imap("127.0.0.1", "sam", "pw", port=server.port, security=security, ssl_context=trusting)
        assert summary.created == 1
        assert ("STARTTLS" in server.commands) == (security == "starttls")
        # The machine's own trust store does not know this certificate: refused, nothing sent.
        with pytest.raises(IngestError, match="certificate verify failed"):
            crm.ingest.imap("127.0.0.1", "sam", "pw", port=server.port, security=security)
        assert server.logins == 1


# -- the command --------------------------------------------------------------------------


def run(*args, env=None, input=None):
    return CliRunner().invoke(cli.main, ["ingest", *args], env=env, input=input, catch_exceptions=False)


def test_cli_ingests_mbox_and_prints_the_summary(crm, people, tmp_path):
    path = write_mbox(tmp_path / "inbox.mbox", [MULTIPART, UNKNOWN_SENDER, UNKNOWN_DOMAIN, NO_SENDER])
    result = run("mbox", str(path))
    assert result.exit_code == 0, result.output
    assert "1 activities created" in result.output
    assert "1 skipped: unknown senders" in result.output and "1 skipped: unknown domains" in result.output
    assert "inbox.mbox message 4: no sender" in result.output
    result = run("mbox", str(path), "--create-contacts")
    assert "1 activities created" in result.output and "1 lead contacts created" in result.output
    assert "1 skipped: ingested before" in result.output


def test_cli_eml_and_ics(crm, people, tmp_path, ics_file):
    folder = write_eml(tmp_path / "mail", {"a.eml": MULTIPART})
    assert "1 activities created" in run("eml", str(folder)).output
    assert "5 activities created" in run("ics", str(ics_file)).output
    missing = CliRunner().invoke(cli.main, ["ingest", "ics", str(tmp_path / "none.ics")])
    assert missing.exit_code != 0


def test_cli_imap_takes_the_password_from_the_environment_or_a_prompt(crm, people, imap_server):
    args = ["imap", "--host", "127.0.0.1", "--port", str(imap_server.port), "--user", "sam", "--plain"]
    result = run(*args, env={"CRM_IMAP_PASSWORD": 'pa ss"word'})
    assert result.exit_code == 0, result.output
    assert "2 activities created" in result.output
    prompted = run(*args, "--folder", "Sent Items", env={"CRM_IMAP_PASSWORD": None}, input='pa ss"word\n')
    assert prompted.exit_code == 0, prompted.output
    assert "Password" in prompted.output and "1 activities created" in prompted.output
    assert 'pa ss"word' not in prompted.output
    refused = CliRunner().invoke(cli.main, ["ingest", *args], env={"CRM_IMAP_PASSWORD": "nope"})
    assert refused.exit_code == 1 and "refused" in refused.output
    assert imap_server.logins == 2
