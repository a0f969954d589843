"""Demo data: counts, determinism, consistency between tables, an exact history, exchange rates
that cover it, the staff in teams, and an all-or-nothing load."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager

import polars as pl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import CRM, CrmError, DatabaseError, demo
from crm_kernel.cli import main
from crm_kernel.db import connect_engine
from crm_kernel.demo import loading
from crm_kernel.model import SYSTEM_USER_ID

TODAY = dt.date(2026, 1, 15)
SCALE = 0.2  # 4 users (the fewest), 200 companies, 1,000 contacts, 400 deals, 4,000 activities
CRM_TABLES = (*demo.TABLES, "saved_queries", "audit_log", "exchange_rates", *demo.TEAM_TABLES)
KEYS = {"exchange_rates": "currency, rate_date", "team_members": "team_id, user_id"}  # else id


@contextmanager
def engines(make_database):
    """``make(name)``: an engine on a new migrated database, disposed of afterwards."""
    made = []

    def make(name: str) -> sa.Engine:
        made.append(connect_engine(make_database(name)))
        return made[-1]

    try:
        yield make
    finally:
        for engine in made:
            engine.dispose()


@pytest.fixture
def fresh(make_database):
    with engines(make_database) as make:
        yield make


@pytest.fixture(scope="module")
def staffed(make_database_module) -> sa.Engine:
    """Demo data at scale 1, the smallest that has two teams."""
    with engines(make_database_module) as make:
        engine = make("demo_staffed")
        demo.load(engine, scale=1, today=TODAY)
        yield engine


@pytest.fixture(scope="module")
def loaded(make_database_module) -> sa.Engine:
    """Demo data at SCALE, shared by the tests that only read it."""
    with engines(make_database_module) as make:
        engine = make("demo_loaded")
        demo.load(engine, scale=SCALE, today=TODAY)
        yield engine


def rows(engine: sa.Engine, tables=CRM_TABLES) -> dict[str, list[tuple]]:
    """Table contents in id order, comparable across databases: without the system user (made
    by the migrations) and ``last_xact`` (the id of the writing transaction, sql/003)."""
    where = {"users": f"WHERE id <> '{SYSTEM_USER_ID}'"}
    contents = {}
    with engine.connect() as conn:
        for table in tables:
            key = KEYS.get(table, "id")
            result = conn.exec_driver_sql(f"SELECT * FROM {table} {where.get(table, '')} ORDER BY {key}")
            keep = [i for i, column in enumerate(result.keys()) if column != "last_xact"]
            contents[table] = [tuple(row[i] for i in keep) for row in result]
    return contents


def everything(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every table, to show that nothing changed."""
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars()
        return {t: conn.exec_driver_sql(f"SELECT * FROM {t} AS r ORDER BY r::text").all() for t in tables}


def schema(engine: sa.Engine) -> tuple[list, list]:
    """Every index and constraint with its definition."""
    with engine.connect() as conn:
        indexes = conn.exec_driver_sql(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 2"
        ).all()
        constraints = conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 2"
        ).all()
    return indexes, constraints


def scalar(engine: sa.Engine, query: str):
    with engine.connect() as conn:
        return conn.exec_driver_sql(query).scalar()


def test_loads_the_rows_the_scale_asks_for(fresh, capsys):
    engine = fresh("demo_counts")
    counts = demo.load(engine, scale=SCALE, today=TODAY)
    assert demo.row_counts(SCALE) == {
        "users": 4,  # 10 x 0.2 is fewer than an admin, an analyst, a manager and a rep
        "companies": 200,
        "contacts": 1_000,
        "deals": 400,
        "activities": 4_000,
    }
    assert {t: counts[t] for t in ("users", "companies", "contacts", "deals", "teams", "team_members")} == {
        "users": 4,
        "companies": 200,
        "contacts": 1_000,
        "deals": 400,
        "teams": 1,  # one per manager
        "team_members": 1,  # the rep
    }
    moves = scalar(engine, "SELECT count(*) FROM audit_log WHERE operation = 'move'")
    assert counts["activities"] == 4_000 + moves
    assert counts["audit_log"] > 400 + moves  # a create per deal, its moves, and edits
    loaded = {t: len(r) for t, r in rows(engine, demo.LOADED).items()}
    assert loaded == {**counts, "exchange_rates": counts["exchange_rates"] + 1}  # + the reporting currency's
    assert scalar(engine, f"SELECT count(*) FROM users WHERE id = '{SYSTEM_USER_ID}'") == 1
    assert capsys.readouterr().out == ""


def test_tiny_scales_load_at_least_one_row_per_table():
    assert demo.row_counts(0.00001) == {**dict.fromkeys(demo.TABLES, 1), "users": 4}
    assert demo.row_counts(100)["activities"] == 2_000_000


