"""Saved views: the builder's spec saved under a name (yours, or shared), loaded, renamed,
deleted, all through ``crm.saved_queries``."""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..errors import CrmError
from .rules import show_error


class SavedViews(widgets.VBox):
    """Save the builder's query; pick a saved one to load, rename or delete it."""

    def __init__(self, crm, builder):
        self.crm, self.builder = crm, builder
        self.name = widgets.Text(placeholder="name of the view", layout=widgets.Layout(width="240px"))
        self.name.add_class("crm-saved-name")
        self.shared = widgets.Checkbox(value=False, description="shared with everyone", indent=False)
        self.shared.add_class("crm-saved-shared")
        self.save_button = widgets.Button(description="Save view", button_style="success")
        self.save_button.add_class("crm-saved-save")
        self.views = widgets.Select(options=[], rows=6, layout=widgets.Layout(width="100%"))
        self.views.add_class("crm-saved-list")
        self.table = widgets.HTML("")
        self.table.add_class("crm-saved-table")
        self.load_button = widgets.Button(description="Load")
        self.load_button.add_class("crm-saved-load")
        self.new_name = widgets.Text(placeholder="new name", layout=widgets.Layout(width="200px"))
        self.new_name.add_class("crm-saved-new-name")
        self.rename_button = widgets.Button(description="Rename")
        self.rename_button.add_class("crm-saved-rename")
        self.delete_button = widgets.Button(description="Delete", button_style="danger")
        self.delete_button.add_class("crm-saved-delete")
        self.message = widgets.HTML("")
        self.message.add_class("crm-saved-message")
        self.save_button.on_click(lambda _: self.save())
        self.load_button.on_click(lambda _: self.load())
        self.rename_button.on_click(lambda _: self.rename())
        self.delete_button.on_click(lambda _: self.delete())
        super().__init__(
            [
                widgets.HBox([self.name, self.shared, self.save_button]),
                self.table,
                self.views,
                widgets.HBox([self.load_button, self.new_name, self.rename_button, self.delete_button]),
                self.message,
            ]
        )
        self.add_class("crm-saved-views")
        self.records: list[dict] = []
        self.refresh()

    # -- actions -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read your views and the shared ones (most used first)."""
        self.records = self.crm.saved_queries.visible()
        owners = self._owners()
        current = self.views.value
        self.views.options = [(self._label(r, owners), str(r["id"])) for r in self.records]
        if current in {str(r["id"]) for r in self.records}:
            self.views.value = current
        rows = "".join(
            f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(owners.get(r['owner_id'], '?'))}</td>"
            f"<td>{'shared' if r['shared'] else 'personal'}</td><td style='text-align:right'>{r['use_count']}</td>"
            f"<td>{_when(r['last_used_at'])}</td></tr>"
            for r in self.records
        )
        self.table.value = (
            "<table class='crm-saved-rows'><thead><tr><th>Name</th><th>Owner</th><th>Visibility</th><th>Uses</th>"
            f"<th>Last used</th></tr></thead><tbody>{rows}</tbody></table>"
            if self.records
            else "<i>No saved views yet.</i>"
        )

    def save(self) -> dict | None:
        name = self.name.value.strip()
        if not name:
            return self._fail("give the view a name")
        if self.builder.error is not None:
            return self._fail(f"not saved: {self.builder.error}")
        try:
            record = self.crm.saved_queries.save(name, self.builder.spec, shared=self.shared.value)
        except CrmError as exc:
            return self._fail(str(exc))
        self.refresh()
        self.views.value = str(record["id"])
        return self._done(f"saved “{record['name']}”", record)

    def load(self) -> dict | None:
        if self.views.value is None:
            return self._fail("pick a view to load")
        try:
            spec = self.crm.saved_queries.load(self.views.value)
            self.builder.spec = spec
        except CrmError as exc:
            return self._fail(str(exc))
        chosen = self.views.value
        self.refresh()
        self.views.value = chosen
        return self._done("loaded into the builder", spec)

    def rename(self) -> dict | None:
        if self.views.value is None:
            return self._fail("pick a view to rename")
        new = self.new_name.value.strip()
        if not new:
            return self._fail("type the new name")
        try:
            record = self.crm.saved_queries.rename(self.views.value, new)
        except CrmError as exc:
            return self._fail(str(exc))
        self.new_name.value = ""
        self.refresh()
        return self._done(f"renamed to “{record['name']}”", record)

    def delete(self) -> dict | None:
        if self.views.value is None:
            return self._fail("pick a view to delete")
        try:
            record = self.crm.saved_queries.delete(self.views.value)
        except CrmError as exc:
            return self._fail(str(exc))
        self.refresh()
        return self._done(f"deleted “{record['name']}”", record)

    # -- inside ------------------------------------------------------------------------------

    def _owners(self) -> dict:
        ids = {r["owner_id"] for r in self.records if r["owner_id"] is not None}
        if not ids:
            return {}
        users = self.crm.users.list(limit=None, include_deleted=True)
        return {u["id"]: u["full_name"] or u["email"] for u in users if u["id"] in ids}

    @staticmethod
    def _label(record: dict, owners: dict) -> str:
        owner = owners.get(record["owner_id"], "?")
        visibility = "shared" if record["shared"] else "personal"
        return (
            f"{record['name']} — {owner} · {visibility} · used {record['use_count']}× · "
            f"last used {_when(record['last_used_at'])}"
        )

    def _fail(self, message: str) -> None:
        show_error(self.message, message)
        return None

    def _done(self, message: str, value):
        self.message.value = html.escape(message)
        return value


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "never"
