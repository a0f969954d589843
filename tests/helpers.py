"""Small helpers shared by the tests."""

from __future__ import annotations

import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A folder the postgres system user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
