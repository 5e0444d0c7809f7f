"""The ``amebo`` command.

``amebo serve`` runs the API with delivery; ``amebo worker`` runs delivery only;
``amebo migrate`` applies migrations; ``amebo projections rebuild`` replays the log. The
seed's form ``amebo --workers 2 --address 0.0.0.0:8701`` means ``amebo serve``. With no
database URL, an embedded PostgreSQL is started and its data kept per user.

Whatever goes wrong that a user can fix (a flag, a setting, the database, the port) ends
the command with one line on stderr starting ``amebo:`` and a non-zero status, never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from amebo import __version__, logs
from amebo.config import ConfigError, Settings, parse_address, parse_workers

COMMANDS = ("serve", "worker", "migrate", "projections")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Failure(Exception):
    """Ends the command with this one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"amebo: {message} (see 'amebo --help')\n")


def _address(value: str) -> tuple[str, int]:
    try:
        return parse_address(value)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _workers(value: str) -> int:
    try:
        return parse_workers(value)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="amebo", description="Event notification server on PostgreSQL.")
    parser.add_argument("--version", action="version", version=f"amebo {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    def database(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--database-url",
            metavar="URL",
            help="PostgreSQL URL (default: AMEBO_DATABASE_URL, else an embedded PostgreSQL)",
        )

    serve = commands.add_parser("serve", help="run the API and delivery (the default)")
    serve.add_argument(
        "-a",
        "--address",
        type=_address,
        metavar="HOST:PORT",
        help="where to listen (default: AMEBO_ADDRESS, else 127.0.0.1:8701)",
    )
    serve.add_argument(
        "-w",
        "--workers",
        type=_workers,
        metavar="N",
        help="processes sharing the port (default: AMEBO_WORKERS, else 1)",
    )
    database(serve)
    worker = commands.add_parser("worker", help="run delivery only, no API")
    database(worker)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    database(migrate)
    projections = commands.add_parser("projections", help="projection maintenance")
    projection_commands = projections.add_subparsers(
        dest="projection_command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    rebuild = projection_commands.add_parser(
        "rebuild", help="rebuild every projection from the log"
    )
    database(rebuild)
    return parser


def normalise(argv: Sequence[str]) -> list[str]:
    """The seed's ``amebo [serve flags]`` means ``amebo serve [serve flags]``."""
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        return ["serve", *args]
    return args


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return build_parser().parse_args(normalise(argv))


def resolve_settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """The environment's settings with the flags given on top: flags win."""
    settings = Settings.from_env(env)
    changes: dict[str, object] = {}
    if getattr(args, "database_url", None):
        changes["database_url"] = args.database_url
    if getattr(args, "address", None):
        changes["host"], changes["port"] = args.address
    if getattr(args, "workers", None):
        changes["workers"] = args.workers
    return settings.replace(**changes)


def _interrupt_on_sigterm() -> None:
    # SIGTERM unwinds like Ctrl-C, so the embedded PostgreSQL is stopped whenever it comes:
    # while starting, while serving (the server's own handlers take over then) or after.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    from amebo.db.embedded import EmbeddedPostgresError, default_data_dir, embedded_postgres

    folder = default_data_dir(Path(settings.data_dir) if settings.data_dir else None)
    try:
        with embedded_postgres(folder) as url:
            print(f"amebo: embedded PostgreSQL, data in {folder}", flush=True)
            yield url
    except EmbeddedPostgresError as error:
        raise Failure(str(error)) from None


def _migrate(url: str) -> str:
    from amebo.db.migrations import migrate

    try:
        applied = migrate(url)
    except Exception as error:
        raise Failure(f"migration failed: {_first_line(error)}") from None
    if not applied:
        return "amebo: database is up to date"
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
    return f"amebo: applied {len(applied)} migration(s): {names}"


async def _rebuild(url: str) -> int:
    import psycopg

    from amebo.projections.rebuild import rebuild

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await rebuild(conn)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from amebo import server

    if args.command == "serve":
        # Before the database starts: a taken port should not cost an embedded start-up.
        try:
            server.check_address(settings.host, settings.port)
        except OSError as error:
            raise Failure(str(error)) from None
    with _database(settings) as url:
        try:
            server.check_database(url)
        except server.DatabaseUnreachable as error:
            raise Failure(str(error)) from None
        migrated = _migrate(url)
        if args.command == "migrate":
            print(migrated, flush=True)
            return 0
        if args.command == "projections":
            try:
                applied = asyncio.run(_rebuild(url))
            except Exception as error:
                raise Failure(f"rebuild failed: {_first_line(error)}") from None
            print(f"amebo: projections rebuilt from {applied} log entries", flush=True)
            return 0
        try:
            if args.command == "worker":
                server.run(server.worker_async(settings, url))
            else:
                server.serve(settings, url)
        except OSError as error:
            raise Failure(_first_line(error)) from None
        finally:
            _interrupt_on_sigterm()  # the event loop put the default (kill) back
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = resolve_settings(args, os.environ)
    except ConfigError as error:
        print(f"amebo: {error}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_level)
    _interrupt_on_sigterm()
    try:
        return _run(args, settings)
    except Failure as failure:
        print(f"amebo: {failure}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("amebo: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
