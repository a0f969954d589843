"""The `crm` command, driven the way a user types it."""

import os
import re
import stat
from pathlib import Path
from unittest.mock import patch

import pytest
from click.testing import CliRunner

from crm_kernel import CRM, cli
from crm_kernel.db import embedded
from crm_kernel.errors import ConfigError

from .helpers import scratch_dir


@pytest.fixture
def crm_db(crm):
    """The emptied test database (the `crm` fixture), for commands that use it."""
    return crm


def crm(*args, env=None):
    return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)


def every_command(group=cli.main, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from every_command(command, (*prefix, name))


def test_top_level_help_lists_commands_and_settings():
    result = crm("--help")
    assert result.exit_code == 0
    for word in ("db", "demo-data", "users", "CRM_DATABASE_URL", "CRM_HOME", "CRM_USER", "CRM_TIMEZONE"):
        assert word in result.output


def test_top_level_help_shows_one_setting_a_line():
    """The settings are a table: each variable starts its own line, its help beside it."""
    from crm_kernel.config import SETTINGS

    output = crm("--help").output
    table = output[output.index("Settings (environment variables):") :]
    for s in SETTINGS:
        first_words = " ".join(s.help.split()[:2])
        assert re.search(rf"^ *{s.env} +{re.escape(first_words)}", table, re.MULTILINE), (s.env, table)
    starts = [line.split()[0] for line in table.splitlines() if line.strip().startswith("CRM_")]
    assert starts == [s.env for s in SETTINGS]


@pytest.mark.parametrize("command", list(every_command()), ids=" ".join)
def test_every_command_has_useful_help(command):
    result = crm(*command, "--help")
    assert result.exit_code == 0
    summary = result.output.split("\n\n")[1].strip()
    assert len(summary) > 15, summary


def test_embedded_cluster_lifecycle():
    """start -> status -> migrate (twice) -> url -> stop -> status, on a cluster of its own."""
    home = scratch_dir("crm-cli-home-") / "home"
    env = {"CRM_DATABASE_URL": None, "CRM_HOME": str(home)}
    try:
        started = crm("db", "start", env=env)
        assert started.exit_code == 0, started.output
        # Created private (as root the postgres user may pass through the home, not list it).
        assert stat.S_IMODE(home.stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)
        assert stat.S_IMODE((home / "pg").stat().st_mode) == 0o700
        url = crm("db", "url", "--show-password", env=env).output.strip()
        password = url.split(":")[2].split("@")[0]
        assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url and len(password) >= 20
        assert started.output.strip().splitlines()[-1] == url.replace(password, "***")  # printed, masked

        again = crm("db", "start", env=env)
        assert again.output.strip().splitlines()[-1] == url.replace(password, "***")  # same cluster, same port

        status = crm("db", "status", env=env)
        assert "(running)" in status.output and "schema version: none" in status.output
        assert "001_core_schema.sql" in status.output

        migrated = crm("db", "migrate", env=env).output
        assert "migration(s) applied" in migrated and "login crm_service" in migrated
        assert crm("db", "migrate", env=env).output.strip() == "schema is up to date"
        # Apps and notebooks connect as the service login, bound by row-level security; the
        # owner only when asked. Its password is kept with the cluster's, readable by its owner.
        state = home / "pg" / "state.json"
        assert "service_password" in state.read_text() and stat.S_IMODE(state.stat().st_mode) == 0o600
        with patch.dict(os.environ, {"CRM_HOME": str(home)}):
            os.environ.pop("CRM_DATABASE_URL", None)  # restored with the rest when the block ends
            with CRM.connect() as app:
                assert app.engine.url.username == "crm_service" and app.user_role == "admin"
                with app.engine.connect() as conn:
                    assert conn.exec_driver_sql("SELECT row_security_active('deals')").scalar() is True
            with CRM.connect(owner=True) as owner:
                assert owner.engine.url.username == "postgres"
        status = crm("db", "status", env=env)
        assert "pending migrations: none" in status.output
        for shown in (status.output, crm("db", "url", env=env).output):  # password masked
            assert "postgres:***@127.0.0.1:" in shown and password not in shown
        assert crm("db", "url", env=env).output.strip() == url.replace(password, "***")
        assert crm("db", "stop", env=env).output.strip() == "stopped"
        assert crm("db", "stop", env=env).output.strip() == "not running"
        stopped = crm("db", "status", env=env)
        assert stopped.exit_code == 1 and "(stopped)" in stopped.output
    finally:
        embedded.for_home(home).destroy()


def test_start_and_stop_leave_an_external_server_alone(database_url):
    assert "nothing to start" in crm("db", "start").output
    assert "not ours to stop" in crm("db", "stop").output
    assert crm("db", "url", "--show-password").output.strip() == database_url
    password = database_url.split(":")[2].split("@")[0]
    masked = crm("db", "url").output.strip()
    assert masked == database_url.replace(f":{password}@", ":***@") and password not in masked


def test_make_demo_prints_no_password():
    """`make demo` shows the URL it gets from `crm db url`: masked, since it ends up in logs."""
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    printed = re.findall(r"\$\$\(\$\(BIN\)/crm db url([^)]*)\)", makefile)  # what the shell runs and echoes
    assert printed and all("--show-password" not in options for options in printed)


def test_no_database_is_a_clear_error():
    env = {"CRM_DATABASE_URL": None, "CRM_HOME": str(scratch_dir("crm-empty-home-"))}
    result = CliRunner().invoke(cli.main, ["db", "migrate"], env=env)
    assert result.exit_code == 1
    assert "run `crm db start`" in result.output
    assert "Traceback" not in result.output


def test_unreachable_database_is_a_clear_error():
    env = {"CRM_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{embedded.free_port()}/crm"}
    result = CliRunner().invoke(cli.main, ["db", "status"], env=env)
    assert result.exit_code == 1 and "cannot connect" in result.output


def test_missing_binaries_say_how_to_install(monkeypatch):
    monkeypatch.setattr(embedded.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install postgresql postgresql-contrib"):
        embedded.find_bindir()


def test_users_add_and_list(crm_db):
    added = crm("users", "add", "dana.sales@example.com", "--role", "manager")
    assert added.exit_code == 0 and "dana.sales@example.com (manager)" in added.output
    listed = crm("users", "list").output
    assert "dana.sales@example.com" in listed and "Dana Sales" in listed
    duplicate = CliRunner().invoke(cli.main, ["users", "add", "DANA.SALES@example.com"])
    assert duplicate.exit_code == 1 and "email" in duplicate.output


def test_unknown_crm_user_is_a_clear_error(crm_db):
    result = CliRunner().invoke(cli.main, ["demo-data", "--if-empty"], env={"CRM_USER": "ghost@example.com"})
    assert result.exit_code == 1
    assert "ghost@example.com" in result.output and "crm users add" in result.output


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(
        '{"entity": "companies", "select": ["name", "employees"], '
        '"where": {"rules": [{"field": "employees", "operator": ">", "value": "10"}]}, '
        '"order_by": ["name"]}'
    )
    return path


@pytest.fixture
def two_companies(crm_db):
    crm_db.companies.create(name="Big Co", employees=500)
    crm_db.companies.create(name="Tiny", employees=2)
    crm_db.companies.create(name="Also Big", employees=50)


@pytest.mark.usefixtures("two_companies")
def test_query_run_formats(spec_file, tmp_path):
    import json

    import polars as pl

    table = crm("query", "run", str(spec_file))
    assert table.exit_code == 0
    assert "Also Big" in table.output and "Tiny" not in table.output and "2 rows in" in table.output
    csv = crm("query", "run", str(spec_file), "--format", "csv").output
    assert csv.splitlines() == ["name,employees", "Also Big,50", "Big Co,500"]
    rows = json.loads(crm("query", "run", str(spec_file), "--format", "json").output)
    assert rows == [{"name": "Also Big", "employees": 50}, {"name": "Big Co", "employees": 500}]
    out = tmp_path / "rows.parquet"
    written = crm("query", "run", str(spec_file), "--format", "parquet", "--out", str(out))
    assert written.exit_code == 0
    assert pl.read_parquet(out)["name"].to_list() == ["Also Big", "Big Co"]


def test_query_run_refuses_a_bad_spec_with_its_path(crm_db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"entity": "companies", "where": {"rules": [{"field": "employees", "operator": "contains", "value": 1}]}}'
    )
    result = CliRunner().invoke(cli.main, ["query", "run", str(bad)])
    assert result.exit_code == 1
    assert "where.rules[0].operator: 'contains' does not apply to integer field employees" in result.output


def test_query_parquet_needs_out(crm_db, spec_file):
    result = CliRunner().invoke(cli.main, ["query", "run", str(spec_file), "--format", "parquet"])
    assert result.exit_code == 2 and "--out" in result.output


def test_query_sql_prints_readable_sql_offline(spec_file):
    env = {"CRM_DATABASE_URL": None, "CRM_HOME": str(scratch_dir("crm-offline-"))}
    result = crm("query", "sql", str(spec_file), "--dialect", "duckdb", env=env)
    assert result.exit_code == 0
    assert "companies.employees > 10" in result.output and "ORDER BY name ASC NULLS LAST" in result.output


@pytest.mark.usefixtures("two_companies")
def test_query_run_on_a_snapshot(crm_db, spec_file, tmp_path):
    exported = crm("snapshot", "export", "--out", str(tmp_path / "snaps"))
    assert exported.exit_code == 0
    csv = crm(
        "query", "run", str(spec_file), "--backend", "duckdb", "--snapshot", str(tmp_path / "snaps"), "--format", "csv"
    ).output
    assert csv.splitlines() == ["name,employees", "Also Big,50", "Big Co,500"]
    crm_db.companies.create(name="After the snapshot", employees=99)
    live = crm("query", "run", str(spec_file), "--format", "csv").output
    assert "After the snapshot" in live and "After the snapshot" not in csv


@pytest.mark.usefixtures("two_companies")
def test_query_run_takes_parameters(tmp_path):
    spec = tmp_path / "param.json"
    spec.write_text(
        '{"entity": "companies", "select": ["name"], "order_by": ["name"], "where": {"rules": ['
        '{"field": "employees", "operator": ">=", "value": "least", "valueSource": "parameter"}, '
        '{"field": "name", "operator": "in", "value": "names", "valueSource": "parameter"}]}}'
    )
    csv = crm(
        "query",
        "run",
        str(spec),
        "--format",
        "csv",
        "--param",
        "least=50",
        "--param",
        'names=["Big Co", "Tiny", "Also Big"]',
    )
    assert csv.exit_code == 0, csv.output
    assert csv.output.splitlines() == ["name", "Also Big", "Big Co"]
    missing = CliRunner().invoke(cli.main, ["query", "run", str(spec), "--param", "least=50"])
    assert missing.exit_code == 1 and "params.names: parameter 'names'" in missing.output
    typo = CliRunner().invoke(
        cli.main, ["query", "run", str(spec), "--param", "least=50", "--param", "names=Tiny", "--param", "lest=5"]
    )
    assert typo.exit_code == 1 and "no rule uses parameter 'lest'" in typo.output
    malformed = CliRunner().invoke(cli.main, ["query", "run", str(spec), "--param", "least"])
    assert malformed.exit_code == 2 and "NAME=VALUE" in malformed.output
