"""The report registry: every notebook in ``notebooks/reports/`` is a report, named by its file.

A report notebook has a cell tagged ``parameters`` (papermill's convention) whose assignments
are the report's parameters and their defaults, and a first Markdown heading that is its title.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import ConfigError


def reports_dir() -> Path:
    """``notebooks/reports/`` of a source checkout, else the copy packed into the wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "notebooks" / "reports", here.parent / "notebooks"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the notebooks/reports/ folder is missing from this installation")


@dataclass(frozen=True)
class Report:
    name: str
    path: Path
    title: str
    parameters: dict[str, dict]  # name -> {"default": source text, "type": inferred, "help": comment}

    @classmethod
    def read(cls, path: Path) -> Report:
        import papermill

        notebook = nbformat.read(path, as_version=4)
        title = next(
            (
                line.lstrip("# ").strip()
                for cell in notebook.cells
                if cell.cell_type == "markdown"
                for line in cell.source.splitlines()
                if line.startswith("#")
            ),
            path.stem,
        )
        params = papermill.inspect_notebook(str(path))
        return cls(
            path.stem,
            path,
            title,
            {
                name: {"default": p["default"], "type": p["inferred_type_name"], "help": p["help"]}
                for name, p in params.items()
            },
        )


def available(folder: Path | None = None) -> list[Report]:
    """Every report, by name."""
    return [Report.read(path) for path in sorted((folder or reports_dir()).glob("*.ipynb"))]


def find(name: str, folder: Path | None = None) -> Report:
    """The report called ``name`` (its notebook's file name without ``.ipynb``)."""
    folder = folder or reports_dir()
    path = folder / f"{name}.ipynb"
    if "/" in name or "\\" in name or not path.is_file():
        names = ", ".join(r.name for r in available(folder)) or "none"
        raise ConfigError(f"no report {name!r}; the reports are: {names}")
    return Report.read(path)
