"""Change notifications: every committed write announces itself on one PostgreSQL channel.

Writers call :func:`publish` inside their transaction; the payload is small JSON
``{"entity", "id", "operation", "version"}`` and is delivered only if the write commits.
Readers (open pipeline boards) use a :class:`ChangeListener`:

    listener = ChangeListener(url, on_change, on_state=show_state, on_resync=reload)
    listener.state             # "live", "reconnecting" or "offline"
    listener.close()

A notification is not a queue: one sent while a listener is disconnected is lost. So after
every (re)subscription the listener calls ``on_resync``, and its consumer reloads whatever it
shows; a listener that cannot be sure it hears everything says so in its state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Literal

import psycopg
import sqlalchemy as sa
from psycopg import pq

CHANNEL = "crm_changes"
log = logging.getLogger(__name__)

# live: subscribed, every committed change arrives. reconnecting: the connection was lost (or
# is not made yet) and is being retried; changes committed meanwhile come back through
# on_resync. offline: not listening at all (closed).
ListenerState = Literal["live", "reconnecting", "offline"]

# TCP keepalives on the listening connection: an idle connection whose server vanished (a
# half-open connection: no FIN ever arrives) is noticed after idle + interval * count seconds
# instead of never; tcp_user_timeout bounds how long sent data (the liveness check) may stay
# unacknowledged. Milliseconds for tcp_user_timeout, seconds for the rest.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}


def publish(conn: sa.Connection, entity: str, record_id, operation: str, version: int | None) -> None:
    payload = json.dumps({"entity": entity, "id": str(record_id), "operation": operation, "version": version})
    conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


def parse(payload: str) -> dict | None:
    """A notification's change, or None (logged) when the payload is not one of ours."""
    try:
        change = json.loads(payload)
    except ValueError:
        change = None
    if not (isinstance(change, dict) and isinstance(change.get("entity"), str) and isinstance(change.get("id"), str)):
        log.warning("ignoring a %s notification that is not a change: %.200r", CHANNEL, payload)
        return None
    return change


class _Lost(Exception):
    """The listening connection stopped answering or closed."""