def test_same_seed_and_day_give_identical_rows_in_any_database(fresh):
    first, second = fresh("demo_same_a"), fresh("demo_same_b")
    demo.load(first, scale=SCALE, seed=7, today=TODAY)
    demo.load(second, scale=SCALE, seed=7, today=TODAY)
    assert rows(first) == rows(second)


def test_another_seed_or_day_gives_other_rows(loaded):
    with loaded.connect() as conn:
        stages = demo.read_stages(conn)
    base, other_seed, other_day = (
        demo.generate(stages, scale=SCALE, seed=seed, today=today)
        for seed, today in ((42, TODAY), (43, TODAY), (42, TODAY + dt.timedelta(days=1)))
    )
    with loaded.connect() as conn:
        loaded_ids = {str(i) for i in conn.exec_driver_sql("SELECT id FROM companies").scalars()}
    assert set(base["companies"]["id"]) == loaded_ids
    assert not set(base["companies"]["id"]) & set(other_seed["companies"]["id"])
    assert base["contacts"]["email"].to_list() != other_seed["contacts"]["email"].to_list()
    assert base["activities"]["id"].equals(other_day["activities"]["id"])
    shift = other_day["activities"]["created_at"] - base["activities"]["created_at"]
    assert shift.unique().to_list() == [dt.timedelta(days=1)]
    shift = other_day["audit_log"]["at"] - base["audit_log"]["at"]
    assert shift.unique().to_list() == [dt.timedelta(days=1)]


def test_deals_meet_their_stage(loaded):
    with loaded.connect() as conn:
        deals = (
            conn.exec_driver_sql(
                "SELECT d.*, s.name AS stage, s.required_fields, s.probability AS stage_probability,"
                " s.is_closed_won OR s.is_closed_lost AS closed"
                " FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id"
            )
            .mappings()
            .all()
        )
    assert {d["stage"] for d in deals} == {"Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"}
    for deal in deals:
        assert all(deal[field] not in (None, "") for field in deal["required_fields"]), deal
        assert deal["probability"] == deal["stage_probability"]
        if deal["closed"]:
            assert deal["actual_close_date"] < TODAY
        else:
            assert deal["actual_close_date"] is None
    won = sum(d["stage"] == "Won" for d in deals)
    assert 0.15 < won / sum(d["closed"] for d in deals) < 0.35
    open_expected = [d["expected_close_date"] for d in deals if not d["closed"] and d["expected_close_date"]]
    assert sum(day > TODAY for day in open_expected) > 0.8 * len(open_expected)
    values = sorted(d["value"] for d in deals if d["value"] is not None)
    assert values[0] < 2_000 and values[-1] > 50_000


def test_records_link_up_consistently(loaded):
    violations = {
        "deal's contact at another company": "SELECT count(*) FROM deals d JOIN contacts c ON c.id = d.contact_id"
        " WHERE c.company_id <> d.company_id",
        "activity's company is not its contact's": "SELECT count(*) FROM activities a JOIN contacts c ON c.id = a.contact_id"
        " WHERE a.company_id IS DISTINCT FROM c.company_id",
        "activity's company or contact is not its deal's": "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id"
        " WHERE a.company_id <> d.company_id OR a.contact_id IS DISTINCT FROM d.contact_id",
        "last_activity_at is not the latest completed activity": "SELECT count(*) FROM deals d LEFT JOIN (SELECT deal_id, max(completed_at) AS latest FROM activities"
        " WHERE status = 'completed' GROUP BY deal_id) a ON a.deal_id = d.id"
        " WHERE d.last_activity_at IS DISTINCT FROM a.latest",
        "completed activity in the future": f"SELECT count(*) FROM activities WHERE status = 'completed' AND completed_at >= '{TODAY}'",
        "open task not due in the future": f"SELECT count(*) FROM activities WHERE type = 'task' AND status IN ('pending', 'in_progress')"
        f" AND due_at < '{TODAY}'",
        "open activity on a closed deal": "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id"
        " WHERE a.status IN ('pending', 'in_progress') AND d.actual_close_date IS NOT NULL",
        "child created before its parent": "SELECT (SELECT count(*) FROM contacts k JOIN companies c ON c.id = k.company_id"
        "        WHERE k.created_at <= c.created_at)"
        " + (SELECT count(*) FROM deals d JOIN contacts k ON k.id = d.contact_id WHERE d.created_at <= k.created_at)"
        " + (SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id WHERE a.created_at < d.created_at)",
        "updated before created": "SELECT (SELECT count(*) FROM companies WHERE updated_at < created_at)"
        " + (SELECT count(*) FROM contacts WHERE updated_at < created_at)"
        " + (SELECT count(*) FROM deals WHERE updated_at < created_at)"
        " + (SELECT count(*) FROM activities WHERE updated_at < created_at)",
        "size not matching employees": "SELECT count(*) FROM companies WHERE NOT CASE size WHEN 'startup' THEN employees <= 10"
        " WHEN 'small' THEN employees BETWEEN 11 AND 50 WHEN 'medium' THEN employees BETWEEN 51 AND 500"
        " WHEN 'large' THEN employees BETWEEN 501 AND 5000 ELSE employees > 5000 END",
        "owner is not a demo user": f"SELECT count(*) FROM deals WHERE owner_id = '{SYSTEM_USER_ID}' OR owner_id IS NULL",
        "bookkeeping not from the system user or the user who moved the deal": f"SELECT count(*) FROM activities WHERE version <> 1 OR created_by IS DISTINCT FROM"
        f" CASE type WHEN 'stage_change' THEN owner_id ELSE '{SYSTEM_USER_ID}' END",
        "company without a primary contact": "SELECT count(*) FROM companies c WHERE EXISTS (SELECT FROM contacts k WHERE k.company_id = c.id)"
        " AND (SELECT count(*) FILTER (WHERE is_primary) FROM contacts k WHERE k.company_id = c.id) <> 1",
    }
    assert {name: scalar(loaded, query) for name, query in violations.items()} == dict.fromkeys(violations, 0)
    with loaded.connect() as conn:
        mix = dict(conn.exec_driver_sql("SELECT type, count(*) FROM activities GROUP BY type").all())
    assert mix["email"] > mix["call"] > mix["meeting"] and mix["linkedin_message"] > 0
    stages = scalar(loaded, "SELECT count(DISTINCT lifecycle_stage) FROM contacts")
    assert stages == 5


