"""The ``crm`` command: a thin shell over the library. Library errors become clean messages."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sys
import textwrap
from pathlib import Path

import click

from .config import SETTINGS, Config
from .errors import CrmError


def _friendly(fn):
    """Turn library errors into `Error: ...` and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CrmError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@contextlib.contextmanager
def _engine(config: Config | None = None):
    """An engine on the configured database, disposed when the command is done with it."""
    from .db import connect_engine, resolve_url

    config = config or Config.from_env()
    engine = connect_engine(resolve_url(config), timezone=config.timezone)
    try:
        yield engine
    finally:
        engine.dispose()


def _settings_help() -> str:
    """One setting a line, its help wrapped beside the name (``\\b`` keeps click from re-flowing it)."""
    indent = max(len(s.env) for s in SETTINGS) + 2
    lines = ["\b"]
    for s in SETTINGS:
        lines += textwrap.wrap(s.help, width=96, initial_indent=f"{s.env:<{indent}}", subsequent_indent=" " * indent)
    return "\n".join(lines)


@click.group(
    epilog="Settings (environment variables):\n\n" + _settings_help(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="crm_kernel")
def main():
    """crm_kernel: the CRM in a Python library.

    Start with `crm db start`, `crm db migrate` and `crm demo-data`, then open the notebooks.
    """


# -- database ------------------------------------------------------------------------------


@main.group()
def db():
    """The database: the embedded PostgreSQL cluster and the schema."""


def _embedded(config: Config):
    from .db import embedded

    return embedded.for_home(config.home)


@db.command()
@_friendly
def start():
    """Start the embedded PostgreSQL cluster (created on first use) and print its URL."""
    config = Config.from_env()
    if config.database_url:
        click.echo("CRM_DATABASE_URL is set: using that server, nothing to start.")
        return
    from .db.engine import libpq_url, safe_url

    cluster = _embedded(config)
    url = cluster.start()
    click.echo(f"PostgreSQL is running in {cluster.root}")
    click.echo(libpq_url(safe_url(url)))  # the password stays in state.json: `crm db url --show-password`


@db.command()
@_friendly
def stop():
    """Stop the embedded PostgreSQL cluster."""
    config = Config.from_env()
    if config.database_url:
        click.echo("CRM_DATABASE_URL is set: that server is not ours to stop.")
        return
    cluster = _embedded(config)
    click.echo("stopped" if cluster.stop() else "not running")


@db.command()
@_friendly
def status():
    """Say which database is used, whether it is up and which migrations are pending."""
    from .db import pending_migrations, resolve_url, schema_version
    from .db.engine import safe_url

    config = Config.from_env()
    if config.database_url:
        click.echo("database: CRM_DATABASE_URL")
    else:
        cluster = _embedded(config)
        state = "running" if cluster.running() else "stopped"
        click.echo(f"database: embedded cluster in {cluster.root} ({state})")
        if state == "stopped":
            sys.exit(1)
    with _engine(config) as engine:
        with engine.connect() as conn:
            version = schema_version(conn)
        pending = pending_migrations(engine)
    click.echo(f"url: {safe_url(resolve_url(config))}")
    click.echo(f"schema version: {version or 'none'}")
    click.echo(f"pending migrations: {', '.join(m.path.name for m in pending) or 'none'}")


@db.command()
@_friendly
def migrate():
    """Apply pending migrations from sql/ (a no-op when up to date)."""
    from .db import migrate as apply

    with _engine() as engine:
        applied = apply(engine)
    config = Config.from_env()
    if not config.database_url and _embedded(config).ensure_service_login() == "created":
        click.echo("apps and notebooks connect as the login crm_service (row-level security applies)")
    for m in applied:
        click.echo(f"applied {m.path.name}")
    click.echo(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")


@db.command()
@click.option(
    "--show-password",
    is_flag=True,
    help='Print the password too, for tools that connect with it: psql "$(crm db url --show-password)".',
)
@_friendly
def url(show_password):
    """Print the database URL, its password masked unless --show-password is given."""
    from .db import resolve_url
    from .db.engine import libpq_url, safe_url

    url = resolve_url()
    click.echo(libpq_url(url if show_password else safe_url(url)))


@db.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="The backup file, or a folder for the default name crm-DATE-TIME-vVERSION.dump [default: here].",
)
@_friendly
def backup(out):
    """Back the whole database up into one pg_dump file (custom format, private to you)."""
    from .db import resolve_url
    from .db.backup import backup as dump

    done = dump(resolve_url(), out)
    click.echo(f"backed up schema version {done.schema_version} to {done.path} ({done.size:,} bytes)")


@db.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a database that already holds a CRM.")
@_friendly
def restore(file, replace):
    """Restore a backup into an empty database, all of it or nothing."""
    from .db import resolve_url
    from .db.backup import restore as load

    config = Config.from_env()
    version = load(resolve_url(config), file, replace=replace)
    if not config.database_url:
        _embedded(config).ensure_service_login()  # a restore into a fresh cluster: the apps' login
    click.echo(f"restored schema version {version} from {file}; run `crm db migrate` if this crm_kernel is newer")


# -- data ----------------------------------------------------------------------------------


@main.command("demo-data")
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="1 = 1,000 companies, 5,000 contacts, 2,000 deals, 20,000 activities, 10 users (2 teams).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed and --today, same data (ids too).")
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), default=None, help="The date the data is centred on [default: today]."
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the CRM already holds companies.")
@click.option(
    "--replace",
    is_flag=True,
    help="Delete the CRM's records and exchange rates first (keeps pipeline stages, custom field "
    "definitions and their authors, and the reporting currency).",
)
@_friendly
def demo_data(scale, seed, today, if_empty, replace):
    """Load realistic demo data with COPY."""
    from . import CRM, demo

    with CRM.connect(owner=True) as crm:  # COPY straight into the tables: the owner, not bound by row security
        if if_empty and crm.companies.count(include_deleted=True):
            click.echo("the CRM already holds data: demo data not loaded")
            return
        counts = demo.load(
            crm.engine,
            scale=scale,
            seed=seed,
            today=today.date() if today else dt.date.today(),
            replace=replace,
            progress=True,
        )
    click.echo(", ".join(f"{n:,} {table}" for table, n in counts.items()))


