"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from amebo.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_RETRY_SCHEDULE,
    ConfigError,
    Settings,
    parse_address,
    parse_workers,
)


def test_defaults_with_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.host, settings.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8701)
    assert settings.database_url is None and settings.data_dir is None
    assert settings.admin_token is None
    assert settings.workers == 1
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE


def test_empty_values_mean_unset() -> None:
    env = {
        "AMEBO_DATABASE_URL": "",
        "AMEBO_ADDRESS": "",
        "AMEBO_WORKERS": "",
        "AMEBO_ADMIN_TOKEN": "",
    }
    assert Settings.from_env(env) == Settings()


def test_every_documented_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "AMEBO_DATABASE_URL": "postgresql://amebo@db/amebo",
            "AMEBO_DATA_DIR": "/srv/amebo",
            "AMEBO_ADDRESS": "0.0.0.0:9000",
            "AMEBO_WORKERS": "3",
            "AMEBO_ADMIN_TOKEN": "token-0123456789",
            "AMEBO_LOG_LEVEL": "WARNING",
            "AMEBO_RETRY_SCHEDULE": "1,2.5,60",
            "AMEBO_MAX_BODY_BYTES": "2048",
            "AMEBO_STATEMENT_TIMEOUT": "0",
        }
    )
    assert settings.database_url == "postgresql://amebo@db/amebo"
    assert settings.data_dir == "/srv/amebo"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.workers == 3
    assert settings.admin_token == "token-0123456789"
    assert settings.log_level == "warning"
    assert settings.retry_schedule == (1.0, 2.5, 60.0)
    assert settings.max_body_bytes == 2048
    assert settings.statement_timeout == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8701", ("127.0.0.1", 8701)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8701", ("::1", 8701)),
        ("::1:8701", ("::1", 8701)),
    ],
)
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8701", "is not HOST:PORT"),
        (":8701", "is not HOST:PORT"),
        ("localhost:", "port that is not a number"),
        ("localhost:http", "port that is not a number"),
        ("localhost:65536", "outside 0-65535"),
        ("localhost:-1", "outside 0-65535"),
    ],
)
def test_bad_addresses(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_address(text)


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("2", 2), ("64", 64)])
def test_workers(text: str, number: int) -> None:
    assert parse_workers(text) == number


@pytest.mark.parametrize("text", ["0", "65", "-1", "two", "1.5", ""])
def test_bad_workers(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_workers(text)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AMEBO_ADDRESS", "nohost", "AMEBO_ADDRESS: address 'nohost' is not HOST:PORT"),
        ("AMEBO_WORKERS", "0", "AMEBO_WORKERS: '0' is not between 1 and 64"),
        ("AMEBO_LOG_LEVEL", "chatty", "AMEBO_LOG_LEVEL='chatty' must be one of"),
        ("AMEBO_MAX_BODY_BYTES", "big", "AMEBO_MAX_BODY_BYTES='big' is not a whole number"),
        ("AMEBO_DELIVERY_TIMEOUT", "0", "AMEBO_DELIVERY_TIMEOUT='0' must be greater than zero"),
        ("AMEBO_RETRY_SCHEDULE", "1,-5", "AMEBO_RETRY_SCHEDULE='1,-5' needs at least one delay"),
        (
            "AMEBO_OUTBOUND_DENY",
            "10.0.0.0/99",
            "AMEBO_OUTBOUND_DENY: '10.0.0.0/99' is not a network",
        ),
        ("AMEBO_STATEMENT_TIMEOUT", "-1", "AMEBO_STATEMENT_TIMEOUT='-1' must be 0 (off) or more"),
        ("AMEBO_OUTBOUND_PROFILE", "strict", "AMEBO_OUTBOUND_PROFILE='strict' must be 'open'"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value).startswith(message)


def test_settings_are_frozen_and_replaced_whole() -> None:
    settings = Settings()
    changed = settings.replace(port=9000)
    assert (settings.port, changed.port) == (8701, 9000)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_the_statement_timeout_reaches_every_connection_unless_it_is_off() -> None:
    from amebo.runtime import connection_options

    assert "statement_timeout=300 " in connection_options(0.3)["options"] + " "
    assert "statement_timeout" not in connection_options(0)["options"]
