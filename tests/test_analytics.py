"""crm.analytics against answers worked out by hand on a small history written straight into
the audit log at known times (moves, edits, a pushed and a pulled-in close date, a loss
reopened, a deletion, a currency without a rate), on PostgreSQL and on DuckDB over a snapshot.

Each write of the history is one audit row with before/after images of the deal row, as the
services write them; the deals table ends as the latest images.

The history (all times 10:00 UTC, 2026 unless said; EUR is 1.10 USD from Jan 1, 1.20 from Mar 1;
NOK has no rate):

    A  Ann  USD 1000  Lead 01-05, Qualified 01-20, value 1500 02-10, Proposal 02-20 with the close
                      date pushed 03-31 -> 04-30, Won 03-15
    B  Bob  EUR 2000  Qualified 01-10 (close 02-28), Lost 02-01, back to Qualified 03-05 (close 05-31)
    C  Ann  USD  500  Lead 02-05 (close 03-20), pulled in to 03-10 on 02-25, deleted 03-01
    D  Bob  NOK  300  Proposal 01-02 (close 02-15), still there
    E  Bob  USD  800  Negotiation 02-15 (close 03-25), value 700 03-01, Won 03-20
    F  Ann  USD  400  Lead 2025-11-01, Lost 2025-12-01
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine
from crm_kernel.errors import QuerySpecError

UTC = dt.UTC
SYSTEM = "00000000-0000-0000-0000-000000000001"
STAGES = {
    name: f"00000000-0000-0000-0001-00000000000{i}"
    for i, name in enumerate(["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"], start=1)
}
PROBABILITY = {"Lead": 0.1, "Qualified": 0.25, "Proposal": 0.5, "Negotiation": 0.75, "Won": 1, "Lost": 0}


def at(text: str) -> dt.datetime:
    """'2026-01-05 10:00' in UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class Book:
    """Writes a history: ``create``, ``update``, ``move``, ``delete``, ``restore`` at given times."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.images: dict[str, dict] = {}
        self.ids: dict[str, str] = {}

    def user(self, name: str) -> str:
        uid = str(uuid.uuid4())
        self.conn.execute(
            sa.text("INSERT INTO users (id, email, full_name) VALUES (:id, :e, :n)"),
            {"id": uid, "e": f"{name.lower()}@example.com", "n": name},
        )
        return uid

    def company(self, name: str, industry: str | None = None) -> str:
        cid = str(uuid.uuid4())
        self.conn.execute(
            sa.text("INSERT INTO companies (id, name, industry) VALUES (:id, :n, :i)"),
            {"id": cid, "n": name, "i": industry},
        )
        return cid

    def create(
        self,
        key: str,
        when: str,
        *,
        stage: str,
        value,
        currency: str = "USD",
        owner=None,
        company: str,
        close: str | None = None,
        lead_source: str | None = None,
    ) -> None:
        did = str(uuid.uuid4())
        self.ids[key] = did
        image = {
            "id": did,
            "title": key,
            "company_id": company,
            "contact_id": None,
            "stage_id": STAGES[stage],
            "owner_id": owner,
            "value": value,
            "currency": currency,
            "probability": PROBABILITY[stage],
            "expected_close_date": close,
            "actual_close_date": None,
            "lead_source": lead_source,
            "created_at": at(when).isoformat(),
            "stage_entered_at": at(when).isoformat(),
            "deleted_at": None,
            "close_reason": None,
            "version": 1,
        }
        self._write(key, when, "create", image)

    def update(self, key: str, when: str, **changes) -> None:
        self._write(key, when, "update", {**self.images[key], **changes})

    def move(self, key: str, when: str, stage: str, **changes) -> None:
        closed = stage in ("Won", "Lost")
        values = {
            "stage_id": STAGES[stage],
            "probability": PROBABILITY[stage],
            "stage_entered_at": at(when).isoformat(),
            "actual_close_date": changes.pop("actual_close_date", when[:10]) if closed else None,
        }
        self._write(key, when, "move", {**self.images[key], **values, **changes})

    def delete(self, key: str, when: str) -> None:
        self._write(key, when, "delete", {**self.images[key], "deleted_at": at(when).isoformat()})

    def restore(self, key: str, when: str) -> None:
        self._write(key, when, "restore", {**self.images[key], "deleted_at": None})

    def _write(self, key: str, when: str, operation: str, image: dict) -> None:
        before = self.images.get(key)
        image = {**image, "version": (before or {"version": 0})["version"] + 1, "updated_at": at(when).isoformat()}
        self.conn.execute(
            sa.text(
                "INSERT INTO audit_log (user_id, at, entity, entity_id, operation, before, after) "
                "VALUES (:u, :at, 'deals', :id, :op, CAST(:b AS jsonb), CAST(:a AS jsonb))"
            ),
            {
                "u": SYSTEM,
                "at": at(when),
                "id": image["id"],
                "op": operation,
                "b": json.dumps(before) if before else None,
                "a": json.dumps(image),
            },
        )
        self.images[key] = image

    def finish(self) -> None:
        """Write the deals table as the latest images."""
        for image in self.images.values():
            self.conn.execute(
                sa.text("""
                INSERT INTO deals (id, company_id, stage_id, owner_id, title, value, currency, probability,
                    expected_close_date, actual_close_date, lead_source, close_reason, created_at, updated_at,
                    stage_entered_at, deleted_at, version)
                VALUES (:id, :company_id, :stage_id, :owner_id, :title, :value, :currency, :probability,
                    :expected_close_date, :actual_close_date, :lead_source, :close_reason, :created_at,
                    :updated_at, :stage_entered_at, :deleted_at, :version)"""),
                image,
            )


# -- the history -------------------------------------------------------------------------------

NOW = at("2026-04-15 10:00")
NOK_NOTE = "1 deal in NOK without a rate is not included"


def build(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO exchange_rates VALUES ('EUR', '2026-01-01', 1.10, 'test'), ('EUR', '2026-03-01', 1.20, 'test')"
        )
    )
    book = Book(conn)
    ann, bob = book.user("Ann"), book.user("Bob")
    acme, globex = book.company("Acme", "Software"), book.company("Globex", "Retail")
    book.create("F", "2025-11-01 10:00", stage="Lead", value=400, owner=ann, company=globex, lead_source="web")
    book.move("F", "2025-12-01 10:00", "Lost", close_reason="budget")
    book.create(
        "D",
        "2026-01-02 10:00",
        stage="Proposal",
        value=300,
        currency="NOK",
        owner=bob,
        company=acme,
        close="2026-02-15",
    )
    book.create(
        "A",
        "2026-01-05 10:00",
        stage="Lead",
        value=1000,
        owner=ann,
        company=acme,
        close="2026-03-31",
        lead_source="web",
    )
    book.create(
        "B",
        "2026-01-10 10:00",
        stage="Qualified",
        value=2000,
        currency="EUR",
        owner=bob,
        company=acme,
        close="2026-02-28",
        lead_source="partner",
    )
    book.move("A", "2026-01-20 10:00", "Qualified")
    book.move("B", "2026-02-01 10:00", "Lost", close_reason="timing")
    book.create("C", "2026-02-05 10:00", stage="Lead", value=500, owner=ann, company=acme, close="2026-03-20")
    book.update("A", "2026-02-10 10:00", value=1500)
    book.create(
        "E",
        "2026-02-15 10:00",
        stage="Negotiation",
        value=800,
        owner=bob,
        company=acme,
        close="2026-03-25",
        lead_source="event",
    )
    book.move("A", "2026-02-20 10:00", "Proposal", expected_close_date="2026-04-30")
    book.update("C", "2026-02-25 10:00", expected_close_date="2026-03-10")
    book.delete("C", "2026-03-01 10:00")
    book.update("E", "2026-03-01 10:00", value=700)
    book.move("B", "2026-03-05 10:00", "Qualified", expected_close_date="2026-05-31", close_reason=None)
    book.move("A", "2026-03-15 10:00", "Won")
    book.move("E", "2026-03-20 10:00", "Won")
    book.finish()


def history_database(make_database, tmp_path_factory, name: str, write) -> Iterator[tuple[CRM, Path]]:
    """A database named ``name`` holding the history ``write(conn)`` makes, and a snapshot of it."""
    engine = connect_engine(make_database(name))
    with engine.begin() as conn:
        write(conn)
    crm = CRM(engine)
    yield crm, crm.snapshot(out=tmp_path_factory.mktemp(f"{name}-snapshots"))
    engine.dispose()


def on_engine(backend: str, history: tuple[CRM, Path], now: dt.datetime):
    """``crm.analytics`` on PostgreSQL, or on DuckDB over the history's snapshot."""
    crm, folder = history
    return crm.analytics(now=now) if backend == "postgres" else crm.analytics("duckdb", snapshot=folder, now=now)


