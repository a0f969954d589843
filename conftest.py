"""Test harness: one throwaway PostgreSQL cluster per test session, on a free port.

The cluster starts before collection, and its URL is exported as CRM_DATABASE_URL so that
everything under test (the library, the `crm` command, notebook kernels) uses it and never
a user's database. It is destroyed when the session ends. This file sits at the top so that
it also serves the notebooks collected by nbval.

Tests change their database; notebooks must not see what the tests before them left, nor
the tests what a notebook left. So each notebook run by nbval gets a database of its own, a
copy of the freshly migrated template, and a CRM_HOME of its own: both are in the environment
when nbval starts the notebook's kernel (in the setup of its first cell), and only then.
"""

from __future__ import annotations

import os
from unittest.mock import patch

import pytest
import sqlalchemy as sa

from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres
from tests.helpers import TEMPLATE_DATABASE, create_database, scratch_dir

_cluster: EmbeddedPostgres | None = None
_notebooks: dict[str, dict[str, str]] = {}  # notebook node id -> the environment its kernel gets


def pytest_sessionstart(session):
    global _cluster
    for name in ("CRM_DATABASE_URL", "CRM_USER", "CRM_TIMEZONE"):
        os.environ.pop(name, None)
    os.environ["CRM_HOME"] = str(scratch_dir("crm-test-home-"))
    _cluster = EmbeddedPostgres(scratch_dir("crm-test-pg-") / "pg", fast=True)
    url = _cluster.start()
    engine = connect_engine(url)
    migrate(engine)
    engine.dispose()  # a database is copied only while nobody is connected to it
    maintenance = connect_engine(_cluster.url("postgres"))
    create_database(maintenance, TEMPLATE_DATABASE, template=sa.make_url(url).database)
    maintenance.dispose()
    os.environ["CRM_DATABASE_URL"] = url


def pytest_sessionfinish(session, exitstatus):
    if _cluster is not None:
        _cluster.destroy()


def pytest_configure(config):
    """Hypothesis: few, derandomised examples by default so runs are quick and repeatable;
    HYPOTHESIS_PROFILE=thorough explores more."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "default",
        max_examples=40,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    settings.register_profile(
        "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """A notebook's cells set up with its own database and CRM_HOME in the environment."""
    with patch.dict(os.environ, _notebook_environment(item)):
        yield


def _notebook_environment(item) -> dict[str, str]:
    from nbval.plugin import IPyNbCell

    if not isinstance(item, IPyNbCell):
        return {}
    notebook = item.parent.nodeid
    if notebook not in _notebooks:
        engine = connect_engine(_cluster.url("postgres"))
        try:
            url = create_database(engine, f"crm_notebook_{len(_notebooks) + 1}")
        finally:
            engine.dispose()
        _notebooks[notebook] = {"CRM_DATABASE_URL": url, "CRM_HOME": str(scratch_dir("crm-notebook-home-"))}
    return _notebooks[notebook]
