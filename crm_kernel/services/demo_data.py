"""Demo data: a plausible CRM, generated with numpy and loaded with COPY in one transaction.

The same seed and ``today`` give the same rows, ids included, in any database: every value
is drawn from one ``numpy.random.Generator`` and dated relative to ``today``, never to the
wall clock. Faker only fills small pools (names, words, cities) that numpy samples from, so
generation stays vectorised and a few million rows take seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import polars as pl
import psycopg
import sqlalchemy as sa
from faker import Faker
from psycopg import sql
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..errors import CrmError, DatabaseError
from ..model import SYSTEM_USER_ID
from ..model.catalog import (
    ACTIVITY_STATUSES,
    ACTIVITY_TYPES,
    COMPANY_SIZES,
    CONTACT_METHODS,
    DEAL_TYPES,
    LIFECYCLE_STAGES,
    PRIORITIES,
    ROLES,
)

PER_SCALE = {"users": 10, "companies": 1_000, "contacts": 5_000, "deals": 2_000, "activities": 20_000}
TABLES = tuple(PER_SCALE)  # parents before children: the order of the COPYs
COPY_CHUNK_ROWS = 50_000
DAY = 86_400

# Enum values are drawn as positions in the catalog's tuples of them.
ADMIN, MANAGER, REP = (ROLES.index(v) for v in ("admin", "manager", "rep"))
LEAD, PROSPECT, CUSTOMER, CHAMPION, INACTIVE = (
    LIFECYCLE_STAGES.index(v) for v in ("lead", "prospect", "customer", "champion", "inactive"))
CALL, MEETING, TASK = (ACTIVITY_TYPES.index(v) for v in ("call", "meeting", "task"))
PENDING, IN_PROGRESS, COMPLETED, CANCELLED = (
    ACTIVITY_STATUSES.index(v) for v in ("pending", "in_progress", "completed", "cancelled"))


class Country(NamedTuple):
    code: str
    locale: str  # Faker locale for its cities and streets
    share: float  # of companies
    phone_prefix: str
    tld: str
    legal_suffix: str
    currency: str
    timezones: tuple[str, ...]


COUNTRIES = (
    Country("US", "en_US", 0.50, "+1", "com", "Inc.", "USD",
            ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")),
    Country("GB", "en_GB", 0.13, "+44", "co.uk", "Ltd", "GBP", ("Europe/London",)),
    Country("DE", "de_DE", 0.10, "+49", "de", "GmbH", "EUR", ("Europe/Berlin",)),
    Country("FR", "fr_FR", 0.07, "+33", "fr", "SA", "EUR", ("Europe/Paris",)),
    Country("NL", "nl_NL", 0.05, "+31", "nl", "B.V.", "EUR", ("Europe/Amsterdam",)),
    Country("CA", "en_CA", 0.09, "+1", "ca", "Inc.", "CAD", ("America/Toronto", "America/Vancouver")),
    Country("AU", "en_AU", 0.06, "+61", "com.au", "Pty Ltd", "AUD", ("Australia/Sydney", "Australia/Melbourne")),
)

# Employee bands per company size and the share of companies in each.
SIZE_EMPLOYEES = ((1, 10), (11, 50), (51, 500), (501, 5_000), (5_001, 100_000))
SIZE_SHARES = (0.22, 0.35, 0.28, 0.11, 0.04)
# Typical deal value relative to a medium company's.
SIZE_DEAL_FACTOR = (0.35, 0.6, 1.0, 1.8, 3.0)

INDUSTRIES = (
    "Software", "Financial services", "Healthcare", "Manufacturing", "Retail", "Logistics",
    "Education", "Media", "Telecommunications", "Energy", "Real estate", "Professional services",
    "Hospitality", "Construction", "Biotech", "Automotive", "Insurance", "Public sector",
    "Agriculture", "Nonprofit",
)
COMPANY_KINDS = (
    "Analytics", "Systems", "Labs", "Group", "Partners", "Logistics", "Health", "Foods", "Energy",
    "Media", "Software", "Consulting", "Manufacturing", "Capital", "Solutions", "Networks",
    "Robotics", "Design", "Retail", "Bio", "Dynamics", "Works", "Industries", "Ventures", "Technologies",
)
DEPARTMENTS = ("Sales", "Marketing", "Operations", "Finance", "Engineering", "Product", "IT",
               "Procurement", "Customer Success", "People")
JOB_TITLES = (
    "CEO", "CFO", "CTO", "COO", "Founder",
    *(pattern.format(d) for d in DEPARTMENTS for pattern in (
        "Head of {}", "VP of {}", "{} Director", "{} Manager", "Senior {} Specialist", "{} Analyst")),
)
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me")
LEAD_SOURCES = ("website", "referral", "linkedin", "trade_show", "webinar", "cold_outreach",
                "partner", "paid_search", "content_download")
LEAD_SOURCE_SHARES = (0.24, 0.16, 0.12, 0.08, 0.09, 0.12, 0.07, 0.08, 0.04)
CAMPAIGNS = ("Spring webinar series", "Summer promotion", "Autumn product launch", "Year-end push",
             "Partner co-marketing", "Retargeting ads", "Customer newsletter", "Industry summit")
DEAL_TYPE_SHARES = {"new_business": 0.55, "existing_business": 0.15, "renewal": 0.20, "upgrade": 0.10}
PRODUCTS = {  # deal titles by deal type
    "new_business": ("Platform subscription", "Starter plan", "Enterprise licence", "Pilot project",
                     "Implementation package", "Analytics add-on"),
    "existing_business": ("Additional seats", "Professional services", "Training package", "Support upgrade"),
    "renewal": ("Annual renewal", "Multi-year renewal", "Support renewal"),
    "upgrade": ("Upgrade to Enterprise", "Premium tier upgrade", "Seat expansion"),
}
WIN_REASONS = ("Best product fit", "Competitive price", "Strong relationship", "Feature set",
               "Fast implementation", "Executive sponsor")
LOSS_REASONS = ("Lost to competitor", "No budget", "No decision", "Bad timing", "Price too high",
                "Went silent", "Built in-house")
# Stage changes are left to DealService.move, which logs them.
ACTIVITY_SHARES = {"call": 0.24, "email": 0.36, "meeting": 0.10, "task": 0.12, "note": 0.10, "linkedin_message": 0.08}
SUBJECTS = {
    "call": ("Discovery call", "Check-in call", "Follow-up call", "Pricing call", "Reference call",
             "Left voicemail"),
    "email": ("Introduction", "Re: proposal", "Re: pricing question", "Follow-up", "Meeting recap",
              "Contract draft", "Case studies", "Re: next steps"),
    "meeting": ("Product demo", "Kick-off meeting", "Quarterly business review", "Contract review",
                "Onsite workshop", "Technical deep dive"),
    "task": ("Send proposal", "Prepare quote", "Follow up on contract", "Schedule demo",
             "Update forecast", "Send case study", "Book onboarding"),
    "note": ("Budget confirmed", "Decision maker identified", "Competitor in play", "Meeting notes",
             "Call notes", "Procurement process"),
    "linkedin_message": ("Connection request", "InMail: introduction", "Shared article",
                         "Congratulations on the new role"),
}


def row_counts(scale: float = 1) -> dict[str, int]:
    """Rows per table at ``scale``: at least one of each, so tiny scales still link up."""
    return {table: max(1, round(n * scale)) for table, n in PER_SCALE.items()}


@dataclass(frozen=True)
class Stage:
    """A pipeline stage, as the generator needs it."""

    id: str
    probability: Decimal
    won: bool
    lost: bool
    required_fields: tuple[str, ...]

    @property
    def closed(self) -> bool:
        return self.won or self.lost


def read_stages(conn: sa.Connection) -> list[Stage]:
    """The active stages in board order; deals are spread over these rather than fixed ids."""
    rows = conn.execute(sa.text(
        "SELECT id::text AS id, probability, is_closed_won, is_closed_lost, required_fields"
        " FROM pipeline_stages WHERE deleted_at IS NULL AND is_active ORDER BY position"
    )).all()
    if not rows:
        raise CrmError("there are no active pipeline stages to put demo deals in")
    return [Stage(r.id, r.probability, r.is_closed_won, r.is_closed_lost, tuple(r.required_fields)) for r in rows]


# -- loading -------------------------------------------------------------------------------


def load(engine: sa.Engine, *, scale: float = 1, seed: int = 42, today: dt.date,
         replace: bool = False, progress: bool = False) -> dict[str, int]:
    """Generate demo data and COPY it in; returns the rows loaded per table.

    One transaction: a failure leaves the database as it was. Without ``replace`` the CRM
    must hold no companies; with it, all CRM data (but the system user and the stages) goes.
    """
    if not scale > 0:
        raise CrmError(f"scale must be positive, not {scale}")
    counts = row_counts(scale)
    columns = (TextColumn("{task.description:<11}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        # Each table's bar is half generation, half COPY; then indexes and foreign keys return.
        tasks = {table: bar.add_task(table, total=2 * n) for table, n in counts.items()}
        tasks["indexes"] = bar.add_task("indexes", total=None, start=False)

        def advance(task: str, done: int) -> None:
            bar.start_task(tasks[task])
            bar.advance(tasks[task], done)

        try:
            with engine.begin() as conn:
                cursor = conn.connection.driver_connection.cursor()
                cursor.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
                if replace:
                    _clear(cursor)
                elif cursor.execute("SELECT EXISTS (SELECT FROM companies)").fetchone()[0]:
                    raise CrmError("the CRM already holds companies: use --replace (replace=True) "
                                   "to delete all CRM data and load the demo data")
                frames = generate(read_stages(conn), scale=scale, seed=seed, today=today,
                                  on_table=lambda table: advance(table, counts[table]))
                copy_in(cursor, frames, advance)
                bar.update(tasks["indexes"], total=bar.tasks[tasks["indexes"]].completed)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {', '.join(TABLES)}")
        except (psycopg.Error, sa.exc.DBAPIError) as exc:
            raise DatabaseError(f"demo data not loaded: {exc}") from exc
    return {table: frame.height for table, frame in frames.items()}


CLEARED = ("activities", "deals", "contacts", "companies", "saved_queries", "audit_log")


def _clear(cursor: psycopg.Cursor) -> None:
    """Delete all CRM data but the system user and the configuration (stages, custom fields).

    Users that the kept configuration names as its authors stay too, or deleting them would fail.
    """
    cursor.execute(f"TRUNCATE {', '.join(CLEARED)} RESTART IDENTITY")
    references = cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
        " WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass AND c.conrelid <> ALL (%s::regclass[])"
        " ORDER BY 1, 2",
        [[*CLEARED, "users"]],
    ).fetchall()
    stmt = sql.SQL("DELETE FROM users WHERE id <> {}").format(sql.Literal(SYSTEM_USER_ID))
    if references:
        named = sql.SQL(" UNION ").join(
            sql.SQL("SELECT {column} FROM {table} WHERE {column} IS NOT NULL").format(
                column=sql.Identifier(column), table=sql.SQL(table))
            for table, column in references)
        stmt += sql.SQL(" AND id NOT IN ({})").format(named)
    cursor.execute(stmt)


def _set_aside(cursor: psycopg.Cursor) -> list[sql.Composable]:
    """Drop the loaded tables' foreign keys and secondary indexes; return what restores them.

    Checking foreign keys and updating the GIN and B-tree indexes row by row costs several
    times the COPY itself; building each index once and checking each foreign key with one
    join afterwards is far cheaper. The definitions are read back from the catalog, so the
    migrations in sql/ stay their only source. Unique indexes stay: foreign keys point at
    them, and they check the rows as they arrive.
    """
    indexes = cursor.execute(
        "SELECT schemaname, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = current_schema() AND tablename = ANY(%s) AND indexdef NOT LIKE 'CREATE UNIQUE %%'"
        " ORDER BY tablename, indexname",
        [list(TABLES)],
    ).fetchall()
    keys = cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
        [list(TABLES)],
    ).fetchall()
    for schema, name, _ in indexes:
        cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    for table, name, _ in keys:
        cursor.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name)))
    return [
        *(sql.SQL(definition) for _, _, definition in indexes),
        *(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.SQL(table), sql.Identifier(name), sql.SQL(definition)) for table, name, definition in keys),
    ]


def copy_in(cursor: psycopg.Cursor, frames: dict[str, pl.DataFrame],
            advance: Callable[[str, int], None] = lambda task, done: None) -> None:
    """COPY frames into their tables (in order), with foreign keys and secondary indexes set
    aside meanwhile; all inside the cursor's transaction.

    ``advance(table, rows)`` reports each chunk copied, ``advance("indexes", 1)`` each index
    or foreign key restored.
    """
    restore = _set_aside(cursor)
    for table, frame in frames.items():
        copy_frame(cursor, table, frame, lambda rows, table=table: advance(table, rows))
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for statement in restore:
        cursor.execute(statement)
        advance("indexes", 1)


def copy_frame(cursor: psycopg.Cursor, table: str, frame: pl.DataFrame,
               advance: Callable[[int], None] = lambda rows: None) -> None:
    """COPY a frame into ``table`` (its columns by name) as CSV, chunk by chunk."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns)))
    with cursor.copy(stmt) as copy:
        for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False)
            copy.write(buffer.getvalue())
            advance(chunk.height)