@pytest.fixture(scope="module")
def history_crm(make_database_module, tmp_path_factory):
    yield from history_database(make_database_module, tmp_path_factory, "crm_analytics", build)


@pytest.fixture(params=["postgres", "duckdb"])
def analytics(request, history_crm):
    return on_engine(request.param, history_crm, NOW)


def rows(frame: pl.DataFrame) -> list[tuple]:
    """The frame's rows, floats rounded to 4 places so that hand-written answers compare."""
    return frame.with_columns(pl.col(pl.Float64).round(4)).rows()


# -- pipeline ----------------------------------------------------------------------------------

PIPELINE_COLUMNS = [
    "stage",
    "deals",
    "value",
    "weighted",
    "avg_value",
    "avg_days_in_stage",
    "left_out",
    "left_out_note",
]


@pytest.mark.parametrize(
    "as_of, expected",
    [
        # A and B in Qualified (B's 2000 EUR at January's 1.10), D's NOK left out and said so.
        (
            "2026-01-31T10:00:00+00:00",
            [
                ("Lead", 0, 0.0, 0.0, None, None, 0, None),
                ("Qualified", 2, 3200.0, 800.0, 1600.0, 16.0, 0, None),
                ("Proposal", 1, 0.0, 0.0, None, 29.0, 1, NOK_NOTE),
                ("Negotiation", 0, 0.0, 0.0, None, None, 0, None),
            ],
        ),
        # B lost; A (1500 after its edit) in Proposal, C in Lead, E in Negotiation.
        (
            "2026-02-28T10:00:00+00:00",
            [
                ("Lead", 1, 500.0, 50.0, 500.0, 23.0, 0, None),
                ("Qualified", 0, 0.0, 0.0, None, None, 0, None),
                ("Proposal", 2, 1500.0, 750.0, 1500.0, 32.5, 1, NOK_NOTE),
                ("Negotiation", 1, 800.0, 600.0, 800.0, 13.0, 0, None),
            ],
        ),
        # A date is the end of that day; A and E won, C deleted, B reopened at March's 1.20.
        (
            dt.date(2026, 3, 31),
            [
                ("Lead", 0, 0.0, 0.0, None, None, 0, None),
                ("Qualified", 1, 2400.0, 600.0, 2400.0, 26.5833, 0, None),
                ("Proposal", 1, 0.0, 0.0, None, 88.5833, 1, NOK_NOTE),
                ("Negotiation", 0, 0.0, 0.0, None, None, 0, None),
            ],
        ),
        # Before anything but F, which was lost by then.
        (
            dt.date(2025, 12, 31),
            [
                ("Lead", 0, 0.0, 0.0, None, None, 0, None),
                ("Qualified", 0, 0.0, 0.0, None, None, 0, None),
                ("Proposal", 0, 0.0, 0.0, None, None, 0, None),
                ("Negotiation", 0, 0.0, 0.0, None, None, 0, None),
            ],
        ),
    ],
)
def test_pipeline_as_it_stood(analytics, as_of, expected):
    frame = analytics.pipeline(as_of=as_of)
    assert frame.columns == PIPELINE_COLUMNS
    assert rows(frame) == expected


