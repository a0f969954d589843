"""Lists of records for the apps: ``RecordList`` (each row a link to its record page) and
``TaskList`` (the same with a tick that completes the task through ``crm.activities``).

    from crm_kernel.widgets.lists import RecordList, TaskList, record_href
    RecordList(items=[{"id": d["id"], "title": d["title"], "href": record_href("deals", d["id"])}])
    tasks = TaskList(crm, items=[...])   # a tick calls crm.activities.complete, then on_change
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import anywidget
import traitlets

from ..errors import CrmError

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent
RECORD_APP = "record.ipynb"  # the record page, beside the other apps under /voila/render/


def record_href(entity: str, record_id) -> str:
    """The record page of one record, relative to an app's page:
    ``record.ipynb?entity=deals&id=...`` (``/voila/render/record.ipynb?...`` from the root)."""
    return f"{RECORD_APP}?{urlencode({'entity': entity, 'id': str(record_id)})}"


class RecordList(anywidget.AnyWidget):
    """Rows of ``{id, title, href, meta, badge}``; ``empty`` is shown when there are none."""

    _esm = _HERE / "lists.js"
    _css = _HERE / "my_day.css"

    items = traitlets.List().tag(sync=True)
    empty = traitlets.Unicode("Nothing here").tag(sync=True)
    checkable = traitlets.Bool(False).tag(sync=True)


class TaskList(RecordList):
    """Rows of open activities with a tick: ticking one completes it (``crm.activities.complete``
    with the row's ``version``), drops it from ``items`` and calls ``on_change``; a refused
    completion (changed or deleted meanwhile) is shown in ``error`` and the list reloads."""

    checkable = traitlets.Bool(True).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, crm, *, on_change: Callable[[], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.crm = crm
        self.on_change = on_change
        self.on_msg(self._on_message)

    def _on_message(self, _widget, content, _buffers) -> None:
        if content.get("type") == "complete":
            self.complete(content.get("id"), content.get("version"))

    def complete(self, activity_id: str, version: int | None = None) -> None:
        try:
            self.crm.activities.complete(activity_id, expected_version=version)
            self.error = ""
        except CrmError as exc:  # shown, not raised: the page stays usable
            self.error = str(exc)
        self.items = [item for item in self.items if item["id"] != activity_id]
        if self.on_change is not None:
            self.on_change()