class ChangeListener:
    """``LISTEN crm_changes`` on a daemon thread of its own, handing each change to ``callback``.

    When created inside a running asyncio loop (a Jupyter kernel), every callback runs on that
    loop via ``call_soon_threadsafe``, so widget state is only touched from the kernel's
    thread; without a loop (scripts, tests) they run on the listener thread. Never blocks its
    creator.

    ``on_state(state)`` hears every change of :attr:`state`; ``on_resync()`` is called after
    every subscription, the first one included (a change committed before it was not heard),
    and always before the state turns ``"live"``. Nothing that goes wrong ends the thread:
    a payload that is not a change is logged and skipped, a failing callback is logged, and a
    lost connection is retried after ``retry`` seconds, doubling up to ``max_retry``. A
    connection that stays quiet for ``check_every`` seconds is asked ``SELECT 1`` and given
    ``check_timeout`` seconds to answer, so a half-open connection is noticed too.
    """

    def __init__(
        self,
        url: str,
        callback: Callable[[dict], None],
        *,
        on_state: Callable[[ListenerState], None] | None = None,
        on_resync: Callable[[], None] | None = None,
        poll: float = 0.25,
        retry: float = 1.0,
        max_retry: float = 10.0,
        check_every: float = 15.0,
        check_timeout: float = 10.0,
        connect_timeout: int = 10,
    ):
        self.url = url
        self.callback = callback
        self.on_state = on_state
        self.on_resync = on_resync
        self.poll = poll
        self.retry = retry
        self.max_retry = max_retry
        self.check_every = check_every
        self.check_timeout = check_timeout
        self.connect_timeout = connect_timeout
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.state: ListenerState = "reconnecting"
        self._stop = threading.Event()
        self._wake = threading.Event()  # cut a wait between attempts short (close, reconnect)
        self._drop = threading.Event()  # drop the connection and subscribe again
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crm-change-listener", daemon=True)
        self._thread.start()

    # -- control ---------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 10) -> bool:
        """Block until the listener has subscribed once (tests use it to avoid missing a change)."""
        return self._ready.wait(timeout)

    def reconnect(self) -> None:
        """Subscribe again now: drop the connection if there is one, or skip the wait for the
        next attempt; ``on_resync`` follows as after any reconnection."""
        self._drop.set()
        self._wake.set()

    @property
    def stop_within(self) -> float:
        """The longest the thread can be busy (connecting, waiting for an answer, polling)
        before it sees a request to stop; callbacks run on the thread without a loop add theirs."""
        return max(self.poll, self.check_timeout, self.connect_timeout)

    def close(self) -> bool:
        """Stop listening; returns whether the thread has ended (waits up to :attr:`stop_within`
        seconds and a little more, unless called from the thread itself)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(self.stop_within + 1)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    failures = 0
                    self._emit(self.on_resync)
                    self._set_state("live")
                    self._ready.set()
                    self._listen(conn.pgconn)
            except (psycopg.OperationalError, _Lost) as exc:  # server restarted or unreachable
                if not self._stop.is_set():
                    log.warning("change listener lost its connection (%s); reconnecting", str(exc).strip())
            except Exception:  # never let the thread end: the board would keep saying "live"
                log.exception("change listener failed; reconnecting")
            if self._stop.is_set():
                break
            self._set_state("reconnecting")
            delay = min(self.retry * 2**failures, self.max_retry)
            failures += 1
            self._wake.wait(delay)
            self._wake.clear()
        self._set_state("offline")

    def _connect(self) -> psycopg.Connection:
        self._drop.clear()
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout, **KEEPALIVES)
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _listen(self, pg: pq.abc.PGconn) -> None:
        """Hand on notifications until asked to stop or the connection fails (raises)."""
        heard_at = time.monotonic()
        while not self._stop.is_set():
            if self._drop.is_set():
                raise _Lost("asked to reconnect")
            if select.select([pg.socket], [], [], self.poll)[0]:
                pg.consume_input()  # raises OperationalError when the server has gone
                heard_at = time.monotonic()
            if pg.status != pq.ConnStatus.OK:
                raise _Lost(pg.get_error_message() or "connection closed")
            self._drain(pg)
            if time.monotonic() - heard_at >= self.check_every:
                self._check(pg)
                self._drain(pg)
                heard_at = time.monotonic()

    def _drain(self, pg: pq.abc.PGconn) -> None:
        while (note := pg.notifies()) is not None:
            change = parse(note.extra.decode("utf-8", "replace"))
            if change is not None:
                self._emit(self.callback, change)

    def _check(self, pg: pq.abc.PGconn) -> None:
        """``SELECT 1`` answered within ``check_timeout`` seconds, or the connection is lost."""
        pg.send_query(b"SELECT 1")
        deadline = time.monotonic() + self.check_timeout
        while True:
            while pg.is_busy():
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([pg.socket], [], [], left)[0]:
                    raise _Lost(f"no answer to a liveness check within {self.check_timeout:g} s")
                pg.consume_input()
            result = pg.get_result()
            if result is None:
                return
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise _Lost(pg.get_error_message() or "liveness check failed")

    # -- handing things to the consumer ----------------------------------------------------

    def _set_state(self, state: ListenerState) -> None:
        if state != self.state:
            self.state = state
            self._emit(self.on_state, state)

    def _emit(self, fn: Callable | None, *args) -> None:
        """Run a callback on the creator's loop when there is one, else here; never raises."""
        if fn is None:
            return
        if self.loop is not None:
            if not self.loop.is_closed():
                try:
                    self.loop.call_soon_threadsafe(_guarded, fn, *args)
                except RuntimeError:  # the loop closed meanwhile: nobody is left to tell
                    pass
            return
        _guarded(fn, *args)


def _guarded(fn: Callable, *args) -> None:
    try:
        fn(*args)
    except Exception:  # one bad change must not stop the board from hearing the next
        log.exception("change listener callback %s failed for %r", getattr(fn, "__name__", fn), args)