def test_pipeline_now_reads_the_deals_table_and_matches_the_history(analytics):
    expected = [
        ("Lead", 0, 0.0, 0.0, None, None, 0, None),
        ("Qualified", 1, 2400.0, 600.0, 2400.0, 41.0, 0, None),
        ("Proposal", 1, 0.0, 0.0, None, 103.0, 1, NOK_NOTE),
        ("Negotiation", 0, 0.0, 0.0, None, None, 0, None),
    ]
    assert rows(analytics.pipeline()) == expected
    assert rows(analytics.pipeline(as_of=NOW)) == expected


def test_pipeline_by_owner_and_by_month(analytics):
    as_of = "2026-02-28T10:00:00+00:00"
    assert rows(analytics.pipeline(by="owner", as_of=as_of)) == [
        ("Ann", 2, 2000.0, 800.0, 1000.0, 15.5, 0, None),
        ("Bob", 2, 800.0, 600.0, 800.0, 35.0, 1, NOK_NOTE),
    ]
    assert rows(analytics.pipeline(by="month", as_of=as_of)) == [
        (dt.date(2026, 2, 1), 1, 0.0, 0.0, None, 57.0, 1, NOK_NOTE),
        (dt.date(2026, 3, 1), 2, 1300.0, 650.0, 650.0, 18.0, 0, None),
        (dt.date(2026, 4, 1), 1, 1500.0, 750.0, 1500.0, 8.0, 0, None),
    ]


