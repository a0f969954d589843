"""A private PostgreSQL cluster under ``$CRM_HOME/pg``, run with the machine's binaries.

Used when ``CRM_DATABASE_URL`` is unset (``crm db start``) and by the test suite, which
starts a throwaway one. As root the server binaries run as the ``postgres`` user, because
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DatabaseError

INSTALL_HINT = (
    "install them with `sudo apt-get install postgresql postgresql-contrib` (Debian/Ubuntu) "
    "or your system's package manager, or set CRM_DATABASE_URL to an existing server"
)
SUPERUSER = "postgres"
DATABASE = "crm"


def find_bindir() -> Path:
    """The directory holding ``initdb``/``pg_ctl``: the newest Debian layout, else pg_config, else PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0
    )
    for path in reversed(candidates):
        if Path(path, "initdb").exists():
            return Path(path)
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        path = Path(out.stdout.strip())
        if out.returncode == 0 and (path / "initdb").exists():
            return path
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ConfigError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As PostgreSQL binds: connections it closed on stopping (TIME_WAIT) do not hold the port,
        # so a restarted cluster keeps its port and open engines find it again.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedPostgres:
    """One cluster in ``root``: ``data/`` (PGDATA), ``server.log``, ``state.json`` (port, password).

    ``fast=True`` trades durability for speed (no fsync), for throwaway test clusters.
    """

    root: Path
    fast: bool = False

    def __post_init__(self):
        self.root = Path(self.root).absolute()
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.state_file = self.root / "state.json"

    # -- running the binaries -------------------------------------------------------------

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(find_bindir() / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise DatabaseError(f"{args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
        return proc

    def _hand_to_postgres(self, path: Path) -> None:
        if self._as_root:
            try:
                shutil.chown(path, SUPERUSER, SUPERUSER)
            except LookupError as exc:
                raise ConfigError(f"running as root needs a '{SUPERUSER}' system user; {INSTALL_HINT}") from exc

    # -- state ----------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}

    def _save_state(self, **changes) -> None:
        state = self._state() | changes
        self.state_file.write_text(json.dumps(state, indent=2))
        self.state_file.chmod(0o600)

    @property
    def port(self) -> int | None:
        return self._state().get("port")

    def url(self, database: str = DATABASE) -> str:
        state = self._state()
        if "port" not in state:
            raise DatabaseError(f"the embedded cluster in {self.root} has never been started; run `crm db start`")
        return f"postgresql://{SUPERUSER}:{state['password']}@127.0.0.1:{state['port']}/{database}"

    # -- lifecycle ------------------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster once (initdb, C.UTF-8, password auth, loopback only)."""
        if self.initialised:
            return
        find_bindir()  # fail early with the install hint
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        self._hand_to_postgres(self.root)
        reach = ["runuser", "-u", SUPERUSER, "--", "test", "-w", str(self.root)]
        if self._as_root and subprocess.run(reach, capture_output=True).returncode != 0:
            raise ConfigError(f"the {SUPERUSER} user cannot reach {self.root}; choose a CRM_HOME whose parent folders it can enter")
        password = secrets.token_urlsafe(18)
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(password + "\n")
        self._hand_to_postgres(pwfile)
        try:
            args = ["initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
                    "-A", "scram-sha-256", f"--pwfile={pwfile}"]
            if self.fast:
                args.append("--no-sync")
            self._run(*args)
        finally:
            pwfile.unlink(missing_ok=True)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "timezone": "'UTC'",
            "max_connections": "100",
        }
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# crm_kernel embedded cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._save_state(password=password)

    def running(self) -> bool:
        return self.initialised and self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> str:
        """Start the cluster (initialising it first if needed); returns its URL. Idempotent."""
        self.init()
        if not self.running():
            port = self.port if self.port and _port_is_free(self.port) else free_port()
            self._save_state(port=port)
            for attempt in range(3):
                proc = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
                                 "-l", str(self.log_file), "-o", f"-p {port}", check=False)
                if proc.returncode == 0:
                    break
                if attempt == 2:
                    raise DatabaseError(f"PostgreSQL did not start; see {self.log_file}:\n{self._log_tail()}")
                port = free_port()  # lost a race for the port: try another
                self._save_state(port=port)
                time.sleep(0.2)
        self._ensure_database()
        return self.url()

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self) -> bool:
        """Stop the cluster; returns whether it was running."""
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))
        return True

    def destroy(self) -> None:
        """Stop and delete the whole cluster (test clusters)."""
        if self.initialised:
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir), check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"


def for_home(home: Path) -> EmbeddedPostgres:
    """The embedded cluster of a CRM home folder."""
    return EmbeddedPostgres(Path(home) / "pg")
