"""`emitter migrate --state-url URL`: apply the shared backend's schema migrations now (`emitter
run` applies them at start too); `--status` lists what is applied without changing anything.

Exit codes: 0 ok, 2 usage (no URL), 6 the database cannot be reached or a migration failed.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from emitter.errors import EXIT_OK, UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "migrate", help="apply the shared PostgreSQL backend's schema migrations",
        description="Apply the versioned schema migrations of the shared backend "
        "(`--state-url`); safe while replicas run and when several start at once.")
    p.add_argument("--state-url", metavar="URL",
                   help="postgresql://... (default: $EMITTER_STATE_URL)")
    p.add_argument("--status", action="store_true",
                   help="list the applied and shipped migrations; change nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from emitter.delivery.backend import STATE_URL_ENV, choose_state_url
    from emitter.state.postgres.db import Database, is_url, migrations

    url = choose_state_url(args.state_url, os.environ)
    if not url or not is_url(url):
        raise UsageError(f"give --state-url postgresql://... or set {STATE_URL_ENV}")
    db = Database(url, migrate=not args.status)
    try:
        if args.status:
            applied = set(db.versions()) if _has_table(db) else set()
            for version, name, _ in migrations():
                print(f"{name}  {'applied' if version in applied else 'pending'}")
            return EXIT_OK
        print(f"schema at version {max(db.versions(), default=0)} on {db.where}")
    finally:
        db.close()
    return EXIT_OK


def _has_table(db: Any) -> bool:
    with db.tx() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        return bool(cur.fetchone()[0])
