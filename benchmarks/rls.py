"""The cost of row-level security (sql/017) on the query benchmark's questions.

    .venv/bin/python benchmarks/rls.py --scale 10

Each question of benchmarks/query.py runs through ``crm.execute`` as four users: the schema's
owner (no policies apply: the baseline), and an admin, a manager and a rep logged in as the
apps are (a login in role crm_app). It prints the best of --repeat runs for each, the rows each
one got, and the manager's and the rep's time as a ratio of the admin's (goal: within 1.3x).
A rep and a manager see fewer rows than an admin; the ratio is what their filtering costs.

Demo data is loaded at --scale into a throwaway cluster, with its teams (a manager each, the
reps dealt out among them). With --url its data is used as it is (teams are made the same way
only when it has none; a login crm_bench_app in role crm_app is created or given a new password).
"""

from __future__ import annotations

import argparse
import secrets

import sqlalchemy as sa
from harness import best, database
from query import NOW, QUESTIONS, TODAY

from crm_kernel import CRM
from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine

LOGIN = "crm_bench_app"


def app_engine(owner: sa.Engine) -> sa.Engine:
    """A login in role crm_app, as `crm db start` makes crm_service."""
    password = secrets.token_urlsafe(12)
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{LOGIN}'").first()
        conn.exec_driver_sql(f"{'ALTER' if exists else 'CREATE'} ROLE {LOGIN} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"GRANT crm_app TO {LOGIN}")
    return connect_engine(owner.url.set(username=LOGIN, password=password).render_as_string(hide_password=False))


def make_teams(crm: CRM) -> dict[str, str]:
    """One team per manager, the reps dealt out among them, unless there are teams (the demo's);
    returns an e-mail per role."""
    users = crm.users.list(limit=None, order_by="email")
    managers = [u["email"] for u in users if u["role"] == "manager"]
    reps = [u["email"] for u in users if u["role"] == "rep"]
    admin = next(u["email"] for u in users if u["role"] == "admin" and not u["email"].startswith("system@"))
    if not crm.access.teams():
        for i, manager in enumerate(managers):
            crm.access.add_team(f"Team {i + 1}", manager=manager)
        for i, rep in enumerate(reps):
            crm.access.add_member(f"Team {i % len(managers) + 1}", rep)
    return {"admin": admin, "manager": managers[0], "rep": reps[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="run on this database (its data is used as it is)")
    args = parser.parse_args()

    with database(args.url, "crm-bench-rls-") as url:
        owner = connect_engine(url)
        if not args.url:
            print(f"loading demo data at scale {args.scale} ...", flush=True)
            demo_data.load(owner, scale=args.scale, seed=42, today=TODAY)
        who = make_teams(CRM(owner))
        app = app_engine(owner)
        crms = {"owner": CRM(owner), **{role: CRM(app, user=email) for role, email in who.items()}}
        with owner.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        print(
            f"{'question':<42} " + " ".join(f"{r:>9}" for r in crms) + f" {'mgr/adm':>8} {'rep/adm':>8}   rows "
            "(owner/admin/manager/rep)"
        )
        for name, (spec, *_rest) in QUESTIONS.items():
            times, rows = {}, {}
            for role, crm in crms.items():
                rows[role] = crm.execute(spec, now=NOW).frame.height
                times[role] = best(args.repeat, lambda crm=crm, spec=spec: crm.execute(spec, now=NOW).frame)
            print(
                f"{name:<42} "
                + " ".join(f"{times[r] * 1e3:>7.1f}ms" for r in crms)
                + f" {times['manager'] / times['admin']:>7.2f}x {times['rep'] / times['admin']:>7.2f}x   "
                + "/".join(str(rows[r]) for r in crms),
                flush=True,
            )
        app.dispose()
        owner.dispose()


if __name__ == "__main__":
    main()
