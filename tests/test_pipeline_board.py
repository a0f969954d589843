"""The pipeline board: totals over every matching deal, moves, conflicts, live changes from other
connections, the close-reason form, "show more", the side panel, a listener that stops, and a
board that says when it is not live and catches up after a database restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres
from crm_kernel.widgets.pipeline_board import PipelineBoard
from tests.helpers import scratch_dir

STAGES = ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def wait_for(condition, timeout: float = 30.0, what: str = "the board to catch up"):
    """Poll ``condition`` until it holds (no fixed sleeps: as soon as it is true, go on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def column(board: PipelineBoard, name: str) -> dict:
    return next(c for c in board.columns if c["name"] == name)


def card_in(board: PipelineBoard, deal_id) -> tuple[str, dict] | None:
    """(column name, card) of a deal as the widget's synced state shows it."""
    for c in board.columns:
        for card in c["cards"]:
            if card["id"] == str(deal_id):
                return c["name"], card
    return None


def headers(board: PipelineBoard) -> dict[str, tuple]:
    return {c["name"]: (c["count"], Decimal(c["value"]), Decimal(c["weighted"])) for c in board.columns}


def sql_headers(engine: sa.Engine, condition: str = "true", params: dict | None = None) -> dict[str, tuple]:
    """The column headers, written by hand in SQL over the filtered deals: values in the
    reporting currency at the close date's rate (else the latest), deals without a rate left out."""
    stmt = sa.text(f"""
        SELECT s.name, count(d.id), coalesce(sum(round(d.value * r.rate, 2)), 0),
               coalesce(sum(round(round(d.value * r.rate, 2) * coalesce(d.probability, 0), 2)), 0)
        FROM pipeline_stages s
        LEFT JOIN (deals d JOIN companies c ON c.id = d.company_id
                   JOIN pipeline_stages ds ON ds.id = d.stage_id
                   LEFT JOIN LATERAL (
                       SELECT x.rate FROM exchange_rates x
                       WHERE x.currency = d.currency AND x.rate_date <= coalesce(d.actual_close_date, 'infinity')
                       ORDER BY x.rate_date DESC LIMIT 1) r ON true)
          ON d.stage_id = s.id AND d.deleted_at IS NULL AND ({condition})
        WHERE s.is_active AND s.deleted_at IS NULL
        GROUP BY s.name, s.position ORDER BY s.position
    """)
    with engine.connect() as conn:
        return {name: (n, Decimal(v), Decimal(w)) for name, n, v, w in conn.execute(stmt, params or {})}


@pytest.fixture
def boards():
    """``make(crm, ...)``: boards closed (listeners stopped) after the test."""
    made = []

    def make(crm, filters=None, **kwargs) -> PipelineBoard:
        made.append(PipelineBoard(crm, filters, **kwargs))
        return made[-1]

    yield make
    for board in made:
        board.close()


@pytest.fixture
def acme(crm):
    company = crm.companies.create(name="Acme", industry="Software")
    contact = crm.contacts.create(company_id=company["id"], first_name="Ann", last_name="Lee")
    return {"company_id": company["id"], "contact_id": contact["id"]}


# -- totals over the whole filtered pipeline -------------------------------------------------

# The demo's "today" and the boards' "now", fixed: the wall clock would move "this month" and
# "stale" under a test that runs across midnight or a month's end.
TODAY = dt.date(2026, 1, 15)
NOW = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo(make_database_module):
    """Demo data dated TODAY (so "this month" and "stale" find deals), read-only."""
    engine = connect_engine(make_database_module("board_demo"))
    demo_data.load(engine, scale=0.1, today=TODAY)
    with engine.begin() as conn:
        rep = conn.execute(
            sa.text(
                "SELECT u.email FROM users u JOIN deals d ON d.owner_id = u.id GROUP BY u.email ORDER BY count(*) DESC"
            )
        ).scalar()
    crm = CRM(engine, user=rep)
    crm.saved_queries.save(
        "Software over 10k",
        {
            "entity": "deals",
            "where": {
                "combinator": "and",
                "rules": [
                    {"field": "company.industry", "operator": "=", "value": "Software"},
                    {"field": "value", "operator": ">", "value": 10000},
                ],
            },
        },
    )
    yield crm
    engine.dispose()


STALE_SQL = (
    "NOT ds.is_closed_won AND NOT ds.is_closed_lost"
    " AND coalesce(d.last_activity_at, d.created_at) < CAST(:now AS timestamptz) - interval '30 days'"
)
MONTH_SQL = "d.expected_close_date >= '2026-01-01' AND d.expected_close_date < '2026-02-01'"
FILTERS = {
    "everything": (None, "true"),
    "mine": ({"owner": "mine"}, "d.owner_id = :me"),
    "high value": ({"quick": ["high_value"]}, "d.value >= 50000"),
    "closing this month": ({"quick": ["closing_this_month"]}, MONTH_SQL),
    "stale": ({"quick": ["stale"]}, STALE_SQL),
    "saved view": ({"view": "Software over 10k"}, "c.industry = 'Software' AND d.value > 10000"),
    "mine, stale, searched": (
        {"owner": "mine", "quick": ["stale"], "search": "e"},
        f"d.owner_id = :me AND {STALE_SQL} AND (d.title ILIKE '%e%' OR c.name ILIKE '%e%')",
    ),
}


@pytest.mark.parametrize("name", FILTERS)
def test_column_totals_equal_sql_over_the_filtered_deals(demo, boards, name):
    filters, condition = FILTERS[name]
    board = boards(demo, filters, live=False, clock=lambda: NOW)
    expected = sql_headers(demo.engine, condition, {"me": demo.user_id, "now": NOW})
    assert headers(board) == expected
    assert [c["name"] for c in board.columns] == STAGES
    assert sum(n for n, _, _ in expected.values()) > 0, "the filter should find some deals"
    for c in board.columns:  # cards: the first page of the same filtered set, and the rest counted
        assert len(c["cards"]) == min(c["count"], 20)
        assert c["more"] == c["count"] - len(c["cards"])


def test_filters_change_through_the_synced_trait_and_bad_ones_are_refused(demo, boards):
    board = boards(demo, live=False, clock=lambda: NOW)
    board.filters = {"owner": None, "quick": ["high_value"], "view": None, "search": ""}
    assert headers(board) == sql_headers(demo.engine, "d.value >= 50000")
    board.filters = {**board.filters, "view": "No such view"}
    assert board.notice["kind"] == "error" and "No such view" in board.notice["text"]
    assert board.filters["view"] is None
    assert headers(board) == sql_headers(demo.engine, "d.value >= 50000")
    assert board.options["views"][0]["name"] == "Software over 10k"
    with demo.engine.begin() as conn:  # a view saved before its field went away
        conn.execute(
            sa.text(
                "INSERT INTO saved_queries (name, entity, spec, owner_id) VALUES"
                " ('Broken', 'deals', CAST(:spec AS jsonb), :me)"
            ),
            {
                "spec": '{"entity": "deals", "where": {"rules": [{"field": "gone", "operator": "null"}]}}',
                "me": demo.user_id,
            },
        )
    board.filters = {**board.filters, "view": "Broken"}
    assert "has no field 'gone'" in board.notice["text"] and board.filters["view"] is None
    assert headers(board) == sql_headers(demo.engine, "d.value >= 50000")


# -- moves --------------------------------------------------------------------------------------


def test_a_move_updates_the_widget_and_the_database(crm, acme, boards, engine):
    deals = [crm.deals.create(**acme, title=f"Deal {i}", value=1000 * (i + 1)) for i in range(3)]
    board = boards(crm)
    result = board.move(deals[0]["id"], "Qualified")
    assert result["ok"], result
    name, card = card_in(board, deals[0]["id"])
    assert (name, card["version"], card["days_in_stage"]) == ("Qualified", 2, 0)
    assert headers(board)["Lead"] == (2, Decimal(5000), Decimal(500))
    assert headers(board)["Qualified"] == (1, Decimal(1000), Decimal(250))
    assert headers(board) == sql_headers(engine)
    assert board.notice["kind"] == "success" and "Qualified" in board.notice["text"]
    with engine.connect() as conn:
        stage = conn.execute(
            sa.text("SELECT s.name FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.id = :id"),
            {"id": deals[0]["id"]},
        ).scalar()
    assert stage == "Qualified"


def test_moves_arrive_as_messages_from_the_front_end(crm, acme, boards):
    deal = crm.deals.create(**acme, title="Dragged", value=500)
    board = boards(crm, live=False)
    sent = []
    board.send = sent.append  # the front end's side of the comm
    qualified = column(board, "Qualified")["id"]
    board._on_message(
        board, {"type": "move", "request": 7, "deal_id": str(deal["id"]), "stage_id": qualified, "version": 1}, []
    )
    assert sent[-1]["type"] == "reply" and sent[-1]["request"] == 7 and sent[-1]["ok"]
    assert card_in(board, deal["id"])[0] == "Qualified"
    board._on_message(board, {"type": "nonsense", "request": 8}, [])
    assert sent[-1] == {**sent[-1], "request": 8, "ok": False}
    assert "unknown message" in board.notice["text"]


def test_conflicting_moves_leave_one_winner_and_the_other_board_shows_it(crm, acme, boards, engine):
    alice = crm.users.create(email="alice@example.com", full_name="Alice")
    bob = crm.users.create(email="bob@example.com", full_name="Bob")
    deal = crm.deals.create(**acme, title="Contested", value=2000, owner_id=alice["id"])
    board_a = boards(CRM(engine, user=alice["email"]))
    board_b = boards(CRM(engine, user=bob["email"]))
    assert board_a.wait_ready() and board_b.wait_ready()
    assert card_in(board_a, deal["id"])[1]["version"] == card_in(board_b, deal["id"])[1]["version"] == 1

    assert board_a.move(deal["id"], "Qualified")["ok"]
    # B's user dropped the card while it still showed version 1 (the front end sends that version).
    lost = board_b.move(deal["id"], "Proposal", version=1)
    assert not lost["ok"] and lost["kind"] == "conflict"
    assert "changed by someone else" in lost["message"] and "Qualified" in lost["message"]
    assert board_b.notice["kind"] == "warning"
    after_failed_move = card_in(board_b, deal["id"])
    assert after_failed_move[0] == "Qualified" and after_failed_move[1]["version"] == 2

    wait_for(lambda: board_b.applied >= 1, what="board B to hear A's move")
    assert card_in(board_b, deal["id"])[0] == "Qualified"
    assert headers(board_b) == headers(board_a) == sql_headers(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT version, updated_by FROM deals WHERE id = :id"), {"id": deal["id"]}).one()
    assert (row.version, row.updated_by) == (2, alice["id"])


def test_changes_from_another_connection_reach_the_board(crm, acme, boards, database_url, engine):
    kept = crm.deals.create(**acme, title="Kept", value=100)
    moving = crm.deals.create(**acme, title="Moving", value=300)
    board = boards(crm)
    assert board.wait_ready()
    other_engine = connect_engine(database_url)
    other = CRM(other_engine)
    try:
        other.deals.move(moving["id"], "Proposal", changes={"value": 400})
        wait_for(lambda: (card_in(board, moving["id"]) or ("",))[0] == "Proposal", what="the move")
        wait_for(lambda: headers(board) == sql_headers(engine), what="exact totals after the move")
        assert card_in(board, moving["id"])[1]["value"] == "400.00"

        created = other.deals.create(**acme, title="Brand new", value=50)
        wait_for(lambda: card_in(board, created["id"]) is not None, what="the new deal")
        other.deals.update(kept["id"], value=150)
        wait_for(lambda: card_in(board, kept["id"])[1]["value"] == "150.00", what="the edit")
        other.deals.delete(created["id"])
        wait_for(lambda: card_in(board, created["id"]) is None, what="the deletion")
        wait_for(lambda: headers(board) == sql_headers(engine), what="exact totals")
        other.companies.update(acme["company_id"], name="Acme Corp")
        wait_for(lambda: card_in(board, kept["id"])[1]["company"] == "Acme Corp", what="the company's new name")
    finally:
        other_engine.dispose()


def test_a_notification_that_is_not_a_change_does_not_stop_the_next_one(crm, acme, boards, engine):
    deal = crm.deals.create(**acme, title="Heard after the noise", value=100)
    board = boards(crm)
    assert board.wait_ready()
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_notify('crm_changes', 'not json')"))
        conn.execute(sa.text("SELECT pg_notify('crm_changes', '{\"entity\": \"deals\"}')"))
    crm.deals.move(deal["id"], "Qualified")
    wait_for(lambda: (card_in(board, deal["id"]) or ("",))[0] == "Qualified", what="the move after the noise")
    assert board.connection == "live" and board.listener.alive


def test_in_a_kernel_changes_are_applied_on_its_event_loop(crm, acme):
    """In Jupyter the listener hands changes to the kernel's loop, which also runs the widget."""
    deal = crm.deals.create(**acme, title="Looped", value=100)

    async def scenario():
        loop = asyncio.get_running_loop()
        board = PipelineBoard(crm)
        threads = []
        apply = board.board.apply
        board.board.apply = lambda batch: threads.append(threading.current_thread()) or apply(batch)
        try:
            assert await loop.run_in_executor(None, board.wait_ready)
            await loop.run_in_executor(None, lambda: crm.deals.move(deal["id"], "Qualified"))
            async with asyncio.timeout(5):
                while (card_in(board, deal["id"]) or ("",))[0] != "Qualified":
                    await asyncio.sleep(0.02)
        finally:
            board.close()
        return threads

    threads = asyncio.run(scenario())
    assert threads and set(threads) == {threading.main_thread()}


def test_a_stage_needing_fields_says_what_is_missing_and_asks_for_the_close_reason(crm, acme, boards, engine):
    deal = crm.deals.create(**acme, title="No value yet")
    board = boards(crm, live=False)
    refused = board.move(deal["id"], "Proposal")
    assert not refused["ok"] and refused["kind"] == "invalid"
    assert "Value is required in stage Proposal" in refused["message"]
    assert [f["name"] for f in board.prompt["fields"]] == ["value"]
    assert "Value is required in stage Proposal" in board.prompt["message"]
    assert card_in(board, deal["id"])[0] == "Lead"

    asked = board.move(deal["id"], "Lost")
    assert [f["name"] for f in board.prompt["fields"]] == ["close_reason"] and board.prompt["stage"] == "Lost"
    assert "Close reason is required in stage Lost" in asked["message"]
    sent = []
    board.send = sent.append
    board._on_message(
        board,
        {
            "type": "move",
            "request": 1,
            "deal_id": board.prompt["deal_id"],
            "stage_id": board.prompt["stage_id"],
            "version": board.prompt["version"],
            "changes": {"close_reason": "Budget frozen"},
        },
        [],
    )
    assert sent[-1]["ok"] and board.prompt == {}
    assert card_in(board, deal["id"])[0] == "Lost"
    with engine.connect() as conn:
        reason = conn.execute(sa.text("SELECT close_reason FROM deals WHERE id = :id"), {"id": deal["id"]}).scalar()
    assert reason == "Budget frozen"


def test_columns_load_lazily_with_show_more(crm, acme, boards, engine):
    values = [700, 300, None, 900, 100, 500, 800, 200]
    deals = [crm.deals.create(**acme, title=f"D{i}", value=v) for i, v in enumerate(values)]
    board = boards(crm, page_size=3, live=False)
    lead = column(board, "Lead")
    assert [c["value"] for c in lead["cards"]] == ["900.00", "800.00", "700.00"]
    assert lead["more"] == 5 and lead["count"] == 8
    board.show_more(lead["id"])
    board.show_more(lead["id"])
    lead = column(board, "Lead")
    with engine.connect() as conn:
        order = [
            str(i)
            for i in conn.execute(
                sa.text("SELECT id FROM deals WHERE deleted_at IS NULL ORDER BY value DESC NULLS LAST, id")
            ).scalars()
        ]
    assert [c["id"] for c in lead["cards"]] == order and lead["more"] == 0
    assert lead["cards"][-1]["value"] is None
    # A deal that sorts among the loaded cards shows up in its place; totals stay exact.
    board.move(deals[1]["id"], "Qualified")
    board.move(deals[1]["id"], "Lead")
    assert [c["id"] for c in column(board, "Lead")["cards"]] == order
    assert headers(board) == sql_headers(engine)


def test_moving_a_deal_that_is_not_on_screen_keeps_the_totals_exact(crm, acme, boards, engine):
    small, big = (crm.deals.create(**acme, title=t, value=v) for t, v in (("Small", 10), ("Big", 1000)))
    board = boards(crm, page_size=1, live=False)
    assert [c["title"] for c in column(board, "Lead")["cards"]] == ["Big"]
    assert board.move(small["id"], "Qualified", version=1)["ok"]
    assert board.save_deal({"value": "20"}, deal_id=small["id"], version=2)["ok"]
    assert headers(board) == sql_headers(engine)
    assert card_in(board, small["id"])[0] == "Qualified" and column(board, "Lead")["more"] == 0
    assert card_in(board, big["id"])[0] == "Lead"


def test_the_side_panel_edits_the_deal_and_logs_activities(crm, acme, boards, engine):
    deal = crm.deals.create(**acme, title="Panel deal", value=1000)
    board = boards(crm, live=False)
    board.open_deal(deal["id"])
    assert board.panel["values"]["title"] == "Panel deal" and board.panel["company"] == "Acme"
    assert board.panel["contact"] == "Ann Lee" and board.panel["stage"] == "Lead"

    refused = board.save_deal({"value": "lots", "currency": "EURO"})
    assert not refused["ok"] and set(board.panel["errors"]) == {"value", "currency"}
    saved = board.save_deal({"value": "1500", "title": "Panel deal (renewal)", "description": ""})
    assert saved["ok"], saved
    assert board.panel["values"]["value"] == "1500.00" and board.panel["version"] == 2
    assert card_in(board, deal["id"])[1]["title"] == "Panel deal (renewal)"
    assert headers(board) == sql_headers(engine)

    assert board.log_activity("call", "Called Ann", "Wants a quote")["ok"]
    assert board.log_activity("task", "Send quote", due="2030-01-31")["ok"]
    assert not board.log_activity("note", "  ")["ok"]
    assert not board.log_activity("meeting", "Lunch")["ok"]
    timeline = board.panel["activities"]
    assert [(a["type"], a["subject"], a["status"]) for a in timeline] == [
        ("task", "Send quote", "pending"),
        ("call", "Called Ann", "completed"),
    ]
    assert timeline[0]["due_at"].startswith("2030-01-31")
    with engine.connect() as conn:
        logged = conn.execute(
            sa.text("SELECT count(*) FROM activities WHERE deal_id = :id AND company_id = :c"),
            {"id": deal["id"], "c": acme["company_id"]},
        ).scalar()
    assert logged == 2
    board.close_panel()
    assert board.panel == {}


def test_close_stops_the_listener_and_later_changes_do_not_reach_the_board(crm, acme, boards):
    deal = crm.deals.create(**acme, title="After close", value=10)
    board = boards(crm)
    assert board.wait_ready()
    listener = board.listener
    board.close()  # waits for the thread as long as the listener's own timeouts allow
    assert not listener.alive and board.listener is None and board.connection == "offline"
    before = board.columns
    crm.deals.move(deal["id"], "Qualified")
    assert board.columns == before


# -- the connection's true state, and catching up after an outage ------------------------------


@pytest.fixture
def cluster():
    """A PostgreSQL cluster of this test's own, to restart under an open board (it keeps its port)."""
    pg = EmbeddedPostgres(scratch_dir("crm-board-pg-") / "pg", fast=True)
    engine = connect_engine(pg.start())
    migrate(engine)
    yield pg, engine
    engine.dispose()
    pg.destroy()


def connection_states(board: PipelineBoard) -> queue.Queue:
    """Every value the board's ``connection`` trait takes from now on (handshakes for tests)."""
    states: queue.Queue = queue.Queue()
    board.observe(lambda change: states.put(change["new"]), names="connection")
    return states


def test_a_database_restart_shows_as_reconnecting_and_the_board_catches_up(cluster):
    pg, engine = cluster
    crm = CRM(engine)
    company = crm.companies.create(name="Restart Ltd")
    waiting = crm.deals.create(company_id=company["id"], title="Moved during the outage", value=700)
    board = PipelineBoard(crm)
    try:
        assert board.wait_ready() and board.connection == "live"
        states = connection_states(board)
        # Retry only when told, so the change below is surely made while nobody listens.
        board.listener.retry = board.listener.max_retry = 3600
        pg.stop()
        assert states.get(timeout=60) == "reconnecting"
        pg.start()
        other_engine = connect_engine(pg.url())
        try:  # another connection, right after the start: its notifications reach nobody
            other = CRM(other_engine)
            other.deals.move(waiting["id"], "Proposal")
            created = other.deals.create(company_id=company["id"], title="Created during the outage", value=50)
        finally:
            other_engine.dispose()
        assert card_in(board, waiting["id"])[0] == "Lead" and card_in(board, created["id"]) is None
        assert board.connection == "reconnecting"

        board.listener.reconnect()  # what the retry timer does (and the board's ↻ button)
        assert states.get(timeout=60) == "live"
        assert card_in(board, waiting["id"])[0] == "Proposal"
        assert card_in(board, created["id"])[0] == "Lead"
        assert headers(board) == sql_headers(engine)

        crm.deals.move(created["id"], "Qualified")  # and it is live again
        wait_for(lambda: (card_in(board, created["id"]) or ("",))[0] == "Qualified", what="a change after the restart")
    finally:
        board.close()
    assert board.connection == "offline"


def test_the_board_reconnects_by_itself_after_a_restart(cluster):
    pg, engine = cluster
    crm = CRM(engine)
    company = crm.companies.create(name="Healing Inc")
    board = PipelineBoard(crm)
    try:
        assert board.wait_ready()
        states = connection_states(board)
        pg.stop()
        assert states.get(timeout=60) == "reconnecting"
        pg.start()
        deal = CRM(engine).deals.create(company_id=company["id"], title="Made as it came back", value=10)
        assert states.get(timeout=60) == "live"
        wait_for(lambda: card_in(board, deal["id"]) is not None, what="the deal made during the restart")
        assert headers(board) == sql_headers(engine)
    finally:
        board.close()


def test_totals_are_in_the_reporting_currency_and_name_what_they_leave_out(crm, boards):
    crm.money.set_rate("EUR", "2026-01-01", "1.10")
    acme = crm.companies.create(name="Acme")
    crm.deals.create(company_id=acme["id"], title="euros", value="1000.00", currency="EUR")
    crm.deals.create(company_id=acme["id"], title="dollars", value="500.00", currency="USD")
    crm.deals.create(company_id=acme["id"], title="kroner", value="900.00", currency="NOK")
    crm.deals.create(company_id=acme["id"], title="kroner too", value="100.00", currency="NOK")
    board = boards(crm, live=False, clock=lambda: NOW)
    lead = next(c for c in board.columns if c["name"] == "Lead")
    assert (lead["count"], Decimal(lead["value"]), Decimal(lead["weighted"])) == (
        4,
        Decimal("1600.00"),
        Decimal("160.00"),
    )
    assert lead["missing"] == "2 deals in NOK without a rate are not included"
    assert board.options["currency"] == "USD"
    assert all(c["missing"] == "" for c in board.columns if c["name"] != "Lead")
