"""`crm serve`: its command line, environment and checks without a server, then the real
server in Chromium: sign-in, the Host check, who the apps act as (also from the kernel pool),
and kernels that go when their page closes."""

import base64
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import CRM, cli
from crm_kernel import serve as serving
from crm_kernel.access import page_user, tokens
from crm_kernel.config import Config
from crm_kernel.db import connect_engine
from crm_kernel.db.embedded import free_port
from tests.helpers import scratch_dir

from .conftest import _shut_down_kernel
from .harness import APP_READY_MS, open_app


def test_voila_serves_the_folder_on_loopback_with_code_hidden(tmp_path):
    command = serving.voila_command(tmp_path, port=9001, open_browser=False)
    assert command[1:4] == ["-m", "crm_kernel.voila_server", str(tmp_path.resolve())]
    for option in (
        "--Voila.ip=127.0.0.1",
        "--Voila.port=9001",
        "--Voila.port_retries=0",
        "--Voila.open_browser=False",
        "--VoilaConfiguration.template=crm",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
    ):
        assert option in command


def test_defaults_are_the_documented_address():
    assert serving.address() == "http://127.0.0.1:8866/"
    assert serving.app_url("workbench.ipynb") == "http://127.0.0.1:8866/voila/render/workbench.ipynb"
    assert serving.address("::1", 80) == "http://[::1]:80/"


def test_apps_come_in_the_order_a_rep_uses_them(tmp_path):
    for name in (
        "activity.ipynb",
        "workbench.ipynb",
        "forecast.ipynb",
        "pipeline.ipynb",
        "home.ipynb",
        "record.ipynb",
        ".draft.ipynb",
        "notes.md",
        "find.ipynb",
    ):
        (tmp_path / name).write_text("{}")
    (tmp_path / "hidden.ipynb").write_text(json.dumps({"metadata": {"crm": {"listed": False}}, "cells": []}))
    assert serving.apps(tmp_path) == [
        "home.ipynb",
        "pipeline.ipynb",
        "find.ipynb",
        "forecast.ipynb",
        "workbench.ipynb",
        "activity.ipynb",
    ]
    assert serving.apps(serving.dashboards_dir())[0] == "home.ipynb"


def test_an_apps_title_and_line_come_from_its_notebook(tmp_path):
    def notebook(name, markdown=None, meta=None):
        cells = [{"cell_type": "code", "source": "x = 1"}]
        if markdown is not None:
            cells.append({"cell_type": "markdown", "source": markdown})
        (tmp_path / name).write_text(json.dumps({"metadata": {"crm": meta} if meta else {}, "cells": cells}))

    notebook("home.ipynb", ["# My day\n", "\n", "Your numbers and\n", "tasks.\n", "\n", "More."])
    notebook(
        "forecast.ipynb",
        "# Forecast\n\nPress **Run**, see [docs](x.md)",
        meta={"title": "Forecasts", "description": "Where the quarter lands"},
    )
    notebook("zz_notes.ipynb")
    entries = serving.app_entries(tmp_path)
    assert [(e.name, e.title, e.line) for e in entries] == [
        ("home.ipynb", "My day", "Your numbers and tasks."),
        ("forecast.ipynb", "Forecasts", "Where the quarter lands"),
        ("zz_notes.ipynb", "Zz notes", ""),
    ]
    notebook("pipeline.ipynb", "# The `board`\n\nPress **Run**, see [the docs](docs.md) and `crm`")
    assert serving.app_entries(tmp_path)[1].line == "Press Run, see the docs and crm"
    assert serving.app_entries(tmp_path)[1].title == "The board"
    titles = {e.name: e.title for e in serving.app_entries(serving.dashboards_dir())}
    assert titles["home.ipynb"] == "My day" and titles["forecast.ipynb"] == "Forecast"