# -- generation ----------------------------------------------------------------------------


def generate(stages: Sequence[Stage], *, scale: float = 1, seed: int = 42, today: dt.date,
             on_table: Callable[[str], None] | None = None) -> dict[str, pl.DataFrame]:
    """The demo rows as one polars frame per table (in load order), columns named as in the database.

    ``on_table(name)`` is called as each table's frame is ready.
    """
    return _Generator(stages, row_counts(scale), seed, today).frames(on_table or (lambda table: None))


def _distinct(make: Callable[[], str], n: int) -> tuple[str, ...]:
    """Up to ``n`` distinct values of ``make()``, in first-seen order."""
    seen: dict[str, None] = {}
    for _ in range(50 * n):
        seen.setdefault(make(), None)
        if len(seen) == n:
            break
    return tuple(seen)


def _slug(text: str) -> str:
    """Lower-case ASCII letters only, for e-mail addresses and domains."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_text.lower()) or "x"


def _json_text(text: str) -> str:
    """``text`` escaped for the inside of a JSON string."""
    return json.dumps(text)[1:-1]


class _Pools:
    """Small vocabularies from Faker that numpy samples from; each country's lists laid end to end."""

    def __init__(self, seed: int):
        fake = Faker("en_US")
        fake.seed_instance(seed)
        self.first_names = _distinct(fake.first_name, 500)
        self.last_names = _distinct(fake.last_name, 500)
        self.company_words = _distinct(fake.last_name, 300)
        self.deal_notes = _distinct(fake.catch_phrase, 200)
        self.activity_notes = _distinct(lambda: f"Discussed how to {fake.bs()}.", 300)
        self.cities, self.streets, self.postcodes = [], [], []
        self.city_counts, self.street_counts, self.postcode_counts = [], [], []
        for country in COUNTRIES:
            local = Faker(country.locale)
            local.seed_instance(seed)
            for pool, counts, make in ((self.cities, self.city_counts, local.city),
                                       (self.streets, self.street_counts, local.street_name),
                                       (self.postcodes, self.postcode_counts, local.postcode)):
                values = _distinct(make, 60)
                pool.extend(_json_text(v) for v in values)
                counts.append(len(values))