# -- the staff and their teams ---------------------------------------------------------------

# (user, team) for a team's manager and for each member
IN_TEAM = "(SELECT manager_id AS user_id, id AS team_id FROM teams UNION ALL SELECT user_id, team_id FROM team_members)"
OWNED = ("companies", "contacts", "deals", "activities")
HANDED_FROM, HANDED_TO = "(before->>'owner_id')::uuid", "(after->>'owner_id')::uuid"  # an audit row's owners


def test_the_staff_are_an_admin_an_analyst_and_teams_of_a_manager_and_reps(staffed):
    with staffed.connect() as conn:
        role = dict(conn.exec_driver_sql(f"SELECT id, role::text FROM users WHERE id <> '{SYSTEM_USER_ID}'").all())
        teams = conn.exec_driver_sql("SELECT id, manager_id FROM teams").all()
        members = conn.exec_driver_sql("SELECT team_id, user_id FROM team_members").all()
        owners = {t: set(conn.exec_driver_sql(f"SELECT DISTINCT owner_id FROM {t}").scalars()) for t in OWNED}
    by_role = {r: {u for u, v in role.items() if v == r} for r in ("admin", "analyst", "manager", "rep")}
    assert len(by_role["admin"]) == len(by_role["analyst"]) == 1
    assert sorted(manager for _, manager in teams) == sorted(by_role["manager"])  # one team each
    assert sorted(user for _, user in members) == sorted(by_role["rep"])  # every rep in one team
    team_of = {manager: team for team, manager in teams} | {user: team for team, user in members}
    sellers = {team: {u for u, t in team_of.items() if t == team} for team, _ in teams}
    assert len(sellers) >= 2 and all(len(s) >= 3 for s in sellers.values())  # scale 1: the team view has rows
    for table, owned_by in owners.items():
        assert owned_by == by_role["manager"] | by_role["rep"], table  # every seller sells; admin and analyst don't


def test_records_stay_with_their_team(staffed):
    """A company's contacts, deals and activities belong to its owner's team, and deals change
    hands only within a team: what a manager reads under row-level security hangs together."""
    same_team = "EXISTS (SELECT FROM {t} t1 JOIN {t} t2 USING (team_id) WHERE t1.user_id = {x} AND t2.user_id = {y})"

    def outside(x: str, y: str) -> str:
        return f"NOT {same_team.format(t=IN_TEAM, x=x, y=y)}"

    violations = {
        "contact outside its company's team": "SELECT count(*) FROM contacts k JOIN companies c ON c.id = k.company_id"
        f" WHERE {outside('k.owner_id', 'c.owner_id')}",
        "deal outside its company's team": "SELECT count(*) FROM deals d JOIN companies c ON c.id = d.company_id"
        f" WHERE {outside('d.owner_id', 'c.owner_id')}",
        "activity outside its deal's team": "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id"
        f" WHERE {outside('a.owner_id', 'd.owner_id')}",
        "deal handed outside its team": "SELECT count(*) FROM audit_log WHERE before->>'owner_id' <> after->>'owner_id'"
        f" AND {outside(HANDED_FROM, HANDED_TO)}",
    }
    assert {name: scalar(staffed, query) for name, query in violations.items()} == dict.fromkeys(violations, 0)
    handed = scalar(staffed, "SELECT count(*) FROM audit_log WHERE before->>'owner_id' <> after->>'owner_id'")
    others = scalar(
        staffed,
        "SELECT count(*) FROM contacts WHERE owner_id <> (SELECT owner_id FROM companies c WHERE c.id = company_id)",
    )
    assert handed > 0 and others > 0  # hands do change, within the team


