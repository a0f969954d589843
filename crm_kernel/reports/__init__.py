"""Scheduled reports: parameterised notebooks run with papermill, written as notebook and HTML.

    from crm_kernel import reports
    reports.available()                            # the report notebooks and their parameters
    run = reports.run("weekly_pipeline", {"owner": "ana@example.com"}, out="reports")
    run.html                                       # reports/weekly_pipeline-2026-12-01.html

``crm report list`` and ``crm report run NAME [-p KEY VALUE]... [--out DIR] [--mail-to ADDR]``
are the same from the shell (and from cron or a systemd timer).
"""

from .mail import send_report
from .registry import Report, available, find
from .runner import ReportRun, run

__all__ = ["Report", "ReportRun", "available", "find", "run", "send_report"]
