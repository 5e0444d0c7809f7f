"""What a user sees when the command cannot go on: one line on stderr, no traceback, and a
status that says so (2 for how it was called, 1 for what it found)."""

from __future__ import annotations

import socket

import pytest

from tests.acceptance.process import environment, free_port, run


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("amebo: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bogus"], "amebo: unrecognized arguments: --bogus"),
        (["serve", "--workers", "many"], "--workers: 'many' is not a whole number"),
        (["--workers", "0"], "--workers: '0' is not between 1 and 64"),
        (["serve", "--address", "8701"], "--address: address '8701' is not HOST:PORT"),
        (["-a", "127.0.0.1:99999"], "has a port outside 0-65535"),
        (["projections"], "the following arguments are required: COMMAND"),
        (["projections", "replay"], "invalid choice: 'replay'"),
    ],
)
def test_bad_flags_get_one_line_and_status_2(args: list[str], expected: str) -> None:
    result = run(args, environment())
    assert result.returncode == 2, result
    assert expected in _one_line(result.stderr)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "AMEBO_ADDRESS",
            "localhost",
            "amebo: AMEBO_ADDRESS: address 'localhost' is not HOST:PORT",
        ),
        ("AMEBO_WORKERS", "two", "amebo: AMEBO_WORKERS: 'two' is not a whole number"),
        ("AMEBO_LOG_LEVEL", "loud", "amebo: AMEBO_LOG_LEVEL='loud' must be one of"),
        (
            "AMEBO_MAX_BODY_BYTES",
            "-1",
            "amebo: AMEBO_MAX_BODY_BYTES='-1' must be greater than zero",
        ),
        ("AMEBO_RETRY_SCHEDULE", "5,soon", "amebo: AMEBO_RETRY_SCHEDULE='5,soon' is not a comma"),
    ],
)
def test_bad_environment_gets_one_line_and_status_2(name: str, value: str, expected: str) -> None:
    result = run(["serve"], environment(**{name: value}))
    assert result.returncode == 2, result
    assert _one_line(result.stderr).startswith(expected)


@pytest.mark.parametrize(
    "command", [["serve"], ["worker"], ["migrate"], ["projections", "rebuild"]]
)
def test_unreachable_database_gets_one_line(command: list[str]) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/amebo"
    result = run(
        [*command, "--database-url", nobody], environment(AMEBO_ADDRESS=f"127.0.0.1:{free_port()}")
    )
    assert result.returncode == 1, result
    assert _one_line(result.stderr).startswith("amebo: cannot connect to the database: ")


def test_malformed_database_url_gets_one_line() -> None:
    result = run(["migrate"], environment(AMEBO_DATABASE_URL="not a url"))
    assert result.returncode == 1, result
    assert _one_line(result.stderr).startswith("amebo: cannot connect to the database: ")


def test_database_flag_wins_over_environment(database_url: str) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/amebo"
    result = run(
        ["migrate", "--database-url", database_url], environment(AMEBO_DATABASE_URL=nobody)
    )
    assert result.returncode == 0, result
    assert result.stdout.strip() == "amebo: database is up to date"


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_port_in_use_gets_one_line(database_url: str, address: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            ["serve", "--address", f"{address}:{port}", "--database-url", database_url],
            environment(),
        )
    assert result.returncode == 1, result
    assert (
        _one_line(result.stderr)
        == f"amebo: cannot listen on {address}:{port}: address already in use"
    )


def test_port_shared_by_another_amebo_with_workers_is_in_use(database_url: str) -> None:
    """SO_REUSEPORT would let a second `--workers` amebo quietly share the port."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            [
                "serve",
                "--workers",
                "2",
                "--address",
                f"127.0.0.1:{port}",
                "--database-url",
                database_url,
            ],
            environment(),
        )
    assert result.returncode == 1, result
    assert "address already in use" in _one_line(result.stderr)


def test_unknown_host_gets_one_line(database_url: str) -> None:
    result = run(
        ["serve", "--address", "no-such-host.invalid:8701", "--database-url", database_url],
        environment(),
    )
    assert result.returncode == 1, result
    assert _one_line(result.stderr).startswith(
        "amebo: cannot listen on no-such-host.invalid:8701: "
    )


def test_help_and_version_exit_0() -> None:
    assert run(["--version"], environment()).stdout.startswith("amebo ")
    helped = run(["--help"], environment())
    assert helped.returncode == 0
    for command in ("serve", "worker", "migrate", "projections"):
        assert command in helped.stdout