def test_the_same_seed_gives_the_same_teams(staffed):
    with staffed.connect() as conn:
        stages = demo.read_stages(conn)
        stored = {
            table: {tuple(map(str, row)) for row in conn.exec_driver_sql(f"SELECT {columns} FROM {table}")}
            for table, columns in (("teams", "id, name, manager_id"), ("team_members", "team_id, user_id"))
        }
    frames = demo.generate(stages, scale=1, today=TODAY)
    assert set(frames["teams"].select("id", "name", "manager_id").rows()) == stored["teams"]
    assert set(frames["team_members"].select("team_id", "user_id").rows()) == stored["team_members"]
    other = demo.generate(stages, scale=1, seed=43, today=TODAY)
    assert other["teams"]["name"].to_list() == ["North", "South"]  # as many teams, of other people
    assert not set(other["team_members"]["user_id"]) & {user for _, user in stored["team_members"]}


def test_the_demo_shows_each_role_its_team_view(staffed, app_engine):
    """My day on the demo, acting through the app's login (row-level security applies): a manager
    sees their team, the admin and the analyst every seller, a rep no team view."""
    from crm_kernel.analytics import my_day

    with staffed.connect() as conn:
        users = conn.exec_driver_sql(f"SELECT email, id::text, role::text FROM users WHERE id <> '{SYSTEM_USER_ID}'")
        role = {email: (user_id, r) for email, user_id, r in users}
        team_of = dict(conn.exec_driver_sql(f"SELECT user_id::text, team_id FROM {IN_TEAM} x").all())
    app = connect_engine(app_engine.url.set(database=staffed.url.database).render_as_string(hide_password=False))
    try:
        sellers = {user_id for user_id, r in role.values() if r in ("manager", "rep")}
        seen = {}
        for email, (user_id, r) in role.items():
            crm = CRM(app, user=email)
            readable = set(crm.query({"entity": "deals", "group_by": ["owner_id"]})["owner_id"].cast(str))
            listed = {o["id"] for o in my_day.owners(crm)}
            assert set(my_day.team(crm, on=TODAY)["owner_id"]) == listed == readable, email
            assert my_day.sees_team(crm) is (r != "rep") and my_day.read_only(crm) is (r == "analyst")
            seen[r] = seen.get(r, []) + [(user_id, listed)]
        assert [listed for _, listed in seen["admin"] + seen["analyst"]] == [sellers, sellers]
        for manager, listed in seen["manager"]:
            assert listed == {u for u in sellers if team_of[u] == team_of[manager]} != sellers
        assert all(listed == {rep} for rep, listed in seen["rep"])
    finally:
        app.dispose()


# -- history ---------------------------------------------------------------------------------

