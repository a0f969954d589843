"""The Voilà server behind ``crm serve``: Voilà with sign-in, a Host check and working page
shutdown. ``crm serve`` runs it as ``python -m crm_kernel.voila_server`` (see
:func:`crm_kernel.serve.voila_command`); it takes Voilà's own options as well as these:

- ``--CrmIdentityProvider.sign_in=token``: a browser signs in with ``?token=`` (a token from
  ``crm users token EMAIL``), which becomes an HttpOnly, SameSite=Lax session cookie; the
  token is then dropped from the address. Without a session every page answers 403 with a
  sign-in form. ``none``: every request acts as ``--CrmIdentityProvider.acting_user``.
- ``--CrmVoila.allowed_hosts=[...]``: Host header names answered besides the loopback ones; any
  other Host gets 403 on every route (websockets and static files included), which is what
  stops a web page from reaching the server through DNS rebinding.
- ``--CrmVoila.behind_proxy=True``: the server is reached through a reverse proxy, whose
  ``X-Forwarded-Proto``/``X-Scheme`` and ``X-Forwarded-For``/``X-Real-Ip`` headers are believed
  (tornado's ``xheaders``): a request that reached the proxy over https gets ``Secure``
  cookies (the session's and ``_xsrf``), and the audit log keeps the browser's address, not the proxy's. Off, those
  headers are ignored; on, anyone who reaches the port directly can set them.

Each app's kernel learns its page's user from a header the server signs
(:mod:`crm_kernel.access.page_user`) and Voilà copies into the kernel's request information.
A preheated kernel fetches that information from ``/voila/query/<kernel id>``, which only the
server's own kernels may open. The server forgets a kernel's owner when the kernel goes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.logout import LogoutHandler
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.kernels.handlers import KernelHandler
from traitlets import Bool, Enum, List, Unicode, default
from voila.app import Voila
from voila.request_info_handler import RequestInfoSocketHandler
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from .access import page_user, tokens

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass
class CrmUser(User):
    """A signed-in user: ``username`` is the CRM user's e-mail, ``token_id`` the token whose
    session this is (None when sign-in is off)."""

    token_id: str | None = None


class CrmIdentityProvider(IdentityProvider):
    """Who a request is: a sign-in token (``?token=`` or ``Authorization: token ...``), else the
    session cookie a token started, checked against the database on every request so that a
    revoked token ends its sessions at once."""

    sign_in = Enum(
        ["token", "none"],
        "token",
        config=True,
        help="token: per-user sign-in tokens; "
        "none: every request acts as acting_user (loopback only, enforced by crm serve)",
    )
    acting_user = Unicode("", config=True, help="The CRM user's e-mail every request acts as when sign_in is none")

    @default("cookie_options")
    def _cookie_options(self):
        # Lax, not Strict: a sign-in link opened from a mail client is a cross-site navigation.
        return {"httponly": True, "samesite": "Lax"}

    _engine = None

    @property
    def engine(self):
        if self._engine is None:
            from .config import Config
            from .db import connect_engine, resolve_url

            config = Config.from_env()
            self._engine = connect_engine(resolve_url(config), timezone=config.timezone)
        return self._engine

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return self.sign_in == "token"

    def get_handlers(self) -> list:
        if self.sign_in != "token":
            return []
        return [(r"/login", SignInHandler), (r"/logout", LogoutHandler)]

    async def get_user(self, handler) -> CrmUser | None:
        known = getattr(handler, "_jupyter_current_user", None)
        if known:
            return known
        if self.sign_in == "none":
            return CrmUser(self.acting_user)
        presented = self.get_token(handler)
        if presented:
            user = self.sign_in_with(handler, presented)
            if user is not None:
                handler._token_authenticated = True  # as jupyter_server does for a token
            return user  # an invalid token is refused, whatever cookie came with it
        user = self.get_user_cookie(handler)
        if user is None and handler.get_cookie(self.get_cookie_name(handler)) is not None:
            self.clear_login_cookie(handler)  # revoked or forged: forget it
        return user

    def sign_in_with(self, handler, presented: str) -> CrmUser | None:
        """The user of a presented token; a new session (cookie, audit row) unless the browser
        already has this token's session."""
        found = tokens.verify(self.engine, presented)
        if found is None:
            self.log.warning("Refused a sign-in token from %s", handler.request.remote_ip)
            return None
        user = CrmUser(found.email, name=found.full_name, display_name=found.full_name, token_id=str(found.id))
        if self.get_user_cookie(handler) != user:
            self.set_login_cookie(handler, user)
            tokens.record_sign_in(
                self.engine,
                found,
                remote_ip=handler.request.remote_ip,
                user_agent=handler.request.headers.get("User-Agent"),
            )
            self.log.info("Signed in %s from %s", found.email, handler.request.remote_ip)
        return user

    def user_to_cookie(self, user: CrmUser) -> str:
        return json.dumps({"username": user.username, "token": user.token_id})

    def user_from_cookie(self, cookie_value: str) -> CrmUser | None:
        token_id = json.loads(cookie_value).get("token")
        found = tokens.usable(self.engine, token_id) if token_id else None
        if found is None:
            return None
        return CrmUser(found.email, name=found.full_name, display_name=found.full_name, token_id=str(found.id))