# -- queries -------------------------------------------------------------------------------


@main.group()
def query():
    """Run query specs (JSON files) on PostgreSQL or on a DuckDB snapshot."""


_TABLE_ROWS = 100
_ENGINE_NAMES = ("postgres", "duckdb")  # query.engines' registry, named here so --help needs no import


class _Offline:
    """What an engine reads of a CRM when it runs on a snapshot: only the settings."""

    def __init__(self, config: Config):
        self.config = config


@query.command("run")
@click.argument("spec_file", metavar="SPEC.json", type=click.File("r"))
@click.option("--backend", type=click.Choice(list(_ENGINE_NAMES)), default="postgres", show_default=True)
@click.option(
    "--snapshot",
    "snapshot_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Snapshot folder (or a parent of several) for --backend duckdb [default: the newest].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="json is a list of row objects.",
)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=lambda ctx, p, v: _params(v),
    help='A parameter\'s value (repeatable); JSON values such as \'{"amount": 30, "unit": "day"}\' too.',
)
@_friendly
def query_run(spec_file, backend, snapshot_dir, fmt, out, params):
    """Run the query in SPEC.json (`-` reads stdin) and print or save its rows."""
    from . import CRM
    from .query.engines import ENGINES

    spec = spec_file.read()
    if fmt == "parquet" and not out:
        raise click.UsageError("--format parquet needs --out FILE")
    engine = ENGINES[backend]
    if snapshot_dir is not None and not engine.uses_snapshot:
        raise click.UsageError(f"--snapshot is for a snapshot backend, not {backend}")
    if engine.uses_snapshot:  # a snapshot needs no database: nothing is read from the live CRM
        from .query.control import timeout_seconds
        from .snapshot import open as open_snapshot

        config = Config.from_env()
        with open_snapshot(snapshot_dir) as snap:
            result = engine.execute(
                _Offline(config), spec, snap, params=params, timeout=timeout_seconds(config.statement_timeout)
            )
        _write_rows(result, fmt, out, backend)
        return
    with CRM.connect() as crm:
        result = crm.execute(spec, backend, params=params)
        _write_rows(result, fmt, out, backend)
        if out or fmt != "table":  # rows taken out of the live CRM: audited
            from .export import record_export

            record_export(crm, spec, result.frame.height, fmt, out or "stdout")


