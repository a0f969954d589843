"""Demo data now lives in :mod:`crm_kernel.demo`; this module re-exports its public names,
kept for existing imports."""

from ..demo import (  # noqa: F401
    CLEARED,
    COPY_CHUNK_ROWS,
    HISTORY_TABLES,
    LOADED,
    PER_SCALE,
    TABLES,
    Stage,
    copy_frame,
    copy_in,
    generate,
    load,
    read_stages,
    row_counts,
)
