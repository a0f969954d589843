"""Test harness: one throwaway PostgreSQL cluster per test session, on a free port.

The cluster starts before collection, and its URL is exported as CRM_DATABASE_URL so that
everything under test (the library, the `crm` command, notebook kernels) uses it and never
a user's database. It is destroyed when the session ends. This file sits at the top so that
it also serves the notebooks collected by nbval.
"""

from __future__ import annotations

import os

from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres
from tests.helpers import scratch_dir

_cluster: EmbeddedPostgres | None = None


def pytest_sessionstart(session):
    global _cluster
    for name in ("CRM_DATABASE_URL", "CRM_USER", "CRM_TIMEZONE"):
        os.environ.pop(name, None)
    os.environ["CRM_HOME"] = str(scratch_dir("crm-test-home-"))
    _cluster = EmbeddedPostgres(scratch_dir("crm-test-pg-") / "pg", fast=True)
    url = _cluster.start()
    engine = connect_engine(url)
    migrate(engine)
    engine.dispose()
    os.environ["CRM_DATABASE_URL"] = url


def pytest_sessionfinish(session, exitstatus):
    if _cluster is not None:
        _cluster.destroy()


def pytest_configure(config):
    """Hypothesis: few, derandomised examples by default so runs are quick and repeatable;
    HYPOTHESIS_PROFILE=thorough explores more."""
    from hypothesis import HealthCheck, settings

    settings.register_profile("default", max_examples=40, derandomize=True, deadline=None,
                              suppress_health_check=[HealthCheck.function_scoped_fixture])
    settings.register_profile("thorough", max_examples=500, deadline=None,
                              suppress_health_check=[HealthCheck.function_scoped_fixture])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
