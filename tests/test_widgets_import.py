"""ImportWizard at the widget level: upload, mapping with a sample, preview, import, progress."""

from __future__ import annotations

import datetime as dt

from crm_kernel.widgets import ImportWizard

CSV = b"Known As,Surname,E-mail Address,Notes\nAnn,Lee,ann@x.com,hi\nBo,Kim,bo@x.com,yo\n"


def upload(wizard, name: str, data: bytes) -> None:
    wizard.upload.value = (
        {
            "name": name,
            "type": "text/csv",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": dt.datetime.now(dt.UTC),
        },
    )


def test_upload_proposes_a_mapping_with_a_sample(crm):
    wizard = ImportWizard(crm)
    upload(wizard, "people.csv", CSV)
    assert wizard.mapping["columns"] == {
        "Known As": None,
        "Surname": "last_name",
        "E-mail Address": "email",
        "Notes": None,
    }
    first_row = wizard.mapping_box.children[0].children
    assert "Ann, Bo" in first_row[2].value
    assert "2 rows" in wizard.message.value


def test_preview_then_import_with_progress(crm):
    wizard = ImportWizard(crm)
    upload(wizard, "people.csv", CSV)
    wizard.preview()
    assert "first_name" in wizard.message.value and wizard.import_button.disabled  # required, unmapped
    wizard.columns["Known As"].value = "first_name"
    assert wizard.import_button.disabled  # a changed mapping needs a new preview
    report = wizard.preview()
    assert report.created == 2 and not wizard.import_button.disabled and crm.contacts.count() == 0
    wizard.import_button.click()
    assert crm.contacts.count() == 2
    assert wizard.progress.value == wizard.progress.max == 2
    assert "created: 2" in wizard.message.value


def test_refused_rows_block_the_import_until_skipped(crm):
    wizard = ImportWizard(crm)
    upload(wizard, "people.csv", b"first_name,last_name,email\nAnn,Lee,bad\nBo,Kim,bo@x.com\n")
    wizard.preview()
    assert wizard.import_button.disabled and "line 2, email" in wizard.message.value
    wizard.skip_invalid.value = True
    wizard.preview()
    wizard.run()
    assert [c["email"] for c in crm.contacts.list()] == ["bo@x.com"]


def test_a_file_that_cannot_be_read_says_so(crm):
    wizard = ImportWizard(crm)
    upload(wizard, "empty.csv", b"")
    assert "empty" in wizard.message.value and wizard.preview() is None
