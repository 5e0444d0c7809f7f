"""The ``amebo`` command.

``amebo serve`` runs the API with delivery; ``amebo worker`` runs delivery only;
``amebo migrate`` applies migrations; ``amebo projections rebuild`` replays the log. The
seed's form ``amebo --workers 2 --address 0.0.0.0:8701`` means ``amebo serve``. With no
database URL, an embedded PostgreSQL is started and its data kept per user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator, Sequence

from amebo import __version__, logs
from amebo.config import ConfigError, Settings, parse_address

COMMANDS = ("serve", "worker", "migrate", "projections")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"amebo: {message} (see 'amebo --help')\n")


def _address(value: str) -> tuple[str, int]:
    try:
        return parse_address(value)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers {value!r} is not a whole number") from None
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError("--workers must be between 1 and 64")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="amebo", description="Event notification server on PostgreSQL.")
    parser.add_argument("--version", action="version", version=f"amebo {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    def database(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--database-url",
            metavar="URL",
            help="PostgreSQL URL (default: AMEBO_DATABASE_URL, else embedded)",
        )

    serve = commands.add_parser("serve", help="run the API and delivery")
    serve.add_argument(
        "-a",
        "--address",
        type=_address,
        metavar="HOST:PORT",
        help="where to listen (default: AMEBO_ADDRESS or 127.0.0.1:8701)",
    )
    serve.add_argument(
        "-w", "--workers", type=_workers, metavar="N", help="processes sharing the port (default 1)"
    )
    database(serve)
    worker = commands.add_parser("worker", help="run delivery only, no API")
    database(worker)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    database(migrate)
    projections = commands.add_parser("projections", help="projection maintenance")
    projection_commands = projections.add_subparsers(
        dest="projection_command", required=True, parser_class=_Parser
    )
    rebuild = projection_commands.add_parser(
        "rebuild", help="rebuild every projection from the log"
    )
    database(rebuild)
    return parser


def _normalise(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        return ["serve", *args]
    return args


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    from amebo.db.embedded import EmbeddedPostgresError, embedded_postgres

    try:
        with embedded_postgres() as url:
            yield url
    except EmbeddedPostgresError as error:
        raise SystemExit(f"amebo: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_normalise(sys.argv[1:] if argv is None else argv))
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"amebo: {error}", file=sys.stderr)
        return 2
    changes: dict[str, object] = {}
    if getattr(args, "database_url", None):
        changes["database_url"] = args.database_url
    if getattr(args, "address", None):
        changes["host"], changes["port"] = args.address
    if getattr(args, "workers", None):
        changes["workers"] = args.workers
    settings = settings.replace(**changes)
    logs.configure(settings.log_level)

    from amebo import server
    from amebo.db.migrations import migrate

    with _database(settings) as url:
        server.check_database(url)
        try:
            migrate(url)
        except Exception as error:
            print(f"amebo: migration failed: {error}", file=sys.stderr)
            return 1
        if args.command == "migrate":
            print("amebo: database is up to date")
            return 0
        if args.command == "projections":
            from amebo.projections.rebuild import rebuild

            applied = asyncio.run(_rebuild(url, rebuild))
            print(f"amebo: projections rebuilt from {applied} log entries")
            return 0
        try:
            if args.command == "worker":
                server.run(server.worker_async(settings, url))
            else:
                server.serve(settings, url)
        except KeyboardInterrupt:
            pass
        except OSError as error:
            print(f"amebo: {error}", file=sys.stderr)
            return 1
    return 0


async def _rebuild(url: str, rebuild: object) -> int:
    import psycopg

    from amebo.projections.rebuild import rebuild as do_rebuild

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await do_rebuild(conn)
