"""Stopping a running query: a time limit per statement, and a handle another thread cancels.

    handle = RunHandle()
    worker = threading.Thread(target=crm.execute, args=(spec,), kwargs={"handle": handle})
    worker.start()
    handle.cancel()      # e.g. from a Stop button: the run raises QueryCancelled

A run given a handle registers how to interrupt its engine (psycopg's cancel request on
PostgreSQL, ``interrupt()`` on DuckDB) for as long as its statement runs. A cancelled handle
stays cancelled, so the later queries of the same run (a count, then a page) do not start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import ConfigError, CrmError

# A cancel request can reach the server just before the statement does, and is then lost:
# while the run still holds its statement, the request is repeated this often (seconds).
_REPEAT_EVERY = 0.25


class QueryCancelled(CrmError):
    """A query was stopped before it finished. ``reason``: ``"cancelled"`` (by its caller) or
    ``"timeout"`` (it ran longer than CRM_STATEMENT_TIMEOUT allows)."""

    def __init__(self, reason: str, seconds: float | None = None):
        self.reason = reason
        if reason == "timeout" and seconds is not None:
            message = f"the query ran longer than {seconds:g} s (CRM_STATEMENT_TIMEOUT) and was stopped"
        elif reason == "timeout":  # a limit the database sets itself (a role's statement_timeout)
            message = "the query ran longer than the database's statement_timeout and was stopped"
        else:
            message = "the query was cancelled before it finished"
        super().__init__(message)


def timeout_seconds(setting: str | float | None) -> float | None:
    """``CRM_STATEMENT_TIMEOUT`` as seconds; None for no limit (``0``)."""
    try:
        seconds = float(setting if setting is not None else 0)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"CRM_STATEMENT_TIMEOUT must be a number of seconds (0: no limit), not {setting!r}")
    return seconds or None


class RunHandle:
    """Cancels the query runs it is given, from any thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cancelled = False
        self._interrupt: Callable[[], None] | None = None
        self._running = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def running(self) -> threading.Event:
        """Set while a statement of a run holding this handle is executing."""
        return self._running

    def cancel(self) -> None:
        """Stop the statement running now, and every later run given this handle."""
        with self._lock:
            self._cancelled = True
            interrupt = self._interrupt
            if interrupt is None:
                return
            interrupt()  # under the lock: the statement cannot end and hand its connection on meanwhile
        threading.Thread(target=self._repeat, args=(interrupt,), daemon=True).start()

    def _repeat(self, interrupt: Callable[[], None]) -> None:
        """Send the request again while the same statement still runs."""
        pause = threading.Event()
        while not pause.wait(_REPEAT_EVERY):
            with self._lock:
                if self._interrupt is not interrupt:
                    return
                interrupt()

    @contextmanager
    def statement(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """Around one statement: ``interrupt`` stops it. Refuses to start once cancelled."""
        with self._lock:
            if self._cancelled:
                raise QueryCancelled("cancelled")
            self._interrupt = interrupt
            self._running.set()
        try:
            yield
        finally:
            with self._lock:
                self._interrupt = None
                self._running.clear()


@contextmanager
def statement(handle: RunHandle | None, interrupt: Callable[[], None]) -> Iterator[None]:
    """``handle.statement(interrupt)``, or nothing without a handle."""
    if handle is None:
        yield
    else:
        with handle.statement(interrupt):
            yield


def stopped(handle: RunHandle | None, timeout: float | None, timed_out: bool) -> QueryCancelled:
    """The error of a run stopped by its handle or by its time limit."""
    if timed_out and not (handle is not None and handle.cancelled):
        return QueryCancelled("timeout", timeout)
    return QueryCancelled("cancelled")


class Timer:
    """Calls ``interrupt`` once ``seconds`` have passed inside the ``with`` block (never without
    a limit); ``fired`` tells whether it did."""

    def __init__(self, seconds: float | None, interrupt):
        self.seconds, self.fired = seconds, False
        self._lock = threading.Lock()
        self._interrupt = interrupt
        self._timer: threading.Timer | None = None
        self._done = False

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self.fired = True
                self._interrupt()

    def __enter__(self):
        if self.seconds:
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._done = True  # a timer firing from now on must not interrupt the next statement
        if self._timer is not None:
            self._timer.cancel()
