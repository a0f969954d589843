"""Sign-in for `crm serve` without a server: the token store, the signed page user, the
command line and `crm users token`. (tests/browser/test_signin.py runs the real server.)"""

import hashlib
import os
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import apps, cli
from crm_kernel import serve as serving
from crm_kernel.access import page_user, tokens
from crm_kernel.errors import ConfigError, NotFoundError, SignInError
from crm_kernel.voila_server import host_pattern, owned_kernel_manager_class


@pytest.fixture
def people(crm):
    ann = crm.users.create(email="ann@example.com", full_name="Ann Lee", role="rep")
    bob = crm.users.create(email="bob@example.com", full_name="Bob Ray", role="manager")
    return ann, bob


# -- the token store ------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_hash_and_signs_its_user_in(crm, people):
    issued, secret = tokens.issue(crm.engine, "Ann@Example.com")
    assert issued.email == "ann@example.com" and issued.active and len(secret) >= 40
    with crm.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM sign_in_tokens")).scalars().all()
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert secret not in stored[0]
    assert tokens.verify(crm.engine, secret).email == "ann@example.com"
    assert tokens.verify(crm.engine, secret + "x") is None
    assert tokens.verify(crm.engine, "") is None


def test_each_issue_is_a_new_token_and_tokens_are_listed_per_user(crm, people):
    _, first = tokens.issue(crm.engine, "ann@example.com")
    _, second = tokens.issue(crm.engine, "ann@example.com")
    tokens.issue(crm.engine, "bob@example.com")
    assert first != second
    assert [t.email for t in tokens.list_tokens(crm.engine, "ann@example.com")] == ["ann@example.com"] * 2
    assert sorted(t.email for t in tokens.list_tokens(crm.engine)) == ["ann@example.com"] * 2 + ["bob@example.com"]


def test_revoking_refuses_the_token_and_ends_its_sessions(crm, people, audit_rows):
    ann_token, ann = tokens.issue(crm.engine, "ann@example.com")
    _, bob = tokens.issue(crm.engine, "bob@example.com")
    revoked = tokens.revoke(crm.engine, "ann@example.com")
    assert [t.id for t in revoked] == [ann_token.id] and revoked[0].revoked_at is not None
    assert tokens.verify(crm.engine, ann) is None
    assert tokens.usable(crm.engine, ann_token.id) is None  # the session check
    assert tokens.verify(crm.engine, bob).email == "bob@example.com"
    assert tokens.list_tokens(crm.engine, "ann@example.com") == []
    assert len(tokens.list_tokens(crm.engine, "ann@example.com", include_revoked=True)) == 1
    rows = audit_rows(ann_token.id)
    assert [(r["operation"], (r["after"] or {}).get("event")) for r in rows] == [("create", None), ("update", "revoke")]
    assert rows[1]["before"] == {"revoked_at": None} and rows[1]["after"]["revoked_at"] is not None


def test_revoking_one_token_by_id(crm, people):
    first, one = tokens.issue(crm.engine, "ann@example.com")
    _, two = tokens.issue(crm.engine, "ann@example.com")
    tokens.revoke(crm.engine, "ann@example.com", str(first.id))
    assert tokens.verify(crm.engine, one) is None and tokens.verify(crm.engine, two) is not None
    with pytest.raises(NotFoundError, match="no active token"):
        tokens.revoke(crm.engine, "ann@example.com", first.id)
    with pytest.raises(SignInError, match="not a token id"):
        tokens.revoke(crm.engine, "ann@example.com", "nonsense")


def test_an_inactive_or_deleted_user_cannot_sign_in(crm, people):
    ann, bob = people
    _, ann_secret = tokens.issue(crm.engine, "ann@example.com")
    bob_token, bob_secret = tokens.issue(crm.engine, "bob@example.com")
    crm.users.update(ann["id"], {"active": False}, expected_version=ann["version"])
    crm.users.delete(bob["id"])
    assert tokens.verify(crm.engine, ann_secret) is None
    assert tokens.verify(crm.engine, bob_secret) is None and tokens.usable(crm.engine, bob_token.id) is None


def test_a_sign_in_is_audited_and_dated(crm, people, audit_rows):
    issued, secret = tokens.issue(crm.engine, "ann@example.com")
    tokens.record_sign_in(crm.engine, tokens.verify(crm.engine, secret), remote_ip="127.0.0.1", user_agent="test")
    [row] = audit_rows(issued.id, "update")
    assert row["user_id"] == people[0]["id"] and row["entity"] == "sign_in_tokens"
    assert row["before"] == {"last_used_at": None}
    assert row["after"]["event"] == "sign_in" and row["after"]["last_used_at"] is not None
    assert (row["after"]["remote_ip"], row["after"]["user_agent"]) == ("127.0.0.1", "test")
    assert tokens.list_tokens(crm.engine, "ann@example.com")[0].last_used_at is not None