# Each query counts the rows that break one rule of an exact history; all must be 0.
HISTORY_RULES = {
    "deal without a create row first": "SELECT count(*) FROM deals d WHERE (SELECT a.operation FROM audit_log a WHERE a.entity_id = d.id"
    " ORDER BY a.at, a.id LIMIT 1) IS DISTINCT FROM 'create'",
    "more than one create row": "SELECT count(*) FROM (SELECT entity_id FROM audit_log WHERE operation = 'create'"
    " GROUP BY entity_id HAVING count(*) > 1) x",
    "created_at is not the create row's time": "SELECT count(*) FROM deals d JOIN audit_log a ON a.entity_id = d.id AND a.operation = 'create'"
    " WHERE a.at <> d.created_at",
    "last after-image is not the stored row": "SELECT count(*) FROM deals d JOIN LATERAL (SELECT a.after FROM audit_log a WHERE a.entity_id = d.id"
    " ORDER BY a.at DESC, a.id DESC LIMIT 1) last ON true"
    " WHERE last.after <> to_jsonb(d) - ARRAY['search_vector', 'last_xact']",
    "last after-image is not the stored row, as text": "SELECT count(*) FROM deals d JOIN LATERAL (SELECT a.after FROM audit_log a WHERE a.entity_id = d.id"
    " ORDER BY a.at DESC, a.id DESC LIMIT 1) last ON true"
    " WHERE last.after::text <> (to_jsonb(d) - ARRAY['search_vector', 'last_xact'])::text",
    "before is not the previous after": "SELECT count(*) FROM (SELECT before, lag(after) OVER (PARTITION BY entity_id ORDER BY at, id) AS previous"
    " FROM audit_log) x WHERE before IS DISTINCT FROM previous",
    "two rows of a deal at one time": "SELECT count(*) FROM (SELECT entity_id, at FROM audit_log GROUP BY 1, 2 HAVING count(*) > 1) x",
    "row time is not the image's updated_at": "SELECT count(*) FROM audit_log WHERE (after->>'updated_at')::timestamptz <> at",
    "version does not count the rows": "SELECT count(*) FROM (SELECT (after->>'version')::int AS version,"
    " row_number() OVER (PARTITION BY entity_id ORDER BY at, id) AS n FROM audit_log) x WHERE version <> n",
    "audit row by someone other than the image's updated_by": "SELECT count(*) FROM audit_log WHERE user_id::text <> after->>'updated_by'",
    "a move that does not change the stage": "SELECT count(*) FROM audit_log WHERE operation = 'move' AND before->>'stage_id' = after->>'stage_id'",
    "an update that changes the stage, or nothing": "SELECT count(*) FROM audit_log WHERE operation = 'update' AND (before->>'stage_id' <> after->>'stage_id'"
    " OR before - ARRAY['updated_at', 'version', 'last_activity_at'] = after - ARRAY['updated_at', 'version',"
    " 'last_activity_at'])",
    "stage_entered_at is not the last move's time (or the creation)": "SELECT count(*) FROM deals d WHERE d.stage_entered_at <> coalesce((SELECT max(a.at) FROM audit_log a"
    " WHERE a.entity_id = d.id AND a.operation = 'move'), d.created_at)",
    "move without its stage_change activity": "SELECT count(*) FROM audit_log a WHERE a.operation = 'move' AND NOT EXISTS (SELECT FROM activities s"
    " WHERE s.type = 'stage_change' AND s.deal_id = a.entity_id AND s.completed_at = a.at"
    " AND s.created_at = a.at AND s.owner_id = a.user_id AND s.status = 'completed'"
    " AND s.external_data = jsonb_build_object('from_stage_id', a.before->>'stage_id',"
    "                                          'to_stage_id', a.after->>'stage_id'))",
    "stage_change activity without its move": "SELECT count(*) FROM activities s WHERE s.type = 'stage_change' AND NOT EXISTS (SELECT FROM audit_log a"
    " WHERE a.operation = 'move' AND a.entity_id = s.deal_id AND a.at = s.completed_at)",
    "stage_change subject not naming its stages": "SELECT count(*) FROM activities s JOIN pipeline_stages f ON f.id = (s.external_data->>'from_stage_id')::uuid"
    " JOIN pipeline_stages t ON t.id = (s.external_data->>'to_stage_id')::uuid"
    " WHERE s.subject <> 'Stage: ' || f.name || ' \u2192 ' || t.name",
    "stage_change activity not on the deal's company and contact": "SELECT count(*) FROM activities s JOIN deals d ON d.id = s.deal_id WHERE s.type = 'stage_change'"
    " AND (s.company_id <> d.company_id OR s.contact_id IS DISTINCT FROM d.contact_id)",
    "closed deal whose close date is not its closing move's day": "SELECT count(*) FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id"
    " WHERE (s.is_closed_won OR s.is_closed_lost) AND d.actual_close_date IS DISTINCT FROM"
    " (SELECT (max(a.at) AT TIME ZONE 'UTC')::date FROM audit_log a WHERE a.entity_id = d.id AND a.operation = 'move')",
    "image breaking its stage's rules": "SELECT count(*) FROM audit_log a JOIN pipeline_stages s ON s.id = (a.after->>'stage_id')::uuid"
    " WHERE (a.after->>'probability')::numeric <> s.probability"
    " OR ((s.is_closed_won OR s.is_closed_lost) <> (a.after->>'actual_close_date' IS NOT NULL))"
    " OR EXISTS (SELECT FROM jsonb_array_elements_text(s.required_fields) f(name)"
    "            WHERE a.after->>f.name IS NULL)",
    "a closing move's close date is not its day": "SELECT count(*) FROM audit_log a WHERE a.operation = 'move' AND a.after->>'actual_close_date' IS NOT NULL"
    " AND a.before->>'actual_close_date' IS NULL"
    " AND (a.after->>'actual_close_date')::date <> (a.at AT TIME ZONE 'UTC')::date",
    "history in the future": f"SELECT count(*) FROM audit_log WHERE at >= '{TODAY}'",
    "an image's last activity is not its newest completed activity then": "SELECT count(*) FROM audit_log a WHERE (a.after->>'last_activity_at')::timestamptz IS DISTINCT FROM"
    " (SELECT max(completed_at) FROM activities x WHERE x.deal_id = a.entity_id AND x.status = 'completed'"
    "  AND x.completed_at <= a.at)",
}


def test_every_deal_has_an_exact_history(loaded):
    broken = {name: scalar(loaded, query) for name, query in HISTORY_RULES.items()}
    assert broken == dict.fromkeys(HISTORY_RULES, 0)


