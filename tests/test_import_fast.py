"""Big imports set the table's non-unique secondary indexes aside and rebuild them once
(db/bulk.py): the same rows and the same indexes as the normal path, all or nothing. The app
login's case (no owner, no fast path) is in test_access.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import cli
from crm_kernel.db import bulk
from crm_kernel.errors import ImportRefusedError
from crm_kernel.importer import writing


def contacts_file(path, first: int, count: int):
    lines = ["first_name,last_name,email,job_title,lead_score,tags"]
    lines += [f'Ann{n},Lee{n},ann{n}@example.com,Buyer {n % 7},{n % 101},"vip,q{n % 4}"' for n in range(first, count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def indexes(engine) -> dict[str, str]:
    """The contacts table's indexes as the catalog defines them, and whether they are usable."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.indexname, i.indexdef, x.indisvalid AND x.indisready FROM pg_indexes i"
                " JOIN pg_index x ON x.indexrelid = format('%I.%I', i.schemaname, i.indexname)::regclass"
                " WHERE i.tablename = 'contacts'"
            )
        ).all()
    assert all(usable for _, _, usable in rows)
    return {name: definition for name, definition, _ in rows}


def stored(engine) -> list[tuple]:
    """Every contact as stored (not its id and times), with its audit row, in e-mail order."""
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT c.first_name, c.last_name, c.email, c.job_title, c.lead_score, c.tags,"
                    " c.search_vector::text, c.owner_id, c.version, a.operation, a.imported, a.after ->> 'email'"
                    " FROM contacts c LEFT JOIN audit_log a ON a.entity_id = c.id ORDER BY c.email"
                )
            )
        ]


def found_through_the_indexes(engine) -> tuple:
    """What the rebuilt GIN indexes answer, with sequential scans ruled out."""
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM contacts WHERE search_vector @@ to_tsquery('simple', 'lee7')),"
                " (SELECT count(*) FROM contacts WHERE email ILIKE '%n1%'),"
                " (SELECT count(*) FROM contacts WHERE tags @> ARRAY['q1'])"
            )
        ).one()


def empty(engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE contacts, audit_log CASCADE")


def test_a_fast_import_stores_the_rows_and_indexes_the_normal_one_does(crm, engine, tmp_path):
    before = indexes(engine)
    with engine.connect() as conn:
        aside = bulk.secondary_indexes(conn.connection.driver_connection.cursor(), ["contacts"])
    assert len(aside) >= 5 and set(before) - {name for _, name, _ in aside} == {"contacts_pkey", "contacts_email_key"}
    f = contacts_file(tmp_path / "c.csv", 0, 300)
    normal = crm.importer.run("contacts", f, fast=False)
    assert normal.created == 300 and not normal.fast
    rows, answers = stored(engine), found_through_the_indexes(engine)
    assert answers[0] == 1 and all(answers)
    empty(engine)
    fast = crm.importer.run("contacts", f, fast=True)
    assert fast.created == 300 and fast.fast and "indexes rebuilt" in str(fast)
    assert stored(engine) == rows
    assert indexes(engine) == before
    assert found_through_the_indexes(engine) == answers


def test_a_failing_fast_import_leaves_the_table_and_its_indexes_as_they_were(crm, engine, tmp_path):
    crm.importer.run("contacts", contacts_file(tmp_path / "a.csv", 0, 20), fast=False)
    rows, before = stored(engine), indexes(engine)

    def interrupted(done, total):
        raise KeyboardInterrupt  # Ctrl-C half-way through the COPY, with the indexes dropped

    with pytest.raises(KeyboardInterrupt):
        crm.importer.run("contacts", contacts_file(tmp_path / "b.csv", 20, 200), fast=True, on_progress=interrupted)
    assert stored(engine) == rows and indexes(engine) == before

    # Refused by the database half-way through the COPY (a trigger standing in for any refusal).
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION test_refuse_lee150() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.last_name = 'Lee150' THEN RAISE EXCEPTION 'no Lee150 here'; END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER test_refuse_lee150 BEFORE INSERT ON contacts"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_lee150()"
        )
    try:
        with pytest.raises(Exception, match="no Lee150 here"):
            crm.importer.run("contacts", contacts_file(tmp_path / "c.csv", 20, 200), fast=True)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER test_refuse_lee150 ON contacts; DROP FUNCTION test_refuse_lee150()")
    assert stored(engine) == rows and indexes(engine) == before


def test_fast_is_chosen_for_an_import_big_against_the_table(crm, engine, tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "FAST_MIN_ROWS", 30)
    small = crm.importer.run("contacts", contacts_file(tmp_path / "a.csv", 0, 20))
    assert not small.fast  # under FAST_MIN_ROWS
    first = crm.importer.run("contacts", contacts_file(tmp_path / "b.csv", 20, 60))
    assert not first.fast  # 40 rows, but not FAST_TABLE_RATIO times the 20 there
    big = crm.importer.run("contacts", contacts_file(tmp_path / "c.csv", 60, 300))
    assert big.fast and crm.contacts.count() == 300
    assert not crm.importer.run("contacts", contacts_file(tmp_path / "d.csv", 300, 900), fast=False).fast
    preview = crm.importer.preview("contacts", contacts_file(tmp_path / "e.csv", 900, 1200))
    assert not preview.fast and not preview.written


def test_fast_must_be_true_false_or_none(crm, tmp_path):
    with pytest.raises(ImportRefusedError, match="fast is True, False or None"):
        crm.importer.run("contacts", contacts_file(tmp_path / "a.csv", 0, 2), fast="yes")


def test_cli_fast_and_no_fast(crm, engine, tmp_path):
    def crm_import(*args):
        return CliRunner().invoke(cli.main, ["import", "contacts", *map(str, args)], catch_exceptions=False)

    fast = crm_import(contacts_file(tmp_path / "a.csv", 0, 5), "--fast")
    assert fast.exit_code == 0 and "created: 5" in fast.output and "indexes rebuilt" in fast.output
    normal = crm_import(contacts_file(tmp_path / "b.csv", 5, 50), "--no-fast")
    assert normal.exit_code == 0 and "created: 45" in normal.output and "indexes rebuilt" not in normal.output
    assert crm.contacts.count() == 50
