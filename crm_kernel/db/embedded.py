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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import make_private_dir
from ..errors import ConfigError, DatabaseError

INSTALL_HINT = (
    "install them with `sudo apt-get install postgresql postgresql-contrib` (Debian/Ubuntu) "
    "or your system's package manager, or set CRM_DATABASE_URL to an existing server"
)
SUPERUSER = "postgres"
DATABASE = "crm"
SERVICE_LOGIN = "crm_service"  # the apps' login: a member of crm_app (sql/017), bound by row-level security


def find_bindir() -> Path:
    """The directory holding ``initdb``/``pg_ctl``: the newest Debian layout, else pg_config, else PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
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


def write_private(path: Path, text: str) -> None:
    """Write ``path`` readable only by its owner, atomically: a crash, a full disk or a kill
    leaves the old file or the new one, never a torn one (it may hold the only copy of a
    password). The new text goes to a 0600 temporary file beside it, is synced and renamed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As PostgreSQL binds: connections a stopped server closed (TIME_WAIT) do not take
        # its port, so a restart keeps it (and every URL handed out stays right).
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
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the embedded cluster's state {self.state_file}: {exc}") from exc
        if not isinstance(state, dict):
            raise ConfigError(f"the embedded cluster's state {self.state_file} is not a JSON object")
        return state

    def _save_state(self, **changes) -> None:
        write_private(self.state_file, json.dumps(self._state() | changes, indent=2))

    @property
    def port(self) -> int | None:
        return self._state().get("port")

    def url(self, database: str = DATABASE) -> str:
        state = self._state()
        if "port" not in state:
            raise DatabaseError(f"the embedded cluster in {self.root} has never been started; run `crm db start`")
        return f"postgresql://{SUPERUSER}:{state['password']}@127.0.0.1:{state['port']}/{database}"

    def app_url(self, database: str = DATABASE) -> str | None:
        """The service login's URL once :meth:`ensure_service_login` made it, else None."""
        state = self._state()
        if "port" not in state or "service_password" not in state:
            return None
        return f"postgresql://{SERVICE_LOGIN}:{state['service_password']}@127.0.0.1:{state['port']}/{database}"

    def ensure_service_login(self) -> str | None:
        """Create (once) the login apps and notebooks connect as, IN ROLE crm_app, with a random
        password kept in ``state.json`` (0600): returns "created", or "exists" when it was there.
        Needs the schema's roles (sql/017): None, doing nothing, while they do not exist yet
        (before `crm db migrate`)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'crm_app'").fetchone():
                return None
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [SERVICE_LOGIN]).fetchone()
            password = self._state().get("service_password")
            if exists and password:
                return "exists"
            password = secrets.token_urlsafe(18)
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(SERVICE_LOGIN), sql.Literal(password)
                )
            )
            conn.execute(sql.SQL("GRANT crm_app TO {}").format(sql.Identifier(SERVICE_LOGIN)))
            self._save_state(service_password=password)
        return "created"

    # -- lifecycle ------------------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster once (initdb, C.UTF-8, password auth, loopback only)."""
        if self.initialised:
            return
        find_bindir()  # fail early with the install hint
        # The home and the cluster folder are private; as root the postgres user must still
        # pass through the home to reach its cluster.
        home = make_private_dir(self.root.parent, traversable=self._as_root)
        if self._as_root and home.stat().st_uid == 0 and not home.stat().st_mode & 0o077:
            home.chmod(0o711)  # a private home made earlier (say by a snapshot export): let postgres through
        make_private_dir(self.root)
        self.root.chmod(0o700)  # also when it existed (an initdb that failed half-way)
        self._hand_to_postgres(self.root)
        reach = ["runuser", "-u", SUPERUSER, "--", "test", "-w", str(self.root)]
        if self._as_root and subprocess.run(reach, capture_output=True).returncode != 0:
            raise ConfigError(
                f"the {SUPERUSER} user cannot reach {self.root}; choose a CRM_HOME whose parent folders it can enter"
            )
        password = secrets.token_urlsafe(18)
        pwfile = self.root / "initdb.pw"
        write_private(pwfile, password + "\n")
        self._hand_to_postgres(pwfile)
        try:
            args = [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-A",
                "scram-sha-256",
                f"--pwfile={pwfile}",
            ]
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
                proc = self._run(
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-p {port}",
                    check=False,
                )
                if proc.returncode == 0:
                    break
                if attempt == 2:
                    raise DatabaseError(f"PostgreSQL did not start; see {self.log_file}:\n{self._log_tail()}")
                port = free_port()  # lost a race for the port: try another
                self._save_state(port=port)
                time.sleep(0.2)
        self._ensure_database()
        self.ensure_service_login()
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
