"""Mail ingest: messages a second into activities, with items written under savepoints in
transactions of ``writing.CHUNK`` (the library's way) against a transaction per message (the
baseline), and a second run over the same mailbox (every message a duplicate), in one run.
The same messages are then served over IMAP on loopback (tests/imap_server.py): a first run, a
re-run downloading every body as before, and a re-run fetching Message-IDs first.

    .venv/bin/python benchmarks/ingest.py --messages 2000
    .venv/bin/python benchmarks/ingest.py --url postgresql://...   # its activities are replaced

Without --url it starts a throwaway PostgreSQL cluster (never CRM_DATABASE_URL). It makes
--companies companies with five contacts each, and an mbox of --messages messages from those
contacts (a third of them multipart with an HTML alternative and an attachment).
"""

from __future__ import annotations

import argparse
import datetime as dt
import mailbox
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import sqlalchemy as sa
from harness import database

from crm_kernel import CRM
from crm_kernel.db import connect_engine
from crm_kernel.ingest import IngestSummary, writing
from crm_kernel.ingest.imap import imap_messages

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for the test IMAP server
from tests.imap_server import FakeImap  # noqa: E402


def make_people(crm: CRM, companies: int) -> list[str]:
    with crm.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE activities, deals, contacts, companies CASCADE")
    addresses = []
    for c in range(companies):
        company = crm.companies.create(name=f"Company {c}", domain=f"www.company{c}.example")
        for p in range(5):
            contact = crm.contacts.create(
                first_name=f"P{p}", last_name=f"C{c}", company_id=company["id"], email=f"p{p}@company{c}.example"
            )
            addresses.append(contact["email"])
    return addresses


def make_mbox(path: Path, addresses: list[str], messages: int) -> Path:
    box = mailbox.mbox(path)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(messages):
        msg = EmailMessage()
        msg["From"] = addresses[n % len(addresses)]
        msg["To"] = "sales@ourco.example"
        msg["Subject"] = f"Message {n}"
        msg["Date"] = format_datetime(start + dt.timedelta(minutes=n))
        msg["Message-ID"] = f"<bench-{n}@bench.example>"
        msg.set_content(f"Hello,\nthis is message {n}.\n" * 5)
        if n % 3 == 0:
            msg.add_alternative(f"<p>Hello, this is <b>message {n}</b>.</p>", subtype="html")
            msg.add_attachment(b"x" * 2000, maintype="application", subtype="octet-stream", filename="a.bin")
        box.add(msg)
    box.close()
    return path


def timed(crm: CRM, path: Path, chunk: int, *, fresh: bool) -> tuple[float, object]:
    if fresh:
        with crm.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE activities CASCADE")
    writing.CHUNK = chunk
    started = time.perf_counter()
    summary = crm.ingest.mbox(path)
    return time.perf_counter() - started, summary


def timed_imap(crm: CRM, server: FakeImap, *, fresh: bool, headers_first: bool = True) -> tuple[float, object]:
    """``crm.ingest.imap``; without ``headers_first`` the way it ran before: every body
    downloaded, duplicates found in the database."""
    if fresh:
        with crm.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE activities CASCADE")
    started = time.perf_counter()
    if headers_first:
        summary = crm.ingest.imap("127.0.0.1", "bench", "pw", port=server.port, security="plain")
    else:
        total, items = imap_messages("127.0.0.1", "bench", "pw", port=server.port, security="plain")
        summary = writing.write(crm, total, items, IngestSummary("imap"))
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="A CRM database to run on (its companies, contacts and activities are replaced).")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--companies", type=int, default=50)
    args = parser.parse_args()
    library_chunk = writing.CHUNK
    with database(args.url) as url, tempfile.TemporaryDirectory() as scratch:
        engine = connect_engine(url)
        crm = CRM(engine)
        addresses = make_people(crm, args.companies)
        path = make_mbox(Path(scratch) / "bench.mbox", addresses, args.messages)
        size = path.stat().st_size / 1e6
        baseline, base_summary = timed(crm, path, 1, fresh=True)
        chunked, summary = timed(crm, path, library_chunk, fresh=True)
        again, second = timed(crm, path, library_chunk, fresh=False)
        assert base_summary.created == summary.created == args.messages, (base_summary, summary)
        assert second.duplicates == args.messages and second.created == 0
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM activities")).scalar_one()
        assert stored == args.messages
        raw = [m.as_bytes() for m in mailbox.mbox(path)]
        with FakeImap({"INBOX": raw}, user="bench", password="pw") as server:
            imap_first, first = timed_imap(crm, server, fresh=True)
            imap_every, every = timed_imap(crm, server, fresh=False, headers_first=False)
            imap_again, headers = timed_imap(crm, server, fresh=False)
        assert first.created == args.messages and every.duplicates == headers.duplicates == args.messages
        engine.dispose()
    n = args.messages
    print(f"{n:,} messages ({size:.1f} MB mbox), {len(addresses):,} contacts")
    print(f"  a transaction per message (baseline) {baseline:7.2f} s  {n / baseline:7.0f} msg/s")
    print(
        f"  savepoints, {library_chunk} a transaction     {chunked:7.2f} s  {n / chunked:7.0f} msg/s"
        f"  ratio {baseline / chunked:.2f}x"
    )
    print(
        f"  the same mailbox again (duplicates)  {again:7.2f} s  {n / again:7.0f} msg/s  ratio {baseline / again:.2f}x"
    )
    print("IMAP on loopback")
    print(f"  first run                            {imap_first:7.2f} s  {n / imap_first:7.0f} msg/s")
    print(
        f"  again, every body downloaded (before){imap_every:7.2f} s  {n / imap_every:7.0f} msg/s"
        f"  ratio {imap_first / imap_every:.2f}x"
    )
    print(
        f"  again, Message-IDs first             {imap_again:7.2f} s  {n / imap_again:7.0f} msg/s"
        f"  ratio {imap_first / imap_again:.2f}x, {imap_every / imap_again:.2f}x against before"
    )


if __name__ == "__main__":
    main()
