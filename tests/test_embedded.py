"""The embedded cluster's state file: the only copy of its password, so never torn, never shared."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from crm_kernel.db.embedded import EmbeddedPostgres
from crm_kernel.errors import ConfigError

OLD_STATE = {"password": "s3cret-old", "port": 54321}

# A write cut short the way a full disk cuts it: the process may write 64 bytes per file, no more.
INTERRUPTED_SAVE = """
import resource, signal, sys
from crm_kernel.db.embedded import EmbeddedPostgres
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
EmbeddedPostgres(sys.argv[1])._save_state(port=54322, note="x" * 500)
"""


@pytest.fixture
def cluster(tmp_path):
    root = tmp_path / "pg"
    root.mkdir(mode=0o700)
    (root / "state.json").write_text(json.dumps(OLD_STATE))
    return EmbeddedPostgres(root)


def test_an_interrupted_write_keeps_the_old_state(cluster):
    before = cluster.state_file.read_text()
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_SAVE, str(cluster.root)], capture_output=True, text=True)
    assert proc.returncode != 0 and "File too large" in proc.stderr
    assert cluster.state_file.read_text() == before
    assert cluster.url().startswith("postgresql://postgres:s3cret-old@127.0.0.1:54321/")
    assert [p.name for p in cluster.root.iterdir()] == ["state.json"]  # no temporary file left


def test_a_saved_state_is_private_and_complete(cluster):
    cluster.state_file.chmod(0o644)  # as an older version left it
    cluster._save_state(port=54400)
    assert json.loads(cluster.state_file.read_text()) == OLD_STATE | {"port": 54400}
    assert stat.S_IMODE(cluster.state_file.stat().st_mode) == 0o600
    assert [p.name for p in cluster.root.iterdir()] == ["state.json"]


def test_a_damaged_state_file_is_named(cluster):
    cluster.state_file.write_text('{"password": "s3c')
    with pytest.raises(ConfigError, match=r"state\.json"):
        cluster.url()
