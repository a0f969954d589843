"""Snapshots: the CRM copied from PostgreSQL to Parquet at one consistent moment, and DuckDB
over the copy.

    from crm_kernel import snapshot
    folder = snapshot.export(crm.engine)          # or crm.snapshot(), or `crm snapshot export`
    with snapshot.open() as snap:                 # the newest under $CRM_HOME/snapshots
        snap.sql("SELECT stage_id, sum(value) FROM deals GROUP BY 1")
"""

from .errors import NoSnapshotError, SnapshotError, SnapshotWarning
from .exporter import export
from .manifest import Manifest
from .store import default_parent, prune, snapshots
from .views import Snapshot, open

__all__ = [
    "Manifest",
    "NoSnapshotError",
    "Snapshot",
    "SnapshotError",
    "SnapshotWarning",
    "default_parent",
    "export",
    "open",
    "prune",
    "snapshots",
]
