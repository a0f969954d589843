"""Deals' pasts: each deal's path through the pipeline, as the audit log and stage changes record it.

Every deal is created in an open stage and moves forward one stage at a time; closed deals end
with a move to their won or lost stage. Along the way values are edited, expected close dates
pushed out and some deals handed on within their owner's team ('update' rows); some deals were
closed once and reopened (moved back to the open stage they were in, their close reason
cleared). Deals as they are today (generation.py) are the last state of these histories, so
the audit log is exact: a deal's state at any moment is the ``after`` image of its latest audit
row at or before it, every ``before`` is the previous row's ``after``, and each move has its
stage_change activity at the same instant, as :meth:`DealService.move` writes them.

``last_activity_at`` is the one column the services change without an audit row (logging an
activity touches it). Each image here carries it as of its own moment, the newest completed
activity then; a deal's activities happen before its last audited change, so the stored row
and its last image agree.

Everything is drawn per deal as a small matrix (one column per possible event, unused ones
masked), sorted by time, filled forward and flattened: no Python loop over deals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ..errors import CrmError
from .columns import DAY, RAW, concat, decimal_text, gather, json_object, ref, timestamps
from .vocabulary import LOSS_REASONS, WIN_REASONS

if TYPE_CHECKING:
    from .generation import DealPlan, Stage

NONE = np.iinfo(np.int64).min  # a null value (no value, no date, no reason)
KEEP = NONE + 1  # an event that leaves the field as it was
CLOSED_THEN = NONE + 2  # a closing move's close date: the day it happens, known once it is timed
OPERATIONS = ("create", "move", "update")
CREATE, MOVE, UPDATE = range(3)
REASONS = WIN_REASONS + LOSS_REASONS
GAP = 300  # seconds between two changes of one deal, at least


@dataclass
class DealState:
    """Deals' fields that change over their histories, one element per event (or per deal)."""

    at: np.ndarray  # seconds since the epoch
    operation: np.ndarray
    owner: np.ndarray  # user index; also who made the change
    stage: np.ndarray
    value_cents: np.ndarray  # NONE: no value
    expected_day: np.ndarray  # expected close date, days relative to today; NONE: none
    close_day: np.ndarray  # actual close date, likewise
    reason: np.ndarray  # index into REASONS, NONE: none
    entered: np.ndarray  # stage_entered_at
    version: np.ndarray
    last_activity: np.ndarray | None = None  # last_activity_at; NONE: none

    def take(self, index: np.ndarray) -> DealState:
        return DealState(**{k: None if v is None else v[index] for k, v in vars(self).items()})