def test_the_landing_page_hook_lists_a_folders_apps(tmp_path):
    (tmp_path / "home.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "# My day"}]}))

    class Contents:
        root_dir = str(tmp_path)

    config = serving.page_config_hook({}, "/", {"contents_manager": Contents()}, None, None, "")
    assert config["crmApps"] == [{"name": "home.ipynb", "title": "My day", "line": ""}]
    assert "crmApps" not in serving.page_config_hook(
        {}, "/", {"contents_manager": Contents()}, None, None, "home.ipynb"
    )
    # Voilà reads the hook from the voila.py on the config path crm serve gives it
    env = serving.voila_environment(Config.from_env({}), {})
    assert (Path(env["JUPYTER_CONFIG_PATH"].split(":")[0]) / "voila.py").read_text().count("page_config_hook") >= 2


def test_kernels_find_the_crm_home_and_voila_the_template():
    env = serving.voila_environment(
        Config.from_env({"CRM_HOME": "rel/home"}), {"CRM_HOME": "rel/home", "JUPYTER_PATH": "/elsewhere"}
    )
    assert Path(env["CRM_HOME"]).is_absolute() and env["CRM_HOME"].endswith("rel/home")
    first, rest = env["JUPYTER_PATH"].split(":", 1)
    assert rest == "/elsewhere"
    conf = Path(first) / "voila" / "templates" / serving.TEMPLATE / "conf.json"
    assert json.loads(conf.read_text())["base_template"] == "lab"


def test_kernels_keep_two_malloc_arenas_unless_told_otherwise():
    assert serving.voila_environment(Config.from_env({}), {})["MALLOC_ARENA_MAX"] == "2"
    assert serving.voila_environment(Config.from_env({}), {"MALLOC_ARENA_MAX": "4"})["MALLOC_ARENA_MAX"] == "4"


def test_the_template_fetches_nothing_from_a_cdn():
    folder = serving.JUPYTER_DATA / "voila" / "templates" / serving.TEMPLATE
    for path in folder.iterdir():
        assert "https://" not in path.read_text(), path.name


def test_the_workbench_dashboard_needs_no_editing():
    notebook = json.loads((serving.dashboards_dir() / "workbench.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"]]
    assert notebook["cells"][0]["cell_type"] == "markdown" and cells[0].startswith("# ")
    code = "\n".join(cells[1:])
    assert "page_crm()" in code and "Workbench(crm)" in code


def test_every_dashboard_acts_as_the_page_user():
    """Each app gets its CRM from page_crm() (the signed-in user), never by connecting itself,
    which would act as the server's own CRM_USER."""
    for path in sorted(serving.dashboards_dir().glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "page_crm()" in code, path.name
        assert not re.search(r"\bCRM\s*[.(]|CRM_USER|HTTP_X_CRM", code), path.name


@pytest.fixture
def became(monkeypatch):
    """What `crm serve` would have run instead of becoming Voilà."""
    calls = []
    monkeypatch.setattr(serving, "run", lambda command, env: calls.append((command, env)))
    return calls


def crm(*args, env=None):
    return CliRunner().invoke(cli.main, ["serve", *args], env=env, catch_exceptions=False)


def test_crm_serve_prints_the_address_and_becomes_voila(database_url, became):
    port = free_port()
    result = crm("--port", str(port), "--no-browser")
    assert result.exit_code == 0, result.output
    assert f"at http://127.0.0.1:{port}/" in result.output
    assert f"http://127.0.0.1:{port}/voila/render/workbench.ipynb" in result.output
    [(command, env)] = became
    assert f"--Voila.port={port}" in command and "--Voila.open_browser=False" in command
    assert command[3] == str(serving.dashboards_dir())
    assert env["CRM_DATABASE_URL"] == database_url


def test_crm_serve_signs_in_by_default_and_no_sign_in_stays_on_loopback(database_url, became):
    result = crm(
        "--port", str(free_port()), "--no-browser", "--pool", "0", "--allow-host", "crm.example.com", "--behind-proxy"
    )
    assert result.exit_code == 0, result.output
    assert "crm users token EMAIL" in result.output
    [(command, _)] = became
    assert "--CrmIdentityProvider.sign_in=token" in command and "--CrmVoila.allowed_hosts=crm.example.com" in command
    assert "--CrmVoila.behind_proxy=True" in command
    assert not any("preheat" in option for option in command)
    refused = crm("--host", "0.0.0.0", "--no-sign-in", "--no-browser")
    assert refused.exit_code == 1 and "without sign-in" in refused.output
    assert len(became) == 1


def test_under_jupyterhub_the_pages_act_as_the_hub_user(database_url, became, engine):
    from crm_kernel import CRM

    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM users WHERE email = 'hub.user@example.com'")
    CRM(engine).users.create(email="hub.user@example.com", full_name="Hub User", role="rep")
    hub = {"JUPYTERHUB_USER": "hub.user@example.com"}
    result = crm("--port", str(free_port()), "--no-browser", env=hub)
    assert result.exit_code == 0, result.output
    assert "every page acts as hub.user@example.com (the JupyterHub user)" in result.output
    [(command, _)] = became
    assert "--CrmIdentityProvider.sign_in=none" in command
    assert "--CrmIdentityProvider.acting_user=hub.user@example.com" in command
    assert crm("--host", "0.0.0.0", "--no-browser", env=hub).exit_code == 1  # loopback only
    unknown = crm("--no-browser", env={"JUPYTERHUB_USER": "stranger@example.com"})
    assert unknown.exit_code == 1 and "stranger@example.com" in unknown.output


def test_crm_serve_refuses_a_busy_port(database_url, became):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = crm("--port", str(taken.getsockname()[1]))
    assert result.exit_code == 1
    assert "choose another with --port" in result.output
    assert became == []


def test_crm_serve_without_a_database_says_how_to_start_one(became):
    home = scratch_dir("crm-serve-home-")
    result = crm("--no-browser", env={"CRM_DATABASE_URL": None, "CRM_HOME": str(home)})
    assert result.exit_code == 1
    assert "crm db start" in result.output
    assert became == []


# -- the real server: sign-in ------------------------------------------------------------------

IDENTITY = "identity.ipynb"  # tests/browser/identity.ipynb shows page_crm()'s user, page_query(), preheat


PEOPLE = ("ann.signin@example.com", "bob.signin@example.com")


@pytest.fixture(scope="module")
def people(dashboards) -> tuple[str, str]:
    """Two users to sign in as (added once, owning nothing, so the apps' tests see no change)."""
    engine = connect_engine(dashboards.database_url)
    with CRM(engine) as crm:
        known = {u["email"] for u in crm.users.list(limit=None)}
        for email in PEOPLE:
            if email not in known:
                crm.users.create(email=email, full_name=email.split(".")[0].title(), role="rep")
    return PEOPLE


def fetch(url: str, headers: dict | None = None) -> tuple[int, str]:
    """Status and body of a GET, following redirects with the cookies they set, as a browser does."""
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


@contextmanager
def app_as(browser, server, token: str | None, query: str = "", **context_options):
    """``identity.ipynb`` opened in a fresh browser signed in with ``token`` (by its link); the
    page's kernel is shut down afterwards."""
    context = browser.new_context(base_url=server.url, **context_options)
    context.set_default_timeout(APP_READY_MS)
    try:
        page = context.new_page()
        if token:
            server.sign_in(context, token)
        open_app(page, f"{IDENTITY}{query}", ".identity-user")
        yield page
        _shut_down_kernel(page)
    finally:
        context.close()


def shown(page) -> tuple[str, str, str]:
    """(acting user, ``say`` query parameter, preheated) as the identity app shows them."""
    return tuple(page.locator(f".identity-{what}").inner_text().strip() for what in ("user", "say", "preheated"))


def kernel_crm_user(page) -> str:
    """``CRM_USER`` in the page's kernel, as the identity app shows it."""
    return page.locator(".identity-env-user").inner_text().strip()


def raw(server, method: str, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """One request, no redirect followed (its status and headers as the server sent them)."""
    at = urlsplit(server.url)
    connection = http.client.HTTPConnection(at.hostname, at.port, timeout=60)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def handshake(server, path: str, headers: dict | None = None) -> int:
    """The status of a websocket handshake on ``path`` (101: the socket opened)."""
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    return raw(server, "GET", path, {**upgrade, **(headers or {})}).status


def browser_socket(page, path: str) -> str:
    """ "open" or "refused": a websocket the page's own script opens on ``path``."""
    return page.evaluate(
        """(path) => new Promise(resolve => {
        const ws = new WebSocket(`${location.origin.replace("http", "ws")}${path}`);
        ws.onopen = () => { ws.close(); resolve("open"); };
        ws.onerror = () => resolve("refused");
    })""",
        path,
    )


def test_without_a_session_no_app_only_the_sign_in_page(dashboards):
    status, body = fetch(f"{dashboards.url}voila/render/{IDENTITY}")
    assert status == 403
    assert "Sign in to the CRM" in body and "crm users token" in body and "identity-user" not in body
    status, body = fetch(f"{dashboards.url}voila/render/{IDENTITY}?token=not-a-token")
    assert status == 403 and "identity-user" not in body
    assert fetch(dashboards.url)[0] == 403  # the list of apps too
    for app in sorted(p.name for p in serving.dashboards_dir().glob("*.ipynb")):
        status, body = fetch(f"{dashboards.url}voila/render/{app}")
        assert status == 403 and "Sign in to the CRM" in body, app
    # nor a kernel's websocket, nor its REST API (any id: who asks is checked first)
    kernel = uuid.uuid4()
    assert handshake(dashboards, f"/api/kernels/{kernel}/channels") == 403
    assert fetch(f"{dashboards.url}api/kernels/{kernel}")[0] == 403


def test_each_users_token_opens_the_apps_as_that_user(browser, dashboards, people):
    ann, bob = people
    with app_as(browser, dashboards, dashboards.token(ann)) as page:
        assert shown(page)[:2] == (ann, "")
        assert shown(page)[2] == "False"  # this server has no pool
        assert kernel_crm_user(page) == ann  # whatever else in the kernel connects acts as Ann too
    with app_as(browser, dashboards, dashboards.token(bob), "?say=hello") as page:
        assert shown(page)[:2] == (bob, "hello") and kernel_crm_user(page) == bob


def test_a_page_cannot_choose_its_user(browser, dashboards, people):
    ann, bob = people
    # Bob's e-mail in the page-user header (signed with a guessed secret), and in the query
    # string: the server replaces the header, and the kernel reads no user from the URL.
    forged = {page_user.HEADER: page_user.sign(bob, "guessed"), "X-Crm-User": bob}
    with app_as(
        browser, dashboards, dashboards.token(ann), f"?user={bob}&{page_user.ENV}={bob}", extra_http_headers=forged
    ) as page:
        assert shown(page)[0] == ann


def test_the_sign_in_link_becomes_an_http_only_cookie_and_leaves_the_address(browser, dashboards, people):
    ann, _ = people
    token = dashboards.token(ann)
    context = browser.new_context(base_url=dashboards.url)
    try:
        page = context.new_page()
        open_app(page, f"{IDENTITY}?token={token}&say=linked", ".identity-user")
        assert "token" not in page.url and page.url.endswith(f"{IDENTITY}?say=linked")
        assert shown(page)[:2] == (ann, "linked")
        [session] = [c for c in context.cookies() if c["name"].startswith("username-")]
        assert session["httpOnly"] and session["sameSite"] == "Lax" and token not in session["value"]
        _shut_down_kernel(page)
        open_app(page, IDENTITY, ".identity-user")  # later navigation: the cookie alone
        assert shown(page)[0] == ann
        _shut_down_kernel(page)
    finally:
        context.close()


def test_a_refused_request_gets_a_plain_error_page_and_no_traceback(dashboards, browser_errors, system_token):
    """Without a session the API and the kernel sockets answer 403; jupyter_server's error page
    needs templates and a static path this server does not have, so a refused socket (a closed
    page's, reconnecting) used to end in a traceback, and a browser test in a failure."""
    kernel = uuid.uuid4()
    for method, path in (
        ("GET", f"/api/kernels/{kernel}"),
        ("DELETE", f"/api/kernels/{kernel}"),
        ("POST", f"/voila/api/shutdown/{kernel}"),
    ):
        response = raw(dashboards, method, path)
        assert response.status == 403, (method, path)
    assert handshake(dashboards, f"/api/kernels/{kernel}/channels") == 403
    response = raw(dashboards, "GET", "/no/such/page", {"Authorization": f"token {system_token}"})
    assert response.status == 404
    assert browser_errors.problems() == []


def test_a_forged_host_is_refused_on_every_route(dashboards, system_token):
    port = dashboards.url.rstrip("/").rsplit(":", 1)[1]
    signed = {"Authorization": f"token {system_token}"}
    assert fetch(dashboards.url, {"Host": f"localhost:{port}", **signed})[0] == 200
    for path in ("", f"voila/render/{IDENTITY}", "voila/static/voila.js", "api/kernels/x", "login"):
        status, body = fetch(f"{dashboards.url}{path}", {"Host": f"rebound.example:{port}", **signed})
        assert status == 403 and "host name" in body, path
    status, _ = fetch(f"{dashboards.url}", {"Host": f"127.0.0.1.rebound.example:{port}", **signed})
    assert status == 403
    # websockets too: a kernel's channels (any id: the Host check comes first)
    channels = f"/api/kernels/{uuid.uuid4()}/channels"
    assert handshake(dashboards, channels, {"Host": f"rebound.example:{port}", **signed}) == 403


def test_a_session_cookie_is_secure_only_over_https_and_behind_a_trusted_proxy(dashboards, preheated, people):
    """``X-Forwarded-Proto: https`` from a proxy makes the session cookie Secure and the
    forwarded address the one the audit log keeps, only with ``--behind-proxy``."""
    ann, _ = people
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    for server, secure, remote_ip in ((dashboards, False, "127.0.0.1"), (preheated, True, "203.0.113.7")):
        token = server.token(ann)
        response = raw(server, "GET", f"/?token={token}", forwarded)
        assert response.status == 302, server.url
        [cookie] = [c for c in response.headers.get_all("Set-Cookie") if c.startswith("username-")]
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite"} <= attributes
        assert ("secure" in attributes) is secure, (server.url, cookie)
        assert sign_in_ips(server, token) == [remote_ip]
    # plain http through the trusted proxy: no Secure (the browser would never send it back)
    response = raw(preheated, "GET", f"/?token={preheated.token(ann)}")
    [cookie] = [c for c in response.headers.get_all("Set-Cookie") if c.startswith("username-")]
    assert "secure" not in cookie.lower()


def test_every_cookie_is_secure_over_https_behind_a_trusted_proxy(dashboards, preheated):
    """Not only the session: the ``_xsrf`` cookie (set here by the sign-in form, on app pages
    for their shutdown beacon) is Secure when the browser came over https."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    for server, headers, secure in (
        (preheated, forwarded, True),
        (preheated, {}, False),
        (dashboards, forwarded, False),
    ):
        response = raw(server, "GET", "/login", headers)
        assert response.status == 403, server.url
        [cookie] = [c for c in response.headers.get_all("Set-Cookie") if c.startswith("_xsrf=")]
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert ("secure" in attributes) is secure, (server.url, headers, cookie)


def test_a_revoked_token_is_refused_and_ends_its_session(browser, dashboards, people):
    ann, _ = people
    token = dashboards.token(ann)
    context = browser.new_context(base_url=dashboards.url)
    try:
        dashboards.sign_in(context, token)
        assert context.request.get("").status == 200  # the session works
        engine = connect_engine(dashboards.database_url)
        found = tokens.verify(engine, token)
        tokens.revoke(engine, ann, found.id)
        engine.dispose()
        assert context.request.get("").status == 403  # the session it started is over
        assert fetch(f"{dashboards.url}?token={token}")[0] == 403  # and the link signs nobody in
    finally:
        context.close()


def sign_in_ips(server, token: str) -> list[str]:
    """The addresses of the audited sign-ins with ``token``."""
    engine = connect_engine(server.database_url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text(
                    "SELECT a.after FROM audit_log a JOIN users u ON u.id = a.user_id "
                    "JOIN sign_in_tokens t ON t.id = a.entity_id "
                    "WHERE a.operation = 'update' AND a.after ->> 'event' = 'sign_in' AND t.token_hash = :h"
                ),
                {"h": tokens.token_hash(token)},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return [row["remote_ip"] for row in rows]


def test_sign_ins_are_in_the_audit_log(dashboards, people):
    _, bob = people
    token = dashboards.token(bob)
    assert fetch(f"{dashboards.url}?token={token}")[0] == 200
    assert sign_in_ips(dashboards, token) == ["127.0.0.1"]


# -- the real server: kernels ------------------------------------------------------------------


def kernel_exists(context, kernel_id: str) -> bool:
    """Whether the server still runs this kernel (its REST API, as the signed-in browser)."""
    status = context.request.get(f"api/kernels/{kernel_id}").status
    assert status in (200, 404), status
    return status == 200


def test_closing_a_page_shuts_its_kernel_down(browser, dashboards, system_token):
    context = browser.new_context(base_url=dashboards.url)
    try:
        dashboards.sign_in(context, system_token)
        page = open_app(context.new_page(), IDENTITY, ".identity-user")
        kernel_id = page.evaluate("() => window.jupyterapp.widgetManager._kernel.id")
        assert kernel_exists(context, kernel_id)
        # what the page's unload beacon sends back: the page must have been given it
        assert any(c["name"] == "_xsrf" for c in context.cookies())
        page.close(run_before_unload=True)  # the tab closes: Voilà's beacon asks for the shutdown
        deadline = time.monotonic() + 60  # the idle cull would take 600 s
        while kernel_exists(context, kernel_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not kernel_exists(context, kernel_id)
        # and the server no longer keeps its owner (the map of kernel owners shrank)
        assert f"Kernel {kernel_id} is gone: its owner forgotten" in dashboards.log.read_text(errors="replace")
    finally:
        context.close()


def test_only_the_pages_user_reaches_its_kernel(browser, dashboards, people):
    ann, bob = people
    with app_as(browser, dashboards, dashboards.token(ann)) as page:
        kernel_id = page.evaluate("() => window.jupyterapp.widgetManager._kernel.id")
        other = browser.new_context(base_url=dashboards.url)
        try:
            bobs = dashboards.token(bob)
            dashboards.sign_in(other, bobs)
            assert other.request.get(f"api/kernels/{kernel_id}").status == 403
            # with his token as the header (a script's way), so no XSRF check refuses him first
            signed = {"Authorization": f"token {bobs}"}
            assert other.request.delete(f"api/kernels/{kernel_id}", headers=signed).status == 403
            assert other.request.post(f"voila/api/shutdown/{kernel_id}", headers=signed).status == 403
            bobs_page = other.new_page()
            bobs_page.goto("")
            assert browser_socket(bobs_page, f"/api/kernels/{kernel_id}/channels") == "refused"
        finally:
            other.close()
        assert kernel_exists(page.context, kernel_id)  # Ann's page keeps its kernel
        assert shown(page)[0] == ann


def pool_fills(server) -> int:
    """How often the preheated server's pool has been filled so far (Voilà logs each time)."""
    return len(re.findall(r"Kernel pool of \S+ is filled", server.log.read_text(errors="replace")))


def wait_for_pool(server, fills: int) -> None:
    deadline = time.monotonic() + APP_READY_MS / 1000
    while pool_fills(server) < fills and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pool_fills(server) >= fills, server.log_tail()


def test_preheated_kernels_act_as_whoever_opens_the_page(browser, preheated, people):
    ann, bob = people
    wait_for_pool(preheated, 1)  # a kernel has run the app up to page_crm(), before any page
    with app_as(browser, preheated, preheated.token(ann), "?say=first") as page:
        assert shown(page) == (ann, "first", "True")
        assert kernel_crm_user(page) == ann  # not the server's own CRM_USER
        first = page.evaluate("() => window.jupyterapp.widgetManager._kernel.id")
    wait_for_pool(preheated, 2)  # refilled after Ann took hers
    with app_as(browser, preheated, preheated.token(bob), "?say=second") as page:
        assert shown(page) == (bob, "second", "True")
        assert page.evaluate("() => window.jupyterapp.widgetManager._kernel.id") != first
    status, body = fetch(f"{preheated.url}voila/render/{IDENTITY}")
    assert status == 403 and "identity-user" not in body


def test_only_the_servers_own_kernels_open_the_request_socket(browser, preheated, people):
    """``/voila/query/<kernel id>`` hands a preheated kernel its page's request (the signed
    page user among it): no browser or other client may open it in a kernel's place."""
    ann, _ = people
    query = f"/voila/query/{uuid.uuid4()}"
    assert handshake(preheated, query) == 403
    guessed = page_user.kernel_proof(query.rsplit("/", 1)[1], "guessed")
    assert handshake(preheated, query, {page_user.KERNEL_HEADER: guessed}) == 403
    context = browser.new_context(base_url=preheated.url)
    try:
        preheated.sign_in(context, preheated.token(ann))
        page = context.new_page()
        page.goto("")
        assert browser_socket(page, query) == "refused"
    finally:
        context.close()
    port = preheated.url.rstrip("/").rsplit(":", 1)[1]
    assert handshake(preheated, query, {"Host": f"rebound.example:{port}"}) == 403
