"""What every benchmark needs: a database to run on and a fair clock."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres


@contextmanager
def database(url: str | None, prefix: str = "crm-bench-") -> Iterator[str]:
    """``url`` when given explicitly (``--url``), else a migrated throwaway cluster, destroyed
    afterwards.

    CRM_DATABASE_URL is never read: benchmarks replace the data they run on, and a variable
    left set in a shell must not turn a benchmark loose on a real CRM. While the benchmark runs,
    the variable names its own database, so that nothing in the library can reach another."""
    if url:
        with patch.dict(os.environ, CRM_DATABASE_URL=url):
            yield url
        return
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    scratch.chmod(0o755)  # the postgres system user must reach the cluster inside
    cluster = EmbeddedPostgres(scratch / "pg", fast=True)
    try:
        url = cluster.start()
        engine = connect_engine(url)
        migrate(engine)
        engine.dispose()
        with patch.dict(os.environ, CRM_DATABASE_URL=url):
            yield url
    finally:
        cluster.destroy()
        shutil.rmtree(scratch, ignore_errors=True)


def timings(repeat: int, run: Callable[[], object]) -> list[float]:
    """Seconds taken by each of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def best(repeat: int, run: Callable[[], object]) -> float:
    """The fastest run, in seconds: the one least disturbed by a noisy machine."""
    return min(timings(repeat, run))