def test_pipeline_refuses_an_unknown_grouping(analytics):
    with pytest.raises(QuerySpecError, match="unknown grouping 'team'"):
        analytics.pipeline(by="team")
    with pytest.raises(QuerySpecError, match="not a date"):
        analytics.pipeline(as_of="last tuesday")


# -- waterfall ---------------------------------------------------------------------------------


def waterfall_rows(**values) -> list[tuple]:
    """Every category, zero unless given as category=(deals, value[, left_out])."""
    order = [
        "open_at_start",
        "new",
        "reopened",
        "pulled_in",
        "increased",
        "decreased",
        "pushed_out",
        "won",
        "lost",
        "deleted",
        "open_at_end",
    ]
    out = []
    for category in order:
        deals, value, *missing = values.get(category, (0, 0.0))
        n = missing[0] if missing else 0
        out.append((category, deals, float(value), n, NOK_NOTE if n else None))
    return out


@pytest.mark.parametrize(
    "start, end, window, expected",
    [
        # A grew by 500 and was won at 1500; C came and was deleted; E came and was won at 700;
        # B was lost and reopened within the period: only its (nil) change shows.
        (
            "2026-02-01",
            "2026-03-31",
            {},
            waterfall_rows(
                open_at_start=(2, 3400, 1),
                new=(2, 1200),
                increased=(1, 500),
                won=(2, -2200),
                deleted=(1, -500),
                open_at_end=(1, 2400, 1),
            ),
        ),
        # Closing by March 31: B's reopening moved its close date to May, out of the window.
        (
            "2026-02-01",
            "2026-03-31",
            {"close_to": dt.date(2026, 3, 31)},
            waterfall_rows(
                open_at_start=(2, 3400, 1),
                new=(2, 1200),
                increased=(1, 500),
                pushed_out=(1, -2400),
                won=(2, -2200),
                deleted=(1, -500),
                open_at_end=(0, 0, 1),
            ),
        ),
        # B, lost at the start, reopened at the end (at March's rate: it is open at the end).
        (
            "2026-02-02",
            "2026-03-10",
            {},
            waterfall_rows(
                open_at_start=(1, 1000, 1),
                new=(2, 1200),
                reopened=(1, 2400),
                increased=(1, 500),
                deleted=(1, -500),
                open_at_end=(3, 4600, 1),
            ),
        ),
        # B lost, at its close date's rate (January's 1.10).
        (
            "2026-01-15",
            "2026-02-15",
            {},
            waterfall_rows(
                open_at_start=(2, 3200, 1), new=(2, 1300), increased=(1, 500), lost=(1, -2200), open_at_end=(3, 2800, 1)
            ),
        ),
        # C's close date pulled in from March 20 to March 10, into the window.
        (
            "2026-02-06",
            "2026-02-26",
            {"close_to": dt.date(2026, 3, 15)},
            waterfall_rows(open_at_start=(0, 0, 1), pulled_in=(1, 500), open_at_end=(1, 500, 1)),
        ),
        # E's value cut from 800 to 700.
        (
            "2026-02-16",
            "2026-03-10",
            {},
            waterfall_rows(
                open_at_start=(3, 2800, 1),
                reopened=(1, 2400),
                decreased=(1, -100),
                deleted=(1, -500),
                open_at_end=(3, 4600, 1),
            ),
        ),
    ],
)
def test_waterfall_by_hand_and_it_reconciles(analytics, start, end, window, expected):
    frame = analytics.waterfall(start, end, **window)
    assert rows(frame) == expected
    moves = frame.filter(pl.col("category") != "open_at_end")
    end_row = frame.filter(pl.col("category") == "open_at_end")
    assert round(moves["value"].sum(), 2) == end_row["value"].item()
    # Deals are counted, not signed: arrivals add, departures take away.
    count = dict(zip(frame["category"], frame["deals"], strict=True))
    arrived = sum(count[c] for c in ("open_at_start", "new", "reopened", "pulled_in"))
    departed = sum(count[c] for c in ("pushed_out", "won", "lost", "deleted"))
    assert arrived - departed == count["open_at_end"]


