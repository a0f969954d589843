"""What a served app (a notebook in ``dashboards/``) knows about the page that opened it.

    from crm_kernel.apps import page_crm, page_query
    crm = page_crm()                 # the CRM acting as the user who opened the page
    entity = page_query().get("entity")

Every app starts from these two functions, so that who is signed in and what the URL asks for
are decided in one place.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from .client import CRM


def page_query() -> dict[str, str]:
    """The query parameters of the page's URL (``?entity=companies&id=...``), last value wins."""
    return dict(parse_qsl(os.environ.get("QUERY_STRING", ""), keep_blank_values=True))


def page_crm() -> CRM:
    """The CRM acting as the user who opened the page (``CRM_USER``, else the system user)."""
    return CRM.connect()