def _write_rows(result, fmt: str, out: str | None, backend: str) -> None:
    frame = result.frame
    if fmt == "table":
        import polars as pl

        with pl.Config(tbl_rows=_TABLE_ROWS, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            text = str(frame.head(_TABLE_ROWS))
        shown = "" if frame.height <= _TABLE_ROWS else f" (showing {_TABLE_ROWS}; use --format csv --out FILE for all)"
        text += f"\n{frame.height:,} rows in {result.execute_seconds * 1000:.1f} ms on {backend}{shown}\n"
        _emit(text, out)
    elif fmt == "csv":
        from .export import flat_lists

        _emit(flat_lists(frame).write_csv(), out)
    elif fmt == "json":
        _emit(frame.write_json(), out)
    else:
        frame.write_parquet(out, compression="zstd")
    if out:
        click.echo(f"{frame.height:,} rows written to {out}", err=True)


def _params(pairs: tuple[str, ...]) -> dict:
    """``--param min_value=10000`` -> ``{"min_value": "10000"}``; a value that is a JSON object or
    list is read as JSON (a relative-date window, a list for ``in``)."""
    import json

    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        if value.strip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"{name}: not valid JSON ({exc})", param_hint="--param") from None
        params[name.strip()] = value
    return params


def _emit(text: str, out: str | None) -> None:
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@query.command("sql")
@click.argument("spec_file", metavar="SPEC.json", type=click.File("r"))
@click.option("--dialect", type=click.Choice(list(_ENGINE_NAMES)), default="postgres", show_default=True)
@_friendly
def query_sql(spec_file, dialect):
    """Print the SQL a spec compiles to, with its values shown inline (for reading only).

    Works offline for the built-in entities; with a reachable database it also knows its
    other tables, views and custom fields.
    """
    from .errors import DatabaseError
    from .query import compile_spec, parse
    from .query.engines import ENGINES

    spec = parse(spec_file.read())
    schema = None
    try:
        with _engine() as engine, engine.connect() as conn:
            schema = ENGINES["postgres"].schema(conn, spec)
    except DatabaseError:
        pass  # offline: the catalog alone
    click.echo(compile_spec(spec, dialect, schema=schema, timezone=Config.from_env().timezone).preview())


# -- search --------------------------------------------------------------------------------


