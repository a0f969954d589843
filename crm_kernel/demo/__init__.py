"""Demo data: a plausible CRM with a past, generated with numpy and loaded with COPY.

    crm demo-data --scale 1 --seed 42 --today 2026-01-15 --replace

    from crm_kernel.demo import load
    load(crm.engine, scale=1, seed=42, today=date(2026, 1, 15))

- ``vocabulary``: name pools, shares, countries and their currencies;
- ``generation``: a plan per table (numpy), then the frames; ``history``: every deal's path
  through the pipeline as audit rows and stage changes; ``rates``: exchange rates into USD;
- ``loading``: COPY in one transaction, indexes and foreign keys set aside and rebuilt.
"""

from .generation import HISTORY_TABLES, LOADED, PER_SCALE, TABLES, TEAM_TABLES, Stage, generate, row_counts
from .loading import CLEARED, COPY_CHUNK_ROWS, copy_frame, copy_in, load, read_stages

__all__ = [
    "CLEARED",
    "COPY_CHUNK_ROWS",
    "HISTORY_TABLES",
    "LOADED",
    "PER_SCALE",
    "TABLES",
    "TEAM_TABLES",
    "Stage",
    "copy_frame",
    "copy_in",
    "generate",
    "load",
    "read_stages",
    "row_counts",
]
