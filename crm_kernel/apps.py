"""What a served app (a notebook in ``dashboards/``) knows about the page that opened it.

    from crm_kernel.apps import page_crm, page_query
    crm = page_crm()                 # the CRM acting as the user who opened the page
    entity = page_query().get("entity")

Every app starts from these two functions, so that who is signed in and what the URL asks for
are decided in one place.

Under ``crm serve`` the user is the one the server signed in (:mod:`crm_kernel.access.page_user`),
never the server's own ``CRM_USER``: once known, it becomes the kernel's ``CRM_USER``, so
anything else in the kernel that connects acts as that user too. A preheated kernel
(``crm serve --pool N``) runs the app before anyone opens it: both functions first wait until
a page takes the kernel, so the user and the query string are the opener's (fetched from the
server's request socket with the kernel's proof, :func:`~crm_kernel.access.page_user.kernel_proof`).
Outside ``crm serve`` (JupyterLab, nbval, papermill) they read the environment as it is:
``CRM_USER`` and ``QUERY_STRING``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from urllib.parse import parse_qsl

from .access import page_user as signed
from .client import CRM
from .errors import SignInError

_opened = False


def _wait_for_page() -> None:
    """In a preheated kernel, block until a page takes it: Voilà then puts that request's
    query string and headers into ``os.environ``. Elsewhere they are there from the start."""
    global _opened
    if _opened or os.environ.get("VOILA_PREHEAT") != "True":
        return
    secret = os.environ.get(signed.SECRET_ENV)
    if secret:
        os.environ.update(_fetch_request(secret))
    else:  # preheated by a plain Voilà, not crm serve
        from voila.utils import wait_for_request

        wait_for_request()
    _opened = True


def _fetch_request(secret: str) -> dict[str, str]:
    """What ``voila.utils.wait_for_request`` does, with this kernel's proof that it is one of
    the server's own: ``crm serve`` refuses the request socket to anyone else."""
    kernel_id = os.environ["VOILA_KERNEL_ID"]
    url = (
        f"ws://{os.environ.get('VOILA_APP_IP', '127.0.0.1')}:{os.environ.get('VOILA_APP_PORT', '8866')}"
        f"{os.environ.get('VOILA_SERVER_URL', '/')}voila/query/{kernel_id}"
    )

    async def receive() -> str:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        headers = {signed.KERNEL_HEADER: signed.kernel_proof(kernel_id, secret)}
        socket = await websocket_connect(HTTPRequest(url, headers=headers, connect_timeout=30))
        try:
            return await socket.read_message()
        finally:
            socket.close()

    received: list = []

    def wait() -> None:  # on a thread: the kernel's own event loop is running in this one
        try:
            received.append(asyncio.run(receive()))
        except Exception as error:  # reported below, in the kernel's thread
            received.append(error)

    thread = threading.Thread(target=wait, name="crm-page-request")
    thread.start()
    thread.join()
    [outcome] = received
    if isinstance(outcome, Exception) or outcome is None:
        raise SignInError(f"this kernel could not fetch its page's request from the server: {outcome!r}")
    return json.loads(outcome)


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
    email = signed.verify(os.environ.get(signed.ENV), secret)
    os.environ["CRM_USER"] = email
    return email


def page_crm() -> CRM:
    """The CRM acting as the user who opened the page (outside ``crm serve``: ``CRM_USER``,
    else the system user)."""
    email = page_user()
    return CRM.connect() if email is None else CRM.connect(user=email)
