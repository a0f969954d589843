"""Change notifications: every committed write announces itself on one PostgreSQL channel.

Writers call :func:`publish` inside their transaction; the payload is small JSON
``{"entity", "id", "operation", "version"}`` and is delivered only if the write commits.
Readers (open pipeline boards) use a :class:`ChangeListener`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa

CHANNEL = "crm_changes"
log = logging.getLogger(__name__)


def publish(conn: sa.Connection, entity: str, record_id, operation: str, version: int | None) -> None:
    payload = json.dumps({"entity": entity, "id": str(record_id), "operation": operation, "version": version})
    conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


class ChangeListener:
    """``LISTEN crm_changes`` on a daemon thread of its own, handing each change to ``callback``.

    When created inside a running asyncio loop (a Jupyter kernel), the callback runs on that
    loop via ``call_soon_threadsafe``, so widget state is only touched from the kernel's
    thread; without a loop (scripts, tests) it runs on the listener thread. Never blocks its
    creator; ``close()`` stops it within ``poll`` seconds.
    """

    def __init__(self, url: str, callback: Callable[[dict], None], *, poll: float = 0.25):
        self.url = url
        self.callback = callback
        self.poll = poll
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crm-change-listener", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float = 10) -> bool:
        """Block until the listener is subscribed (tests use it to avoid missing a change)."""
        return self._ready.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(self.poll * 4 + 1)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.poll, stop_after=1):
                            self._deliver(json.loads(note.payload))
            except psycopg.OperationalError as exc:  # server restarted or connection lost: retry
                log.warning("change listener lost its connection (%s); reconnecting", exc)
                self._stop.wait(1)

    def _deliver(self, change: dict) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.callback, change)
        else:
            try:
                self.callback(change)
            except Exception:  # one bad change must not stop the board from hearing the next
                log.exception("change callback failed for %s", change)