def test_a_token_for_nobody_is_refused_and_writes_nothing(crm):
    with pytest.raises(NotFoundError, match="crm users add nobody@example.com"):
        tokens.issue(crm.engine, "nobody@example.com")
    with crm.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sign_in_tokens")).scalar() == 0
    assert tokens.usable(crm.engine, "not-a-uuid") is None and tokens.usable(crm.engine, uuid.uuid4()) is None


# -- the page's user, as the kernel receives it -----------------------------------------------


def test_the_page_user_is_accepted_only_when_signed_with_the_servers_secret():
    value = page_user.sign("ann@example.com", "s3cret")
    assert page_user.verify(value, "s3cret") == "ann@example.com"
    for forged in (
        page_user.sign("ann@example.com", "other"),
        "ann@example.com",
        value.replace(value[:4], "Ym9i"),
        value + "0",
        "",
    ):
        with pytest.raises(SignInError):
            page_user.verify(forged, "s3cret")
    with pytest.raises(SignInError, match="without a signed-in user"):
        page_user.verify(None, "s3cret")


def test_page_crm_acts_as_the_signed_user_never_the_servers(crm, people, monkeypatch):
    monkeypatch.setenv("CRM_USER", "bob@example.com")
    monkeypatch.delenv(page_user.SECRET_ENV, raising=False)
    with apps.page_crm() as outside:
        assert outside.user_email == "bob@example.com"  # JupyterLab, papermill: CRM_USER
    monkeypatch.setenv(page_user.SECRET_ENV, "s3cret")
    monkeypatch.setenv(page_user.ENV, page_user.sign("ann@example.com", "s3cret"))
    with apps.page_crm() as served:
        assert served.user_email == "ann@example.com"
    monkeypatch.setenv(page_user.ENV, page_user.sign("ann@example.com", "guessed"))
    with pytest.raises(SignInError):
        apps.page_crm()
    monkeypatch.delenv(page_user.ENV)
    with pytest.raises(SignInError):
        apps.page_crm()


def test_page_crm_makes_the_page_user_the_kernels_crm_user(crm, people, monkeypatch):
    # Anything else in the kernel that connects by CRM_USER acts as the page's user too.
    monkeypatch.setenv("CRM_USER", "bob@example.com")
    monkeypatch.setenv(page_user.SECRET_ENV, "s3cret")
    monkeypatch.setenv(page_user.ENV, page_user.sign("ann@example.com", "s3cret"))
    with apps.page_crm() as served:
        assert served.user_email == "ann@example.com"
    assert os.environ["CRM_USER"] == "ann@example.com"


def test_a_kernels_request_socket_proof_is_bound_to_the_secret_and_the_kernel():
    proof = page_user.kernel_proof("k1", "s3cret")
    assert page_user.kernel_proof_ok("k1", proof, "s3cret")
    for kernel_id, presented in (
        ("k2", proof),
        ("k1", page_user.kernel_proof("k1", "other")),
        ("k1", ""),
        ("k1", None),
        ("k1", page_user.sign("k1", "s3cret").split(".")[1]),
    ):
        assert not page_user.kernel_proof_ok(kernel_id, presented, "s3cret"), (kernel_id, presented)


def test_a_kernels_owner_is_forgotten_when_the_kernel_goes():
    """Voilà's kernel manager built on the owned one: shutdown (a page closing, the idle cull)
    and a kernel's death both end in remove_kernel, which drops the owner."""
    import asyncio

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from voila.request_info_handler import RequestInfoSocketHandler
    from voila.voila_kernel_manager import voila_kernel_manager_factory

    async def run():
        manager = voila_kernel_manager_factory(owned_kernel_manager_class(AsyncMappingKernelManager), False, 0)()
        first = await manager.start_kernel(kernel_name="python3")
        second = await manager.start_kernel(kernel_name="python3")
        manager.kernel_owners.update({first: "ann@example.com", second: "bob@example.com"})
        RequestInfoSocketHandler._cache[first] = "{}"  # request info a kernel never fetched
        try:
            await manager.shutdown_kernel(first)
            assert manager.kernel_owners == {second: "bob@example.com"}
            assert first not in RequestInfoSocketHandler._cache
            dying = manager.get_kernel(second)
            manager._handle_kernel_died(second)  # what the restarter calls when a kernel dies for good
            assert manager.kernel_owners == {}
            await dying.shutdown_kernel(now=True)  # its process, which the manager no longer lists
        finally:
            await manager.shutdown_all(now=True)

    asyncio.run(run())


