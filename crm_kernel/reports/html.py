"""A run notebook as one standalone HTML page: code hidden, charts embedded, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import nbformat

_TEMPLATE = Path(__file__).parent / "templates" / "offline.html.j2"


def to_html(notebook: Path | nbformat.NotebookNode, title: str | None = None) -> str:
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4) if isinstance(notebook, Path) else notebook
    exporter = HTMLExporter(
        template_name="lab",
        template_file=str(_TEMPLATE),
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    html, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": title or "Report"}})
    return html