_SIGN_IN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to the CRM</title>
<style>body{{font:15px system-ui,sans-serif;max-width:34em;margin:4em auto;color:#222}}
input[type=password]{{width:100%;padding:.4em;font:inherit}} button{{margin-top:.6em;padding:.4em 1em;font:inherit}}
.problem{{color:#a00}} code{{background:#f3f3f3;padding:0 .2em}}</style></head>
<body><h1>Sign in to the CRM</h1>
<p>Open the sign-in link you were given, or paste its token here. An administrator makes one
with <code>crm users token YOUR-EMAIL</code>.</p>
{problem}
<form method="post" action="{action}">{xsrf}<input type="hidden" name="next" value="{next}">
<label>Sign-in token <input type="password" name="token" autocomplete="off" autofocus></label>
<button type="submit">Sign in</button></form></body></html>
"""


class SignInHandler(JupyterHandler):
    """``/login``: where a page without a session is sent. It answers 403 (the page is not
    shown) with a form to paste a token; a valid one starts the session and goes on."""

    def _next(self) -> str:
        target = self.get_argument("next", self.base_url)
        # only a path on this server: never an open redirect to another site
        return target if target.startswith("/") and not target.startswith("//") else self.base_url

    def _page(self, problem: str = "") -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            _SIGN_IN_PAGE.format(
                problem=f'<p class="problem">{escape(problem)}</p>' if problem else "",
                action=escape(self.request.path),
                xsrf=self.xsrf_form_html(),
                next=escape(self._next()),
            )
        )

    @allow_unauthenticated
    def get(self):
        if self.current_user:
            self.redirect(self._next())
        else:
            self._page()

    @allow_unauthenticated
    def post(self):
        user = self.identity_provider.sign_in_with(self, self.get_argument("token", "").strip())
        if user is None:
            self._page("That token is not valid (unknown or revoked).")
        else:
            self.redirect(self._next())


def _without_token(handler) -> str | None:
    """The request's address without its ``token`` parameter, when it had one."""
    arguments = handler.request.query_arguments
    if "token" not in arguments:
        return None
    kept = [(k, v.decode()) for k, values in arguments.items() if k != "token" for v in values]
    return handler.request.path + (f"?{urlencode(kept)}" if kept else "")


class TreeHandler(TornadoVoilaTreeHandler):
    """The list of apps; a sign-in link's token leaves the address once it has signed in."""

    async def prepare(self):
        await super().prepare()
        if not self._finished and self.current_user and (clean := _without_token(self)):
            self.redirect(clean)


class _OwnedKernels:
    """The kernel manager as one page's handler sees it: each kernel it starts or takes from the
    pool is written down as the page user's (``owners``: kernel id -> e-mail)."""

    def __init__(self, manager, owners: dict[str, str], user: str):
        self._manager, self._owners, self._user = manager, owners, user

    def __getattr__(self, name):
        return getattr(self._manager, name)

    async def start_kernel(self, **kwargs) -> str:
        kernel_id = await ensure_async(self._manager.start_kernel(**kwargs))
        self._owners[kernel_id] = self._user
        return kernel_id

    async def get_rendered_notebook(self, *args, **kwargs):
        task, cache, kernel_id = await self._manager.get_rendered_notebook(*args, **kwargs)
        self._owners[kernel_id] = self._user
        return task, cache, kernel_id


def owned_kernel_manager_class(base: type) -> type:
    """``base`` (a multi-kernel manager class) keeping ``kernel_owners`` (kernel id -> e-mail of
    the user whose page it serves). Shutdown (a page closing, the idle cull, the server
    stopping) and a kernel's death all end in ``remove_kernel``, where the owner goes too, with
    whatever request information Voilà kept for a kernel that never fetched it."""

    class OwnedKernelManager(base):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.kernel_owners: dict[str, str] = {}

        def remove_kernel(self, kernel_id: str):
            removed = super().remove_kernel(kernel_id)
            RequestInfoSocketHandler._cache.pop(kernel_id, None)
            if self.kernel_owners.pop(kernel_id, None) is not None:
                self.log.info(
                    "Kernel %s is gone: its owner forgotten (%d page kernels left)", kernel_id, len(self.kernel_owners)
                )
            return removed

    OwnedKernelManager.__name__ = OwnedKernelManager.__qualname__ = f"Owned{base.__name__}"
    return OwnedKernelManager


def _check_owner(handler, kernel_id: str) -> None:
    """Only the user whose page a kernel serves may talk to it, look at it or shut it down
    (Voilà lets any client with the id); a pooled kernel nobody has taken is nobody's."""
    owner = handler.settings["crm_kernel_owners"].get(kernel_id)
    if owner is None and kernel_id not in handler.settings["kernel_manager"]:
        raise tornado.web.HTTPError(404, f"no kernel {kernel_id}")  # gone (and its owner forgotten)
    if handler.current_user is None or owner != handler.current_user.username:
        raise tornado.web.HTTPError(403, "not your page's kernel")


class KernelInfoHandler(KernelHandler):
    async def prepare(self):
        await super().prepare()
        if not self._finished:
            _check_owner(self, self.path_args[0] if self.path_args else self.path_kwargs["kernel_id"])


class KernelShutdownHandler(VoilaShutdownKernelHandler):
    async def prepare(self):
        await super().prepare()
        if not self._finished:
            _check_owner(self, self.path_args[0])


class KernelChannelsHandler(VoilaKernelWebsocketHandler):
    async def pre_get(self):
        await super().pre_get()
        _check_owner(self, self.kernel_id)


class AppHandler(TornadoVoilaHandler):
    """One app page: tells its kernel who opened it, and lets the page shut its kernel down."""

    @property
    def kernel_manager(self):
        return _OwnedKernels(
            self.settings["kernel_manager"], self.settings["crm_kernel_owners"], self.current_user.username
        )

    async def prepare(self):
        # Whatever the browser sent under the page-user header is never believed.
        self.request.headers.pop(page_user.HEADER, None)
        await super().prepare()
        if self._finished or not self.current_user:
            return
        if clean := _without_token(self):
            # The token leaves the address bar and history; Voilà would also have handed the
            # whole URL to the next preheated kernel (VOILA_REQUEST_URL).
            self.redirect(clean)
            return
        secret = os.environ[page_user.SECRET_ENV]
        self.request.headers[page_user.HEADER] = page_user.sign(self.current_user.username, secret)
        # Voilà's page posts its kernel's shutdown on unload with the _xsrf cookie's value, but
        # its render page never sets that cookie, so the shutdown was refused (403) and the
        # kernel lived until the idle cull. Reading the token sets the cookie.
        self.xsrf_token  # noqa: B018


class RequestSocketHandler(RequestInfoSocketHandler):
    """``/voila/query/<kernel id>``: where a preheated kernel waits for the request of the page
    that takes it. Voilà lets anyone open it, which would let a client take a kernel's place
    (one waiter per kernel id), receive the page's signed user and leave the kernel waiting;
    here only a kernel that shows its proof (:func:`~crm_kernel.access.page_user.kernel_proof`,
    from the secret only the server's kernels inherit) gets past the handshake."""

    def prepare(self):
        kernel_id = self.path_kwargs["kernel_id"]
        presented = self.request.headers.get(page_user.KERNEL_HEADER)
        if not page_user.kernel_proof_ok(kernel_id, presented, os.environ[page_user.SECRET_ENV]):
            raise tornado.web.HTTPError(403, "only the server's own kernels open this socket")


class RefusedHostHandler(tornado.web.RequestHandler):
    """Every route for a Host header that is not allowed (a DNS-rebinding page's name)."""

    def prepare(self):
        self.set_status(403)
        self.finish("This server does not answer to that host name.\n")


def host_pattern(allowed: list[str]) -> str:
    """A tornado host pattern matching the loopback names and ``allowed`` (``request.host_name``
    keeps an IPv6 address's brackets)."""
    names = {*LOOPBACK_HOSTS, *(h.lower() for h in allowed if h)}
    forms = sorted({f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names})
    return "(" + "|".join(re.escape(n) for n in forms) + ")$"


class _EveryHandler:
    """Mixed into every route's handler (:func:`_for_every_route`):

    - every cookie of a request that came over https is Secure: jupyter_server does it for the
      session cookie only, and the ``_xsrf`` cookie (sign-in form, app pages) went out without;
    - a refusal or failure gets a plain error page when jupyter_server's cannot be rendered (it
      extends templates and a static path this server does not have): a kernel socket opened
      without a session, say a closed page's, used to end in a traceback instead of its 403."""

    def set_cookie(self, name, value, *args, **kwargs):
        if self.request.protocol == "https":
            kwargs.setdefault("secure", True)
        return super().set_cookie(name, value, *args, **kwargs)

    def write_error(self, status_code, **kwargs):
        try:
            return super().write_error(status_code, **kwargs)
        except Exception:
            self.clear()
            self.set_status(status_code)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"{status_code} {self._reason}\n")


_MIXED: dict[type, type] = {}


def _for_every_route(handler: type) -> type:
    """``handler`` with :class:`_EveryHandler` mixed in (one subclass per handler class)."""
    if handler not in _MIXED:
        _MIXED[handler] = type(handler.__name__, (_EveryHandler, handler), {})
    return _MIXED[handler]


class _Application(tornado.web.Application):
    def listen(self, port: int, address: str | None = None, **kwargs):
        # Voilà's listen() passes no server options: the proxy headers are believed here.
        return super().listen(port, address, xheaders=self.settings["crm_behind_proxy"], **kwargs)


class CrmVoila(Voila):
    """Voilà with the pieces above put in place."""

    name = "crm-voila"
    allowed_hosts = List(Unicode(), config=True, help="Host names accepted besides the loopback ones")
    behind_proxy = Bool(
        False,
        config=True,
        help="Believe a reverse proxy's X-Forwarded-Proto/-For headers "
        "(the https a browser used, its address); only when nothing else reaches the port",
    )

    @default("identity_provider_class")
    def _identity_provider_class(self):
        return CrmIdentityProvider

    def initialize(self, argv=None):
        super().initialize(argv)
        # A fresh secret per server: kernels inherit it, pages never see it.
        os.environ[page_user.SECRET_ENV] = secrets.token_hex(32)
        headers = self.voila_configuration.http_header_envs
        if page_user.HEADER not in headers:
            self.voila_configuration.http_header_envs = [*headers, page_user.HEADER]
        # Where a preheated kernel asks for its page's request (crm_kernel.apps).
        os.environ["VOILA_APP_IP"] = _reachable(self.ip)
        configuration = self.voila_configuration
        configuration.multi_kernel_manager_class = owned_kernel_manager_class(configuration.multi_kernel_manager_class)

    def start(self):
        """Voilà's start, with every route behind the Host check and the handlers above."""
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        settings = self.init_settings()
        self.app = _Application(**settings)
        self.app.settings.update(self.tornado_settings)
        self.app.settings["crm_kernel_owners"] = self.kernel_manager.kernel_owners
        self.app.settings["crm_behind_proxy"] = self.behind_proxy
        replaced = {
            TornadoVoilaHandler: AppHandler,
            TornadoVoilaTreeHandler: TreeHandler,
            KernelHandler: KernelInfoHandler,
            VoilaShutdownKernelHandler: KernelShutdownHandler,
            VoilaKernelWebsocketHandler: KernelChannelsHandler,
            RequestInfoSocketHandler: RequestSocketHandler,
        }
        handlers = [
            (spec[0], _for_every_route(replaced.get(spec[1], spec[1])), *spec[2:]) for spec in self.init_handlers()
        ]
        allowed = host_pattern([self.ip, *self.allowed_hosts])
        self.app.add_handlers(allowed, handlers)
        # Only other hosts: an allowed host's unknown path still gets tornado's 404.
        self.app.add_handlers(f"(?!{allowed}).*$", [(r".*", RefusedHostHandler)])
        self.listen()


def _reachable(ip: str) -> str:
    """An address of this server that its own kernels can connect to."""
    if ip in ("", "0.0.0.0", "localhost"):
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip


main = CrmVoila.launch_instance

if __name__ == "__main__":
    main()
