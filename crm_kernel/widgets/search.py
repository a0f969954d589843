"""Search widgets: a search box with results as you type, and the Ctrl+K command palette.

    from crm_kernel.widgets.search import CommandPalette, SearchBox
    SearchBox(crm)           # type; pick a result to open its record page
    CommandPalette(crm)      # in any app: Ctrl+K (⌘K) opens it over the page; records and apps

Both are thin: the front end (``search.js``, shipped in the package) sets ``query`` as the user
types (debounced); the kernel answers with ``crm.search`` into ``results`` and names the text
they answer in ``answered``, so that the page never shows the results of an older text as the
newer one's. Choosing a result opens its page: a record's at :func:`record_page`, an app's at
:func:`app_page` (URLs relative to the server's base URL, which the page adds).
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import anywidget
import traitlets

from ..errors import CrmError

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent

ENTITY_LABELS = {"companies": "Company", "contacts": "Contact", "deals": "Deal", "activities": "Activity"}
# Apps that show one record need its id: they are reached through a record, never listed.
RECORD_APP = "record.ipynb"


def record_page(entity: str, record_id) -> str:
    """The record page's URL (relative to the server's base): ``voila/render/record.ipynb?entity=...&id=...``."""
    return f"voila/render/{RECORD_APP}?{urlencode({'entity': entity, 'id': str(record_id)})}"


def app_page(name: str) -> str:
    """An app's URL (relative to the server's base): ``voila/render/pipeline.ipynb``."""
    return f"voila/render/{name}"


@lru_cache(maxsize=64)
def _title(path: Path, _mtime: float) -> str:
    """An app's title: its notebook's ``metadata.title``, else its first markdown heading."""
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError):
        return path.stem.replace("_", " ").capitalize()
    title = notebook.get("metadata", {}).get("title")
    for cell in notebook.get("cells", []):
        if title:
            break
        if cell.get("cell_type") == "markdown":
            lines = "".join(cell.get("source", "")).splitlines()
            title = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), None)
    return title or path.stem.replace("_", " ").capitalize()


def list_apps(folder: Path | None = None) -> list[dict]:
    """The apps a palette offers: every notebook of ``folder`` (default ``dashboards/``) but the
    record page, as ``{kind: "app", id, title, subtitle, url}``."""
    if folder is None:
        from ..serve import dashboards_dir

        try:
            folder = dashboards_dir()
        except CrmError:
            return []
    found = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        if path.name.startswith((".", "_")) or path.name == RECORD_APP:
            continue
        found.append(
            {
                "kind": "app",
                "id": path.name,
                "title": _title(path, path.stat().st_mtime),
                "subtitle": "App",
                "url": app_page(path.name),
            }
        )
    return found


class _Finder(anywidget.AnyWidget):
    """What the search box and the palette share: ``query`` in, ``results`` out."""

    _esm = _HERE / "search.js"
    _css = _HERE / "search.css"

    mode = traitlets.Unicode().tag(sync=True)  # "box" or "palette": which face search.js draws
    query = traitlets.Unicode("").tag(sync=True)  # the text as typed, set by the front end
    answered = traitlets.Unicode("").tag(sync=True)  # the text `results` answer
    results = traitlets.List().tag(sync=True)  # [{kind: "record", entity, id, title, subtitle, score, url}]
    error = traitlets.Unicode("").tag(sync=True)  # why the latest text found nothing, when it was refused
    placeholder = traitlets.Unicode("Find a company, contact, deal or activity…").tag(sync=True)
    limit = traitlets.Int(10).tag(sync=True)

    def __init__(self, crm, *, limit: int = 10, entities=None, **kwargs):
        self.crm = crm
        self.entities = entities
        super().__init__(limit=limit, **kwargs)
        self.observe(self._on_query, names="query")

    def search(self, text: str) -> list[dict]:
        """Run ``text`` as the front end would: results in ``results``, a refusal in ``error``."""
        try:
            frame = self.crm.search(text, self.entities, self.limit)
            results, error = [_record(row) for row in frame.iter_rows(named=True)], ""
        except CrmError as exc:
            results, error = [], str(exc)
        except Exception as exc:  # shown in the box, never raised into the kernel's log
            log.exception("search for %r failed", text)
            results, error = [], f"Search failed: {exc}"
        with self.hold_sync():  # one message: results and the text they answer together
            self.results = results
            self.error = error
            self.answered = text
        return results

    def _on_query(self, change) -> None:
        self.search(change["new"])


def _record(row: dict) -> dict:
    return {
        "kind": "record",
        "entity": row["entity"],
        "id": row["id"],
        "title": row["title"],
        "subtitle": row["subtitle"],
        "score": row["score"],
        "label": ENTITY_LABELS[row["entity"]],
        "url": record_page(row["entity"], row["id"]),
    }


class SearchBox(_Finder):
    """A search box: results as you type; a click or Enter on one opens its record page.

    ``open_pages=False`` keeps the page where it is (choosing only sets ``chosen``).
    """

    chosen = traitlets.Dict().tag(sync=True)  # the result last chosen
    open_pages = traitlets.Bool(True).tag(sync=True)
    autofocus = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self, crm, *, limit: int = 10, entities=None, open_pages: bool = True, autofocus: bool = False, **kwargs
    ):
        super().__init__(
            crm, limit=limit, entities=entities, mode="box", open_pages=open_pages, autofocus=autofocus, **kwargs
        )


class CommandPalette(_Finder):
    """Ctrl+K (⌘K on a Mac) anywhere on the page opens a palette over it: typing finds records
    (``crm.search``) and apps (the notebooks of ``apps_folder``, default ``dashboards/``);
    ↑ ↓ pick, Enter opens, Escape closes. Where it is displayed it shows a small button that
    opens it too. One line adds it to an app: ``CommandPalette(crm)``."""

    apps = traitlets.List().tag(sync=True)  # [{kind: "app", id, title, subtitle, url}]
    shortcut = traitlets.Unicode("k").tag(sync=True)  # with Ctrl (or ⌘)

    def __init__(self, crm, *, apps_folder: Path | None = None, limit: int = 8, entities=None, **kwargs):
        super().__init__(
            crm,
            limit=limit,
            entities=entities,
            mode="palette",
            apps=list_apps(apps_folder),
            placeholder="Find a record or an app…",
            **kwargs,
        )


__all__ = ["CommandPalette", "SearchBox", "app_page", "list_apps", "record_page"]
