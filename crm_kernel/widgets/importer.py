"""The import wizard: upload a CSV or Excel file, check the mapping against a sample, preview
what the import would do, confirm, watch it go. Every step is ``crm.importer``'s.

    ImportWizard(crm)          # in a notebook or a Voilà dashboard
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..errors import CrmError, ImportRefusedError
from ..importer import IMPORTABLE, ImportReport, auto_map
from ..importer.mapping import valid_targets
from ..importer.reading import Table

IGNORE = "(ignore)"
SAMPLE_ROWS = 3


class ImportWizard(widgets.VBox):
    """Upload -> mapping with a sample -> preview -> import, with a progress bar."""

    def __init__(self, crm, entity: str = "contacts"):
        self.crm = crm
        self.table: Table | None = None
        self.report: ImportReport | None = None
        self.entity = widgets.Dropdown(options=list(IMPORTABLE), value=entity, description="Import")
        self.upload = widgets.FileUpload(accept=".csv,.txt,.tsv,.xlsx", multiple=False, description="File")
        self.on_duplicate = widgets.Dropdown(
            options=["skip", "update", "create"], value="skip", description="Duplicates"
        )
        self.skip_invalid = widgets.Checkbox(
            value=False, description="write the valid rows, skip the rest", indent=False
        )
        self.mapping_box = widgets.VBox([])
        self.preview_button = widgets.Button(description="Preview", disabled=True)
        self.import_button = widgets.Button(description="Import", button_style="success", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="", layout={"visibility": "hidden"})
        self.message = widgets.HTML("")
        for w, name in [
            (self.upload, "upload"),
            (self.mapping_box, "mapping"),
            (self.preview_button, "preview"),
            (self.import_button, "import"),
            (self.message, "message"),
        ]:
            w.add_class(f"crm-import-{name}")
        self.columns: dict[str, widgets.Dropdown] = {}
        self.upload.observe(lambda _: self._uploaded(), "value")
        self.entity.observe(lambda _: self._show_mapping(), "value")
        self.preview_button.on_click(lambda _: self.preview())
        self.import_button.on_click(lambda _: self.run())
        super().__init__(
            [
                widgets.HBox([self.entity, self.upload]),
                self.mapping_box,
                widgets.HBox([self.on_duplicate, self.skip_invalid]),
                widgets.HBox([self.preview_button, self.import_button, self.progress]),
                self.message,
            ]
        )
        self.add_class("crm-import-wizard")

    # -- steps ---------------------------------------------------------------------------------

    def load(self, name: str, content: bytes) -> None:
        """Read an uploaded file (the upload button calls this) and propose a mapping."""
        try:
            self.table = self.crm.importer.read(bytes(content), name=name)
        except CrmError as exc:
            self.table = None
            self._say(str(exc), error=True)
            return
        self._show_mapping()
        self._say(
            f"{html.escape(name)}: {self.table.frame.height} rows"
            + (f", {self.table.encoding}" if self.table.encoding else "")
        )

    @property
    def mapping(self) -> dict:
        """The mapping as chosen on screen, in the mapping file's form."""
        return {"columns": {h: (None if d.value == IGNORE else d.value) for h, d in self.columns.items()}}

    def preview(self) -> ImportReport | None:
        """What the import would do; nothing is written."""
        if self.table is None:
            return None
        try:
            self.report = self.crm.importer.preview(
                self.entity.value, self.table, mapping=self.mapping, on_duplicate=self.on_duplicate.value
            )
        except CrmError as exc:
            self.report = None
            self.import_button.disabled = True
            self._say(str(exc), error=True)
            return None
        blocked = self.report.refused and not self.skip_invalid.value
        self.import_button.disabled = bool(blocked)
        self._say(
            f"<pre>{html.escape(str(self.report))}</pre>"
            + ("<b>Fix the refused rows or tick “write the valid rows”.</b>" if blocked else "")
        )
        return self.report

    def run(self) -> ImportReport | None:
        """Import, after a preview; the progress bar follows the rows written."""
        if self.table is None or self.report is None:
            return None
        self.progress.layout.visibility = "visible"
        self.progress.value, self.progress.max = 0, max(1, self.report.created + self.report.updated)

        def advance(done: int, total: int) -> None:
            self.progress.max, self.progress.value = max(1, total), done

        try:
            report = self.crm.importer.run(
                self.entity.value,
                self.table,
                mapping=self.mapping,
                on_duplicate=self.on_duplicate.value,
                skip_invalid=self.skip_invalid.value,
                on_progress=advance,
            )
        except ImportRefusedError as exc:
            self._say(f"<pre>{html.escape(str(exc.report or ''))}</pre>{html.escape(str(exc))}", error=True)
            return None
        except CrmError as exc:
            self._say(str(exc), error=True)
            return None
        self.import_button.disabled = True
        self._say(f"<pre>{html.escape(str(report))}</pre>")
        return report

    # -- screen ------------------------------------------------------------------------------

    def _uploaded(self) -> None:
        files = self.upload.value
        if files:
            item = files[0]
            self.load(item["name"], item["content"])

    def _show_mapping(self) -> None:
        self.report = None
        self.import_button.disabled = True
        if self.table is None:
            return
        headers = self.table.frame.columns
        proposed = auto_map(self.entity.value, headers)
        options = [IGNORE, *sorted(valid_targets(self.entity.value))]
        sample = self.table.frame.head(SAMPLE_ROWS)
        rows, self.columns = [], {}
        for header in headers:
            choice = widgets.Dropdown(options=options, value=proposed.get(header) or IGNORE, layout={"width": "220px"})
            choice.add_class("crm-import-target")
            choice.observe(lambda _: self._changed(), "value")
            self.columns[header] = choice
            values = ", ".join("" if v is None else str(v) for v in sample[header].to_list())
            rows.append(
                widgets.HBox(
                    [
                        widgets.HTML(f"<b>{html.escape(header)}</b>", layout={"width": "200px"}),
                        choice,
                        widgets.HTML(f"<i>{html.escape(values[:80])}</i>"),
                    ]
                )
            )
        self.mapping_box.children = rows
        self.preview_button.disabled = False

    def _changed(self) -> None:
        self.report = None
        self.import_button.disabled = True

    def _say(self, text: str, error: bool = False) -> None:
        self.message.value = f'<div class="crm-import-error">{text}</div>' if error else text