@functools.lru_cache(maxsize=4)
def _pools(seed: int) -> _Pools:
    return _Pools(seed)


def _gather(pool: Sequence, idx: np.ndarray, dtype=pl.String) -> pl.Series:
    return pl.Series(values=list(pool), dtype=dtype).gather(idx)


def _blank(series: pl.Series, blank: np.ndarray) -> pl.Series:
    """``series`` with nulls where ``blank`` is true."""
    return _choose(~blank, series) if blank.any() else series


def _ref(ids: pl.Series, idx: np.ndarray) -> pl.Series:
    """Foreign keys: ``ids[idx]``, null where ``idx`` is -1."""
    return _blank(ids.gather(np.maximum(idx, 0)), idx < 0)


def _timestamps(seconds: np.ndarray, blank: np.ndarray | None = None) -> pl.Series:
    series = pl.Series(values=seconds * 1000, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))
    return series if blank is None else _blank(series, blank)


def _dates(days: np.ndarray, blank: np.ndarray | None = None) -> pl.Series:
    series = pl.Series(values=days, dtype=pl.Int32).cast(pl.Date)
    return series if blank is None else _blank(series, blank)


def _digits(values: np.ndarray, width: int) -> pl.Series:
    return pl.Series(values=values).cast(pl.String).str.zfill(width)


