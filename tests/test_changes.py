"""ChangeListener: committed writes reach a listener on its own thread; close() stops it; a
bad payload, a server restart or a half-open connection does not end it, and it says so."""

import asyncio
import queue
import socket
import threading

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres
from crm_kernel.db.engine import libpq_url
from crm_kernel.services.changes import ChangeListener
from tests.helpers import scratch_dir


def test_listener_hears_committed_changes_only(crm, database_url):
    heard = queue.Queue()
    listener = ChangeListener(libpq_url(database_url), heard.put)
    try:
        assert listener.wait_ready()
        company = crm.companies.create(name="Initech")
        change = heard.get(timeout=5)
        assert change == {"entity": "companies", "id": str(company["id"]), "operation": "create", "version": 1}
        crm.companies.update(company["id"], name="Initrode")
        assert heard.get(timeout=5)["operation"] == "update"
        assert heard.empty()
    finally:
        listener.close()
    assert not listener.alive


def test_construction_does_not_block_without_a_loop(database_url):
    listener = ChangeListener(libpq_url(database_url), lambda change: None)
    assert listener.loop is None and listener.alive
    listener.close()
    assert not listener.alive


def test_inside_a_running_loop_callbacks_run_on_the_loop(crm, database_url):
    async def scenario():
        threads = []
        got = asyncio.Event()

        def on_change(change):
            threads.append(threading.current_thread())
            got.set()

        listener = ChangeListener(libpq_url(database_url), on_change)
        await asyncio.get_running_loop().run_in_executor(None, listener.wait_ready)
        await asyncio.get_running_loop().run_in_executor(None, lambda: crm.companies.create(name="Loop Co"))
        await asyncio.wait_for(got.wait(), 5)
        listener.close()
        return threads

    threads = asyncio.run(scenario())
    assert threads == [threading.main_thread()]


def test_a_failing_callback_does_not_stop_the_listener(crm, database_url):
    heard = queue.Queue()

    def flaky(change):
        heard.put(change)
        raise RuntimeError("widget gone")

    listener = ChangeListener(libpq_url(database_url), flaky)
    try:
        listener.wait_ready()
        crm.companies.create(name="One")
        crm.companies.create(name="Two")
        assert [heard.get(timeout=5)["operation"], heard.get(timeout=5)["operation"]] == ["create", "create"]
        assert listener.alive
    finally:
        listener.close()


# -- surviving what goes wrong -------------------------------------------------------------


def test_a_payload_that_is_not_a_change_is_skipped_and_the_next_change_arrives(crm, database_url, engine, caplog):
    heard = queue.Queue()
    listener = ChangeListener(libpq_url(database_url), heard.put)
    try:
        assert listener.wait_ready()
        with engine.begin() as conn:
            for payload in ("not json", "[1, 2]", '{"entity": 5}', ""):
                conn.execute(sa.text("SELECT pg_notify('crm_changes', :p)"), {"p": payload})
        company = crm.companies.create(name="After the noise")
        assert heard.get(timeout=10) == {
            "entity": "companies",
            "id": str(company["id"]),
            "operation": "create",
            "version": 1,
        }
        assert listener.alive and listener.state == "live" and heard.empty()
    finally:
        listener.close()
    skipped = [r.getMessage() for r in caplog.records if "not a change" in r.getMessage()]
    assert len(skipped) == 4 and "'not json'" in skipped[0]


@pytest.fixture
def cluster():
    """A PostgreSQL cluster of this test's own, to stop and start under a listener; it keeps
    its port on restart, so a listener's URL stays right."""
    pg = EmbeddedPostgres(scratch_dir("crm-restart-pg-") / "pg", fast=True)
    engine = connect_engine(pg.start())
    migrate(engine)
    engine.dispose()
    yield pg
    pg.destroy()


class States:
    """What a listener reports, as queues to wait on (handshakes, not sleeps)."""

    def __init__(self):
        self.states: queue.Queue = queue.Queue()
        self.resyncs: queue.Queue = queue.Queue()
        self.changes: queue.Queue = queue.Queue()

    def listener(self, url: str, **kwargs) -> ChangeListener:
        return ChangeListener(
            url, self.changes.put, on_state=self.states.put, on_resync=lambda: self.resyncs.put(True), **kwargs
        )

    def expect(self, state: str, timeout: float = 60) -> None:
        assert self.states.get(timeout=timeout) == state


def test_after_a_server_restart_the_listener_reconnects_and_asks_for_a_resync(cluster):
    url = cluster.url()
    seen = States()
    listener = seen.listener(url, retry=0.1)
    try:
        seen.expect("live")
        assert seen.resyncs.get_nowait()  # the first subscription: anything before it is unheard
        cluster.stop()
        seen.expect("reconnecting")
        cluster.start()
        assert cluster.url() == url
        seen.expect("live")
        assert seen.resyncs.get_nowait() and seen.resyncs.empty()
        engine = connect_engine(url)
        try:
            company = CRM(engine).companies.create(name="After the restart")
        finally:
            engine.dispose()
        assert seen.changes.get(timeout=10)["id"] == str(company["id"])
    finally:
        assert listener.close()
    seen.expect("offline")


class Proxy:
    """A TCP forwarder on loopback whose traffic can be frozen: both sockets stay open and
    nothing passes, as when the peer vanishes without a word (a half-open connection)."""

    def __init__(self, port: int):
        self.target = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                self.flowing.wait()
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            s.close()

    def close(self) -> None:
        self.flowing.set()
        self.server.close()
        for s in self.sockets:
            s.close()


def test_a_half_open_connection_is_noticed_and_replaced(crm, database_url):
    url = sa.engine.make_url(database_url)
    proxy = Proxy(url.port)
    seen = States()
    through = libpq_url(url.set(port=proxy.port).render_as_string(hide_password=False))
    listener = seen.listener(through, retry=0.1, check_every=0.5, check_timeout=1, connect_timeout=2)
    try:
        seen.expect("live")
        proxy.flowing.clear()  # the server and the network go silent; no socket closes
        seen.expect("reconnecting")
        proxy.flowing.set()
        seen.expect("live")
        company = crm.companies.create(name="Heard again")
        assert seen.changes.get(timeout=10)["id"] == str(company["id"])
    finally:
        listener.close()
        proxy.close()