@dataclass
class History:
    """Every deal's events in order (deal by deal, oldest first), and where that left each deal."""

    deal: np.ndarray  # deal index per event
    events: DealState
    first: np.ndarray  # the event is its deal's first
    final: DealState  # per deal: its last event's state
    creator: np.ndarray  # per deal: the user who created it
    now: int

    @property
    def last_change(self) -> np.ndarray:
        return self.final.at

    @property
    def is_move(self) -> np.ndarray:
        return self.events.operation == MOVE

    @property
    def moves(self) -> int:
        return int(self.is_move.sum())

    @property
    def move_deal(self) -> np.ndarray:
        return self.deal[self.is_move]

    @property
    def move_at(self) -> np.ndarray:
        return self.events.at[self.is_move]

    def observe_activities(self, deal: np.ndarray, completed: np.ndarray) -> None:
        """Set ``last_activity_at`` per event: the newest of the deal's completed activities
        (``deal``, ``completed`` seconds; stage changes included) at or before the event."""
        base = min(int(self.events.at.min()), int(completed.min()) if len(completed) else 0) - 1
        act_key = np.sort((deal.astype(np.int64) << 32) | (completed - base))
        event_key = (self.deal.astype(np.int64) << 32) | (self.events.at - base)
        index = np.searchsorted(act_key, event_key, side="right") - 1
        found = act_key[np.maximum(index, 0)]
        same_deal = (index >= 0) & ((found >> 32) == self.deal)
        self.events.last_activity = np.where(same_deal, (found & 0xFFFFFFFF) + base, NONE)
        last_event = np.r_[np.flatnonzero(self.first)[1:] - 1, len(self.deal) - 1]
        self.final.last_activity = self.events.last_activity[last_event]

    # -- the frames --------------------------------------------------------------------

    def stage_changes(
        self, stages: Sequence[Stage], deals: pl.DataFrame, user_ids: pl.Series, ids: pl.Series
    ) -> pl.DataFrame:
        """The stage_change activity of every move, as :meth:`DealService.move` logs it."""
        moved = np.flatnonzero(self.is_move)
        deal, to_stage = self.deal[moved], self.events.stage[moved]
        from_stage = self.events.stage[moved - 1]  # a move is never a deal's first event
        stage_ids, names = [s.id for s in stages], [s.name for s in stages]
        at = timestamps(self.events.at[moved])
        actor = ref(user_ids, self.events.owner[moved])
        return pl.select(
            id=ids,
            deal_id=deals["id"].gather(deal),
            contact_id=deals["contact_id"].gather(deal),
            company_id=deals["company_id"].gather(deal),
            owner_id=actor,
            type=pl.lit("stage_change"),
            subject=concat("Stage: ", gather(names, from_stage), " \u2192 ", gather(names, to_stage)),
            completed_at=at,
            status=pl.lit("completed"),
            priority=pl.lit("medium"),
            external_data=concat(
                '{"from_stage_id": "',
                gather(stage_ids, from_stage),
                '", "to_stage_id": "',
                gather(stage_ids, to_stage),
                '"}',
            ),
            created_at=at,
            updated_at=at,
            created_by=actor,
            updated_by=actor,
            version=pl.lit(1),
        )

    def audit_log(
        self, stages: Sequence[Stage], deals: pl.DataFrame, user_ids: pl.Series, timezone: str = "UTC"
    ) -> pl.DataFrame:
        """One audit row per event, oldest first, with the deal's row image before and after it."""
        images = json_object(self.images(stages, deals, user_ids), timezone)
        frame = pl.select(
            user_id=ref(user_ids, self.events.owner),
            at=timestamps(self.events.at),
            entity=pl.lit("deals"),
            entity_id=deals["id"].gather(self.deal),
            operation=gather(OPERATIONS, self.events.operation),
            before=pl.when(pl.lit(pl.Series(values=self.first))).then(None).otherwise(images.shift(1)),
            after=images,
        )
        return frame.sort("at", "entity_id", maintain_order=True)

    def images(self, stages: Sequence[Stage], deals: pl.DataFrame, user_ids: pl.Series) -> pl.DataFrame:
        """The deal's row after each event, every column ``to_jsonb`` shows (audit.row_image):
        unchanging ones from the deals as they are, the rest from the event."""
        state = self.events
        probability = np.array([int(round(s.probability * 10_000)) for s in stages])[state.stage]
        weighted = np.where(state.value_cents == NONE, NONE, (state.value_cents * probability + 5_000) // 10_000)
        rows = deals.gather(self.deal)
        return rows.with_columns(
            stage_id=gather([s.id for s in stages], state.stage),
            owner_id=ref(user_ids, state.owner),
            value=money(state.value_cents),
            probability=gather([s.probability for s in stages], state.stage, pl.Decimal(5, 4)),
            expected_close_date=days(self.now, state.expected_day),
            actual_close_date=days(self.now, state.close_day),
            last_activity_at=instants(state.last_activity),
            close_reason=reasons(state.reason),
            updated_at=timestamps(state.at),
            updated_by=ref(user_ids, state.owner),
            version=pl.Series(values=state.version, dtype=pl.Int32),
            stage_entered_at=timestamps(state.entered),
            weighted_value=money(weighted),
            deleted_at=pl.lit(None, dtype=pl.Datetime("ms", "UTC")),
            **{f"custom_fields{RAW}": pl.lit("{}"), f"tags{RAW}": pl.lit("[]")},  # as the table's defaults
        )


def draw(
    rng: np.random.Generator,
    stages: Sequence[Stage],
    plan: DealPlan,
    teammate: Callable[[np.random.Generator, np.ndarray], np.ndarray],
    now: int,
) -> History:
    """Each deal's history, ending where ``plan`` says the deal is today. A deal handed to its
    owner came from ``teammate(rng, owners)``: another seller of the owner's team.

    Also leaves blank only those of ``plan.blank``'s fields that no stage on a deal's path requires.
    """
    n = len(plan.stage)
    open_stages = np.array([i for i, s in enumerate(stages) if not s.closed], dtype=np.int64)
    if not len(open_stages):
        raise CrmError("demo deals need an open pipeline stage to start in; there is none")
    last = len(open_stages) - 1
    rank = np.full(len(stages), -1)
    rank[open_stages] = np.arange(len(open_stages))

    # The path: from a start stage forward to the furthest open stage reached (where an open
    # deal still is; lost deals fell out early more often than late), maybe closed and
    # reopened there, and for closed deals the closing move.
    reach = np.where(
        ~plan.closed,
        rank[plan.stage],
        np.where(
            plan.won,
            np.where(rng.random(n) < 0.85, last, max(last - 1, 0)),
            np.floor((last + 1) * rng.random(n) ** 1.5).astype(np.int64),
        ),
    )
    reach = np.minimum(reach, last)
    start = np.where(rng.random(n) < 0.2, np.minimum(1, reach), 0)
    forward = reach - start
    won_stages = [i for i, s in enumerate(stages) if s.won]
    lost_stages = [i for i, s in enumerate(stages) if s.lost]
    reopened = (rng.random(n) < np.where(plan.closed, 0.12, 0.06)) & bool(won_stages or lost_stages)
    to_won = (rng.random(n) < 0.2) & bool(won_stages) if lost_stages else np.ones(n, dtype=bool)
    detour = np.where(to_won, won_stages[0] if won_stages else -1, lost_stages[0] if lost_stages else -1)
    _require_along(stages, plan, open_stages, start, reach, np.where(reopened, detour, -1))

    # Slots, one column per possible event: create, path steps (forward moves, the detour's
    # close and reopening), the closing move, two value edits, two pushes, a reassignment.
    path_width = last + 2
    width = 1 + path_width + 1 + 5
    steps = forward + 2 * reopened
    created = plan.created
    closing = now + plan.close_day * DAY + 17 * 3600
    end = np.where(plan.closed, closing, now - 6 * 3600)
    latest = end - 3600 - GAP * width  # room for spacing the changes out without passing ``end``
    span = np.maximum(latest - created, 0)

    column = np.arange(path_width)
    path_fraction = rng.uniform(0.02, np.where(plan.closed, 0.9, 0.85)[:, None], (n, path_width))
    path_fraction[column >= steps[:, None]] = 9
    path_fraction.sort(axis=1)
    # Edits cluster late on open deals (pushes while waiting), anywhere before the close on closed ones.
    draws = rng.random((n, 5))
    edit_fraction = np.where(plan.closed[:, None], 0.02 + 0.96 * draws, 0.02 + 0.98 * np.sqrt(draws))
    fraction = np.concatenate([np.zeros((n, 1)), path_fraction, np.zeros((n, 1)), edit_fraction], axis=1)
    valid = np.zeros((n, width), dtype=bool)
    valid[:, 0] = True
    valid[:, 1 : 1 + path_width] = column < steps[:, None]
    valid[:, 1 + path_width] = plan.closed
    value_edits = np.where(plan.blank["value"], 0, rng.choice(3, n, p=(0.45, 0.4, 0.15)))
    pushes = np.where(plan.blank["expected_close_date"], 0, rng.choice(3, n, p=(0.5, 0.35, 0.15)))
    reassigned = rng.random(n) < 0.07
    edits = 2 + path_width
    valid[:, edits] = value_edits == 2
    valid[:, edits + 1] = value_edits >= 1
    valid[:, edits + 2] = pushes == 2
    valid[:, edits + 3] = pushes >= 1
    valid[:, edits + 4] = reassigned

    # Times: office hours on the drawn day, within the deal's life; path steps stay in path
    # order, each pair of edits in time order; the create first, the closing move last.
    at = created[:, None] + (fraction * span[:, None]).astype(np.int64)
    at = now + (at - now) // DAY * DAY + rng.integers(8 * 12, 18 * 12, (n, width)) * 300
    at = np.clip(at, (created + GAP)[:, None], np.maximum(latest, created + GAP)[:, None])
    at[:, 0] = created
    at[:, 1 + path_width] = np.where(plan.closed, closing, 0)
    path = slice(1, 1 + path_width)
    at[:, path] = np.sort(np.where(valid[:, path], at[:, path], np.iinfo(np.int64).max), axis=1)
    for pair in (slice(edits, edits + 2), slice(edits + 2, edits + 4)):
        at[:, pair] = np.sort(at[:, pair], axis=1)

    # What each slot sets (KEEP: leaves as it was).
    operation = np.full((n, width), UPDATE)
    operation[:, 0] = CREATE
    operation[:, 1 : 2 + path_width] = MOVE
    stage = np.full((n, width), KEEP)
    stage[:, 0] = open_stages[start]
    step_stage = open_stages[np.minimum(start[:, None] + 1 + column, last)]
    step_stage = np.where(column == forward[:, None], detour[:, None], step_stage)
    step_stage = np.where(column == forward[:, None] + 1, open_stages[reach][:, None], step_stage)
    stage[:, path] = step_stage
    stage[:, 1 + path_width] = plan.stage

    value = np.full((n, width), KEEP)
    final_value = np.where(plan.blank["value"], NONE, plan.value_cents)
    earlier = [_round_value(plan.value_cents * _factor(rng, n)) for _ in range(2)]
    value[:, 0] = np.select([plan.blank["value"], value_edits == 0], [NONE, final_value], earlier[0])
    value[:, edits] = earlier[1]
    value[:, edits + 1] = final_value

    expected = np.full((n, width), KEEP)
    final_expected = np.where(plan.blank["expected_close_date"], NONE, plan.expected_day)
    delay = rng.integers(7, 75, (n, 2))
    expected[:, 0] = np.select(
        [plan.blank["expected_close_date"], pushes == 0, pushes == 1],
        [NONE, final_expected, final_expected - delay[:, 1]],
        final_expected - delay.sum(axis=1),
    )
    expected[:, edits + 2] = final_expected - delay[:, 1]
    expected[:, edits + 3] = final_expected

    # Closing moves set the close date (that day) and a reason; reopening and open stages clear both.
    closes = np.isin(stage, [i for i, s in enumerate(stages) if s.closed])
    close_day = np.where(stage == KEEP, KEEP, np.where(closes, CLOSED_THEN, NONE))  # the day: once timed
    reason = np.where(stage == KEEP, KEEP, NONE)
    detour_won = np.isin(detour, won_stages)
    detour_reason = np.where(
        detour_won, rng.integers(len(WIN_REASONS), size=n), len(WIN_REASONS) + rng.integers(len(LOSS_REASONS), size=n)
    )
    reason[:, path] = np.where(closes[:, path], detour_reason[:, None], reason[:, path])
    reason[:, 1 + path_width] = np.where(plan.blank["close_reason"], NONE, plan.reason)

    owner = np.full((n, width), KEEP)
    previous = teammate(rng, plan.owner)
    owner[:, 0] = np.where(reassigned, previous, plan.owner)
    owner[:, edits + 4] = plan.owner

    # In time order (ties keep slot order), filled forward, spaced out, flattened.
    order = np.argsort(np.where(valid, at, np.iinfo(np.int64).max), axis=1, kind="stable")
    sort = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    valid, at = sort(valid), sort(at)
    count = valid.sum(axis=1)
    position = np.arange(width)
    at = np.maximum.accumulate(np.where(valid, at, 0) - GAP * position, axis=1) + GAP * position
    operation = sort(operation)
    close_day = sort(close_day)
    close_day = np.where(close_day == CLOSED_THEN, (at - now) // DAY, close_day)
    entered = np.where(operation == UPDATE, KEEP, at)
    state = {
        name: _fill(a)
        for name, a in (
            ("stage", sort(stage)),
            ("value_cents", sort(value)),
            ("expected_day", sort(expected)),
            ("close_day", close_day),
            ("reason", sort(reason)),
            ("owner", sort(owner)),
            ("entered", entered),
        )
    }
    version = np.broadcast_to(position + 1, (n, width))
    events = DealState(
        at=at[valid],
        operation=operation[valid],
        version=version[valid],
        **{name: a[valid] for name, a in state.items()},
    )
    deal = np.repeat(np.arange(n), count)
    first = np.r_[True, deal[1:] != deal[:-1]]
    last_event = np.cumsum(count) - 1
    return History(deal, events, first, events.take(last_event), owner[:, 0], now)


def _fill(slots: np.ndarray) -> np.ndarray:
    """Each slot's value, or the latest earlier one where it is KEEP (the first slot always sets)."""
    index = np.where(slots != KEEP, np.arange(slots.shape[1]), 0)
    return np.take_along_axis(slots, np.maximum.accumulate(index, axis=1), axis=1)


def _factor(rng: np.random.Generator, n: int) -> np.ndarray:
    """How far an earlier value was from the next: 10 to 40 % either way."""
    return np.where(rng.random(n) < 0.6, rng.uniform(1.1, 1.4, n), rng.uniform(0.6, 0.9, n))


def _round_value(cents: np.ndarray) -> np.ndarray:
    """Whole tens below 10,000, whole hundreds above, as deal values are."""
    step = np.where(cents < 1_000_000, 1_000, 10_000)
    return np.maximum(np.round(cents / step).astype(np.int64) * step, 30_000)


def _require_along(
    stages: Sequence[Stage],
    plan: DealPlan,
    open_stages: np.ndarray,
    start: np.ndarray,
    reach: np.ndarray,
    detour: np.ndarray,
) -> None:
    """Keep blank only fields that no stage on the deal's path requires (the path: open stages
    from ``start`` to ``reach``, the detour's closed stage if any, the stage it is in today)."""
    for field, blank in plan.blank.items():
        required = np.array([field in s.required_fields for s in stages])
        if field == "close_reason" or not required.any():
            continue  # the history sets and clears close reasons itself
        along = np.r_[0, np.cumsum(required[open_stages])]
        on_path = (along[reach + 1] - along[start] > 0) | required[plan.stage]
        on_path |= (detour >= 0) & required[np.maximum(detour, 0)]
        blank &= ~on_path


def money(cents: np.ndarray) -> pl.Series:
    """Amounts in cents as ``numeric(12, 2)``, null where NONE."""
    series = decimal_text(np.where(cents == NONE, 0, cents), 2).cast(pl.Decimal(12, 2))
    return pl.select(pl.when(pl.lit(pl.Series(values=cents == NONE))).then(None).otherwise(series)).to_series()


def days(now: int, day: np.ndarray) -> pl.Series:
    """Days relative to today as dates, null where NONE."""
    missing = day == NONE
    series = pl.Series(values=np.where(missing, 0, day) + now // DAY, dtype=pl.Int32).cast(pl.Date)
    return pl.select(pl.when(pl.lit(pl.Series(values=missing))).then(None).otherwise(series)).to_series()


def instants(seconds: np.ndarray) -> pl.Series:
    """Seconds since the epoch as timestamps, null where NONE."""
    return timestamps(np.where(seconds == NONE, 0, seconds), seconds == NONE)


def reasons(index: np.ndarray) -> pl.Series:
    missing = index == NONE
    series = gather(REASONS, np.where(missing, 0, index))
    return pl.select(pl.when(pl.lit(pl.Series(values=missing))).then(None).otherwise(series)).to_series()