def test_waterfall_needs_start_before_end(analytics):
    with pytest.raises(QuerySpecError, match="not before end"):
        analytics.waterfall("2026-03-01", "2026-02-01")


# -- funnel, velocity, slippage ------------------------------------------------------------------


def test_funnel(analytics):
    # Entered in Jan-Feb: Lead A, C; Qualified A, B; Proposal A, D; Negotiation E. A and E won
    # later; B went back to Qualified (not further); C was deleted; D stays.
    assert rows(analytics.funnel("2026-01-01", "2026-02-28")) == [
        ("Lead", 2, 1, 0.5, 1, 0.5),
        ("Qualified", 2, 1, 0.5, 1, 0.5),
        ("Proposal", 2, 1, 0.5, 1, 0.5),
        ("Negotiation", 1, 1, 1.0, 1, 1.0),
        ("Won", 0, None, None, 0, None),
    ]


def test_velocity_from_completed_stays(analytics):
    # Lead: A 15 days, F 30; Qualified: A 31, B 22 (its second stay is not over);
    # Proposal: A 23 (D has not left); Negotiation: E 33. p80 interpolates linearly.
    assert rows(analytics.velocity()) == [
        ("Lead", 2, 22.5, 27.0, 22.5),
        ("Qualified", 2, 26.5, 29.2, 26.5),
        ("Proposal", 1, 23.0, 23.0, 23.0),
        ("Negotiation", 1, 33.0, 33.0, 33.0),
    ]
    # Only the stays that ended in February.
    assert rows(analytics.velocity(start="2026-02-01", end="2026-02-28")) == [
        ("Lead", 0, None, None, None),
        ("Qualified", 2, 26.5, 29.2, 26.5),
        ("Proposal", 0, None, None, None),
        ("Negotiation", 0, None, None, None),
    ]


