"""The ``crm`` command: a thin shell over the library. Library errors become clean messages."""

from __future__ import annotations

import datetime as dt
import functools
import sys

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


def _settings_help() -> str:
    return "\n".join(f"  {s.env:<17} {s.help}" for s in SETTINGS)


@click.group(epilog="Settings (environment variables):\n\n" + _settings_help(),
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    cluster = _embedded(config)
    url = cluster.start()
    click.echo(f"PostgreSQL is running in {cluster.root}")
    click.echo(url)


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
    from .db import connect_engine, pending_migrations, resolve_url, schema_version
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
    url = resolve_url(config)
    engine = connect_engine(url)
    with engine.connect() as conn:
        version = schema_version(conn)
    pending = pending_migrations(engine)
    engine.dispose()
    click.echo(f"url: {safe_url(url)}")
    click.echo(f"schema version: {version or 'none'}")
    click.echo(f"pending migrations: {', '.join(m.path.name for m in pending) or 'none'}")


@db.command()
@_friendly
def migrate():
    """Apply pending migrations from sql/ (a no-op when up to date)."""
    from .db import connect_engine, resolve_url
    from .db import migrate as apply

    engine = connect_engine(resolve_url())
    applied = apply(engine)
    engine.dispose()
    for m in applied:
        click.echo(f"applied {m.path.name}")
    click.echo(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")


@db.command()
@_friendly
def url():
    """Print the database URL (for psql and other tools)."""
    from .db import resolve_url
    from .db.engine import libpq_url

    click.echo(libpq_url(resolve_url()))


# -- data ----------------------------------------------------------------------------------


@main.command("demo-data")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="1 = 1,000 companies, 5,000 contacts, 2,000 deals, 20,000 activities, 10 users.")
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed and --today, same data (ids too).")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The date the data is centred on [default: today].")
@click.option("--if-empty", is_flag=True, help="Do nothing when the CRM already holds companies.")
@click.option("--replace", is_flag=True, help="Delete all CRM data first (keeps users' schema and stages).")
@_friendly
def demo_data(scale, seed, today, if_empty, replace):
    """Load realistic demo data with COPY."""
    from . import CRM
    from .services import demo_data as demo

    crm = CRM.connect()
    if if_empty and crm.companies.count(include_deleted=True):
        click.echo("the CRM already holds data: demo data not loaded")
        return
    counts = demo.load(crm.engine, scale=scale, seed=seed,
                       today=today.date() if today else dt.date.today(), replace=replace, progress=True)
    click.echo(", ".join(f"{n:,} {table}" for table, n in counts.items()))


# -- queries -------------------------------------------------------------------------------


@main.group()
def query():
    """Run query specs (JSON files) on PostgreSQL or on a DuckDB snapshot."""


_TABLE_ROWS = 100


@query.command("run")
@click.argument("spec_file", metavar="SPEC.json", type=click.File("r"))
@click.option("--backend", type=click.Choice(["postgres", "duckdb"]), default="postgres", show_default=True)
@click.option("--snapshot", "snapshot_dir", type=click.Path(exists=True, file_okay=False),
              help="Snapshot folder (or a parent of several) for --backend duckdb [default: the newest].")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="json is a list of row objects.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
@_friendly
def query_run(spec_file, backend, snapshot_dir, fmt, out):
    """Run the query in SPEC.json (`-` reads stdin) and print or save its rows."""
    from . import CRM

    spec = spec_file.read()
    if backend == "duckdb":
        from .query import run_duckdb
        from .snapshot import open as open_snapshot

        with open_snapshot(snapshot_dir) as snap:
            result = run_duckdb(snap.con, spec, timezone=Config.from_env().timezone)
    else:
        result = CRM.connect().execute(spec)
    frame = result.frame
    if fmt == "parquet" and not out:
        raise click.UsageError("--format parquet needs --out FILE")
    if fmt == "table":
        import polars as pl

        with pl.Config(tbl_rows=_TABLE_ROWS, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            text = str(frame.head(_TABLE_ROWS))
        shown = "" if frame.height <= _TABLE_ROWS else f" (showing {_TABLE_ROWS}; use --format csv --out FILE for all)"
        text += f"\n{frame.height:,} rows in {result.execute_seconds * 1000:.1f} ms on {backend}{shown}\n"
        _emit(text, out)
    elif fmt == "csv":
        _emit(frame.write_csv(), out)
    elif fmt == "json":
        _emit(frame.write_json(), out)
    else:
        frame.write_parquet(out, compression="zstd")
    if out:
        click.echo(f"{frame.height:,} rows written to {out}", err=True)


def _emit(text: str, out: str | None) -> None:
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@query.command("sql")
@click.argument("spec_file", metavar="SPEC.json", type=click.File("r"))
@click.option("--dialect", type=click.Choice(["postgres", "duckdb"]), default="postgres", show_default=True)
@_friendly
def query_sql(spec_file, dialect):
    """Print the SQL a spec compiles to, with its values shown inline (for reading only).

    Works offline for the built-in entities; with a reachable database it also knows its
    other tables, views and custom fields.
    """
    from .errors import DatabaseError
    from .query import compile_spec, parse
    from .query.run import postgres_schema

    spec = parse(spec_file.read())
    schema = None
    try:
        from .db import connect_engine, resolve_url

        engine = connect_engine(resolve_url())
        with engine.connect() as conn:
            schema = postgres_schema(conn, spec.entity)
        engine.dispose()
    except DatabaseError:
        pass  # offline: the catalog alone
    click.echo(compile_spec(spec, dialect, schema=schema, timezone=Config.from_env().timezone).preview())


# -- users ---------------------------------------------------------------------------------


@main.group()
def users():
    """The people who use the CRM (CRM_USER names one by e-mail)."""


@users.command("add")
@click.argument("email")
@click.option("--name", "full_name", help="Full name [default: from the e-mail].")
@click.option("--role", type=click.Choice(["admin", "manager", "rep"]), default="rep", show_default=True)
@_friendly
def users_add(email, full_name, role):
    """Add a user; set CRM_USER to their e-mail to act as them."""
    from . import CRM

    crm = CRM.connect(user="")
    name = full_name or email.split("@")[0].replace(".", " ").title()
    user = crm.users.create(email=email, full_name=name, role=role)
    click.echo(f"added {user['email']} ({user['role']}) {user['id']}")


@users.command("list")
@_friendly
def users_list():
    """List the users with their roles and names."""
    from . import CRM

    crm = CRM.connect(user="")
    for u in crm.users.list(limit=None, order_by="email"):
        click.echo(f"{u['email']:<40} {u['role']:<8} {u['full_name']}")


if __name__ == "__main__":
    main()
