"""What every benchmark needs: a database to run on and a fair clock."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres


@contextmanager
def database(url: str | None, prefix: str = "crm-bench-") -> Iterator[str]:
    """``url``, else CRM_DATABASE_URL, else a migrated throwaway cluster (destroyed afterwards)."""
    url = url or os.environ.get("CRM_DATABASE_URL")
    if url:
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