def test_history_moves_edits_pushes_reopens_and_reassigns(loaded):
    kinds = {
        "moves": "SELECT count(*) FROM audit_log WHERE operation = 'move'",
        "value edits": "SELECT count(*) FROM audit_log WHERE operation = 'update'"
        " AND before->'value' <> after->'value'",
        "close dates pushed out": "SELECT count(*) FROM audit_log WHERE operation = 'update'"
        " AND (after->>'expected_close_date')::date > (before->>'expected_close_date')::date",
        "won deals reopened": "SELECT count(*) FROM audit_log a JOIN pipeline_stages s"
        " ON s.id = (a.before->>'stage_id')::uuid AND s.is_closed_won"
        " JOIN pipeline_stages t ON t.id = (a.after->>'stage_id')::uuid"
        " AND NOT (t.is_closed_won OR t.is_closed_lost)",
        "lost deals reopened": "SELECT count(*) FROM audit_log a JOIN pipeline_stages s"
        " ON s.id = (a.before->>'stage_id')::uuid AND s.is_closed_lost"
        " JOIN pipeline_stages t ON t.id = (a.after->>'stage_id')::uuid"
        " AND NOT (t.is_closed_won OR t.is_closed_lost)",
        "reopened deals that closed again": "SELECT count(DISTINCT d.id) FROM deals d"
        " WHERE d.actual_close_date IS NOT NULL AND (SELECT count(*) FROM audit_log a"
        " WHERE a.entity_id = d.id AND a.after->>'actual_close_date' IS NOT NULL"
        " AND a.before->>'actual_close_date' IS NULL) > 1",
        "deals moved more than once": "SELECT count(*) FROM (SELECT entity_id FROM audit_log WHERE operation = 'move'"
        " GROUP BY 1 HAVING count(*) > 1) x",
    }
    found = {name: scalar(loaded, query) for name, query in kinds.items()}
    assert all(n > 0 for n in found.values()), found
    # With more than one seller (SCALE has one), some deals change hands.
    with loaded.connect() as conn:
        stages = demo.read_stages(conn)
    audit = demo.generate(stages, scale=0.5, today=TODAY)["audit_log"]
    owner = {side: pl.col(side).str.json_path_match("$.owner_id") for side in ("before", "after")}
    handed_over = audit.filter(pl.col("operation") == "update", owner["before"] != owner["after"])
    assert handed_over.height > 0
    reopened = scalar(
        loaded,
        "SELECT count(*) FROM audit_log WHERE operation = 'move'"
        " AND before->>'close_reason' IS NOT NULL AND after->>'close_reason' IS NULL",
    )
    assert reopened > 0
    # Reopening clears the close date and reason.
    assert (
        scalar(
            loaded,
            "SELECT count(*) FROM audit_log a JOIN pipeline_stages t"
            " ON t.id = (a.after->>'stage_id')::uuid AND NOT (t.is_closed_won OR t.is_closed_lost)"
            " WHERE a.after->>'actual_close_date' IS NOT NULL OR a.after->>'close_reason' IS NOT NULL",
        )
        == 0
    )


def test_the_pipeline_as_of_a_past_day_follows_from_the_audit_log(loaded):
    """The open pipeline 90 days ago, rebuilt from the latest image at or before then, holds
    only deals that existed then, in stages and at values they had, different from today's."""
    then = TODAY - dt.timedelta(days=90)
    with loaded.connect() as conn:
        past = conn.exec_driver_sql(
            "SELECT DISTINCT ON (entity_id) entity_id, after FROM audit_log WHERE at <= %(then)s"
            " ORDER BY entity_id, at DESC, id DESC",
            {"then": then},
        ).all()
        created = dict(conn.exec_driver_sql("SELECT id, created_at FROM deals").all())
        today = {str(r.id): r for r in conn.exec_driver_sql("SELECT id, stage_id, value FROM deals")}
    assert past and all(created[deal_id].date() <= then for deal_id, _ in past)
    open_then = [after for _, after in past if after["actual_close_date"] is None]
    assert open_then
    changed = [
        a
        for a in open_then
        if (a["stage_id"], a["value"])
        != (str(today[a["id"]].stage_id), None if today[a["id"]].value is None else float(today[a["id"]].value))
    ]
    assert len(changed) > len(open_then) / 2


def test_same_seed_and_day_give_identical_history(loaded):
    with loaded.connect() as conn:
        stages = demo.read_stages(conn)
    first, second = (demo.generate(stages, scale=SCALE, seed=5, today=TODAY) for _ in range(2))
    for table in ("audit_log", "activities", "deals", "exchange_rates"):
        assert first[table].equals(second[table]), table
    other = demo.generate(stages, scale=SCALE, seed=6, today=TODAY)
    assert not first["audit_log"]["after"].equals(other["audit_log"]["after"])


def test_images_use_the_loading_sessions_time_zone(loaded):
    with loaded.connect() as conn:
        stages = demo.read_stages(conn)
    utc, tokyo = (
        demo.generate(stages, scale=0.01, today=TODAY, timezone=zone)["audit_log"] for zone in ("UTC", "Asia/Tokyo")
    )
    assert "+00:00" in utc["after"][0] and "+09:00" in tokyo["after"][0]
    with loaded.connect() as conn:
        same = conn.execute(
            sa.text(
                "SELECT CAST(:a AS jsonb)->>'created_at' = CAST(:b AS jsonb)->>'created_at',"
                " (CAST(:a AS jsonb)->>'created_at')::timestamptz"
                " = (CAST(:b AS jsonb)->>'created_at')::timestamptz"
            ),
            {"a": utc["after"][0], "b": tokyo["after"][0]},
        ).one()
    assert same == (False, True)