def test_slippage_counts_pushes_not_pull_ins(analytics):
    # A pushed 03-31 -> 04-30 (30 days, Ann); B 02-28 -> 05-31 on reopening (92 days, Bob);
    # C pulled in (not a push).
    assert rows(analytics.slippage()) == [("Bob", 1, 1, 92, 92.0), ("Ann", 1, 1, 30, 30.0)]
    assert rows(analytics.slippage(start="2026-03-01")) == [("Bob", 1, 1, 92, 92.0)]


# -- win rate and cycle time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "by, expected",
    [
        ("owner", [("Ann", 1, 1, 2, 0.5, 1500.0, 0, None), ("Bob", 1, 0, 1, 1.0, 700.0, 0, None)]),
        ("industry", [("Retail", 0, 1, 1, 0.0, 0.0, 0, None), ("Software", 2, 0, 2, 1.0, 2200.0, 0, None)]),
        ("lead_source", [("event", 1, 0, 1, 1.0, 700.0, 0, None), ("web", 1, 1, 2, 0.5, 1500.0, 0, None)]),
        ("size_band", [("< 1,000", 1, 1, 2, 0.5, 700.0, 0, None), ("\u2265 1,000", 1, 0, 1, 1.0, 1500.0, 0, None)]),
    ],
)
def test_win_rate(analytics, by, expected):
    assert rows(analytics.win_rate(by=by, bands=(1000,))) == expected


def test_win_rate_in_a_period_and_cycle_time(analytics):
    assert rows(analytics.win_rate(start="2026-01-01")) == [
        ("Ann", 1, 0, 1, 1.0, 1500.0, 0, None),
        ("Bob", 1, 0, 1, 1.0, 700.0, 0, None),
    ]
    # A: created Jan 5, won Mar 15 (69 days); E: Feb 15 to Mar 20 (33 days).
    assert rows(analytics.cycle_time(by="owner")) == [("Ann", 1, 69.0, 69.0, 69.0), ("Bob", 1, 33.0, 33.0, 33.0)]
    assert rows(analytics.cycle_time(by="industry")) == [("Software", 2, 51.0, 51.0, 61.8)]
    with pytest.raises(QuerySpecError, match="unknown segment 'colour'"):
        analytics.win_rate(by="colour")


# -- forecast ------------------------------------------------------------------------------------


def test_forecast_with_stage_probabilities(analytics):
    assert rows(analytics.forecast()) == [
        (dt.date(2026, 1, 1), 1, 0.0, 0.0, 1, NOK_NOTE),
        (dt.date(2026, 4, 1), 1, 2400.0, 600.0, 0, None),
    ]
    assert rows(analytics.forecast(period="month")) == [
        (dt.date(2026, 2, 1), 1, 0.0, 0.0, 1, NOK_NOTE),
        (dt.date(2026, 5, 1), 1, 2400.0, 600.0, 0, None),
    ]


def test_forecast_per_owner_and_its_deals(analytics):
    # Both open deals are Bob's: D (NOK, no rate) in Q1, B (EUR 2000 at 1.20, Qualified 25%) in Q2.
    assert rows(analytics.forecast(by="owner").drop("owner_id")) == [
        (dt.date(2026, 1, 1), "Bob", 1, 0.0, 0.0, 1, NOK_NOTE),
        (dt.date(2026, 4, 1), "Bob", 1, 2400.0, 600.0, 0, None),
    ]
    deals = analytics.forecast_deals()
    assert rows(deals.select("period", "owner", "title", "stage", "value", "forecast", "probability")) == [
        (dt.date(2026, 4, 1), "Bob", "B", "Qualified", 2400.0, 600.0, 0.25),
        (dt.date(2026, 1, 1), "Bob", "D", "Proposal", None, None, 0.5),
    ]
    # the bars add up to their deals
    per_bar = deals.group_by("period").agg(pl.col("forecast").sum()).sort("period")
    assert per_bar["forecast"].to_list() == analytics.forecast()["forecast"].to_list()
    with pytest.raises(QuerySpecError, match="unknown forecast grouping 'stage'"):
        analytics.forecast(by="stage")


