"""``crm.search`` on typical searches, against a plain ``ILIKE '%text%'`` scan of the same names.

    .venv/bin/python benchmarks/search.py --scale 100      # 2.8M records; loading takes minutes
    .venv/bin/python benchmarks/search.py --url postgresql://...   # a database as it is

The searches are drawn from the data, so that each has a record it should find: a company's
name with a letter missing, a contact's name with two letters swapped, an accented name typed
without its accents, a piece of an e-mail address, an e-mail domain, a deal's word found in
thousands of titles, an activity subject found in a hundred thousand activities.

For each it prints, in one run: the latency of ``crm.search(text)`` (all four entities, 20 rows;
median of --repeat runs after one to warm up), of the baseline (the same four tables scanned
with ``ILIKE '%text%'`` on the same names and addresses, live rows, best 20 by name, as one would
write it by hand without indexes: sequential scans), their ratio, and whether each found the
record the search was drawn from. It also EXPLAINs every entity's query of every search and
says whether any read a table from end to end (it must not: trigram GiST / GIN and full-text
GIN indexes only).

Without --url (CRM_DATABASE_URL is ignored) it starts a throwaway PostgreSQL cluster and loads
demo data at --scale; with --url it uses that database's data as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics

import sqlalchemy as sa
from harness import database, timings

from crm_kernel import CRM
from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine
from crm_kernel.services import search as searching

BASELINE = """
(SELECT 'companies' AS entity, id, name AS title FROM companies
  WHERE deleted_at IS NULL AND (name ILIKE :like OR domain ILIKE :like) ORDER BY name LIMIT :n)
UNION ALL
(SELECT 'contacts', id, first_name || ' ' || last_name FROM contacts
  WHERE deleted_at IS NULL AND (first_name || ' ' || last_name ILIKE :like OR email ILIKE :like)
  ORDER BY 3 LIMIT :n)
UNION ALL
(SELECT 'deals', id, title FROM deals WHERE deleted_at IS NULL AND title ILIKE :like ORDER BY title LIMIT :n)
UNION ALL
(SELECT 'activities', id, subject FROM activities WHERE deleted_at IS NULL AND subject ILIKE :like
  ORDER BY subject LIMIT :n)"""


def one(conn, sql: str) -> sa.Row:
    row = conn.execute(sa.text(sql)).first()
    if row is None:
        raise SystemExit(f"the data has nothing for: {sql}")
    return row


def drop_letter(word: str) -> str:
    return word[: len(word) // 2] + word[len(word) // 2 + 1 :]


def swap_letters(word: str) -> str:
    i = max(1, len(word) // 2 - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def searches(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(what, text, id of the record it should find), drawn from the data."""
    with engine.connect() as conn:
        company = one(
            conn, "SELECT id, name FROM companies WHERE deleted_at IS NULL AND length(name) > 12 ORDER BY id LIMIT 1"
        )
        person = one(
            conn,
            "SELECT id, first_name, last_name, email FROM contacts WHERE deleted_at IS NULL"
            " AND length(last_name) >= 5 AND email IS NOT NULL ORDER BY id LIMIT 1",
        )
        accented = conn.execute(
            sa.text(
                "SELECT id, first_name || ' ' || last_name AS name FROM contacts WHERE deleted_at IS NULL"
                " AND first_name || last_name <> crm_fold(first_name || last_name)"
                " AND lower(first_name || last_name) <> crm_fold(first_name || last_name) ORDER BY id LIMIT 1"
            )
        ).first()
        domain = one(
            conn,
            "SELECT id, email FROM contacts WHERE deleted_at IS NULL AND email LIKE '%@%' ORDER BY id DESC LIMIT 1",
        )
        deal = one(
            conn, "SELECT id, title FROM deals WHERE deleted_at IS NULL AND title ILIKE '%renewal%' ORDER BY id LIMIT 1"
        )
        activity = one(
            conn,
            "SELECT id, subject FROM activities WHERE deleted_at IS NULL"
            " AND subject = 'Discovery call' ORDER BY id LIMIT 1",
        )
    words = company.name.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    typo_company = " ".join(drop_letter(w) if i == longest else w for i, w in enumerate(words))
    local, host = person.email.split("@")
    found = [
        ("company, a letter missing", typo_company.lower(), str(company.id)),
        (
            "contact, two letters swapped",
            f"{person.first_name} {swap_letters(person.last_name)}".lower(),
            str(person.id),
        ),
        ("e-mail fragment", f"{local}@{host.split('.')[0]}", str(person.id)),
        ("e-mail domain", "@" + domain.email.split("@")[1], str(domain.id)),
        ("deal, common word", "renewal", ""),
        ("activity, 100k alike", "discovery call", ""),
        ("two letters", "jo", ""),
    ]
    if accented is not None:
        with engine.connect() as conn:
            plain = conn.execute(sa.text("SELECT crm_fold(:n)"), {"n": accented.name}).scalar()
        found.insert(2, ("accented name, typed plain", plain, str(accented.id)))
    del deal, activity  # common words: any of thousands is right
    return found