@main.command()
@click.argument("text")
@click.option(
    "--entity",
    "entities",
    multiple=True,
    type=click.Choice(["companies", "contacts", "deals", "activities"]),
    help="Search only these (repeat for several) [default: all four].",
)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True, help="At most this many rows.")
@_friendly
def search(text, entities, limit):
    """Find companies, contacts, deals and activities by name, title or e-mail, typos and all.

    Accents and case are ignored; e-mail fragments (smith@acme, @acme.com) find contacts.
    Prints the best matches first, with the id that opens each one.
    """
    import polars as pl

    from . import CRM

    with CRM.connect() as crm:
        frame = crm.search(text, entities=list(entities) or None, limit=limit)
    if frame.is_empty():
        click.echo(f"nothing matches {text!r}")
        return
    with pl.Config(
        tbl_rows=limit,
        tbl_cols=-1,
        fmt_str_lengths=60,
        tbl_width_chars=200,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        click.echo(str(frame))


# -- dashboards ----------------------------------------------------------------------------


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8866, show_default=True, help="Port to listen on.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on. Beyond loopback, sign-in is required."
)
@click.option(
    "--browser/--no-browser",
    default=True,
    show_default=True,
    help="Open the dashboards in a web browser (when the machine has one to show).",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The folder of dashboard notebooks [default: dashboards/].",
)
@click.option("--tracebacks", is_flag=True, help="Show Python tracebacks in the page when a dashboard fails.")
@click.option(
    "--pool",
    type=click.IntRange(0, 20),
    default=1,
    show_default=True,
    help="Preheated kernels per app, so that an app opens without waiting for one; 0: none.",
)
@click.option(
    "--no-sign-in",
    "no_sign_in",
    is_flag=True,
    help="No sign-in: every page acts as CRM_USER. Only on a loopback address.",
)
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this Host name (a reverse proxy's); repeatable. "
    "Loopback names and --host are always answered, nothing else.",
)
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="Reached through a reverse proxy: believe its X-Forwarded-Proto and X-Forwarded-For "
    "(https gives a Secure session cookie). Only when nothing else can reach the port.",
)
@_friendly
def serve(port, host, browser, folder, tracebacks, pool, no_sign_in, allowed_hosts, behind_proxy):
    """Serve the Voilà dashboards (My day first; / lists them) on http://127.0.0.1:8866.

    Every notebook in the folder is an app with its code hidden, running on the same database
    as the other commands. A browser signs in with the link `crm users token EMAIL` prints,
    and its apps act as that user. Under JupyterHub (JUPYTERHUB_USER set) the apps act as the
    hub's user and the server listens on loopback only, behind the hub. The server runs
    until Ctrl-C.
    """
    from . import CRM
    from . import serve as serving

    folder = (folder or serving.dashboards_dir()).resolve()
    names = serving.apps(folder)
    if not names:
        raise click.UsageError(f"no notebooks to serve in {folder}")
    hub_user = serving.hub_user()
    # no database, no schema or an unknown user: say so here, not in every page
    with CRM.connect(user=hub_user) as crm:
        acting_user = crm.user_email
    sign_in = not (no_sign_in or hub_user)
    command = serving.voila_command(
        folder,
        host=host,
        port=port,
        open_browser=browser and not sign_in,
        tracebacks=tracebacks,
        pool=pool,
        sign_in=sign_in,
        acting_user=acting_user,
        allowed_hosts=allowed_hosts,
        behind_proxy=behind_proxy,
    )
    serving.check_port(host, port)
    click.echo(f"Serving {len(names)} dashboard(s) from {folder} at {serving.address(host, port)}")
    for name in names:
        click.echo(f"  {serving.app_url(name, host, port)}")
    if sign_in:
        click.echo("Sign-in required: `crm users token EMAIL` prints a user's sign-in link.")
    else:
        click.echo(f"No sign-in: every page acts as {acting_user}" + (" (the JupyterHub user)." if hub_user else "."))
    click.echo("Ctrl-C stops the server.")
    serving.run(command, serving.voila_environment())


# -- import --------------------------------------------------------------------------------