def test_win_rate_per_month_of_the_close_date(analytics):
    assert rows(analytics.win_rate(by="month")) == [
        (dt.date(2025, 12, 1), 0, 1, 1, 0.0, 0.0, 0, None),
        (dt.date(2026, 3, 1), 2, 0, 2, 1.0, 2200.0, 0, None),
    ]


def test_forecast_with_learned_probabilities(analytics):
    # Now: B has been in Qualified 41 days; no closed deal stayed that long, and the one closed
    # stay in Qualified (A's) won: 100%.
    assert rows(analytics.forecast(method="learned", min_history=1)) == [
        (dt.date(2026, 1, 1), 1, 0.0, 0.0, 1, NOK_NOTE),
        (dt.date(2026, 4, 1), 1, 2400.0, 2400.0, 0, None),
    ]
    # On Feb 28 only F (Lead 30 days) and B (Qualified) had closed, both lost. C, 23 days in Lead,
    # is weighed by F's stay (0%); A in Proposal and E in Negotiation have no history: their
    # stages' probabilities.
    as_of = "2026-02-28T10:00:00+00:00"
    assert rows(analytics.forecast(method="learned", as_of=as_of, min_history=1)) == [
        (dt.date(2026, 1, 1), 3, 1300.0, 600.0, 1, NOK_NOTE),
        (dt.date(2026, 4, 1), 1, 1500.0, 750.0, 0, None),
    ]
    # Too little history: the configured probabilities, as method="stage".
    expected = [(dt.date(2026, 1, 1), 3, 1300.0, 650.0, 1, NOK_NOTE), (dt.date(2026, 4, 1), 1, 1500.0, 750.0, 0, None)]
    assert rows(analytics.forecast(method="learned", as_of=as_of, min_history=2)) == expected
    assert rows(analytics.forecast(method="stage", as_of=as_of)) == expected
    with pytest.raises(QuerySpecError, match="unknown forecast method"):
        analytics.forecast(method="gut")


# -- charts --------------------------------------------------------------------------------------


def _layers(spec: dict) -> list[dict]:
    return spec.get("layer", [spec])


@pytest.mark.parametrize(
    "name, call",
    [
        ("pipeline", lambda a: a.pipeline(as_of="2026-02-28T10:00:00+00:00")),
        ("pipeline", lambda a: a.pipeline(by="month", as_of="2026-02-28T10:00:00+00:00")),
        ("waterfall", lambda a: a.waterfall("2026-02-02", "2026-03-10")),
        ("funnel", lambda a: a.funnel("2026-01-01", "2026-02-28")),
        ("velocity", lambda a: a.velocity()),
        ("slippage", lambda a: a.slippage()),
        ("win_rate", lambda a: a.win_rate(by="industry")),
        ("cycle_time", lambda a: a.cycle_time()),
        ("forecast", lambda a: a.forecast()),
        ("backtest", lambda a: a.backtest(periods=2)),
    ],
)
def test_each_analytic_has_a_chart_with_tooltips_and_its_rows_inline(history_crm, name, call):
    from crm_kernel.analytics import charts

    crm, _ = history_crm
    frame = call(crm.analytics(now=NOW))
    spec = getattr(charts, name)(frame).to_dict()
    assert "url" not in str(spec.get("data", {}))  # nothing to fetch
    values = spec["data"]["values"] if "values" in spec.get("data", {}) else spec["datasets"][spec["data"]["name"]]
    assert len(values) == frame.height
    for layer in _layers(spec):
        assert layer["encoding"]["tooltip"], layer


def test_the_waterfall_chart_steps_from_start_to_end(history_crm):
    from crm_kernel.analytics import charts

    crm, _ = history_crm
    spec = charts.waterfall(crm.analytics(now=NOW).waterfall("2026-02-02", "2026-03-10")).to_dict()
    values = spec["datasets"][spec["data"]["name"]] if "name" in spec["data"] else spec["data"]["values"]
    bars = {v["category"]: (v["_from"], v["_to"]) for v in values}
    assert bars["open_at_start"] == (0.0, 1000.0)
    assert bars["new"] == (1000.0, 2200.0)
    assert bars["reopened"] == (2200.0, 4600.0)
    assert bars["increased"] == (4600.0, 5100.0)
    assert bars["deleted"] == (5100.0, 4600.0)
    assert bars["open_at_end"] == (0.0, 4600.0)