def test_images_equal_the_stored_rows_in_a_session_of_another_time_zone(make_database):
    """Loaded from a New York session, the images carry New York offsets, as the services'
    images written in that session do, and equal the rows seen from such a session."""
    engine = connect_engine(make_database("demo_new_york"), timezone="America/New_York")
    try:
        demo.load(engine, scale=0.02, today=TODAY)
        offsets = scalar(engine, "SELECT string_agg(DISTINCT right(after->>'created_at', 6), ',') FROM audit_log")
        differing = scalar(engine, HISTORY_RULES["last after-image is not the stored row, as text"])
    finally:
        engine.dispose()
    assert set(offsets.split(",")) <= {"-05:00", "-04:00"} and differing == 0


# -- exchange rates ----------------------------------------------------------------------------


def test_rates_cover_every_deal_in_every_demo_currency(loaded):
    with loaded.connect() as conn:
        rates = conn.exec_driver_sql(
            "SELECT currency, min(rate_date), max(rate_date), count(*), min(rate), max(rate)"
            " FROM exchange_rates GROUP BY currency ORDER BY currency"
        ).all()
        span = conn.exec_driver_sql("SELECT min(created_at)::date, max(actual_close_date) FROM deals").one()
        currencies = set(conn.exec_driver_sql("SELECT DISTINCT currency FROM deals").scalars())
    by_currency = {r[0]: r[1:] for r in rates}
    assert set(by_currency) == {"USD", "EUR", "GBP", "CAD", "AUD"} >= currencies
    assert by_currency["USD"] == (dt.date(1900, 1, 1), dt.date(1900, 1, 1), 1, 1, 1)
    for code in ("EUR", "GBP", "CAD", "AUD"):
        first, last, count, low, high = by_currency[code]
        assert first < span[0] and span[1] < last <= TODAY, code
        assert count > 0.6 * (last - first).days  # business-daily
        assert 0.4 < low < high < 1.6 and high / low < 1.5, code  # near real levels, no drift
    crm = CRM(loaded)
    missing = crm.query(
        {
            "entity": "deals",
            "select": ["id"],
            "where": {
                "combinator": "and",
                "rules": [{"field": "value", "operator": "notNull"}, {"field": "value_reporting", "operator": "null"}],
            },
        }
    )
    assert missing.height == 0
    assert scalar(loaded, "SELECT count(*) FROM deals WHERE value IS NOT NULL") > 0


def test_replace_replaces_rates_and_keeps_the_reporting_currency(fresh):
    engine = fresh("demo_rates_replace")
    demo.load(engine, scale=0.02, seed=1, today=TODAY)
    crm = CRM(engine)
    crm.money.set_reporting_currency("EUR")
    crm.money.set_rate("NOK", TODAY, "0.085")
    demo.load(engine, scale=0.02, seed=2, today=TODAY + dt.timedelta(days=3), replace=True)
    assert crm.money.reporting_currency() == "EUR"
    with engine.connect() as conn:
        rates = conn.exec_driver_sql(
            "SELECT currency, count(*), max(rate_date) FROM exchange_rates GROUP BY 1 ORDER BY 1"
        ).all()
        eur = conn.exec_driver_sql("SELECT rate_date, rate FROM exchange_rates WHERE currency = 'EUR'").all()
    assert [r[0] for r in rates] == ["AUD", "CAD", "EUR", "GBP", "USD"]  # NOK went with the old data
    assert eur == [(dt.date(1900, 1, 1), 1)]
    assert {r[2] for r in rates if r[0] != "EUR"} == {TODAY + dt.timedelta(days=1)}  # the Friday before that Sunday
    usd_per_eur = crm.money.rate("USD", TODAY)
    assert 0.8 < usd_per_eur < 1.1


def test_loading_keeps_rates_already_there(fresh):
    engine = fresh("demo_rates_kept")
    CRM(engine).money.set_rate("GBP", dt.date(2025, 1, 2), "1.25")
    demo.load(engine, scale=0.02, today=TODAY)
    with engine.connect() as conn:
        gbp = conn.exec_driver_sql("SELECT rate_date, rate FROM exchange_rates WHERE currency = 'GBP'").all()
        eur = scalar(engine, "SELECT count(*) FROM exchange_rates WHERE currency = 'EUR'")
    assert gbp == [(dt.date(2025, 1, 2), 1.25)] and eur > 100


