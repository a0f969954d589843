"""`crm import`, driven the way a user types it."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from crm_kernel import cli


def crm_cli(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def test_dry_run_then_import(crm, tmp_path):
    f = tmp_path / "people.csv"
    f.write_text("First Name,Last Name,E-mail Address\nAnn,Lee,ann@x.com\nBo,Kim,bo@x.com\n")
    dry = crm_cli("import", "contacts", f, "--dry-run")
    assert dry.exit_code == 0 and "would be created: 2" in dry.output and "nothing was written" in dry.output
    assert crm.contacts.count() == 0
    done = crm_cli("import", "contacts", f)
    assert done.exit_code == 0 and "created: 2" in done.output and crm.contacts.count() == 2
    again = crm_cli("import", "contacts", f, "--on-duplicate", "skip")
    assert "skipped: 2" in again.output and crm.contacts.count() == 2


def test_invalid_rows_exit_1_and_write_the_errors_file(crm, tmp_path):
    f = tmp_path / "people.csv"
    f.write_text("first_name,last_name,email\nAnn,Lee,nope\nBo,Kim,bo@x.com\n")
    out = tmp_path / "errors.csv"
    result = crm_cli("import", "contacts", f, "--errors", out)
    assert result.exit_code == 1 and "line 2, email: 'nope' is not an e-mail address" in result.output
    assert "nothing was written" in result.output and crm.contacts.count() == 0
    with open(out) as fh:
        assert list(csv.reader(fh))[1] == ["2", "email", "nope", "is not an e-mail address"]
    skipped = crm_cli("import", "contacts", f, "--skip-invalid")
    assert skipped.exit_code == 0 and crm.contacts.count() == 1


def test_a_bad_mapping_is_a_clear_error(crm, tmp_path):
    f = tmp_path / "people.csv"
    f.write_text("first_name,last_name\nAnn,Lee\n")
    m = tmp_path / "map.json"
    m.write_text('{"columns": {"Nope": "email"}}')
    result = crm_cli("import", "contacts", f, "--mapping", m)
    assert result.exit_code == 1 and "'Nope' that the file does not have" in result.output
