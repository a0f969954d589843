"""Roles, teams and row-level security: each role reads exactly its rows on every path and is
refused forbidden writes, with nothing written. The app's connections log in as a member of
crm_app (as `crm db start` makes crm_service), bound by sql/017's policies."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_kernel import CRM
from crm_kernel.db import connect_engine
from crm_kernel.errors import AccessDeniedError, ConfigError, NotFoundError

from .helpers import APP_LOGIN, as_user

# Deals each acting user sees: reps their own, managers their teams' and their own.
VISIBLE_DEALS = {
    "ada": {"rob", "rae", "sam", "mia"},
    "ana": {"rob", "rae", "sam", "mia"},
    "mia": {"rob", "rae", "mia"},
    "max": {"sam"},
    "rob": {"rob"},
    "rae": {"rae"},
    "sam": {"sam"},
}


def _titles(rows) -> set[str]:
    return {r["title"].split()[0] for r in rows}


@pytest.mark.parametrize("who", sorted(VISIBLE_DEALS))
def test_services_list_exactly_the_permitted_deals(app_engine, world, who):
    crm = as_user(app_engine, who)
    assert _titles(crm.deals.list(limit=None)) == VISIBLE_DEALS[who]
    assert {r["subject"].split()[0] for r in crm.activities.list(limit=None)} == VISIBLE_DEALS[who]
    assert len(crm.companies.list(limit=None)) == 4  # companies are shared read-only
    found = crm.search("deal", entities="deals")
    assert {t.split()[0] for t in found["title"].to_list()} == VISIBLE_DEALS[who]


@pytest.mark.parametrize("who", sorted(VISIBLE_DEALS))
def test_a_search_with_a_typo_finds_only_the_permitted_deals(app_engine, world, who):
    """The fuzzy steps (no exact word matches "deall") obey the same policies as the rest."""
    crm = as_user(app_engine, who)
    found = crm.search("deall", entities=["deals", "activities"])
    assert set(found["entity"]) == {"deals"}
    assert {t.split()[0] for t in found["title"].to_list()} == VISIBLE_DEALS[who]
    for name in ("rob", "rae", "sam", "mia"):
        typo = crm.search(f"{name} deall", entities="deals")["title"].to_list()
        assert {t.split()[0] for t in typo} <= VISIBLE_DEALS[who]
        if name in VISIBLE_DEALS[who]:
            assert typo[0] == f"{name} deal"


def _owners(crm: CRM, frame) -> set[str]:
    names = {str(u["id"]): u["email"].split("@")[0] for u in crm.users.list(limit=None)}
    return {names[str(o)] for o in frame["owner_id"].to_list()}


@pytest.mark.parametrize("who", sorted(VISIBLE_DEALS))
def test_query_on_postgres_and_on_the_users_snapshot(app_engine, world, who, tmp_path):
    from crm_kernel import snapshot

    crm = as_user(app_engine, who)
    spec = {"entity": "deals", "select": ["title", "owner_id", "value"]}
    assert _owners(crm, crm.query(spec)) == VISIBLE_DEALS[who]
    folder = crm.snapshot(tmp_path / "snaps")
    manifest = snapshot.Manifest.read(folder)
    assert manifest.view.email == f"{who}@example.com"
    assert manifest.view.login == APP_LOGIN
    assert manifest.view.full == (who in ("ada", "ana"))
    assert manifest.tables["deals"].rows == len(VISIBLE_DEALS[who])
    assert "crm_user_logins" not in manifest.tables and "sign_in_tokens" not in manifest.tables
    assert _owners(crm, crm.query(spec, backend="duckdb", snapshot=folder)) == VISIBLE_DEALS[who]
    # Only the snapshot's owner can read it, whoever's view it is.
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}


def test_an_incremental_snapshot_of_a_partial_view_is_copied_in_full(app_engine, world, tmp_path):
    from crm_kernel import snapshot

    rob = as_user(app_engine, "rob")
    rob.snapshot(tmp_path)
    rob.deals.create(title="rob second", company_id=world["records"]["rob"]["company"]["id"])
    newer = snapshot.Manifest.read(rob.snapshot(tmp_path, incremental=True))
    assert newer.base is None and newer.tables["deals"].rows == 2


@pytest.mark.parametrize("who", sorted(VISIBLE_DEALS))
def test_board_totals_export_and_analytics_hold_only_permitted_deals(app_engine, world, who, tmp_path):
    import polars as pl

    from crm_kernel.board.pipeline import Pipeline
    from crm_kernel.export import export_result

    crm = as_user(app_engine, who)
    totals = Pipeline(crm).totals()
    assert sum(t.count for t in totals.values()) == len(VISIBLE_DEALS[who])
    assert sum(t.value for t in totals.values()) == 1000 * len(VISIBLE_DEALS[who])
    done = export_result(crm, {"entity": "deals", "select": ["title", "owner_id"]}, "csv", tmp_path / "deals.csv")
    assert done.rows == len(VISIBLE_DEALS[who])
    assert _owners(crm, pl.read_csv(tmp_path / "deals.csv")) == VISIBLE_DEALS[who]
    pipeline = crm.analytics.pipeline(by="stage")
    assert pipeline["deals"].sum() == len(VISIBLE_DEALS[who])


def test_no_acting_user_sees_nothing(app_engine, world):
    with app_engine.connect() as conn:
        for table in ("deals", "companies", "users", "pipeline_stages", "audit_log", "teams"):
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0, table
        with pytest.raises(AccessDeniedError, match="permission denied"):
            conn.exec_driver_sql("SELECT * FROM crm_user_logins").all()


def test_every_table_is_protected(engine):
    with engine.connect() as conn:
        unprotected = (
            conn.exec_driver_sql(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' "
                "AND NOT relrowsecurity ORDER BY 1"
            )
            .scalars()
            .all()
        )
    assert unprotected == ["schema_migrations"]


# -- writes -----------------------------------------------------------------------------------


def _deal_count(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM deals").scalar()


def test_an_analyst_reads_everything_and_writes_nothing(app_engine, engine, world):
    ana = as_user(app_engine, "ana")
    company = world["records"]["rob"]["company"]
    before = _deal_count(engine)
    with pytest.raises(AccessDeniedError, match="deals"):
        ana.deals.create(title="mine", company_id=company["id"])
    with pytest.raises(AccessDeniedError) as refused:
        ana.companies.update(company["id"], name="Renamed")
    assert refused.value.table == "companies"
    assert _deal_count(engine) == before
    assert CRM(engine).companies.get(company["id"])["name"] == company["name"]


def test_a_rep_changes_only_their_own_records(app_engine, engine, world):
    rob = as_user(app_engine, "rob")
    records = world["records"]
    assert rob.companies.update(records["rob"]["company"]["id"], name="Rob's")["name"] == "Rob's"
    with pytest.raises(AccessDeniedError) as refused:
        rob.companies.update(records["sam"]["company"]["id"], name="Taken")
    assert refused.value.table == "companies"
    from crm_kernel.errors import NotFoundError

    with pytest.raises(NotFoundError):  # another rep's deal is not even visible
        rob.deals.update(records["rae"]["deal"]["id"], title="Taken")
    admin = CRM(engine)
    assert admin.companies.get(records["sam"]["company"]["id"])["name"] == "Sam Co"
    assert admin.deals.get(records["rae"]["deal"]["id"])["title"] == "rae deal"
    # A new record of a rep's is theirs.
    created = rob.contacts.create(first_name="New", last_name="Person")
    assert created["owner_id"] == world["users"]["rob"]["id"]


def test_a_rep_hands_a_deal_to_a_teammate_but_not_outside_the_team(app_engine, engine, world):
    rob = as_user(app_engine, "rob")
    users, deal = world["users"], world["records"]["rob"]["deal"]
    with pytest.raises(AccessDeniedError) as refused:
        rob.deals.update(deal["id"], owner_id=users["sam"]["id"])
    assert (refused.value.table, refused.value.field) == ("deals", "owner_id")
    assert CRM(engine).deals.get(deal["id"])["owner_id"] == users["rob"]["id"]
    handed = rob.deals.update(deal["id"], owner_id=users["rae"]["id"])
    assert handed["owner_id"] == users["rae"]["id"]
    assert _titles(rob.deals.list(limit=None)) == set()  # no longer Rob's to see
    assert _titles(as_user(app_engine, "rae").deals.list(limit=None)) == {"rob", "rae"}


def test_the_database_refuses_what_the_checks_would(app_engine, engine, world):
    """Below the services' checks: the same refusals come from the policies, as AccessDeniedError."""
    rob = as_user(app_engine, "rob")
    users, company = world["users"], world["records"]["rob"]["company"]
    before = _deal_count(engine)
    with pytest.raises(AccessDeniedError) as refused, rob.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO deals (title, company_id, stage_id, owner_id) VALUES "
                "('x', :c, '00000000-0000-0000-0001-000000000001', :o)"
            ),
            {"c": company["id"], "o": users["sam"]["id"]},
        )
    assert refused.value.table == "deals"
    with rob.transaction() as conn:  # the stages are visible but not Rob's to change: nothing updates
        assert (
            conn.execute(sa.text("UPDATE pipeline_stages SET name = 'Mine' WHERE position = 1 RETURNING id")).all()
            == []
        )
    assert _deal_count(engine) == before
    assert CRM(engine).stages.first()["name"] == "Lead"