def test_a_reporting_currency_without_demo_rates_is_refused(fresh):
    engine = fresh("demo_rates_refused")
    crm = CRM(engine)
    crm.money.set_rate("JPY", TODAY, "0.0064")
    crm.money.set_reporting_currency("JPY")
    before = everything(engine)
    with pytest.raises(CrmError, match="reporting currency is JPY.*USD, AUD|reporting currency is JPY"):
        demo.load(engine, scale=0.02, today=TODAY)
    assert everything(engine) == before


def test_refuses_a_database_that_holds_companies(loaded):
    before = everything(loaded)
    with pytest.raises(CrmError, match="--replace"):
        demo.load(loaded, scale=SCALE, seed=2, today=TODAY)
    assert everything(loaded) == before


def test_replace_leaves_only_the_new_demo_data(fresh):
    engine, reference = fresh("demo_replace"), fresh("demo_reference")
    demo.load(engine, scale=SCALE, seed=1, today=TODAY)
    crm = CRM(engine)
    crm.users.create(email="someone@example.com", full_name="Some One")
    crm.companies.create(name="Kept nowhere")  # writes an audit row too
    counts = demo.load(engine, scale=SCALE, seed=3, today=TODAY, replace=True)
    assert counts == demo.load(reference, scale=SCALE, seed=3, today=TODAY)
    assert rows(engine) == rows(reference)


def test_replace_keeps_the_authors_of_the_pipeline(fresh):
    engine = fresh("demo_replace_authors")
    CRM(engine).users.create(
        email="designer@example.com", full_name="Pipeline Designer", role="admin"
    )  # only admins edit stages
    CRM(engine, user="designer@example.com").stages.create(name="Discovery", position=7)
    demo.load(engine, scale=SCALE, today=TODAY)
    demo.load(engine, scale=SCALE, seed=2, today=TODAY, replace=True)
    assert scalar(engine, "SELECT count(*) FROM users WHERE email = 'designer@example.com'") == 1
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE s.name = 'Discovery'",
        )
        > 0
    )


def test_indexes_and_foreign_keys_come_back(fresh):
    engine = fresh("demo_schema")
    before = schema(engine)
    demo.load(engine, scale=SCALE, today=TODAY)
    assert schema(engine) == before
    names = {name for _, name, _ in before[0]}
    assert {
        "companies_name_trgm_idx",
        "contacts_name_trgm_idx",
        "contacts_email_trgm_idx",
        "deals_title_trgm_idx",
        "activities_search_idx",
    } <= names
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.execute(sa.text("EXPLAIN SELECT id FROM companies WHERE name ILIKE '%labs%'")).all()
    assert "companies_name_trgm_idx" in str(plan)


def test_a_failure_midway_changes_nothing(fresh, monkeypatch):
    engine = fresh("demo_failure")
    demo.load(engine, scale=SCALE, seed=1, today=TODAY)
    before, before_schema = everything(engine), schema(engine)
    copy = loading.copy_frame
    calls = []

    def copy_then_fail(cursor, table, frame, advance):
        copy(cursor, table, frame, advance)
        calls.append(table)
        if len(calls) == 2:
            raise RuntimeError("boom")

    monkeypatch.setattr(loading, "copy_frame", copy_then_fail)
    with pytest.raises(RuntimeError, match="boom"):
        demo.load(engine, scale=SCALE, seed=2, today=TODAY, replace=True)
    assert calls == ["users", "companies"]
    assert everything(engine) == before
    assert schema(engine) == before_schema


def test_a_database_error_midway_is_reported_and_changes_nothing(fresh, monkeypatch):
    engine = fresh("demo_db_error")
    before, before_schema = everything(engine), schema(engine)
    generate = loading.generate

    def bad_currency(*args, **kwargs):
        frames = generate(*args, **kwargs)
        frames["deals"] = frames["deals"].with_columns(currency=pl.lit("usd"))
        return frames

    monkeypatch.setattr(loading, "generate", bad_currency)
    with pytest.raises(DatabaseError, match="deals_currency_check"):
        demo.load(engine, scale=SCALE, today=TODAY)
    assert everything(engine) == before
    assert schema(engine) == before_schema


def test_cli_loads_and_prints_the_counts(make_database):
    url = make_database("demo_cli")
    args = ["demo-data", "--scale", "0.02", "--seed", "1", "--today", "2026-01-15", "--replace"]
    result = CliRunner().invoke(main, args, env={"CRM_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert re.search(
        r"4 users, 20 companies, 100 contacts, 40 deals, [\d,]+ activities, [\d,]+ audit_log", result.output
    ), result.output
    assert "1 teams, 1 team_members" in result.output


def test_cli_without_replace_says_how_to_replace(make_database):
    url = make_database("demo_cli_twice")
    args = ["demo-data", "--scale", "0.02", "--today", "2026-01-15"]
    assert CliRunner().invoke(main, args, env={"CRM_DATABASE_URL": url}).exit_code == 0
    result = CliRunner().invoke(main, args, env={"CRM_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "--replace" in result.output
