"""Demo data generation: a numeric plan per table drawn with numpy, then the frames COPY loads.

The same seed and ``today`` give the same rows, ids included, in any database: every value
is drawn from seeded ``numpy.random.Generator``s and dated relative to ``today``, never to the
wall clock. Faker only fills small pools (names, words, cities) that numpy samples from, so
generation stays vectorised and a few million rows take seconds.

Each table is planned first (links, dates, values: one dataclass of arrays per table, a row per
record), then the deals' histories (history.py) and the exchange rates (rates.py) are drawn
from the plans, and last the text of every frame is built.

The users are an admin, an analyst (who owns nothing) and the sales staff in teams: each team
has a manager and reps (``teams``, ``team_members``), and a record's owner is mostly the owner
of the record it hangs on, otherwise a teammate of theirs, so a company, its contacts, deals and
activities stay with one team, and row-level security (sql/017) shows a manager their team's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import polars as pl

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
from . import history, rates
from .columns import (
    DAY,
    blank,
    choose,
    concat,
    dates,
    digits,
    gather,
    numbered,
    ref,
    timestamps,
    uuids,
)
from .vocabulary import (
    ACTIVITY_SHARES,
    ADMIN,
    ANALYST,
    AT_LEAST,
    CALL,
    CAMPAIGNS,
    CANCELLED,
    CHAMPION,
    COMPANY_KINDS,
    COMPLETED,
    COUNTRIES,
    CUSTOMER,
    DEAL_TYPE_SHARES,
    FREE_MAIL,
    IN_PROGRESS,
    INACTIVE,
    INDUSTRIES,
    JOB_TITLES,
    LEAD,
    LEAD_SOURCE_SHARES,
    LEAD_SOURCES,
    LOSS_REASONS,
    MANAGER,
    MEETING,
    PENDING,
    PER_SCALE,
    PRODUCTS,
    PROSPECT,
    REP,
    SELLERS_PER_TEAM,
    SIZE_DEAL_FACTOR,
    SIZE_EMPLOYEES,
    SIZE_SHARES,
    SUBJECTS,
    TASK,
    TEAM_NAMES,
    WIN_REASONS,
    pools,
    slug,
)

TABLES = tuple(PER_SCALE)  # the generated records, parents before children
HISTORY_TABLES = ("audit_log", "exchange_rates")  # what the deals' past and the rates add
TEAM_TABLES = ("teams", "team_members")  # the sales staff's teams, one per manager
LOADED = (*TABLES, *HISTORY_TABLES, *TEAM_TABLES)  # every table a load writes, in the order of the COPYs


def row_counts(scale: float = 1) -> dict[str, int]:
    """Records per table at ``scale``: at least one of each, so tiny scales still link up, and
    at least an admin, an analyst, a manager and a rep.

    Activities are those logged by hand; each deal's stage changes add one more per move.
    """
    return {table: max(AT_LEAST.get(table, 1), round(n * scale)) for table, n in PER_SCALE.items()}


@dataclass(frozen=True)
class Stage:
    """A pipeline stage, as the generator needs it."""

    id: str
    probability: Decimal
    won: bool
    lost: bool
    required_fields: tuple[str, ...]
    name: str = ""

    @property
    def closed(self) -> bool:
        return self.won or self.lost


def generate(
    stages: Sequence[Stage],
    *,
    scale: float = 1,
    seed: int = 42,
    today: dt.date,
    timezone: str = "UTC",
    on_table: Callable[[str, int], None] | None = None,
) -> dict[str, pl.DataFrame]:
    """The demo rows as one polars frame per table (in load order), columns named as in the database.

    ``timezone`` is the offset the audit log's row images write timestamps with (the loading
    session's, as the services write them). ``on_table(name, rows)`` is called as each frame is ready.
    """
    return Generator(stages, row_counts(scale), seed, today).frames(timezone, on_table or (lambda table, rows: None))


# -- the plans: one array per column, one element per record --------------------------------


@dataclass
class UserPlan:
    first_name: np.ndarray  # indexes into the pools
    last_name: np.ndarray
    role: np.ndarray
    created: np.ndarray  # seconds since the epoch
    sellers: np.ndarray  # the users who own records: managers and reps (not the admin or the analyst)
    team: np.ndarray  # per user, the team they sell in (the one they manage, or are a member of); -1: none
    managers: np.ndarray  # per team, its manager's user index

    def teammate(self, rng: np.random.Generator, owner: np.ndarray) -> np.ndarray:
        """For each owner, another seller of their team, at random (every team has two at least)."""
        roster = self.sellers[np.lexsort((self.sellers, self.team[self.sellers]))]  # grouped by team
        size = np.bincount(self.team[roster])
        start = np.concatenate([[0], np.cumsum(size)[:-1]])
        place = np.empty(len(self.team), dtype=np.int64)
        place[roster] = np.arange(len(roster))
        team = self.team[owner]
        step = rng.integers(1, size[team])
        return roster[start[team] + (place[owner] - start[team] + step) % size[team]]


@dataclass
class CompanyPlan:
    country: np.ndarray  # index into COUNTRIES
    size: np.ndarray  # index into COMPANY_SIZES
    employees: np.ndarray
    revenue: np.ndarray
    owner: np.ndarray  # user index
    day: np.ndarray  # created on this day (relative to today); pushed earlier by their contacts
    created: np.ndarray | None = None


@dataclass
class ContactPlan:
    company: np.ndarray  # company index, -1 for none
    primary: np.ndarray
    day: np.ndarray
    owner: np.ndarray
    created: np.ndarray | None = None
    lifecycle: np.ndarray | None = None
    score: np.ndarray | None = None


@dataclass
class DealPlan:
    contact: np.ndarray  # the contact index the deal was drawn from (its company's)
    company: np.ndarray
    stage: np.ndarray  # stage index, where the deal is today
    won: np.ndarray
    closed: np.ndarray
    along: np.ndarray  # how far along the open stages an open deal is, 0 (first) to 1 (last)
    day: np.ndarray  # created
    close_day: np.ndarray  # closed deals: the day they closed; 0 for open ones
    expected_day: np.ndarray  # expected close date, as it is today
    first_contact_day: np.ndarray
    value_cents: np.ndarray  # value as it is today, in cents
    type: np.ndarray
    owner: np.ndarray  # user index, owner today
    reason: np.ndarray  # index into WIN_REASONS + LOSS_REASONS
    blank: dict[str, np.ndarray]  # optional fields left empty
    created: np.ndarray | None = None
    past: history.History | None = None


@dataclass
class ActivityPlan:
    deal: np.ndarray  # what it is about: a deal, a contact or a company (-1 where not)
    contact: np.ndarray
    company: np.ndarray
    owner: np.ndarray
    kind: np.ndarray  # index into ACTIVITY_TYPES
    status: np.ndarray
    duration: np.ndarray  # minutes
    created: np.ndarray
    scheduled: np.ndarray
    scheduled_blank: np.ndarray
    due: np.ndarray
    due_blank: np.ndarray
    completed: np.ndarray
    completed_blank: np.ndarray
    updated: np.ndarray


class Generator:
    """Draws the plans first (links and dates), then builds the text of each frame.

    Days are counted relative to ``today`` (day 0 starts at midnight UTC); history ends
    yesterday, future tasks and meetings start tomorrow. A parent record is always created
    at least a day before anything that refers to it.
    """

    def __init__(self, stages: Sequence[Stage], counts: dict[str, int], seed: int, today: dt.date):
        # One stream per concern, so that drawing more of one leaves the others' draws alone.
        self.rng = np.random.default_rng(seed)
        self.history_rng = np.random.default_rng([seed, 1])
        self.rates_rng = np.random.default_rng([seed, 2])
        self.teams_rng = np.random.default_rng([seed, 3])
        self.pools = pools(seed)
        self.stages = list(stages)
        self.n = counts
        self.today = today
        self.epoch_day = (today - dt.date(1970, 1, 1)).days
        self.now = self.epoch_day * DAY
        self.system = pl.lit(SYSTEM_USER_ID)

    def frames(self, timezone: str, on_table: Callable[[str, int], None]) -> dict[str, pl.DataFrame]:
        self.users = self._plan_users()
        self.companies = self._plan_companies()
        self.contacts = self._plan_contacts()
        self.deals = self._plan_deals()
        self.activities = self._plan_activities()
        self._plan_lifecycle()
        past = self.deals.past
        past.observe_activities(*self._completed_on_deals())
        frames = {}
        for table, build in (
            ("users", self._users),
            ("companies", self._companies),
            ("contacts", self._contacts),
            ("deals", self._deals),
        ):
            frames[table] = build()
            on_table(table, frames[table].height)
        changes = past.stage_changes(self.stages, frames["deals"], self.user_ids, uuids(self.history_rng, past.moves))
        frames["activities"] = pl.concat([self._activities(), changes], how="diagonal_relaxed")
        on_table("activities", frames["activities"].height)
        frames["audit_log"] = past.audit_log(self.stages, frames["deals"], self.user_ids, timezone)
        on_table("audit_log", frames["audit_log"].height)
        first_day = int(self.deals.day.min()) - 30  # rates from a month before the first deal to today
        currencies = [c.currency for c in COUNTRIES]
        frames["exchange_rates"] = rates.walk(
            self.rates_rng, currencies, self.today + dt.timedelta(days=first_day), self.today
        )
        on_table("exchange_rates", frames["exchange_rates"].height)
        frames["teams"], frames["team_members"] = self._teams()
        for table in TEAM_TABLES:
            on_table(table, frames[table].height)
        return frames

    # -- helpers -----------------------------------------------------------------------

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
        """Mostly the preferred owner (a related record's); otherwise a teammate of theirs."""
        other = self.users.teammate(self.rng, preferred)
        return np.where(self.rng.random(len(preferred)) < keep, preferred, other)

    def _updated(self, created: np.ndarray) -> np.ndarray:
        """A later edit, before today."""
        return self._between(created, np.full(len(created), self.now - 6 * 3600))

    # -- the plans ---------------------------------------------------------------------

    def _plan_users(self) -> UserPlan:
        n, rng = self.n["users"], self.rng
        first = rng.integers(len(self.pools.first_names), size=n)
        last = rng.integers(len(self.pools.last_names), size=n)
        created = self.now + (-1_200 - rng.integers(0, 90, n)) * DAY + rng.integers(8 * 12, 18 * 12, n) * 300
        # The first user is the admin, the second the analyst; the rest sell (row_counts keeps
        # two at least). Who manages and who sells in which team come from a stream of their
        # own: some sellers, one per team, manage; the reps are dealt out over the teams in turn.
        role = np.full(n, REP)
        role[0], role[1] = ADMIN, ANALYST
        sellers = np.arange(2, n)
        teams = max(1, len(sellers) // SELLERS_PER_TEAM)
        order = self.teams_rng.permutation(sellers)
        managers = order[:teams]
        role[managers] = MANAGER
        team = np.full(n, -1)
        team[managers] = np.arange(teams)
        team[order[teams:]] = np.arange(len(sellers) - teams) % teams
        return UserPlan(first, last, role, created, sellers, team, managers)

    def _plan_companies(self) -> CompanyPlan:
        n, rng = self.n["companies"], self.rng
        country = self._pick(n, [c.share for c in COUNTRIES])
        size = self._pick(n, SIZE_SHARES)
        low, high = np.array(SIZE_EMPLOYEES).T
        log_employees = rng.uniform(np.log(low[size]), np.log(high[size] + 1))
        employees = np.clip(np.exp(log_employees).astype(np.int64), low[size], high[size])
        revenue = np.round(employees * rng.lognormal(np.log(150_000), 0.5, n), -3)
        owner = self.users.sellers[rng.integers(len(self.users.sellers), size=n)]
        return CompanyPlan(country, size, employees, revenue, owner, day=-rng.integers(2, 3 * 365, n))

    def _plan_contacts(self) -> ContactPlan:
        n, rng, companies = self.n["contacts"], self.rng, self.companies
        # Bigger companies have more contacts; contacts of a company sit together, the
        # first one is its primary contact, and a few contacts belong to no company.
        has_company = rng.random(n) < 0.96
        has_company[0] = True
        weight = np.log1p(companies.employees) + 1
        drawn = np.sort(rng.choice(self.n["companies"], has_company.sum(), p=weight / weight.sum()))
        company = np.concatenate([drawn, np.full(n - len(drawn), -1)])
        primary = np.zeros(n, dtype=bool)
        primary[: len(drawn)] = np.r_[True, drawn[1:] != drawn[:-1]]
        parent_day = np.where(company >= 0, companies.day[company], -3 * 365)
        day = parent_day + 1 + (rng.random(n) * (-1 - parent_day)).astype(np.int64)
        parent_owner = np.where(company >= 0, companies.owner[company], self.users.sellers[0])
        return ContactPlan(company, primary, day, self._owners(parent_owner, 0.8))

    def _plan_deals(self) -> DealPlan:
        n, rng, stages, contacts = self.n["deals"], self.rng, self.stages, self.contacts
        with_company = int((contacts.company >= 0).sum())
        contact = rng.integers(with_company, size=n)
        company = contacts.company[contact]
        stage = self._pick(n, _stage_shares(stages))
        won = np.array([s.won for s in stages])[stage]
        lost = np.array([s.lost for s in stages])[stage]
        closed = won | lost
        open_rank = np.cumsum([not s.closed for s in stages]) - 1
        along = (open_rank / max(open_rank[-1], 1))[stage]

        # Open deals: later stages are older and expected to close sooner, mostly in the
        # coming year. Closed deals closed during the past eighteen months after a sales
        # cycle of weeks to months, near the date they were expected to.
        close_day = -rng.integers(1, 540, n)
        cycle = np.clip(rng.lognormal(np.log(45), 0.6, n), 3, 365).astype(np.int64)
        open_age = np.clip(rng.exponential(20 + 60 * along), 1, 730).astype(np.int64)
        day = np.where(closed, close_day - cycle, -open_age)
        horizon = 365 * (1 - 0.6 * along)
        expected_day = np.where(
            closed,
            close_day + np.round(rng.normal(0, 20, n)).astype(np.int64),
            -14 + (rng.random(n) * (horizon + 14)).astype(np.int64),
        )
        first_contact_day = day - rng.integers(0, 15, n)

        # Parents predate the deal: push contacts, then companies, earlier where needed.
        np.minimum.at(contacts.day, contact, first_contact_day - 1)
        linked = contacts.company >= 0
        np.minimum.at(self.companies.day, contacts.company[linked], contacts.day[linked] - 1)

        size = self.companies.size[company]
        value = rng.lognormal(np.log(12_000), 1.1, n) * np.array(SIZE_DEAL_FACTOR)[size]
        value = np.where(value < 10_000, np.round(np.clip(value, 300, None), -1), np.round(value, -2))
        value_cents = np.minimum(value, 5_000_000).astype(np.int64) * 100
        deal_type = self._pick(n, [DEAL_TYPE_SHARES[t] for t in DEAL_TYPES])
        owner = self._owners(contacts.owner[contact], 0.85)
        reason = np.where(
            won, rng.integers(len(WIN_REASONS), size=n), len(WIN_REASONS) + rng.integers(len(LOSS_REASONS), size=n)
        )
        blanks = {  # optional fields left empty at random, unless a stage on the deal's path requires them
            "contact_id": rng.random(n) < 0.08,
            "value": ~closed & (rng.random(n) < 0.4 * (1 - along)),
            "expected_close_date": ~closed & (rng.random(n) < 0.1 * (1 - along)),
            "close_reason": ~closed | (won & (rng.random(n) < 0.4)),
            "description": rng.random(n) < 0.5,
            "lead_source": rng.random(n) < 0.1,
            "campaign": rng.random(n) < 0.55,
        }
        plan = DealPlan(
            contact,
            company,
            stage,
            won,
            closed,
            along,
            day,
            np.where(closed, close_day, 0),
            expected_day,
            first_contact_day,
            value_cents,
            deal_type,
            owner,
            reason,
            blanks,
        )
        self.contacts.created = self._at(contacts.day)
        self.companies.created = self._at(self.companies.day)
        plan.created = self._at(day)
        plan.past = history.draw(self.history_rng, stages, plan, self.users.teammate, self.now)
        return plan

    def _plan_activities(self) -> ActivityPlan:
        n, rng, deals, contacts, companies = self.n["activities"], self.rng, self.deals, self.contacts, self.companies
        yesterday_evening = self.now - 6 * 3600
        # A deal's activities happened while its history was being written: up to two hours
        # (a long call) before its latest change, so that no completed activity is newer than
        # the deal's last audited state (which carries last_activity_at).
        deal_start = deals.created + 300
        deal_end = deals.past.last_change - 2 * 3600
        span = np.maximum(deal_end - deal_start, 0) / DAY

        # What an activity is about: a deal (its contact and company), a contact (its
        # company), or a company alone. Deals that ran longer saw more activity; deals
        # without a day between their first and last change see none.
        about = self._pick(n, (0.6, 0.3, 0.1))
        weight = np.where(span >= 1, span + 10, 0)
        if not weight.any():
            about[about == 0] = 1
        cases = [about == 0, about == 1]  # a deal, a contact; else a company
        chosen = rng.choice(self.n["deals"], n, p=weight / weight.sum()) if weight.any() else np.zeros(n, np.int64)
        deal = np.where(cases[0], chosen, -1)
        contact = rng.integers(self.n["contacts"], size=n)
        company = rng.integers(self.n["companies"], size=n)
        deal_contact = np.where(deals.blank["contact_id"], -1, deals.contact)
        start = np.select(cases, [deal_start[deal], contacts.created[contact] + 300], companies.created[company] + 300)
        end = np.where(cases[0], deal_end[deal], yesterday_evening)
        preferred = np.select(cases, [deals.owner[deal], contacts.owner[contact]], companies.owner[company])

        # Calls, meetings and tasks can still be ahead where the deal is open: those are
        # pending (tasks also in progress) and due or scheduled after today. The rest
        # happened between the record's creation and its last change (or yesterday).
        kind = self._pick(n, [ACTIVITY_SHARES.get(t, 0) for t in ACTIVITY_TYPES])
        open_window = ~cases[0] | ~deals.closed[deal]
        roll = rng.random(n)
        ahead = open_window & np.select(
            [kind == TASK, kind == MEETING, kind == CALL], [roll < 0.35, roll < 0.15, roll < 0.05], False
        )
        cancelled = ~ahead & np.isin(kind, (CALL, MEETING)) & (rng.random(n) < 0.05)
        status = np.select(
            [ahead & (kind == TASK) & (rng.random(n) < 0.3), ahead, cancelled],
            [IN_PROGRESS, PENDING, CANCELLED],
            COMPLETED,
        )
        moment = self._between(start, end)
        future = self._at(rng.integers(1, 31, n))
        duration = np.select(
            [kind == CALL, kind == MEETING],
            [
                np.clip(rng.lognormal(np.log(12), 0.7, n), 1, 120).astype(np.int64),
                np.array([30, 45, 60, 90])[rng.integers(0, 4, n)],
            ],
            0,
        )
        timed = np.isin(kind, (CALL, MEETING))
        planned = np.isin(kind, (MEETING, TASK))  # created some days before they happen
        lead_time = np.where(planned & ~ahead, rng.integers(0, 8, n) * DAY, 0)
        completed = moment + duration * 60
        completed_blank = status != COMPLETED
        updated = np.where(completed_blank, moment, completed)
        created = np.maximum(moment - lead_time, start)
        return ActivityPlan(
            deal=deal,
            contact=np.select(cases, [deal_contact[deal], contact], -1),
            company=np.select(cases, [deals.company[deal], contacts.company[contact]], company),
            owner=self._owners(preferred, 0.9),
            kind=kind,
            status=status,
            duration=duration,
            created=created,
            scheduled=np.where(ahead, future, moment),
            scheduled_blank=~timed,
            due=np.where(ahead, future, moment + rng.integers(0, 3, n) * DAY),
            due_blank=kind != TASK,
            completed=completed,
            completed_blank=completed_blank,
            updated=np.where(ahead, created, updated),
        )

    def _plan_lifecycle(self) -> None:
        """Contacts on won deals are customers (some champions), on open deals prospects;
        their colleagues are often customers too; the rest are leads, some gone quiet."""
        n, rng, deals, contacts = self.n["contacts"], self.rng, self.deals, self.contacts
        on_deal = ~deals.blank["contact_id"]
        stage = np.where(rng.random(n) < 0.15, INACTIVE, LEAD)
        won_companies = np.zeros(self.n["companies"], dtype=bool)
        won_companies[deals.company[deals.won]] = True
        colleague = (contacts.company >= 0) & won_companies[np.maximum(contacts.company, 0)]
        stage[colleague & (rng.random(n) < 0.4)] = CUSTOMER
        stage[deals.contact[on_deal & ~deals.closed]] = PROSPECT
        winners = deals.contact[on_deal & deals.won]
        stage[winners] = np.where(rng.random(len(winners)) < 0.25, CHAMPION, CUSTOMER)
        contacts.lifecycle = stage
        score = {LEAD: (30, 15), PROSPECT: (60, 15), CUSTOMER: (75, 12), CHAMPION: (90, 8), INACTIVE: (10, 8)}
        mean, spread = np.array([score[i] for i in range(len(LIFECYCLE_STAGES))]).T
        contacts.score = np.clip(np.round(rng.normal(mean[stage], spread[stage])), 0, 100).astype(np.int64)

    def _completed_on_deals(self) -> tuple[np.ndarray, np.ndarray]:
        """Completed activities on deals (deal index, seconds), stage changes included."""
        plan, past = self.activities, self.deals.past
        done = (plan.deal >= 0) & (plan.status == COMPLETED)
        return (np.concatenate([plan.deal[done], past.move_deal]), np.concatenate([plan.completed[done], past.move_at]))

    # -- the frames --------------------------------------------------------------------

    def _bookkeeping(self, created: np.ndarray, updated: np.ndarray) -> dict:
        return {
            "created_at": timestamps(created),
            "updated_at": timestamps(updated),
            "created_by": self.system,
            "updated_by": self.system,
            "version": pl.lit(1),
        }

    def _users(self) -> pl.DataFrame:
        n, pools, plan = self.n["users"], self.pools, self.users
        self.user_ids = uuids(self.rng, n)
        first = gather(pools.first_names, plan.first_name)
        last = gather(pools.last_names, plan.last_name)
        slugs = [slug(v) for v in pools.first_names], [slug(v) for v in pools.last_names]
        local = concat(gather(slugs[0], plan.first_name), ".", gather(slugs[1], plan.last_name))
        return pl.select(
            id=self.user_ids,
            email=numbered(local, "@demo.example"),
            full_name=concat(first, " ", last),
            role=gather(ROLES, plan.role),
            active=pl.lit(True),
            **self._bookkeeping(plan.created, plan.created),
        )

    def _teams(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The teams (named from TEAM_NAMES, numbered past its end) and their reps as members; a
        manager leads their team without being a member. Formed the day after the last user joined."""
        plan, count = self.users, len(self.users.managers)
        ids = uuids(self.teams_rng, count)
        names = [
            TEAM_NAMES[i % len(TEAM_NAMES)] + (f" {i // len(TEAM_NAMES) + 1}" if i >= len(TEAM_NAMES) else "")
            for i in range(count)
        ]
        formed = int(plan.created.max()) + DAY
        teams = pl.select(
            id=ids,
            name=pl.Series(values=names, dtype=pl.String),
            manager_id=ref(self.user_ids, plan.managers),
            created_at=timestamps(np.full(count, formed)),
            created_by=self.system,
        )
        reps = np.flatnonzero((plan.team >= 0) & (plan.role == REP))
        members = pl.select(
            team_id=ids.gather(plan.team[reps]),
            user_id=ref(self.user_ids, reps),
            added_at=timestamps(np.full(len(reps), formed)),
            added_by=self.system,
        )
        return teams, members

    def _companies(self) -> pl.DataFrame:
        n, rng, pools, plan = self.n["companies"], self.rng, self.pools, self.companies
        self.company_ids = uuids(rng, n)
        country = plan.country
        # "Word Kind", "Word Kind Ltd" or "Word-Word"; the domain is the name without the legal suffix.
        words = len(pools.company_words)
        first = rng.integers(words, size=n)
        second = (first + rng.integers(1, words, size=n)) % words  # never the same word twice
        word, other = gather(pools.company_words, first), gather(pools.company_words, second)
        kind = gather(COMPANY_KINDS, rng.integers(len(COMPANY_KINDS), size=n))
        form = self._pick(n, (0.6, 0.25, 0.15))
        core = choose(form == 2, concat(word, "-", other), concat(word, " ", kind))
        suffix = gather([c.legal_suffix for c in COUNTRIES], country)
        name = choose(form == 1, concat(core, " ", suffix), core)
        tld = gather([c.tld for c in COUNTRIES], country)
        domain = numbered(core.str.to_lowercase().str.replace_all("[^a-z]", ""), concat(".", tld))
        mailbox = gather(("info", "hello", "contact", "sales", "office"), rng.integers(0, 5, n))
        city = gather(pools.cities, self._within(country, pools.city_counts))
        street = gather(pools.streets, self._within(country, pools.street_counts))
        postcode = gather(pools.postcodes, self._within(country, pools.postcode_counts))
        address = concat(
            '{"street": "',
            digits(rng.integers(1, 400, n), 1),
            " ",
            street,
            '", "city": "',
            city,
            '", "postal_code": "',
            postcode,
            '", "country": "',
            gather([c.code for c in COUNTRIES], country),
            '"}',
        )
        frame = pl.select(
            id=self.company_ids,
            name=name,
            domain=domain,
            industry=gather(INDUSTRIES, rng.integers(len(INDUSTRIES), size=n)),
            size=gather(COMPANY_SIZES, plan.size),
            employees=pl.Series(values=plan.employees, dtype=pl.Int32),
            annual_revenue=pl.Series(values=plan.revenue).cast(pl.Decimal(16, 2)),
            website=concat("https://www.", domain),
            phone=self._phones(country),
            email=concat(mailbox, "@", domain),
            address=address,
            owner_id=ref(self.user_ids, plan.owner),
            **self._bookkeeping(plan.created, self._updated(plan.created)),
        )
        self.company_names, self.company_domains = frame["name"], frame["domain"]
        return frame

    def _phones(self, country: np.ndarray) -> pl.Series:
        n = len(country)
        return concat(
            gather([c.phone_prefix for c in COUNTRIES], country),
            " ",
            digits(self.rng.integers(200, 1_000, n), 3),
            " ",
            digits(self.rng.integers(0, 1_000, n), 3),
            " ",
            digits(self.rng.integers(0, 10_000, n), 4),
        )

    def _contacts(self) -> pl.DataFrame:
        n, rng, pools, plan = self.n["contacts"], self.rng, self.pools, self.contacts
        self.contact_ids = uuids(rng, n)
        has_company = plan.company >= 0
        company = np.maximum(plan.company, 0)
        country = np.where(has_company, self.companies.country[company], self._pick(n, [c.share for c in COUNTRIES]))
        first_idx = rng.integers(len(pools.first_names), size=n)
        last_idx = rng.integers(len(pools.last_names), size=n)
        local = concat(
            gather([slug(v) for v in pools.first_names], first_idx),
            ".",
            gather([slug(v) for v in pools.last_names], last_idx),
        )
        free_mail = gather(FREE_MAIL, rng.integers(len(FREE_MAIL), size=n))
        domain = choose(has_company, self.company_domains.gather(company), free_mail)
        email = numbered(local, concat("@", domain))
        zones = [z for c in COUNTRIES for z in c.timezones]
        timezone = gather(zones, self._within(country, [len(c.timezones) for c in COUNTRIES]))
        profile = email.str.split("@").list.first().str.replace_all(".", "-", literal=True)
        linkedin = concat('{"linkedin": "https://www.linkedin.com/in/', profile, '"}')
        return pl.select(
            id=self.contact_ids,
            company_id=ref(self.company_ids, plan.company),
            first_name=gather(pools.first_names, first_idx),
            last_name=gather(pools.last_names, last_idx),
            email=email,
            phone=self._phones(country),
            job_title=gather(JOB_TITLES, rng.integers(len(JOB_TITLES), size=n)),
            preferred_contact_method=gather(CONTACT_METHODS, self._pick(n, (0.55, 0.25, 0.05, 0.15))),
            timezone=timezone,
            is_primary=pl.Series(values=plan.primary),
            lead_source=gather(LEAD_SOURCES, self._pick(n, LEAD_SOURCE_SHARES)),
            lead_score=pl.Series(values=plan.score, dtype=pl.Int32),
            lifecycle_stage=gather(LIFECYCLE_STAGES, plan.lifecycle),
            social_profiles=choose(rng.random(n) < 0.6, linkedin),
            owner_id=ref(self.user_ids, plan.owner),
            **self._bookkeeping(plan.created, self._updated(plan.created)),
        )

    def _deals(self) -> pl.DataFrame:
        """Deals as their histories left them: every column their last audit row's image shows."""
        n, rng, plan = self.n["deals"], self.rng, self.deals
        blanks, final = plan.blank, plan.past.final
        self.deal_ids = uuids(rng, n)
        product = self._within(plan.type, [len(PRODUCTS[t]) for t in DEAL_TYPES])
        title = concat(
            self.company_names.gather(plan.company),
            " – ",
            gather([p for t in DEAL_TYPES for p in PRODUCTS[t]], product),
        )
        created_year = pl.Series(values=(plan.day + self.epoch_day), dtype=pl.Int32).cast(pl.Date).dt.year()
        campaign = concat(created_year.cast(pl.String), " ", gather(CAMPAIGNS, rng.integers(len(CAMPAIGNS), size=n)))
        currency = gather([c.currency for c in COUNTRIES], self.companies.country[plan.company])
        description = gather(self.pools.deal_notes, rng.integers(len(self.pools.deal_notes), size=n))
        return pl.select(
            id=self.deal_ids,
            company_id=self.company_ids.gather(plan.company),
            contact_id=ref(self.contact_ids, np.where(blanks["contact_id"], -1, plan.contact)),
            stage_id=gather([s.id for s in self.stages], final.stage),
            owner_id=ref(self.user_ids, final.owner),
            title=title,
            description=blank(description, blanks["description"]),
            value=history.money(final.value_cents),
            currency=currency,
            probability=gather([s.probability for s in self.stages], final.stage, pl.Decimal(5, 4)),
            expected_close_date=history.days(self.now, final.expected_day),
            actual_close_date=history.days(self.now, final.close_day),
            first_contact_date=dates(self.epoch_day + plan.first_contact_day),
            last_activity_at=history.instants(final.last_activity),
            lead_source=blank(gather(LEAD_SOURCES, self._pick(n, LEAD_SOURCE_SHARES)), blanks["lead_source"]),
            campaign=blank(campaign, blanks["campaign"]),
            type=gather(DEAL_TYPES, plan.type),
            priority=gather(PRIORITIES, self._pick(n, (0.25, 0.5, 0.2, 0.05))),
            close_reason=history.reasons(final.reason),
            created_at=timestamps(plan.created),
            updated_at=timestamps(final.at),
            created_by=ref(self.user_ids, plan.past.creator),
            updated_by=ref(self.user_ids, final.owner),
            version=pl.Series(values=final.version, dtype=pl.Int32),
            stage_entered_at=timestamps(final.entered),
            product_id=pl.lit(None, dtype=pl.String),  # demo deals name no product (sql/011)
        )

    def _activities(self) -> pl.DataFrame:
        n, rng, pools, plan = self.n["activities"], self.rng, self.pools, self.activities
        subject = self._within(plan.kind, [len(SUBJECTS.get(t, ())) for t in ACTIVITY_TYPES])
        notes = gather(pools.activity_notes, rng.integers(len(pools.activity_notes), size=n))
        return pl.select(
            id=uuids(rng, n),
            deal_id=ref(self.deal_ids, plan.deal),
            contact_id=ref(self.contact_ids, plan.contact),
            company_id=ref(self.company_ids, plan.company),
            owner_id=ref(self.user_ids, plan.owner),
            type=gather(ACTIVITY_TYPES, plan.kind),
            subject=gather([s for t in ACTIVITY_TYPES for s in SUBJECTS.get(t, ())], subject),
            description=blank(notes, rng.random(n) < 0.6),
            scheduled_at=timestamps(plan.scheduled, plan.scheduled_blank),
            completed_at=timestamps(plan.completed, plan.completed_blank),
            due_at=timestamps(plan.due, plan.due_blank),
            duration_minutes=blank(pl.Series(values=plan.duration, dtype=pl.Int32), plan.scheduled_blank),
            status=gather(ACTIVITY_STATUSES, plan.status),
            priority=gather(PRIORITIES, self._pick(n, (0.2, 0.6, 0.15, 0.05))),
            **self._bookkeeping(plan.created, plan.updated),
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