# -- time zones ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_a_zone_east_of_utc_changes_day_boundaries_not_moments(history_crm, monkeypatch, backend):
    """Both engines hand timestamps back in the session's zone; the answers must not move. A
    date means the end of that day in CRM_TIMEZONE: in Tokyo, Jan 19 ends at 14:59 UTC."""
    crm, folder = history_crm
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Tokyo")
    engine = connect_engine(crm.engine.url.render_as_string(hide_password=False), timezone="Asia/Tokyo")
    try:
        tokyo = CRM(engine)
        analytics = tokyo.analytics(backend, snapshot=folder if backend == "duckdb" else None, now=NOW)
        assert rows(analytics.pipeline(as_of="2026-02-28T10:00:00+00:00")) == [
            ("Lead", 1, 500.0, 50.0, 500.0, 23.0, 0, None),
            ("Qualified", 0, 0.0, 0.0, None, None, 0, None),
            ("Proposal", 2, 1500.0, 750.0, 1500.0, 32.5, 1, NOK_NOTE),
            ("Negotiation", 1, 800.0, 600.0, 800.0, 13.0, 0, None),
        ]
        # Jan 19 ends at 2026-01-19 14:59:59.999999 UTC: A (Lead since Jan 5 10:00) 14.2083 days.
        jan19 = analytics.pipeline(as_of=dt.date(2026, 1, 19))
        assert rows(jan19.filter(pl.col("stage") == "Lead")) == [("Lead", 1, 1000.0, 100.0, 1000.0, 14.2083, 0, None)]
        # Created at 19:00 in Tokyo, won on Mar 15: still 69 days.
        assert rows(analytics.cycle_time(by="owner"))[0] == ("Ann", 1, 69.0, 69.0, 69.0)
    finally:
        engine.dispose()


# -- the services' own audit rows ------------------------------------------------------------------


def test_history_written_by_the_services_reads_back_on_both_engines(crm, tmp_path):
    """Images as the services write them (to_jsonb of the row: numbers, dates, timestamps in
    PostgreSQL's own format) give the same pipeline now and as of now, on both engines."""
    crm.money.set_rate("EUR", "2026-01-01", "1.25")
    acme = crm.companies.create(name="Acme", industry="Software")
    kept = crm.deals.create(
        company_id=acme["id"], title="kept", value="1234.50", currency="EUR", expected_close_date="2026-06-30"
    )
    crm.deals.move(kept["id"], "Proposal")
    crm.deals.update(kept["id"], value="1000.10")
    gone = crm.deals.create(company_id=acme["id"], title="gone", value=10)
    crm.deals.delete(gone["id"])
    won = crm.deals.create(company_id=acme["id"], title="won", value=99)
    crm.deals.move(won["id"], "Won")
    folder = crm.snapshot(out=tmp_path)
    now = dt.datetime.now(UTC) + dt.timedelta(seconds=1)
    for backend, snap in (("postgres", None), ("duckdb", folder)):
        analytics = crm.analytics(backend, snapshot=snap, now=now)
        proposal = analytics.pipeline(as_of=now).filter(pl.col("stage") == "Proposal")
        assert proposal.select("deals", "value", "weighted").rows() == [(1, 1250.13, 625.07)], backend
        assert (
            analytics.pipeline(as_of=now)
            .drop("avg_days_in_stage")
            .equals(analytics.pipeline().drop("avg_days_in_stage"))
        ), backend
        assert analytics.win_rate(by="industry").select("industry", "won", "won_value").rows() == [
            ("Software", 1, 99.0)
        ], backend