def test_only_admins_change_stages_and_settings(app_engine, engine, world):
    mia = as_user(app_engine, "mia")
    with pytest.raises(AccessDeniedError, match="pipeline_stages"):
        mia.stages.update("00000000-0000-0000-0001-000000000001", name="Renamed")
    with pytest.raises(AccessDeniedError, match="exchange_rates"):
        mia.money.set_rate("EUR", "2024-01-01", "1.1")
    with pytest.raises(AccessDeniedError, match="crm_settings"):
        mia.money.set_reporting_currency("EUR")
    with pytest.raises(AccessDeniedError):
        mia.access.set_role("rob@example.com", "admin")
    ada = as_user(app_engine, "ada")
    assert ada.stages.update("00000000-0000-0000-0001-000000000001", name="New lead")["name"] == "New lead"
    with engine.begin() as conn:  # the seeded stage as it was (the reset between tests keeps it)
        conn.exec_driver_sql(
            "UPDATE pipeline_stages SET name = 'Lead', updated_by = NULL, version = 1 "
            "WHERE id = '00000000-0000-0000-0001-000000000001'"
        )
    assert CRM(engine).users.get(world["users"]["rob"]["id"])["role"] == "rep"


def test_a_manager_changes_their_teams_records(app_engine, world):
    mia = as_user(app_engine, "mia")
    records = world["records"]
    assert mia.deals.update(records["rob"]["deal"]["id"], value=2000)["value"] == 2000
    from crm_kernel.errors import NotFoundError

    with pytest.raises(NotFoundError):
        mia.deals.update(records["sam"]["deal"]["id"], value=2000)


