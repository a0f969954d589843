"""Run a report: a fresh snapshot, papermill over the report's notebook, notebook and HTML out.

Both files appear together or not at all: the run works in a hidden folder beside the output
and moves its files into place only when the notebook ran to the end and its HTML is written.
A failing cell is a :class:`ReportError` naming the cell and its error.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import CrmError, ValidationError
from .html import to_html
from .registry import Report, find


class ReportError(CrmError):
    """A report's notebook failed; ``cell`` is its execution count (or position), ``error`` the error."""

    def __init__(self, message: str, cell: int | None = None, error: str | None = None):
        super().__init__(message)
        self.cell = cell
        self.error = error


@dataclass
class ReportRun:
    report: Report
    notebook: Path
    html: Path
    parameters: dict
    seconds: float
    snapshot: Path | None = None
    mailed_to: list[str] = field(default_factory=list)


def run(
    name: str,
    parameters: dict | None = None,
    *,
    out: str | Path | None = None,
    snapshot: bool = True,
    mail_to: list[str] | str | None = None,
    today: dt.date | None = None,
    folder: Path | None = None,
    progress: bool = False,
) -> ReportRun:
    """Run report ``name`` with ``parameters``; writes ``NAME-YYYY-MM-DD.ipynb`` and ``.html`` into ``out``.

    ``out`` defaults to ``$CRM_HOME/reports``. With ``snapshot`` (the default) a report that has
    a ``snapshot`` parameter runs on a snapshot taken now, unless the parameters name one.
    ``mail_to`` sends the HTML through ``CRM_SMTP_URL``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    config = Config.from_env()
    report = find(name, folder)
    params = dict(parameters or {})
    unknown = sorted(set(params) - set(report.parameters))
    if unknown:
        known = ", ".join(report.parameters) or "none"
        raise ValidationError(
            {p: f"report {name} has no parameter {p!r}; its parameters: {known}" for p in unknown}, "reports"
        )
    out = Path(out) if out is not None else config.home / "reports"
    out.mkdir(parents=True, exist_ok=True)
    taken = None
    if snapshot and "snapshot" in report.parameters and not params.get("snapshot"):
        taken = _fresh_snapshot()
        params["snapshot"] = str(taken)
    day = today or dt.datetime.now(zoneinfo.ZoneInfo(config.timezone)).date()
    stem = f"{name}-{day:%Y-%m-%d}"
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{stem}-", dir=out))
    try:
        executed = staging / f"{stem}.ipynb"
        try:
            papermill.execute_notebook(
                str(report.path),
                str(executed),
                parameters=params,
                progress_bar=progress,
                cwd=str(report.path.parent),
                kernel_name="python3",
            )
        except PapermillExecutionError as exc:
            detail = f"{exc.ename}: {exc.evalue}".strip()
            raise ReportError(
                f"report {name} failed in cell {exc.exec_count or exc.cell_index + 1}: {detail}",
                cell=exc.exec_count or exc.cell_index + 1,
                error=detail,
            ) from None
        html = staging / f"{stem}.html"
        html.write_text(to_html(executed, title=f"{report.title} \u2014 {day:%Y-%m-%d}"), encoding="utf-8")
        final_notebook, final_html = out / executed.name, out / html.name
        os.replace(executed, final_notebook)
        try:
            os.replace(html, final_html)
        except OSError:
            final_notebook.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = ReportRun(report, final_notebook, final_html, params, time.perf_counter() - started, taken)
    if mail_to:
        from .mail import send_report

        recipients = [mail_to] if isinstance(mail_to, str) else list(mail_to)
        send_report(final_html, recipients, f"{report.title} \u2014 {day:%Y-%m-%d}")
        result.mailed_to = recipients
    return result


def _fresh_snapshot() -> Path:
    from ..client import CRM

    with CRM.connect() as crm:
        return crm.snapshot()