@main.command("import")
@click.argument("entity", type=click.Choice(["companies", "contacts", "deals", "activities", "users", "products"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="MAP.json: columns to fields, value renames, templates, defaults (see README).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be created, updated, skipped and refused; write nothing.")
@click.option(
    "--on-duplicate",
    type=click.Choice(["skip", "update", "create"]),
    default="skip",
    show_default=True,
    help="What a row that repeats a record does.",
)
@click.option(
    "--skip-invalid", is_flag=True, help="Write the valid rows and report the rest (default: all or nothing)."
)
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every problem to OUT.csv: line, column, value, reason.",
)
@click.option("--encoding", help="The file's encoding (default: detected, e.g. utf-8 or cp1252).")
@click.option(
    "--fast/--no-fast",
    default=None,
    help="Drop the table's secondary indexes for the COPY and rebuild them after it, in the same transaction "
    "(needs the table's owner; readers wait till commit). Default: for 50,000 new rows or more that are at "
    "least 3 times the rows there.",
)
@_friendly
def import_(entity, file, mapping_file, dry_run, on_duplicate, skip_invalid, errors_file, encoding, fast):
    """Import a CSV or Excel FILE into ENTITY in one transaction, as CRM_USER.

    Columns are matched to fields by their headers (and common synonyms); --mapping overrides.
    Any invalid row and nothing is written, unless --skip-invalid.
    """
    from . import CRM
    from .errors import ImportRefusedError

    try:
        with CRM.connect() as crm:
            report = crm.importer.run(
                entity,
                file,
                mapping=mapping_file,
                on_duplicate=on_duplicate,
                skip_invalid=skip_invalid,
                dry_run=dry_run,
                encoding=encoding,
                errors=errors_file,
                progress=sys.stderr.isatty(),
                fast=fast,
            )
    except ImportRefusedError as exc:
        if exc.report is not None:
            click.echo(str(exc.report))
        raise
    click.echo(str(report))
    if dry_run:
        click.echo("dry run: nothing was written")


# -- users ---------------------------------------------------------------------------------


@main.group()
def users():
    """The people who use the CRM (CRM_USER names one by e-mail)."""


@users.command("add")
@click.argument("email")
@click.option("--name", "full_name", help="Full name [default: from the e-mail].")
@click.option("--role", type=click.Choice(["admin", "manager", "rep", "analyst"]), default="rep", show_default=True)
@_friendly
def users_add(email, full_name, role):
    """Add a user; set CRM_USER to their e-mail to act as them."""
    from . import CRM

    name = full_name or email.split("@")[0].replace(".", " ").title()
    with CRM.connect(user="") as crm:
        user = crm.users.create(email=email, full_name=name, role=role)
    click.echo(f"added {user['email']} ({user['role']}) {user['id']}")


@users.command("list")
@_friendly
def users_list():
    """List the users with their roles and names."""
    from . import CRM

    with CRM.connect(user="") as crm:
        listed = crm.users.list(limit=None, order_by="email")
    for u in listed:
        click.echo(f"{u['email']:<40} {u['role']:<8} {u['full_name']}")


@users.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(["admin", "manager", "rep", "analyst"]))
@_friendly
def users_role(email, role):
    """Give a user a role: admin (everything), manager (their teams' records), rep (their own
    deals and activities), analyst (reads everything, changes nothing). Audited."""
    from . import CRM

    with CRM.connect() as crm:
        user = crm.access.set_role(email, role)
    click.echo(f"{user['email']} is now {user['role']}")


@users.group("team", invoke_without_command=True)
@click.pass_context
@_friendly
def users_team(ctx):
    """Teams: a manager sees the records of their teams' members. Without a subcommand: list them."""
    if ctx.invoked_subcommand is None:
        from . import CRM

        with CRM.connect() as crm:
            teams = crm.access.teams()
        if not teams:
            click.echo("no teams; add one with `crm users team add NAME --manager EMAIL`")
        for t in teams:
            click.echo(f"{t['name']:<24} manager {t['manager'] or '-':<32} members: {', '.join(t['members']) or '-'}")


@users_team.command("add")
@click.argument("name")
@click.option("--manager", metavar="EMAIL", help="The team's manager (give them the manager role too).")
@_friendly
def users_team_add(name, manager):
    """Create a team; its manager sees the records of its members."""
    from . import CRM

    with CRM.connect() as crm:
        team = crm.access.add_team(name, manager=manager)
    click.echo(f"team {team['name']} (manager {team['manager'] or '-'})")


@users_team.command("member")
@click.argument("team")
@click.argument("email")
@click.option("--remove", is_flag=True, help="Take the user out of the team.")
@_friendly
def users_team_member(team, email, remove):
    """Put a user in a team (or take them out with --remove). Audited."""
    from . import CRM

    with CRM.connect() as crm:
        found = crm.access.remove_member(team, email) if remove else crm.access.add_member(team, email)
    click.echo(f"team {found['name']}: {', '.join(found['members']) or 'no members'}")