def test_import_as_a_rep_owns_the_rows_and_an_analyst_is_refused(app_engine, engine, world, tmp_path):
    csv = tmp_path / "contacts.csv"
    csv.write_text("first_name,last_name,email\nIda,Import,ida@example.org\nJon,Import,jon@example.org\n")
    rob = as_user(app_engine, "rob")
    report = rob.importer.run("contacts", csv)
    assert report.created == 2
    owners = {c["owner_id"] for c in CRM(engine).contacts.list(limit=None, last_name="Import")}
    assert owners == {world["users"]["rob"]["id"]}
    assert len([r for r in CRM(engine).contacts.list(limit=None) if r["last_name"] == "Import"]) == 2
    with pytest.raises(AccessDeniedError):
        as_user(app_engine, "ana").importer.run("contacts", csv, on_duplicate="create")


def test_a_fast_import_needs_the_tables_owner(app_engine, engine, world, tmp_path, monkeypatch):
    """The app login (role crm_app) owns no table, so it may not drop indexes: an import big
    enough for the fast path takes the normal one, and one that asks for it is refused."""
    from crm_kernel.importer import writing

    monkeypatch.setattr(writing, "FAST_MIN_ROWS", 1)  # any import is big against an empty table
    csv = tmp_path / "contacts.csv"
    csv.write_text("first_name,last_name,email\nIda,Import,ida@example.org\nJon,Import,jon@example.org\n")
    rob = as_user(app_engine, "rob")
    with pytest.raises(AccessDeniedError, match="only the owner of contacts.*crm_test_service.*fast=False"):
        rob.importer.run("contacts", csv, fast=True)
    assert CRM(engine).contacts.count() == 0
    report = rob.importer.run("contacts", csv)
    assert report.created == 2 and not report.fast


