"""ChangeListener: committed writes reach a listener on its own thread; close() stops it."""

import asyncio
import queue
import threading

from crm_kernel.db.engine import libpq_url
from crm_kernel.services.changes import ChangeListener


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