@users_team.command("manager")
@click.argument("team")
@click.argument("email", required=False)
@_friendly
def users_team_manager(team, email):
    """Make EMAIL the team's manager (no EMAIL: none). Audited."""
    from . import CRM

    with CRM.connect() as crm:
        found = crm.access.set_manager(team, email)
    click.echo(f"team {found['name']}: manager {found['manager'] or '-'}")


@users.command("db-credentials")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="Drop the user's database login instead, ending its open sessions.")
@_friendly
def users_db_credentials(email, revoke):
    """Create (or rotate) the user's own PostgreSQL login for raw SQL and print its URL, shown
    once. Row-level security gives it exactly the user's rows; it cannot act as anyone else.
    --revoke drops the login."""
    from . import CRM
    from .access.admin import db_credentials, revoke_db_credentials
    from .errors import AccessDeniedError

    with CRM.connect(owner=True) as owner:
        with CRM.connect() as acting:  # only an admin hands out or takes back logins
            if acting.user_role != "admin":
                raise AccessDeniedError(
                    f"only admins issue database logins; {acting.user_email} is a {acting.user_role}", table="users"
                )
            by = acting.user_id
        if revoke:
            login = revoke_db_credentials(owner.engine, email, by=by)
            click.echo(f"Database login {login} of {email} dropped")
            return
        url = db_credentials(owner.engine, email, by=by)
    click.echo(f"Database login for {email}; shown once, keep it private:")
    click.echo(f"  {url}")


@users.command("token")
@click.argument("email", required=False)
@click.option(
    "--revoke", is_flag=True, help="Revoke the user's tokens (all, or the one --id names) and end their sessions."
)
@click.option("--id", "token_id", metavar="ID", help="With --revoke: only this token.")
@click.option("--list", "listing", is_flag=True, help="List active tokens (the user's, or everyone's without EMAIL).")
@click.option("--all", "include_revoked", is_flag=True, help="With --list: revoked tokens too.")
@click.option(
    "--url",
    "base",
    metavar="URL",
    help="The address users reach `crm serve` at, for the link [default: http://127.0.0.1:8866/].",
)
@_friendly
def users_token(email, revoke, token_id, listing, include_revoked, base):
    """Issue a sign-in token for `crm serve` and print its sign-in link (shown once: only its
    hash is kept). --revoke withdraws tokens, --list shows them."""
    from . import CRM
    from .access import tokens
    from .serve import sign_in_url

    if not listing and not email:
        raise click.UsageError("name the user: crm users token EMAIL (or --list)")
    with CRM.connect() as crm:
        if listing:
            for t in tokens.list_tokens(crm.engine, email, include_revoked=include_revoked):
                used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else used
                click.echo(f"{t.id}  {t.email:<32} issued {t.created_at:%Y-%m-%d %H:%M}  {state}")
        elif revoke:
            gone = tokens.revoke(crm.engine, email, token_id, by=crm.user_id)
            click.echo(f"revoked {len(gone)} token(s) of {email}")
        else:
            if token_id:
                raise click.UsageError("--id goes with --revoke")
            issued, secret = tokens.issue(crm.engine, email, by=crm.user_id)
            click.echo(f"Sign-in link for {issued.email} (token {issued.id}); shown once, keep it private:")
            click.echo(f"  {sign_in_url(secret, base)}")


# -- snapshots -----------------------------------------------------------------------------


@main.group()
def snapshot():
    """Parquet snapshots of the CRM for DuckDB: export, list and prune them."""


_snapshot_folder = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder holding the snapshots [default: $CRM_HOME/snapshots].",
)


