"""Parsing the command line, and how flags and the environment combine (flags win)."""

from __future__ import annotations

import pytest

from amebo import cli
from amebo.config import Settings


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["serve"]),
        (
            ["--workers", "2", "--address", "0.0.0.0:8701"],
            ["serve", "--workers", "2", "--address", "0.0.0.0:8701"],
        ),
        (["-w", "2", "-a", "0.0.0.0:8701"], ["serve", "-w", "2", "-a", "0.0.0.0:8701"]),
        (["serve", "-w", "2"], ["serve", "-w", "2"]),
        (["migrate"], ["migrate"]),
        (["worker"], ["worker"]),
        (["projections", "rebuild"], ["projections", "rebuild"]),
        (["--help"], ["--help"]),
        (["--version"], ["--version"]),
    ],
)
def test_the_seeds_form_means_serve(argv: list[str], expected: list[str]) -> None:
    assert cli.normalise(argv) == expected


def test_seed_form_parses_like_serve() -> None:
    seed = cli.parse_args(["--workers", "2", "--address", "0.0.0.0:8701"])
    explicit = cli.parse_args(["serve", "--workers", "2", "--address", "0.0.0.0:8701"])
    assert seed == explicit
    assert seed.command == "serve"
    assert seed.workers == 2
    assert seed.address == ("0.0.0.0", 8701)


def test_commands_parse() -> None:
    assert cli.parse_args(["migrate", "--database-url", "postgresql:///x"]).database_url == (
        "postgresql:///x"
    )
    assert cli.parse_args(["worker"]).command == "worker"
    rebuild = cli.parse_args(["projections", "rebuild"])
    assert (rebuild.command, rebuild.projection_command) == ("projections", "rebuild")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["serve", "--workers", "0"], "'0' is not between 1 and 64"),
        (["serve", "--address", "nope"], "address 'nope' is not HOST:PORT"),
        (["migrate", "--workers", "2"], "unrecognized arguments: --workers 2"),
        (["projections"], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse_args(argv)
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("amebo: ") and message in line


ENV = {
    "AMEBO_DATABASE_URL": "postgresql://env/amebo",
    "AMEBO_ADDRESS": "10.0.0.1:1000",
    "AMEBO_WORKERS": "3",
    "AMEBO_ADMIN_TOKEN": "env-token-0123456789",
}


def test_environment_applies_without_flags() -> None:
    settings = cli.resolve_settings(cli.parse_args(["serve"]), ENV)
    assert settings.database_url == "postgresql://env/amebo"
    assert (settings.host, settings.port, settings.workers) == ("10.0.0.1", 1000, 3)
    assert settings.admin_token == "env-token-0123456789"


def test_flags_win_over_environment() -> None:
    args = cli.parse_args(
        ["-w", "2", "-a", "127.0.0.1:2000", "--database-url", "postgresql://flag/amebo"]
    )
    settings = cli.resolve_settings(args, ENV)
    assert settings.database_url == "postgresql://flag/amebo"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 2000, 2)
    assert settings.admin_token == "env-token-0123456789", "no flag for it: the environment's"


def test_defaults_without_either() -> None:
    assert cli.resolve_settings(cli.parse_args([]), {}) == Settings()


def test_commands_without_serve_flags_take_the_database_flag() -> None:
    settings = cli.resolve_settings(cli.parse_args(["migrate", "--database-url", "x=1"]), ENV)
    assert settings.database_url == "x=1"
    assert settings.port == 1000


def test_bad_environment_ends_main_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMEBO_WORKERS", "lots")
    assert cli.main(["migrate"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == "amebo: AMEBO_WORKERS: 'lots' is not a whole number"