# -- the command line ----------------------------------------------------------------------


def test_sign_in_is_on_by_default_and_the_pool_preheats(tmp_path):
    command = serving.voila_command(tmp_path, port=9001)
    assert command[1:4] == ["-m", "crm_kernel.voila_server", str(tmp_path.resolve())]
    assert "--CrmIdentityProvider.sign_in=token" in command
    assert "--VoilaConfiguration.preheat_kernel=True" in command
    assert f"--VoilaConfiguration.default_pool_size={serving.DEFAULT_POOL}" in command
    assert not any(o.startswith("--CrmVoila.allowed_hosts") for o in command)


def test_pool_zero_starts_a_kernel_per_page_and_a_negative_pool_is_refused(tmp_path):
    command = serving.voila_command(tmp_path, pool=0)
    assert not any("preheat" in option or "pool_size" in option for option in command)
    assert "--VoilaConfiguration.default_pool_size=3" in serving.voila_command(tmp_path, pool=3)
    with pytest.raises(ConfigError, match="--pool"):
        serving.voila_command(tmp_path, pool=-1)


def test_no_sign_in_only_on_loopback(tmp_path):
    command = serving.voila_command(tmp_path, sign_in=False, acting_user="ann@example.com")
    assert "--CrmIdentityProvider.sign_in=none" in command
    assert "--CrmIdentityProvider.acting_user=ann@example.com" in command
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        serving.voila_command(tmp_path, host=host, sign_in=False)
    for host in ("0.0.0.0", "192.0.2.10", "crm.example.com", "::"):
        with pytest.raises(ConfigError, match="without sign-in"):
            serving.voila_command(tmp_path, host=host, sign_in=False)
        serving.voila_command(tmp_path, host=host)  # with sign-in: fine


def test_allowed_hosts_reach_the_server(tmp_path):
    command = serving.voila_command(tmp_path, allowed_hosts=("crm.example.com", "10.0.0.5"))
    assert [o for o in command if o.startswith("--CrmVoila.allowed_hosts")] == [
        "--CrmVoila.allowed_hosts=crm.example.com",
        "--CrmVoila.allowed_hosts=10.0.0.5",
    ]


def test_proxy_headers_are_believed_only_behind_a_proxy(tmp_path):
    assert "--CrmVoila.behind_proxy=False" in serving.voila_command(tmp_path)
    assert "--CrmVoila.behind_proxy=True" in serving.voila_command(tmp_path, behind_proxy=True)


def test_the_host_pattern_takes_loopback_and_the_allowed_names_only():
    import re

    pattern = re.compile(host_pattern(["crm.example.com", "192.0.2.10", "fd00::1"]))
    for host in ("localhost", "127.0.0.1", "[::1]", "crm.example.com", "192.0.2.10", "[fd00::1]"):
        assert pattern.match(host), host
    for host in ("evil.example", "crm.example.com.evil.example", "127.0.0.1.nip.io", "xlocalhost", "crmxexample.com"):
        assert not pattern.match(host), host


def test_the_sign_in_link():
    assert serving.sign_in_url("a b") == "http://127.0.0.1:8866/?token=a+b"
    assert serving.sign_in_url("t", "https://crm.example.com/") == "https://crm.example.com/?token=t"
    assert serving.hub_user({"JUPYTERHUB_USER": "ann@example.com"}) == "ann@example.com"
    assert serving.hub_user({}) is None


def cli_run(*args, env=None):
    return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)


def test_crm_users_token_prints_a_link_once_and_revokes(crm, people):
    result = cli_run("users", "token", "ann@example.com", "--url", "https://crm.example.com")
    assert result.exit_code == 0, result.output
    link = result.output.split()[-1]
    assert link.startswith("https://crm.example.com/?token=")
    secret = link.split("token=")[1]
    assert tokens.verify(crm.engine, secret).email == "ann@example.com"
    listed = cli_run("users", "token", "--list")
    assert "ann@example.com" in listed.output and secret not in listed.output and "never used" in listed.output
    revoked = cli_run("users", "token", "ann@example.com", "--revoke")
    assert revoked.exit_code == 0 and "revoked 1 token(s)" in revoked.output
    assert tokens.verify(crm.engine, secret) is None
    assert "ann@example.com" not in cli_run("users", "token", "--list").output
    assert "revoked" in cli_run("users", "token", "--list", "--all").output


def test_crm_users_token_needs_a_known_user(crm):
    assert cli_run("users", "token").exit_code == 2
    result = cli_run("users", "token", "nobody@example.com")
    assert result.exit_code == 1 and "crm users add" in result.output