# -- roles and teams --------------------------------------------------------------------------


def test_role_and_team_changes_are_audited(crm, audit_rows):
    rob = crm.users.create(email="rob@example.com", full_name="Rob", role="rep")
    crm.users.create(email="mia@example.com", full_name="Mia", role="rep")
    crm.access.set_role("mia@example.com", "manager")
    team = crm.access.add_team("East", manager="mia@example.com")
    crm.access.add_member("East", "rob@example.com")
    crm.access.remove_member("East", "rob@example.com")
    crm.access.set_role("rob@example.com", "analyst")
    assert crm.access.team("east") == {"id": team["id"], "name": "East", "manager": "mia@example.com", "members": []}
    grants = [
        (r["entity"], r["operation"], r["before"], r["after"])
        for r in audit_rows()
        if r["operation"] in ("grant", "revoke")
    ]
    assert grants == [
        ("users", "grant", {"role": "rep"}, {"role": "manager"}),
        ("teams", "grant", None, {"member": "rob@example.com"}),
        ("teams", "revoke", {"member": "rob@example.com"}, None),
        ("users", "grant", {"role": "rep"}, {"role": "analyst"}),
    ]
    assert audit_rows(rob["id"], "grant")[0]["user_id"] == crm.user_id


def test_an_unknown_role_is_refused(crm):
    from crm_kernel.errors import ValidationError

    crm.users.create(email="rob@example.com", full_name="Rob")
    with pytest.raises(ValidationError, match="role"):
        crm.access.set_role("rob@example.com", "owner")


# -- raw SQL with a user's own login ----------------------------------------------------------


def test_a_per_user_login_sees_its_users_rows_and_cannot_act_as_another(engine, world):
    from crm_kernel.access.admin import db_credentials

    url = db_credentials(engine, "rob@example.com")
    assert "crm_user_" in url
    raw = connect_engine(url)
    try:
        with raw.connect() as conn:
            titles = conn.exec_driver_sql("SELECT title FROM deals").scalars().all()
            assert titles == ["rob deal"]
            # Naming another user changes nothing for a per-user login.
            conn.execute(
                sa.text("SELECT set_config('crm.user_id', :u, false)"), {"u": str(world["users"]["ada"]["id"])}
            )
            assert conn.exec_driver_sql("SELECT title FROM deals").scalars().all() == ["rob deal"]
            assert conn.execute(sa.text("UPDATE pipeline_stages SET name = 'x' RETURNING id")).all() == []
            with pytest.raises(AccessDeniedError, match="row-level security"):
                conn.execute(
                    sa.text(
                        "INSERT INTO deals (title, stage_id, owner_id) VALUES "
                        "('x', '00000000-0000-0000-0001-000000000001', :o)"
                    ),
                    {"o": str(world["users"]["sam"]["id"])},
                )
        # The library takes the login's own user and refuses to act as anyone else through it.
        assert CRM(raw).user_email == "rob@example.com"
        with pytest.raises(ConfigError, match="acts as rob@example.com"):
            CRM(raw, user="ada@example.com")
    finally:
        raw.dispose()
    rotated = db_credentials(engine, "rob@example.com")
    assert rotated != url and sa.make_url(rotated).username == sa.make_url(url).username
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url).close()  # the old password no longer works
    psycopg.connect(rotated).close()