def table_scans(conn, text: str) -> list[str]:
    """The sources of candidates for ``text`` that read a table from end to end, as planned.
    The exact words may be found by a sequential scan that stops at ``:k`` rows when the
    planner expects many (cheaper than the index then): those are listed apart."""
    words = searching.words_of(text)
    params = {**searching.query_params(text, words, 20), "ids": []}
    found = []
    for name in searching.ENTITIES:
        queries = searching.entity_queries(name, len(words), address=searching.looks_like_address(text))
        if queries is None:
            continue
        explain = lambda sql: "\n".join(conn.execute(sa.text("EXPLAIN " + sql), params).scalars())  # noqa: E731
        if f"Seq Scan on {name}" in explain(queries.exact):
            found.append(f"{name} exact words (a sequential scan stopping at :k rows)")
        for step in ("close", "similar"):
            if (fuzzy := getattr(queries, step)) is None:
                continue
            with conn.begin_nested() as savepoint:  # as searching.fuzzy_ids runs it
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
                if "_fold_trgm_idx" not in explain(fuzzy):
                    found.append(f"{name} fuzzy match ({step}) NOT ON ITS INDEX")
                savepoint.rollback()
        if f"Seq Scan on {name}" in explain(queries.score):
            found.append(f"{name} scoring")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10, help="demo data to load (without --url); 100 = 2.8M rows")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--url", help="run on this database (its data is used as it is)")
    args = parser.parse_args()

    with database(args.url, "crm-bench-search-") as url:
        engine = connect_engine(url)
        if not args.url:
            print(f"loading demo data at scale {args.scale} ...", flush=True)
            demo_data.load(engine, scale=args.scale, seed=42, today=dt.date(2026, 1, 15))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum leaves a database at rest
        crm = CRM(engine)
        with engine.connect() as conn:
            counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in searching.ENTITIES}
        print(", ".join(f"{n:,} {t}" for t, n in counts.items()))

        def baseline(text: str) -> list[str]:
            with crm.transaction() as conn:
                conn.exec_driver_sql("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
                return [str(r.id) for r in conn.execute(sa.text(BASELINE), {"like": f"%{text}%", "n": 20})]

        print(
            f"{'search':<30} {'text':<28} | {'crm.search':>10} {'ILIKE scan':>10} {'ratio':>7} "
            "| found it: search, ILIKE"
        )
        ratios, latencies, scanned = [], [], []
        for what, text, wanted in searches(engine):
            got = crm.search(text)  # warm up
            ours = statistics.median(timings(args.repeat, lambda t=text: crm.search(t)))
            plain = baseline(text)
            theirs = statistics.median(timings(max(1, args.repeat // 2), lambda t=text: baseline(t)))
            with crm.transaction() as conn:
                searching.set_thresholds(conn)
                scanned += [f"{text!r}: {what}" for what in table_scans(conn, text)]
            hit = (
                "-"
                if not wanted
                else f"{'yes' if wanted in got['id'].to_list() else 'NO'}, {'yes' if wanted in plain else 'no'}"
            )
            ratios.append(theirs / ours)
            latencies.append(ours)
            print(
                f"{what:<30} {text[:28]:<28} | {ours * 1000:>8.1f}ms {theirs * 1000:>8.1f}ms {theirs / ours:>6.1f}x"
                f" | {hit}",
                flush=True,
            )
        print(
            f"crm.search: median {statistics.median(latencies) * 1000:.1f} ms, slowest {max(latencies) * 1000:.1f} ms;"
            f" {statistics.median(ratios):.1f}x faster than the ILIKE scan (median)"
        )
        print(
            "plans: every source of candidates on its index"
            if not scanned
            else "plans with a sequential scan: " + "; ".join(scanned)
        )
        engine.dispose()


if __name__ == "__main__":
    main()
