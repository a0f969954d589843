"""The signed-in user of a served page, as ``crm serve`` hands it to the page's kernel.

The server signs the user's e-mail with a secret of its own (HMAC-SHA256) and passes the value
as the request header :data:`HEADER`, which Voilà copies into the kernel's request information
(``HTTP_X_CRM_PAGE_USER``, at kernel start or, for a preheated kernel, when the page opens).
The server replaces whatever header of that name a browser sent, and the kernel accepts only a
value signed with the secret it was started with (:data:`SECRET_ENV`): a page can neither
choose its user through a header nor through its URL's query string.

A preheated kernel fetches its page's request from the server's ``/voila/query/<kernel id>``
websocket; it proves it is one of the server's kernels with :func:`kernel_proof` in the
header :data:`KERNEL_HEADER` (a MAC of its kernel id with the same secret), which no browser
can make.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..errors import SignInError

HEADER = "X-Crm-Page-User"
ENV = "HTTP_X_CRM_PAGE_USER"  # how Voilà names the header in the kernel (RFC 3875)
SECRET_ENV = "CRM_PAGE_SECRET"  # set by `crm serve` for its kernels, and only there
KERNEL_HEADER = "X-Crm-Kernel-Proof"


def _mac(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def sign(email: str, secret: str) -> str:
    """``<base64url e-mail>.<hmac>``; an empty e-mail stands for the built-in system user."""
    payload = base64.urlsafe_b64encode(email.encode()).decode()
    return f"{payload}.{_mac(payload, secret)}"


def verify(value: str | None, secret: str) -> str:
    """The e-mail in a value :func:`sign` made with ``secret``; anything else is refused."""
    if not value:
        raise SignInError(
            "this page was opened without a signed-in user; sign in with the link from `crm users token EMAIL`"
        )
    payload, _, mac = value.rpartition(".")
    if not payload or not hmac.compare_digest(mac, _mac(payload, secret)):
        raise SignInError("this page's user is not signed by the server; open the app again")
    return base64.urlsafe_b64decode(payload.encode()).decode()


def kernel_proof(kernel_id: str, secret: str) -> str:
    """What the kernel ``kernel_id`` presents to fetch its page's request. (A page user's MAC
    covers base64 text, which never holds the ``:`` this one starts with, so neither passes
    for the other.)"""
    return _mac(f"voila-query:{kernel_id}", secret)


def kernel_proof_ok(kernel_id: str, presented: str | None, secret: str) -> bool:
    return bool(presented) and hmac.compare_digest(presented, kernel_proof(kernel_id, secret))
