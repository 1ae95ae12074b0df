"""`alvh db …`: migrate, backup, export and import the positions store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add `alvh db migrate|backup|export|import`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", metavar="URL", default=None,
                        help="database to use (default: DATABASE_URL, else alvh.db in the "
                             "data folder)")
    db = sub.add_parser("db", help="the positions store: migrate, backup, export, import")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    p = db_sub.add_parser("migrate", parents=[common], help="upgrade the schema (to head)")
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p.set_defaults(func=_migrate)

    p = db_sub.add_parser("backup", parents=[common],
                          help="copy the SQLite file with the online backup API (safe while "
                               "the bot runs)")
    p.add_argument("path", help="where to write the copy (replaced if it exists)")
    p.set_defaults(func=_backup)

    p = db_sub.add_parser("export", parents=[common], help="one user's rows as JSON or CSV")
    p.add_argument("--user", type=int, required=True, metavar="ID", help="Telegram user id")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=_export)

    p = db_sub.add_parser("import", parents=[common],
                          help="restore a user from an export (JSON or CSV)")
    p.add_argument("file", help="an export written by `alvh db export`")
    p.set_defaults(func=_import)


def _store(args: argparse.Namespace, migrate: bool = True):
    from bot.store.service import Store

    return Store.open(args.database_url, migrate=migrate)


def _run(action) -> int:
    """Errors become one line on stderr and exit status 1, never a traceback."""
    from bot.store.errors import StoreError  # the store stack loads when a db command runs

    try:
        return action()
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:
        print(f"error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
              file=sys.stderr)
    except Exception as err:  # a database that cannot be opened, a broken file
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
    return 1


def _migrate(args: argparse.Namespace) -> int:
    def action() -> int:
        from bot.store.engine import database_url, make_engine, resolve_url
        from bot.store.migrate import migrate

        url = args.database_url or database_url()
        engine = make_engine(url)
        try:
            revision = migrate(engine, args.revision)
        finally:
            engine.dispose()
        print(f"{_shown(resolve_url(url))} is at revision {revision}")
        return 0

    return _run(action)


def _backup(args: argparse.Namespace) -> int:
    def action() -> int:
        store = _store(args)
        try:
            path = store.backup(args.path)
        finally:
            store.close()
        print(f"backup written to {path}")
        return 0

    return _run(action)


def _export(args: argparse.Namespace) -> int:
    def action() -> int:
        from bot.store.transfer import dump_csv, dump_json

        store = _store(args)
        try:
            data = store.export_user(args.user)
        finally:
            store.close()
        text = dump_json(data) if args.format == "json" else dump_csv(data)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
        else:
            sys.stdout.write(text)
        return 0

    return _run(action)


def _import(args: argparse.Namespace) -> int:
    def action() -> int:
        from bot.store.transfer import load

        # newline="": a "\r\n" inside a quoted CSV cell is data, not a line ending
        with open(args.file, encoding="utf-8", newline="") as f:
            data = load(f.read())
        store = _store(args)
        try:
            tg_user_id = store.import_user(data)
        finally:
            store.close()
        print(f"imported user {tg_user_id}")
        return 0

    return _run(action)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