@snapshot.command("export")
@_snapshot_folder
@click.option(
    "--incremental",
    is_flag=True,
    help="Copy only rows changed since the newest snapshot in the folder (the same result as a full export).",
)
@_friendly
def snapshot_export(out, incremental):
    """Copy every table to Parquet from one consistent transaction; prints the new folder."""
    from . import CRM
    from .snapshot import Manifest

    with CRM.connect() as crm:  # the acting user's rows, where row-level security applies
        path = crm.snapshot(out, incremental=incremental, progress=True)
    manifest = Manifest.read(path)
    how = f"incremental from {manifest.base}" if manifest.base else "full"
    if manifest.view is not None and not manifest.view.full:
        how += f", only the rows {manifest.view.email} may read"
    click.echo(f"{len(manifest.tables)} tables, {manifest.rows:,} rows ({how})", err=True)
    click.echo(path)


@snapshot.command("list")
@_snapshot_folder
@_friendly
def snapshot_list(out):
    """List the snapshots, oldest first, with their tables, rows and size."""
    from .snapshot import Manifest, default_parent, snapshots

    parent = out or default_parent()
    found = snapshots(parent)
    if not found:
        click.echo(f"no snapshots in {parent}")
        return
    for path in found:
        manifest = Manifest.read(path)
        size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        how = f"incremental from {manifest.base}" if manifest.base else "full"
        click.echo(f"{path.name}  {len(manifest.tables):>3} tables  {manifest.rows:>12,} rows  {size:>9.1f} MB  {how}")


@snapshot.command("prune")
@_snapshot_folder
@click.option("--keep", type=click.IntRange(min=1), required=True, help="How many of the newest snapshots to keep.")
@_friendly
def snapshot_prune(out, keep):
    """Delete all but the newest N snapshots, and what interrupted exports left behind."""
    from .snapshot import default_parent, prune

    removed = prune(out or default_parent(), keep)
    for path in removed:
        click.echo(f"removed {path.name}")
    click.echo(f"{len(removed)} removed")


# -- money ---------------------------------------------------------------------------------


@main.group()
def currency():
    """The reporting currency and exchange rates into it."""


@currency.command("reporting")
@click.argument("code", required=False)
@_friendly
def currency_reporting(code):
    """Show the reporting currency, or make CODE it (every stored rate is re-based)."""
    from . import CRM

    with CRM.connect() as crm:
        click.echo(crm.money.set_reporting_currency(code) if code else crm.money.reporting_currency())


@currency.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--layout",
    type=click.Choice(["auto", "plain", "ecb"]),
    default="auto",
    show_default=True,
    help="plain: currency,date,rate; ecb: the European Central Bank's Date,USD,JPY,... per euro.",
)
@_friendly
def currency_import(file, layout):
    """Load exchange rates from a CSV file (all rows or, when one is wrong, none)."""
    from . import CRM

    with CRM.connect() as crm:
        counts = crm.money.import_rates(file, layout=layout)
        reporting = crm.money.reporting_currency()
    for code, n in sorted(counts.items()):
        click.echo(f"{code}  {n:>7,} rates")
    click.echo(f"{sum(counts.values()):,} rates into {reporting}")


@currency.command("rates")
@click.argument("code", required=False)
@_friendly
def currency_rates(code):
    """List the stored rates (of one currency with CODE)."""
    from . import CRM

    with CRM.connect() as crm:
        frame = crm.money.rates(code)
    for row in frame.iter_rows(named=True):
        click.echo(f"{row['currency']}  {row['rate_date']}  {row['rate']:>20}  {row['source'] or ''}")


# -- mail and calendar -------------------------------------------------------------------


@main.group()
def ingest():
    """Mail and calendar into activities: mbox, .eml files, .ics calendars and IMAP folders.

    Messages become e-mail activities, events meetings, linked to the contact by address and
    the company by domain. Running again adds nothing (Message-ID / UID identify them).
    """


_create_contacts = click.option(
    "--create-contacts",
    is_flag=True,
    help="Add an unknown sender from a known company's domain as a lead contact (default: skip and count).",
)


def _report(summary) -> None:
    click.echo(str(summary))


