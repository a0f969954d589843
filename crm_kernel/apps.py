"""What a served app (a notebook in ``dashboards/``) knows about the page that opened it.

    from crm_kernel.apps import page_crm, page_query
    crm = page_crm()                 # the CRM acting as the user who opened the page
    entity = page_query().get("entity")

Every app starts from these two functions, so that who is signed in and what the URL asks for
are decided in one place.

Under ``crm serve`` the user is the one the server signed in (:mod:`crm_kernel.access.page_user`),
never the server's own ``CRM_USER``. A preheated kernel (``crm serve --pool N``) runs the app
before anyone opens it: both functions first wait until a page takes the kernel, so the user
and the query string are the opener's. Outside ``crm serve`` (JupyterLab, nbval, papermill)
they read the environment as it is: ``CRM_USER`` and ``QUERY_STRING``.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from .access import page_user as signed
from .client import CRM

_opened = False


def _wait_for_page() -> None:
    """In a preheated kernel, block until a page takes it: Voilà then puts that request's
    query string and headers into ``os.environ``. Elsewhere they are there from the start."""
    global _opened
    if _opened or os.environ.get("VOILA_PREHEAT") != "True":
        return
    from voila.utils import wait_for_request

    wait_for_request()
    _opened = True


def page_query() -> dict[str, str]:
    """The query parameters of the page's URL (``?entity=companies&id=...``), last value wins."""
    _wait_for_page()
    return dict(parse_qsl(os.environ.get("QUERY_STRING", ""), keep_blank_values=True))


def page_user() -> str | None:
    """The e-mail of the user who opened the page ('' for the system user), or None outside
    ``crm serve``. Raises :class:`~crm_kernel.errors.SignInError` when a served page's user is
    missing or not signed by the server."""
    secret = os.environ.get(signed.SECRET_ENV)
    if not secret:
        return None
    _wait_for_page()
    return signed.verify(os.environ.get(signed.ENV), secret)



def page_crm() -> CRM:
    """The CRM acting as the user who opened the page (outside ``crm serve``: ``CRM_USER``,
    else the system user)."""
    email = page_user()
    return CRM.connect() if email is None else CRM.connect(user=email)