def _concat(*parts: pl.Series | str) -> pl.Series:
    """Row-wise concatenation of series and literal strings."""
    return pl.select(pl.concat_str([pl.lit(p) for p in parts])).to_series()


def _choose(condition: np.ndarray, then: pl.Series, otherwise: pl.Series | None = None) -> pl.Series:
    """``then`` where ``condition`` holds, else ``otherwise`` (or null)."""
    return pl.select(pl.when(pl.lit(pl.Series(values=condition))).then(pl.lit(then))
                     .otherwise(None if otherwise is None else pl.lit(otherwise))).to_series()


def _numbered(head: pl.Series, tail: pl.Series | str) -> pl.Series:
    """``head + tail``, with a running number after ``head`` on repeats so that every value is unique.

    Heads hold no digits, so a numbered value never meets another row's plain one.
    """
    whole = pl.concat_str("head", "tail")
    use = whole.cum_count().over(whole)
    frame = pl.DataFrame({"head": head}).with_columns(tail=pl.lit(tail))
    numbered = pl.concat_str("head", use.cast(pl.String), "tail")
    return frame.select(pl.when(use == 1).then(whole).otherwise(numbered)).to_series()


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_POSITIONS = [i for i in range(36) if i not in (8, 13, 18, 23)]


class _Generator:
    """Draws the numeric skeleton first (links and dates), then builds the text of each frame.

    Days are counted relative to ``today`` (day 0 starts at midnight UTC); history ends
    yesterday, future tasks and meetings start tomorrow. A parent record is always created
    at least a day before anything that refers to it.
    """

    def __init__(self, stages: Sequence[Stage], counts: dict[str, int], seed: int, today: dt.date):
        self.rng = np.random.default_rng(seed)
        self.pools = _pools(seed)
        self.stages = list(stages)
        self.n = counts
        self.epoch_day = (today - dt.date(1970, 1, 1)).days
        self.now = self.epoch_day * DAY
        self.system = pl.lit(SYSTEM_USER_ID)

    def frames(self, on_table: Callable[[str], None]) -> dict[str, pl.DataFrame]:
        self._plan_users()
        self._plan_companies()
        self._plan_contacts()
        self._plan_deals()
        self._plan_activities()
        self._plan_lifecycle()
        builders = {"users": self._users, "companies": self._companies, "contacts": self._contacts,
                    "deals": self._deals, "activities": self._activities}
        frames = {}
        for table, build in builders.items():
            frames[table] = build()
            on_table(table)
        return frames

    # -- helpers -----------------------------------------------------------------------

    def _uuids(self, n: int) -> pl.Series:
        """Random (version 4) uuids as text, drawn from the seeded generator."""
        raw = self.rng.integers(0, 256, (n, 16), dtype=np.uint8)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
        text = np.full((n, 36), ord("-"), dtype=np.uint8)
        text[:, _HEX_POSITIONS[0::2]] = _HEX[raw >> 4]
        text[:, _HEX_POSITIONS[1::2]] = _HEX[raw & 0x0F]
        return pl.Series(values=text.view("S36").ravel()).cast(pl.String)

    def _at(self, days: np.ndarray) -> np.ndarray:
        """Seconds since the epoch: ``days`` from today, during office hours, on five-minute marks."""
        office = self.rng.integers(8 * 12, 18 * 12, len(days)) * 300
        return self.now + days * DAY + office

    def _between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """A moment in office hours on a day between ``start`` and ``end`` (seconds), clipped to them."""
        moment = start + (self.rng.random(len(start)) * (end - start)).astype(np.int64)
        return np.clip(self._at((moment - self.now) // DAY), start, end)

    def _pick(self, n: int, shares: Sequence[float]) -> np.ndarray:
        return self.rng.choice(len(shares), n, p=np.asarray(shares) / sum(shares))

    def _within(self, group: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
        """For each row, a random index into its group's pool, the pools laid end to end."""
        sizes = np.asarray(sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return offsets[group] + (self.rng.random(len(group)) * sizes[group]).astype(np.int64)

    def _owners(self, preferred: np.ndarray, keep: float) -> np.ndarray:
        """Mostly the preferred owner (a related record's); otherwise any sales user."""
        other = self.owner_pool[self.rng.integers(len(self.owner_pool), size=len(preferred))]
        return np.where(self.rng.random(len(preferred)) < keep, preferred, other)

    def _updated(self, created: np.ndarray) -> np.ndarray:
        """A later edit, before today."""
        return self._between(created, np.full(len(created), self.now - 6 * 3600))

    # -- the skeleton ------------------------------------------------------------------

    def _plan_users(self) -> None:
        n, rng = self.n["users"], self.rng
        self.u_first = rng.integers(len(self.pools.first_names), size=n)
        self.u_last = rng.integers(len(self.pools.last_names), size=n)
        self.u_role = np.where(rng.random(n) < 0.15, MANAGER, REP)
        self.u_role[0] = ADMIN
        self.u_created = self._at(-1_200 - rng.integers(0, 90, n))
        # The admin sells too only when there is no one else.
        self.owner_pool = np.arange(1, n) if n > 1 else np.arange(1)

    def _plan_companies(self) -> None:
        n, rng = self.n["companies"], self.rng
        self.c_country = self._pick(n, [c.share for c in COUNTRIES])
        self.c_size = self._pick(n, SIZE_SHARES)
        low, high = np.array(SIZE_EMPLOYEES).T
        log_employees = rng.uniform(np.log(low[self.c_size]), np.log(high[self.c_size] + 1))
        self.c_employees = np.clip(np.exp(log_employees).astype(np.int64), low[self.c_size], high[self.c_size])
        self.c_revenue = np.round(self.c_employees * rng.lognormal(np.log(150_000), 0.5, n), -3)
        self.c_owner = self.owner_pool[rng.integers(len(self.owner_pool), size=n)]
        self.c_day = -rng.integers(2, 3 * 365, n)

    def _plan_contacts(self) -> None:
        n, rng = self.n["contacts"], self.rng
        # Bigger companies have more contacts; contacts of a company sit together, the
        # first one is its primary contact, and a few contacts belong to no company.
        has_company = rng.random(n) < 0.96
        has_company[0] = True
        weight = np.log1p(self.c_employees) + 1
        company = np.sort(rng.choice(self.n["companies"], has_company.sum(), p=weight / weight.sum()))
        self.k_company = np.concatenate([company, np.full(n - len(company), -1)])
        self.k_primary = np.zeros(n, dtype=bool)
        self.k_primary[: len(company)] = np.r_[True, company[1:] != company[:-1]]
        parent_day = np.where(self.k_company >= 0, self.c_day[self.k_company], -3 * 365)
        self.k_day = parent_day + 1 + (rng.random(n) * (-1 - parent_day)).astype(np.int64)
        parent_owner = np.where(self.k_company >= 0, self.c_owner[self.k_company], self.owner_pool[0])
        self.k_owner = self._owners(parent_owner, 0.8)

    def _plan_deals(self) -> None:
        n, rng, stages = self.n["deals"], self.rng, self.stages
        with_company = int((self.k_company >= 0).sum())
        self.d_contact = rng.integers(with_company, size=n)
        self.d_company = self.k_company[self.d_contact]
        self.d_stage = self._pick(n, _stage_shares(stages))
        won = np.array([s.won for s in stages])[self.d_stage]
        lost = np.array([s.lost for s in stages])[self.d_stage]
        closed = won | lost
        self.d_won, self.d_closed = won, closed
        # How far along the pipeline an open deal is, 0 (first open stage) to 1 (last).
        open_rank = np.cumsum([not s.closed for s in stages]) - 1
        along = (open_rank / max(open_rank[-1], 1))[self.d_stage]
        self.d_along = along

        # Open deals: later stages are older and expected to close sooner, mostly in the
        # coming year. Closed deals closed during the past eighteen months after a sales
        # cycle of weeks to months, near the date they were expected to.
        close_day = -rng.integers(1, 540, n)
        cycle = np.clip(rng.lognormal(np.log(45), 0.6, n), 3, 365).astype(np.int64)
        open_age = np.clip(rng.exponential(20 + 60 * along), 1, 730).astype(np.int64)
        self.d_day = np.where(closed, close_day - cycle, -open_age)
        self.d_close_day = np.where(closed, close_day, 0)
        horizon = 365 * (1 - 0.6 * along)
        self.d_expected_day = np.where(closed, close_day + np.round(rng.normal(0, 20, n)).astype(np.int64),
                                       -14 + (rng.random(n) * (horizon + 14)).astype(np.int64))
        self.d_first_day = self.d_day - rng.integers(0, 15, n)

        # Parents predate the deal: push contacts, then companies, earlier where needed.
        np.minimum.at(self.k_day, self.d_contact, self.d_first_day - 1)
        with_contact = self.k_company >= 0
        np.minimum.at(self.c_day, self.k_company[with_contact], self.k_day[with_contact] - 1)

        size = self.c_size[self.d_company]
        value = rng.lognormal(np.log(12_000), 1.1, n) * np.array(SIZE_DEAL_FACTOR)[size]
        self.d_value = np.where(value < 10_000, np.round(np.clip(value, 300, None), -1), np.round(value, -2))
        self.d_value = np.minimum(self.d_value, 5_000_000)
        self.d_type = self._pick(n, [DEAL_TYPE_SHARES[t] for t in DEAL_TYPES])
        self.d_owner = self._owners(self.k_owner[self.d_contact], 0.85)
        blanks = {  # optional fields left empty at random, unless the deal's stage requires them
            "contact_id": rng.random(n) < 0.08,
            "value": ~closed & (rng.random(n) < 0.4 * (1 - along)),
            "expected_close_date": ~closed & (rng.random(n) < 0.1 * (1 - along)),
            "close_reason": ~closed | (won & (rng.random(n) < 0.4)),
            "description": rng.random(n) < 0.5,
            "lead_source": rng.random(n) < 0.1,
            "campaign": rng.random(n) < 0.55,
        }
        for field, blank in blanks.items():
            required = np.array([field in s.required_fields for s in stages])
            blank &= ~required[self.d_stage]
        self.d_blank = blanks

    def _plan_activities(self) -> None:
        n, rng = self.n["activities"], self.rng
        self.c_created = self._at(self.c_day)
        self.k_created = self._at(self.k_day)
        self.d_created = self._at(self.d_day)
        yesterday_evening = self.now - 6 * 3600
        deal_end = np.where(self.d_closed, self.now + self.d_close_day * DAY + 18 * 3600, yesterday_evening)

        # What an activity is about: a deal (its contact and company), a contact (its
        # company), or a company alone. Deals that ran longer saw more activity.
        about = self._pick(n, (0.6, 0.3, 0.1))
        cases = [about == 0, about == 1]  # a deal, a contact; else a company
        span = (deal_end - self.d_created) / DAY + 10
        deal = np.where(cases[0], rng.choice(self.n["deals"], n, p=span / span.sum()), -1)
        contact = rng.integers(self.n["contacts"], size=n)
        company = rng.integers(self.n["companies"], size=n)
        deal_contact = np.where(self.d_blank["contact_id"], -1, self.d_contact)
        self.a_deal = deal
        self.a_contact = np.select(cases, [deal_contact[deal], contact], -1)
        self.a_company = np.select(cases, [self.d_company[deal], self.k_company[contact]], company)
        start = np.select(cases, [self.d_created[deal], self.k_created[contact]], self.c_created[company]) + 300
        end = np.where(cases[0], deal_end[deal], yesterday_evening)
        preferred = np.select(cases, [self.d_owner[deal], self.k_owner[contact]], self.c_owner[company])
        self.a_owner = self._owners(preferred, 0.9)

        # Calls, meetings and tasks can still be ahead where the deal is open: those are
        # pending (tasks also in progress) and due or scheduled after today. The rest
        # happened between the record's creation and its close (or yesterday).
        kind = self._pick(n, [ACTIVITY_SHARES.get(t, 0) for t in ACTIVITY_TYPES])
        open_window = ~cases[0] | ~self.d_closed[deal]
        roll = rng.random(n)
        ahead = open_window & np.select([kind == TASK, kind == MEETING, kind == CALL],
                                        [roll < 0.35, roll < 0.15, roll < 0.05], False)
        cancelled = ~ahead & np.isin(kind, (CALL, MEETING)) & (rng.random(n) < 0.05)
        status = np.select([ahead & (kind == TASK) & (rng.random(n) < 0.3), ahead, cancelled],
                           [IN_PROGRESS, PENDING, CANCELLED], COMPLETED)
        moment = self._between(start, end)
        future = self._at(rng.integers(1, 31, n))
        duration = np.select([kind == CALL, kind == MEETING],
                             [np.clip(rng.lognormal(np.log(12), 0.7, n), 1, 120).astype(np.int64),
                              np.array([30, 45, 60, 90])[rng.integers(0, 4, n)]], 0)
        timed = np.isin(kind, (CALL, MEETING))
        planned = np.isin(kind, (MEETING, TASK))  # created some days before they happen
        lead_time = np.where(planned & ~ahead, rng.integers(0, 8, n) * DAY, 0)
        self.a_kind, self.a_status, self.a_duration = kind, status, duration
        self.a_created = np.maximum(moment - lead_time, start)
        self.a_scheduled = np.where(ahead, future, moment)
        self.a_scheduled_blank = ~timed
        self.a_due = np.where(ahead, future, moment + rng.integers(0, 3, n) * DAY)
        self.a_due_blank = kind != TASK
        self.a_completed = moment + duration * 60
        self.a_completed_blank = status != COMPLETED
        self.a_updated = np.where(self.a_completed_blank, moment, self.a_completed)
        self.a_updated = np.where(ahead, self.a_created, self.a_updated)

        # A deal's last activity is its latest completed one.
        last = np.full(self.n["deals"], np.iinfo(np.int64).min)
        done = (deal >= 0) & (status == COMPLETED)
        np.maximum.at(last, deal[done], self.a_completed[done])
        self.d_last_activity = last
        closed_at = np.where(self.d_closed, self.now + self.d_close_day * DAY + 17 * 3600, 0)
        self.d_updated = np.maximum.reduce([self.d_created, last, closed_at])
        # Closed deals entered their stage when they closed; open ones spent part of their life
        # in earlier stages, the further along the more (no draw: the other columns stay as they were).
        in_earlier = ((yesterday_evening - self.d_created) * 0.7 * self.d_along).astype(np.int64)
        self.d_stage_entered = np.where(self.d_closed, closed_at, self.d_created + np.maximum(in_earlier, 0))

    def _plan_lifecycle(self) -> None:
        """Contacts on won deals are customers (some champions), on open deals prospects;
        their colleagues are often customers too; the rest are leads, some gone quiet."""
        n, rng = self.n["contacts"], self.rng
        on_deal = ~self.d_blank["contact_id"]
        stage = np.where(rng.random(n) < 0.15, INACTIVE, LEAD)
        won_companies = np.zeros(self.n["companies"], dtype=bool)
        won_companies[self.d_company[self.d_won]] = True
        colleague = (self.k_company >= 0) & won_companies[np.maximum(self.k_company, 0)]
        stage[colleague & (rng.random(n) < 0.4)] = CUSTOMER
        stage[self.d_contact[on_deal & ~self.d_closed]] = PROSPECT
        winners = self.d_contact[on_deal & self.d_won]
        stage[winners] = np.where(rng.random(len(winners)) < 0.25, CHAMPION, CUSTOMER)
        self.k_lifecycle = stage
        score = {LEAD: (30, 15), PROSPECT: (60, 15), CUSTOMER: (75, 12), CHAMPION: (90, 8), INACTIVE: (10, 8)}
        mean, spread = np.array([score[i] for i in range(len(LIFECYCLE_STAGES))]).T
        self.k_score = np.clip(np.round(rng.normal(mean[stage], spread[stage])), 0, 100).astype(np.int64)

    # -- the frames --------------------------------------------------------------------

    def _bookkeeping(self, created: np.ndarray, updated: np.ndarray) -> dict:
        return {"created_at": _timestamps(created), "updated_at": _timestamps(updated),
                "created_by": self.system, "updated_by": self.system, "version": pl.lit(1)}

    def _users(self) -> pl.DataFrame:
        n, pools = self.n["users"], self.pools
        self.user_ids = self._uuids(n)
        first = _gather(pools.first_names, self.u_first)
        last = _gather(pools.last_names, self.u_last)
        slugs = [_slug(v) for v in pools.first_names], [_slug(v) for v in pools.last_names]
        local = _concat(_gather(slugs[0], self.u_first), ".", _gather(slugs[1], self.u_last))
        return pl.select(
            id=self.user_ids,
            email=_numbered(local, "@demo.example"),
            full_name=_concat(first, " ", last),
            role=_gather(ROLES, self.u_role),
            active=pl.lit(True),
            **self._bookkeeping(self.u_created, self.u_created),
        )

    def _companies(self) -> pl.DataFrame:
        n, rng, pools = self.n["companies"], self.rng, self.pools
        self.company_ids = self._uuids(n)
        country = self.c_country
        # "Word Kind", "Word Kind Ltd" or "Word-Word"; the domain is the name without the legal suffix.
        words = len(pools.company_words)
        first = rng.integers(words, size=n)
        second = (first + rng.integers(1, words, size=n)) % words  # never the same word twice
        word, other = _gather(pools.company_words, first), _gather(pools.company_words, second)
        kind = _gather(COMPANY_KINDS, rng.integers(len(COMPANY_KINDS), size=n))
        form = self._pick(n, (0.6, 0.25, 0.15))
        core = _choose(form == 2, _concat(word, "-", other), _concat(word, " ", kind))
        suffix = _gather([c.legal_suffix for c in COUNTRIES], country)
        name = _choose(form == 1, _concat(core, " ", suffix), core)
        tld = _gather([c.tld for c in COUNTRIES], country)
        domain = _numbered(core.str.to_lowercase().str.replace_all("[^a-z]", ""), _concat(".", tld))
        mailbox = _gather(("info", "hello", "contact", "sales", "office"), rng.integers(0, 5, n))
        city = _gather(pools.cities, self._within(country, pools.city_counts))
        street = _gather(pools.streets, self._within(country, pools.street_counts))
        postcode = _gather(pools.postcodes, self._within(country, pools.postcode_counts))
        address = _concat(
            '{"street": "', _digits(rng.integers(1, 400, n), 1), " ", street, '", "city": "', city,
            '", "postal_code": "', postcode, '", "country": "', _gather([c.code for c in COUNTRIES], country),
            '"}',
        )
        frame = pl.select(
            id=self.company_ids,
            name=name,
            domain=domain,
            industry=_gather(INDUSTRIES, rng.integers(len(INDUSTRIES), size=n)),
            size=_gather(COMPANY_SIZES, self.c_size),
            employees=pl.Series(values=self.c_employees, dtype=pl.Int32),
            annual_revenue=pl.Series(values=self.c_revenue).cast(pl.Decimal(16, 2)),
            website=_concat("https://www.", domain),
            phone=self._phones(country),
            email=_concat(mailbox, "@", domain),
            address=address,
            owner_id=_ref(self.user_ids, self.c_owner),
            **self._bookkeeping(self.c_created, self._updated(self.c_created)),
        )
        self.company_names, self.company_domains = frame["name"], frame["domain"]
        return frame

    def _phones(self, country: np.ndarray) -> pl.Series:
        n = len(country)
        return _concat(
            _gather([c.phone_prefix for c in COUNTRIES], country),
            " ", _digits(self.rng.integers(200, 1_000, n), 3),
            " ", _digits(self.rng.integers(0, 1_000, n), 3),
            " ", _digits(self.rng.integers(0, 10_000, n), 4),
        )

    def _contacts(self) -> pl.DataFrame:
        n, rng, pools = self.n["contacts"], self.rng, self.pools
        self.contact_ids = self._uuids(n)
        has_company = self.k_company >= 0
        company = np.maximum(self.k_company, 0)
        country = np.where(has_company, self.c_country[company], self._pick(n, [c.share for c in COUNTRIES]))
        first_idx = rng.integers(len(pools.first_names), size=n)
        last_idx = rng.integers(len(pools.last_names), size=n)
        local = _concat(_gather([_slug(v) for v in pools.first_names], first_idx), ".",
                        _gather([_slug(v) for v in pools.last_names], last_idx))
        free_mail = _gather(FREE_MAIL, rng.integers(len(FREE_MAIL), size=n))
        domain = _choose(has_company, self.company_domains.gather(company), free_mail)
        email = _numbered(local, _concat("@", domain))
        zones = [z for c in COUNTRIES for z in c.timezones]
        timezone = _gather(zones, self._within(country, [len(c.timezones) for c in COUNTRIES]))
        profile = email.str.split("@").list.first().str.replace_all(".", "-", literal=True)
        linkedin = _concat('{"linkedin": "https://www.linkedin.com/in/', profile, '"}')
        return pl.select(
            id=self.contact_ids,
            company_id=_ref(self.company_ids, self.k_company),
            first_name=_gather(pools.first_names, first_idx),
            last_name=_gather(pools.last_names, last_idx),
            email=email,
            phone=self._phones(country),
            job_title=_gather(JOB_TITLES, rng.integers(len(JOB_TITLES), size=n)),
            preferred_contact_method=_gather(CONTACT_METHODS, self._pick(n, (0.55, 0.25, 0.05, 0.15))),
            timezone=timezone,
            is_primary=pl.Series(values=self.k_primary),
            lead_source=_gather(LEAD_SOURCES, self._pick(n, LEAD_SOURCE_SHARES)),
            lead_score=pl.Series(values=self.k_score, dtype=pl.Int32),
            lifecycle_stage=_gather(LIFECYCLE_STAGES, self.k_lifecycle),
            social_profiles=_choose(rng.random(n) < 0.6, linkedin),
            owner_id=_ref(self.user_ids, self.k_owner),
            **self._bookkeeping(self.k_created, self._updated(self.k_created)),
        )

    def _deals(self) -> pl.DataFrame:
        n, rng, blank = self.n["deals"], self.rng, self.d_blank
        self.deal_ids = self._uuids(n)
        product = self._within(self.d_type, [len(PRODUCTS[t]) for t in DEAL_TYPES])
        title = _concat(self.company_names.gather(self.d_company), " – ",
                        _gather([p for t in DEAL_TYPES for p in PRODUCTS[t]], product))
        reasons = np.where(self.d_won, rng.integers(len(WIN_REASONS), size=n),
                           len(WIN_REASONS) + rng.integers(len(LOSS_REASONS), size=n))
        created_year = pl.Series(values=(self.d_created // DAY), dtype=pl.Int32).cast(pl.Date).dt.year()
        campaign = _concat(created_year.cast(pl.String), " ",
                           _gather(CAMPAIGNS, rng.integers(len(CAMPAIGNS), size=n)))
        currency = _gather([c.currency for c in COUNTRIES], self.c_country[self.d_company])
        no_activity = self.d_last_activity == np.iinfo(np.int64).min
        return pl.select(
            id=self.deal_ids,
            company_id=self.company_ids.gather(self.d_company),
            contact_id=_ref(self.contact_ids, np.where(blank["contact_id"], -1, self.d_contact)),
            stage_id=_gather([s.id for s in self.stages], self.d_stage),
            owner_id=_ref(self.user_ids, self.d_owner),
            title=title,
            description=_blank(_gather(self.pools.deal_notes, rng.integers(len(self.pools.deal_notes), size=n)),
                               blank["description"]),
            value=_blank(pl.Series(values=self.d_value).cast(pl.Decimal(12, 2)), blank["value"]),
            currency=currency,
            probability=_gather([s.probability for s in self.stages], self.d_stage, pl.Decimal(5, 4)),
            expected_close_date=_dates(self.epoch_day + self.d_expected_day, blank["expected_close_date"]),
            actual_close_date=_dates(self.epoch_day + self.d_close_day, ~self.d_closed),
            first_contact_date=_dates(self.epoch_day + self.d_first_day),
            last_activity_at=_timestamps(np.where(no_activity, 0, self.d_last_activity), no_activity),
            lead_source=_blank(_gather(LEAD_SOURCES, self._pick(n, LEAD_SOURCE_SHARES)), blank["lead_source"]),
            campaign=_blank(campaign, blank["campaign"]),
            type=_gather(DEAL_TYPES, self.d_type),
            priority=_gather(PRIORITIES, self._pick(n, (0.25, 0.5, 0.2, 0.05))),
            close_reason=_blank(_gather(WIN_REASONS + LOSS_REASONS, reasons), blank["close_reason"]),
            **self._bookkeeping(self.d_created, self.d_updated),
            stage_entered_at=_timestamps(self.d_stage_entered),
        )

    def _activities(self) -> pl.DataFrame:
        n, rng, pools = self.n["activities"], self.rng, self.pools
        subject = self._within(self.a_kind, [len(SUBJECTS.get(t, ())) for t in ACTIVITY_TYPES])
        notes = _gather(pools.activity_notes, rng.integers(len(pools.activity_notes), size=n))
        return pl.select(
            id=self._uuids(n),
            deal_id=_ref(self.deal_ids, self.a_deal),
            contact_id=_ref(self.contact_ids, self.a_contact),
            company_id=_ref(self.company_ids, self.a_company),
            owner_id=_ref(self.user_ids, self.a_owner),
            type=_gather(ACTIVITY_TYPES, self.a_kind),
            subject=_gather([s for t in ACTIVITY_TYPES for s in SUBJECTS.get(t, ())], subject),
            description=_blank(notes, rng.random(n) < 0.6),
            scheduled_at=_timestamps(self.a_scheduled, self.a_scheduled_blank),
            completed_at=_timestamps(self.a_completed, self.a_completed_blank),
            due_at=_timestamps(self.a_due, self.a_due_blank),
            duration_minutes=_blank(pl.Series(values=self.a_duration, dtype=pl.Int32), self.a_scheduled_blank),
            status=_gather(ACTIVITY_STATUSES, self.a_status),
            priority=_gather(PRIORITIES, self._pick(n, (0.2, 0.6, 0.15, 0.05))),
            **self._bookkeeping(self.a_created, self.a_updated),
        )


def _stage_shares(stages: Sequence[Stage]) -> np.ndarray:
    """Open deals thin out along the pipeline; about a quarter of closed deals are won."""
    shares = np.zeros(len(stages))
    open_ = [i for i, s in enumerate(stages) if not s.closed]
    thinning = 0.75 ** np.arange(len(open_))
    shares[open_] = 0.42 * thinning / max(thinning.sum(), 1e-9)
    for closed, share in ((lambda s: s.won, 0.145), (lambda s: s.lost, 0.435)):
        members = [i for i, s in enumerate(stages) if closed(s)]
        shares[members] = share / max(len(members), 1)
    return shares / shares.sum()