@ingest.command("mbox")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_create_contacts
@_friendly
def ingest_mbox(file, create_contacts):
    """Ingest every message of an mbox FILE."""
    from . import CRM

    with CRM.connect() as crm:
        _report(crm.ingest.mbox(file, create_contacts=create_contacts, progress=True))


@ingest.command("eml")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_create_contacts
@_friendly
def ingest_eml(folder, create_contacts):
    """Ingest every *.eml file in FOLDER and its subfolders."""
    from . import CRM

    with CRM.connect() as crm:
        _report(crm.ingest.eml(folder, create_contacts=create_contacts, progress=True))


@ingest.command("ics")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_create_contacts
@_friendly
def ingest_ics(file, create_contacts):
    """Ingest the events of an iCalendar FILE as meetings (a recurring series as its first
    instance plus the instances the file holds)."""
    from . import CRM

    with CRM.connect() as crm:
        _report(crm.ingest.ics(file, create_contacts=create_contacts, progress=True))


@ingest.command("imap")
@click.option("--host", required=True, help="The IMAP server.")
@click.option("--user", required=True, help="The login name.")
@click.option("--folder", default="INBOX", show_default=True, help="The folder (opened read-only).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="[default: 993 with --ssl, 143 with --starttls or --plain]",
)
@click.option("--ssl", "security", flag_value="ssl", default=True, help="TLS from the start (the default).")
@click.option("--starttls", "security", flag_value="starttls", help="Plain connection upgraded with STARTTLS.")
@click.option(
    "--plain",
    "security",
    flag_value="plain",
    help="No encryption: the password travels in clear (a server on this machine only).",
)
@_create_contacts
@_friendly
def ingest_imap(host, user, folder, port, security, create_contacts):
    """Ingest the messages of an IMAP folder. The password comes from CRM_IMAP_PASSWORD, else
    a prompt; never from the command line."""
    import os

    from . import CRM

    if security == "plain" and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"Warning: --plain sends the password to {host} unencrypted.", err=True)
    password = os.environ.get("CRM_IMAP_PASSWORD") or click.prompt(f"Password for {user}@{host}", hide_input=True)
    with CRM.connect() as crm:
        _report(
            crm.ingest.imap(
                host,
                user,
                password,
                folder=folder,
                port=port,
                security=security,
                create_contacts=create_contacts,
                progress=True,
            )
        )


# -- reports -------------------------------------------------------------------------------


@main.group()
def report():
    """Parameterised report notebooks run with papermill (for cron or a systemd timer)."""


@report.command("list")
@_friendly
def report_list():
    """List the reports and their parameters."""
    from . import reports

    for r in reports.available():
        params = ", ".join(f"{name}={p['default']}" for name, p in r.parameters.items())
        click.echo(f"{r.name:<22} {r.title}")
        if params:
            click.echo(f"{'':<22} parameters: {params}")


@report.command("run")
@click.argument("name")
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="A parameter of the report (repeatable); numbers and true/false are typed as such.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for NAME-YYYY-MM-DD.ipynb and .html [default: $CRM_HOME/reports].",
)
@click.option(
    "--mail-to",
    "mail_to",
    multiple=True,
    metavar="ADDR",
    help="Mail the HTML to ADDR through CRM_SMTP_URL (repeatable).",
)
@click.option("--no-snapshot", is_flag=True, help="Do not take a fresh snapshot first.")
@_friendly
def report_run(name, parameters, out, mail_to, no_snapshot):
    """Run report NAME on a fresh snapshot; prints the HTML file written."""
    from papermill.cli import _resolve_type

    from . import reports

    result = reports.run(
        name,
        {k: _resolve_type(v) for k, v in parameters},
        out=out,
        snapshot=not no_snapshot,
        mail_to=list(mail_to) or None,
        progress=False,
    )
    click.echo(f"{result.notebook}", err=True)
    if result.mailed_to:
        click.echo(f"mailed to {', '.join(result.mailed_to)}", err=True)
    click.echo(result.html)


if __name__ == "__main__":
    main()
