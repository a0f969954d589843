"""``PipelineBoard``: the pipeline as columns of deal cards, dragged between stages, live.

    from crm_kernel import CRM
    from crm_kernel.widgets.pipeline_board import PipelineBoard

    board = PipelineBoard(CRM.connect(), filters={"owner": "mine"})
    board                      # in JupyterLab or Voilà
    board.close()              # stops listening for changes

The widget is thin: its state lives in synced traits (``columns``, ``filters``, ``sort``,
``notice``, ``prompt``, ``panel``, ``connection``); the front end (``pipeline_board.js``, an ES
module shipped in the package) sends the user's actions as custom messages, which call the
methods below; all data work is :class:`crm_kernel.analytics.Board`'s. Other people's changes
arrive through a :class:`~crm_kernel.services.changes.ChangeListener` on a daemon thread,
handed to the kernel's loop when there is one, so the board is also usable (and closable) in a
plain Python process. ``connection`` is the listener's true state (``"live"``,
``"reconnecting"``, ``"offline"``); after every reconnection the board reloads, since changes
made while it was not listening were never announced to it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import anywidget
import sqlalchemy as sa
import traitlets

from ..board.pipeline import ACTIVITY_KINDS, QUICK_FILTERS, SORTS, field_specs
from ..board.state import Board, outcome
from ..db.engine import libpq_url
from ..errors import CrmError
from ..services.changes import ChangeListener
from .record_page import RECORD_APP

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent


class PipelineBoard(anywidget.AnyWidget):
    """One column per active stage; totals over every deal matching ``filters``.

    ``filters``: ``{"owner": None | "mine" | user id, "quick": ["closing_this_month", "high_value",
    "stale"], "view": saved deals query name or id, "search": text}``.
    """

    _esm = _HERE / "pipeline_board.js"
    _css = _HERE / "pipeline_board.css"

    columns = traitlets.List().tag(sync=True)  # [{id, name, count, value, weighted, missing, cards, more, ...}]
    filters = traitlets.Dict().tag(sync=True)
    sort = traitlets.Unicode("-value").tag(sync=True)
    options = traitlets.Dict().tag(sync=True)  # owners, views, quick filters, sorts, fields, activity kinds
    notice = traitlets.Dict().tag(sync=True)  # {kind, text, deal_id}: the latest outcome worth showing
    prompt = traitlets.Dict().tag(sync=True)  # fields a stage needs before a move can go on
    panel = traitlets.Dict().tag(sync=True)  # the open deal's fields and timeline, or {}
    user = traitlets.Dict().tag(sync=True)
    # Whether other people's changes reach this board: "live", "reconnecting" (lost the
    # database; retrying, then reloading) or "offline" (not listening).
    connection = traitlets.Enum(["live", "reconnecting", "offline"], "offline").tag(sync=True)

    def __init__(
        self,
        crm,
        filters=None,
        *,
        page_size: int | None = None,
        sort: str = "-value",
        live: bool = True,
        clock: Callable[[], dt.datetime] | None = None,
        **kwargs,
    ):
        extra = {} if page_size is None else {"page_size": page_size}
        self.board = Board(crm, filters, sort=sort, clock=clock, **extra)
        self.crm = crm
        self._pending: list[dict] = []
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        self.listener: ChangeListener | None = None
        self._listening = False  # until close(): the listener's callbacks may change the board
        self.applied = 0  # change notifications applied so far (tests wait on it)
        super().__init__(
            columns=self.board.state(),
            filters=self.board.pipeline.filters.as_dict(),
            sort=sort,
            options=self._options(),
            user={"id": str(crm.user_id), "email": crm.user_email},
            **kwargs,
        )
        self.observe(self._apply_filters, names="filters")
        self.observe(self._apply_sort, names="sort")
        self.on_msg(self._on_message)
        if live:
            url = libpq_url(crm.engine.url.render_as_string(hide_password=False))
            self._listening = True
            self.connection = "reconnecting"  # until the first subscription, which reloads
            self.listener = ChangeListener(url, self._on_change, on_state=self._on_state, on_resync=self._on_resync)

    # -- the Python API (the front end's messages call these) --------------------------------

    def move(self, deal_id, stage, changes: dict | None = None, *, version: int | None = None) -> dict:
        """Move a deal to a column (id or name) with its card's version; see :meth:`Board.move`."""
        result = self.board.move(deal_id, stage, version=version, changes=changes or None)
        if result["kind"] == "invalid" and result.get("fields"):
            self.prompt = {
                "deal_id": result["deal_id"],
                "stage_id": result["stage_id"],
                "stage": result["stage"],
                "version": result["version"],
                "message": result["message"],
                "fields": result["fields"],
            }
            self.notice = {}  # the form says what is missing: no second message above it
            self._publish()
            return result
        self.prompt = {}
        return self._after(result)

    def show_more(self, stage_id) -> dict:
        result = self.board.show_more(stage_id)
        self._publish()
        return result

    def refresh(self) -> None:
        """Reload the whole board (stages, totals, first pages); while the listener is
        reconnecting, it tries again at once."""
        if self.listener is not None and self.listener.state != "live":
            self.listener.reconnect()
        self.board.load()
        self._publish()

    def open_deal(self, deal_id) -> dict:
        """Open the side panel on a deal."""
        try:
            self.panel = {**self.board.pipeline.detail(deal_id), "errors": {}, "message": ""}
        except CrmError as exc:
            return self._after(outcome(False, "missing", str(exc)))
        return outcome(True, "opened", "")

    def close_panel(self) -> None:
        self.panel = {}

    def save_deal(self, changes: dict, *, deal_id=None, version: int | None = None) -> dict:
        """Save side panel edits (validated by ``crm.deals.update``)."""
        deal_id = deal_id or self.panel.get("id")
        version = version if version is not None else self.panel.get("version")
        result = self.board.update(deal_id, changes, version=version)
        if result["ok"] or result["kind"] == "conflict":
            self._reopen(deal_id, message=result["message"] if result["kind"] == "conflict" else "")
        elif result["kind"] == "invalid":
            self.panel = {**self.panel, "errors": result.get("errors", {}), "message": result["message"]}
        return self._after(result)

    def log_activity(
        self, kind: str, subject: str, description: str | None = None, due: str | None = None, *, deal_id=None
    ) -> dict:
        """Log a call, note or task on the open deal (or ``deal_id``)."""
        deal_id = deal_id or self.panel.get("id")
        result = self.board.log_activity(deal_id, kind, subject, description, due)
        if result["ok"] and self.panel.get("id") == str(deal_id):
            self._reopen(deal_id)
        elif not result["ok"] and self.panel:
            self.panel = {**self.panel, "message": result["message"]}
        return self._after(result)

    def close(self) -> None:
        """Stop listening for changes and close the widget."""
        self._listening = False  # the listener's last words ("offline") are not for this board
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self.connection = "offline"
        super().close()

    # -- state out ------------------------------------------------------------------------------

    def _options(self) -> dict:
        pipeline = self.board.pipeline
        return {
            "owners": pipeline.users(),
            "views": pipeline.views(),
            "quick": [{"id": k, "label": v} for k, v in QUICK_FILTERS.items()],
            "sorts": [{"id": k, "label": v} for k, v in SORTS.items()],
            "fields": field_specs(),
            "activity_kinds": [{"id": k, "label": v} for k, v in ACTIVITY_KINDS.items()],
            "currency": self.crm.money.reporting_currency(),  # the column totals' currency
            "record_app": RECORD_APP,  # each card links to its deal's page
        }

    def _publish(self) -> None:
        with self.board.lock:  # without a loop the listener's thread publishes too: never an older state last
            self.columns = self.board.state()

    def _after(self, result: dict) -> dict:
        """Show the board as it is now and the outcome's message."""
        self._publish()
        if result.get("message") and result["kind"] not in ("opened", "more"):
            kind = "success" if result["ok"] else ("warning" if result["kind"] == "conflict" else "error")
            self.notice = {
                "kind": kind,
                "text": result["message"],
                "deal_id": result.get("deal_id"),
                "at": dt.datetime.now(dt.UTC).isoformat(),
            }
        return result

    def _reopen(self, deal_id, message: str = "") -> None:
        try:
            self.panel = {**self.board.pipeline.detail(deal_id), "errors": {}, "message": message}
        except CrmError:
            self.panel = {}

    # -- trait changes from the front end ----------------------------------------------------

    def _apply_filters(self, change) -> None:
        if change["new"] == self.board.pipeline.filters.as_dict():
            return
        try:
            self.board.set_filter(change["new"])
        except CrmError as exc:
            self._after(outcome(False, "invalid", f"Filter not applied: {exc}"))
            self.filters = self.board.pipeline.filters.as_dict()
            return
        self.filters = self.board.pipeline.filters.as_dict()
        self._publish()

    def _apply_sort(self, change) -> None:
        if change["new"] == self.board.pipeline.sort:
            return
        try:
            self.board.set_sort(change["new"])
        except CrmError as exc:
            self._after(outcome(False, "invalid", str(exc)))
            self.sort = self.board.pipeline.sort
            return
        self._publish()

    # -- messages from the front end -----------------------------------------------------------

    def _on_message(self, _widget, content: dict, _buffers) -> None:
        kind = content.get("type")
        handlers = {
            "move": lambda c: self.move(c["deal_id"], c["stage_id"], c.get("changes"), version=c.get("version")),
            "more": lambda c: self.show_more(c["stage_id"]),
            "open": lambda c: self.open_deal(c["deal_id"]),
            "close_panel": lambda c: self.close_panel(),
            "save": lambda c: self.save_deal(
                c.get("changes") or {}, deal_id=c.get("deal_id"), version=c.get("version")
            ),
            "log": lambda c: self.log_activity(
                c.get("kind", ""), c.get("subject", ""), c.get("description"), c.get("due"), deal_id=c.get("deal_id")
            ),
            "cancel_prompt": lambda c: setattr(self, "prompt", {}),
            "dismiss": lambda c: setattr(self, "notice", {}),
            "refresh": lambda c: self.refresh(),
        }
        handler = handlers.get(kind)
        try:
            if handler is None:
                raise CrmError(f"unknown message {kind!r}")
            result = handler(content)
        except CrmError as exc:  # shown, never raised into the kernel's log
            result = self._after(outcome(False, "error", str(exc)))
        except Exception as exc:
            log.exception("pipeline board message %s failed", kind)
            result = self._after(outcome(False, "error", f"Something went wrong: {exc}"))
        self.send(
            {
                "type": "reply",
                "request": content.get("request"),
                **(result if isinstance(result, dict) else {"ok": True}),
            }
        )

    # -- other people's changes ----------------------------------------------------------------

    def _on_change(self, change: dict) -> None:
        """Called by the listener (on the kernel's loop when there is one): batch, then apply."""
        with self._pending_lock:
            self._pending.append(change)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        loop = self.listener.loop if self.listener is not None else None
        if loop is not None and not loop.is_closed():
            loop.call_soon(self._flush)  # changes arriving meanwhile join this batch
        else:
            self._flush()

    def _flush(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, []
            self._flush_scheduled = False
        if not batch or not self._listening:
            return
        try:
            touched = self.board.apply(batch)
            self.applied += len(batch)
            self._publish()
            open_id = self.panel.get("id")
            if open_id and (open_id in touched["deals"] or touched["activities"]):
                self._reopen(open_id, self.panel.get("message", ""))
        except Exception as exc:  # a failed refresh must not stop the next change from arriving
            self._resync_later(exc, f"could not apply {batch}")

    def _on_state(self, state: str) -> None:
        if self._listening:
            self.connection = state

    def _on_resync(self) -> None:
        """After every subscription: reload, since changes made meanwhile were not heard."""
        if not self._listening:
            return
        try:
            self.board.load()
            self._publish()
            if self.panel.get("id"):
                self._reopen(self.panel["id"], self.panel.get("message", ""))
        except Exception as exc:
            self._resync_later(exc, "could not reload after reconnecting")

    def _resync_later(self, exc: Exception, what: str) -> None:
        """The board may be out of date: subscribe again, which reloads it (the listener waits
        between attempts, so a database that stays down is not hammered)."""
        if isinstance(exc, CrmError | sa.exc.DBAPIError):  # the database went away: expected, no traceback
            log.warning("pipeline board %s (%s); reloading when the database answers", what, exc)
        else:
            log.exception("pipeline board %s", what)
        if self.listener is not None:
            self.listener.reconnect()

    def wait_ready(self, timeout: float = 10) -> bool:
        """Block until the board listens for changes (tests and scripts)."""
        return self.listener is not None and self.listener.wait_ready(timeout)


__all__ = ["PipelineBoard"]
