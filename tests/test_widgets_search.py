"""The search box and the command palette, on the Python side: what the kernel answers to the
text the page sends, and the pages their results open. (tests/browser/test_find.py drives them
in Chromium.)"""

import json

from crm_kernel.widgets import CommandPalette, SearchBox
from crm_kernel.widgets.search import app_page, list_apps, record_page


def test_typing_sets_results_with_their_record_pages(crm):
    john = crm.contacts.create(first_name="John", last_name="Smith", email="john.smith@acme.com")
    box = SearchBox(crm)
    box.query = "jon smiht"  # as the front end sets it
    assert box.answered == "jon smiht" and box.error == ""
    first = box.results[0]
    assert first["kind"] == "record" and first["entity"] == "contacts" and first["id"] == str(john["id"])
    assert first["title"] == "John Smith" and first["label"] == "Contact"
    assert first["url"] == f"voila/render/record.ipynb?entity=contacts&id={john['id']}"
    box.query = ""
    assert box.results == [] and box.answered == ""


def test_refused_text_is_an_error_shown_not_raised(crm):
    box = SearchBox(crm)
    box.query = "a\x00b"
    assert box.results == [] and "NUL" in box.error and box.answered == "a\x00b"
    box.query = "x" * 500
    assert "at most 200" in box.error
    box.query = "anything"
    assert box.error == ""


def test_the_limit_and_entities_are_kept(crm):
    for i in range(5):
        crm.companies.create(name=f"Orion {i}")
    crm.contacts.create(first_name="Orion", last_name="Pax")
    box = SearchBox(crm, limit=3, entities="companies")
    assert len(box.search("orion")) == 3 and {r["entity"] for r in box.results} == {"companies"}


def test_record_and_app_pages():
    assert record_page("deals", "1f0c") == "voila/render/record.ipynb?entity=deals&id=1f0c"
    assert record_page("companies", "a b&c") == "voila/render/record.ipynb?entity=companies&id=a+b%26c"
    assert app_page("pipeline.ipynb") == "voila/render/pipeline.ipynb"


def test_the_palette_offers_every_app_but_the_record_page(crm, tmp_path):
    apps = {app["id"]: app for app in CommandPalette(crm).apps}
    assert {"pipeline.ipynb", "workbench.ipynb", "find.ipynb"} <= set(apps)
    assert apps["pipeline.ipynb"]["title"] == "Pipeline"
    assert apps["workbench.ipynb"]["title"] == "CRM query workbench"  # its metadata's title
    assert apps["find.ipynb"] == {
        "kind": "app",
        "id": "find.ipynb",
        "title": "Find",
        "subtitle": "App",
        "url": "voila/render/find.ipynb",
    }
    for name in ("record.ipynb", "home.ipynb", ".hidden.ipynb"):
        (tmp_path / name).write_text(json.dumps({"cells": [], "metadata": {}}))
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert [a["id"] for a in list_apps(tmp_path)] == ["broken.ipynb", "home.ipynb"]
    assert [a["title"] for a in list_apps(tmp_path)] == ["Broken", "Home"]


def test_the_palette_searches_records_too(crm):
    crm.deals.create(company_id=crm.companies.create(name="Globex")["id"], title="Globex renewal")
    palette = CommandPalette(crm)
    palette.query = "globx"
    assert [r["title"] for r in palette.results] == ["Globex", "Globex renewal"]