def test_a_deactivated_users_login_acts_as_nobody(engine, world):
    from crm_kernel.access.admin import db_credentials

    raw = connect_engine(db_credentials(engine, "rob@example.com"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET active = false WHERE email = 'rob@example.com'"))
        with raw.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM deals").scalar() == 0
            assert conn.exec_driver_sql("SELECT crm_acting_user()").scalar() is None
    finally:
        raw.dispose()
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET active = true WHERE email = 'rob@example.com'"))


def test_a_revoked_database_login_is_gone_and_its_sessions_end(engine, world, audit_rows):
    from crm_kernel.access.admin import db_credentials, revoke_db_credentials

    url = db_credentials(engine, "rob@example.com")
    login = sa.make_url(url).username
    open_session = psycopg.connect(url)
    assert revoke_db_credentials(engine, "rob@example.com") == login
    with pytest.raises(psycopg.OperationalError):
        open_session.execute("SELECT 1")  # ended, not left running as a login that no longer exists
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(url).close()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pg_roles WHERE rolname = :l"), {"l": login}).scalar() == 0
        assert (
            conn.execute(sa.text("SELECT count(*) FROM crm_user_logins WHERE login = :l"), {"l": login}).scalar() == 0
        )
    revoked = audit_rows(operation="revoke")
    assert [r["before"]["database_login"] for r in revoked if r["before"]] == [login]
    with pytest.raises(NotFoundError, match="rob@example.com has no database login"):
        revoke_db_credentials(engine, "rob@example.com")
    # Issued again, it works again (a new password, the same name).
    psycopg.connect(db_credentials(engine, "rob@example.com")).close()


# -- a rep's queries never return another rep's deal ------------------------------------------


def _rule(user_ids: list[str]):
    return st.one_of(
        st.fixed_dictionaries(
            {
                "field": st.just("value"),
                "operator": st.sampled_from(["=", "!=", "<", ">", ">=", "<="]),
                "value": st.integers(0, 5000),
            }
        ),
        st.fixed_dictionaries(
            {
                "field": st.just("title"),
                "operator": st.sampled_from(["contains", "beginsWith", "doesNotContain", "=", "!="]),
                "value": st.text(max_size=6),
            }
        ),
        st.fixed_dictionaries(
            {
                "field": st.just("owner_id"),
                "operator": st.sampled_from(["in", "notIn"]),
                "value": st.lists(st.sampled_from(user_ids), min_size=1, max_size=3),
            }
        ),
        st.fixed_dictionaries(
            {"field": st.just("owner_id"), "operator": st.sampled_from(["=", "!="]), "value": st.sampled_from(user_ids)}
        ),
        st.fixed_dictionaries(
            {
                "field": st.sampled_from(["stage.name", "company.name"]),
                "operator": st.sampled_from(["=", "!=", "contains"]),
                "value": st.sampled_from(["Lead", "Won", "Rob Co", "Sam Co", ""]),
            }
        ),
        st.fixed_dictionaries(
            {
                "field": st.sampled_from(["deleted_at", "contact_id", "owner_id"]),
                "operator": st.sampled_from(["null", "notNull"]),
            }
        ),
    )


def _where(user_ids: list[str]):
    group = st.fixed_dictionaries(
        {
            "combinator": st.sampled_from(["and", "or"]),
            "not": st.booleans(),
            "rules": st.lists(_rule(user_ids), max_size=4),
        }
    )
    return st.fixed_dictionaries(
        {
            "combinator": st.sampled_from(["and", "or"]),
            "not": st.booleans(),
            "rules": st.lists(st.one_of(_rule(user_ids), group), max_size=3),
        }
    )


def test_a_reps_queries_never_return_another_reps_deal(app_engine, world):
    rob = as_user(app_engine, "rob")
    mine = str(world["users"]["rob"]["id"])
    user_ids = sorted(str(u["id"]) for u in world["users"].values())

    @settings(max_examples=40, deadline=None)
    @given(where=_where(user_ids), grouped=st.booleans())
    def check(where, grouped):
        spec = {"entity": "deals", "where": where}
        if grouped:
            spec |= {"group_by": ["owner_id"], "aggregates": [{"fn": "count", "as": "n"}]}
        else:
            spec |= {"select": ["title", "owner_id"]}
        frame = rob.query(spec)
        assert {str(o) for o in frame["owner_id"].to_list()} <= {mine}
        activities = rob.query(
            {
                "entity": "activities",
                "select": ["subject", "owner_id", "deal.owner_id"],
                "where": {**where, "rules": []},
            }
        )
        assert {str(o) for o in activities["owner_id"].to_list()} <= {mine}

    check()


# -- the crm command ----------------------------------------------------------------------------


def test_crm_users_role_team_and_db_credentials(crm, app_engine, audit_rows):
    from click.testing import CliRunner

    from crm_kernel import cli

    def run(*args, **env):
        return CliRunner().invoke(cli.main, list(args), env=env or None)

    assert run("users", "add", "rob@example.com", "--role", "rep").exit_code == 0
    assert run("users", "add", "mia@example.com", "--role", "analyst").exit_code == 0
    assert run("users", "role", "mia@example.com", "manager").output.strip() == "mia@example.com is now manager"
    assert "team East" in run("users", "team", "add", "East", "--manager", "mia@example.com").output
    assert run("users", "team", "member", "East", "rob@example.com").output.strip() == "team East: rob@example.com"
    listing = run("users", "team").output
    assert "East" in listing and "mia@example.com" in listing and "rob@example.com" in listing
    issued = run("users", "db-credentials", "rob@example.com")
    url = issued.output.strip().splitlines()[-1].strip()
    assert issued.exit_code == 0 and url.startswith("postgresql://crm_user_")
    assert [r["operation"] for r in audit_rows(operation="grant")] == ["grant"] * 3
    dropped = run("users", "db-credentials", "rob@example.com", "--revoke")
    assert (
        dropped.exit_code == 0
        and f"Database login {sa.make_url(url).username} of rob@example.com dropped" in dropped.output
    )
    again = run("users", "db-credentials", "rob@example.com", "--revoke")
    assert again.exit_code == 1 and "rob@example.com has no database login" in again.output
    # Through the apps' login, acting as a rep: refused, with the command's clean message.
    app_url = app_engine.url.render_as_string(hide_password=False)
    refused = run("users", "role", "rob@example.com", "admin", CRM_APP_DATABASE_URL=app_url, CRM_USER="rob@example.com")
    assert refused.exit_code == 1 and "only admins change roles" in refused.output
    refused = run(
        "users", "db-credentials", "rob@example.com", CRM_APP_DATABASE_URL=app_url, CRM_USER="rob@example.com"
    )
    assert refused.exit_code == 1 and "only admins issue database logins" in refused.output
    assert CRM(app_engine, user="rob@example.com").user_role == "rep"


def test_audit_rows_are_visible_with_their_record(app_engine, world):
    records = world["records"]

    def audited(who: str) -> set:
        with as_user(app_engine, who).engine.connect() as conn:
            return set(conn.exec_driver_sql("SELECT entity_id FROM audit_log").scalars())

    deals = {name: r["deal"]["id"] for name, r in records.items()}
    companies = {r["company"]["id"] for r in records.values()}
    rob = audited("rob")
    assert deals["rob"] in rob and deals["rae"] not in rob and deals["sam"] not in rob
    assert companies <= rob  # companies are everyone's to read, and so is their history
    mia = audited("mia")
    assert {deals["rob"], deals["rae"], deals["mia"]} <= mia and deals["sam"] not in mia
    assert set(deals.values()) <= audited("ana")


def test_an_analyst_saves_their_own_queries(app_engine, world):
    ana = as_user(app_engine, "ana")
    saved = ana.saved_queries.save(
        "big deals",
        {"entity": "deals", "where": {"rules": [{"field": "value", "operator": ">", "value": 500}]}},
        shared=True,
    )
    assert saved["owner_id"] == world["users"]["ana"]["id"]
    assert "big deals" in {q["name"] for q in as_user(app_engine, "rob").saved_queries.visible()}


def test_the_acting_user_is_set_per_transaction_and_never_left_in_the_pool(engine, world):
    rob = str(world["users"]["rob"]["id"])
    acting = engine.execution_options(crm_settings={"crm.user_id": rob})  # the contract CRM follows
    with acting.begin() as conn:
        assert conn.exec_driver_sql("SELECT current_setting('crm.user_id', true)").scalar() == rob
        assert conn.exec_driver_sql("SELECT crm_acting_role()").scalar() == "rep"
    for _ in range(3):  # whichever pooled connection comes next, it names nobody
        with engine.connect() as conn:
            assert not conn.exec_driver_sql("SELECT current_setting('crm.user_id', true)").scalar()


def test_an_inactive_user_acts_no_more(app_engine, engine, world):
    rob = as_user(app_engine, "rob")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET active = false WHERE id = :id"), {"id": world["users"]["rob"]["id"]})
    assert rob.deals.list(limit=None) == []  # an open CRM of theirs reads nothing from now on
    with pytest.raises(ConfigError, match="inactive"):
        as_user(app_engine, "rob")


def test_change_tracking_triggers_work_for_the_app_login(app_engine, engine, world):
    """Hard deletes by a crm_app login are recorded (sql/003's triggers run as their owner)."""
    activity = world["records"]["rob"]["activity"]["id"]
    with as_user(app_engine, "ada").transaction() as conn:
        assert conn.execute(sa.text("DELETE FROM activities WHERE id = :id"), {"id": activity}).rowcount == 1
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.text("SELECT row_id FROM row_deletions WHERE table_name = 'activities' AND row_id IS NOT NULL")
        ).scalars()
        assert list(recorded) == [str(activity)]


def test_an_import_may_not_update_records_outside_the_reps_teams(app_engine, engine, world, tmp_path):
    admin = CRM(engine)
    admin.contacts.create(
        first_name="Sam's", last_name="Contact", email="theirs@example.org", owner_id=world["users"]["sam"]["id"]
    )
    csv = tmp_path / "contacts.csv"
    csv.write_text("first_name,last_name,email\nChanged,Name,theirs@example.org\nNew,One,new@example.org\n")
    with pytest.raises(AccessDeniedError, match="1 of the file's rows"):
        as_user(app_engine, "rob").importer.run("contacts", csv, on_duplicate="update")
    assert {c["first_name"] for c in admin.contacts.list(limit=None)} == {"Sam's"}


def test_a_refusal_on_any_path_is_an_access_denied_error(app_engine, world):
    """Not only the services' transactions: raw SQL through the CRM's engine, a read of a table
    the app role has no grant on, and the Arrow (ADBC) query path name the table refused."""
    import adbc_driver_manager

    from crm_kernel.db import arrow

    rob = as_user(app_engine, "rob")
    with pytest.raises(AccessDeniedError) as raised, rob.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO pipeline_stages (name, position) VALUES ('Mine', 99)"))
    assert raised.value.table == "pipeline_stages"
    with pytest.raises(AccessDeniedError) as raised, rob.engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM crm_user_logins"))
    assert raised.value.table == "crm_user_logins"
    with arrow.session(rob.engine, timezone="UTC") as cursor:
        try:
            cursor.execute("SELECT * FROM crm_user_logins")
        except adbc_driver_manager.Error as exc:
            refused = arrow.failure(rob.engine, exc, "the query")
    assert isinstance(refused, AccessDeniedError) and refused.table == "crm_user_logins"
    with app_engine.connect() as conn:  # nothing was written
        assert conn.execute(sa.text("SELECT count(*) FROM pipeline_stages WHERE name = 'Mine'")).scalar() == 0
