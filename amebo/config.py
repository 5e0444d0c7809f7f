"""Settings, read from the environment and overridden by command-line flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from typing import TypeVar


class ConfigError(ValueError):
    """A setting has a value amebo cannot use; the message says which and why."""


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8701
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_WORKERS = 64
LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_address(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"address {value!r} is not HOST:PORT")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"address {value!r} has a port that is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"address {value!r} has a port outside 0-65535")
    return host, port


def parse_workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= MAX_WORKERS:
        raise ConfigError(f"{value!r} is not between 1 and {MAX_WORKERS}")
    return number


def _address(env: Mapping[str, str], name: str) -> tuple[str, int]:
    raw = env.get(name)
    if not raw:
        return DEFAULT_HOST, DEFAULT_PORT
    try:
        return parse_address(raw)
    except ConfigError as error:
        raise ConfigError(f"{name}: {error}") from None


def _workers(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name)
    if not raw:
        return 1
    try:
        return parse_workers(raw)
    except ConfigError as error:
        raise ConfigError(f"{name}: {error}") from None


def _log_level(env: Mapping[str, str], name: str) -> str:
    raw = (env.get(name) or "info").strip().lower()
    if raw not in LOG_LEVELS:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(LOG_LEVELS)}")
    return raw


Number = TypeVar("Number", int, float)
_WHAT = {int: "a whole number", float: "a number"}


def _number(
    kind: type[Number],
    env: Mapping[str, str],
    name: str,
    default: Number,
    zero_is_off: bool = False,
) -> Number:
    """A number greater than zero; or, where ``zero_is_off``, 0 (off) or more."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {_WHAT[kind]}") from None
    if zero_is_off and value < 0:
        raise ConfigError(f"{name}={raw!r} must be 0 (off) or more")
    if not zero_is_off and value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero")
    return value


def _schedule(env: Mapping[str, str], name: str) -> tuple[float, ...]:
    raw = env.get(name)
    if not raw:
        return DEFAULT_RETRY_SCHEDULE
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a comma-separated list of seconds") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"{name}={raw!r} needs at least one delay, none negative")
    return values


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    values = tuple(part.strip() for part in raw.split(",") if part.strip())
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not a network (CIDR)") from None
    return values


def _profile(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "open").strip().lower()
    if raw not in ("open", "hardened"):
        raise ConfigError(f"{name}={raw!r} must be 'open' or 'hardened'")
    return raw == "hardened"


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    # Where the embedded PostgreSQL keeps its data when no database URL is given.
    data_dir: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    admin_token: str | None = None
    login_failures_per_name: int = 10  # a minute, then 429
    login_failures_per_address: int = 30
    max_body_bytes: int = 1_048_576
    delivery_timeout: float = 15.0
    delivery_batch_size: int = 200
    delivery_concurrency: int = 256
    endpoint_concurrency: int = 32
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    default_max_retries: int = 7
    poll_interval: float = 5.0
    lease_seconds: float = 60.0
    log_level: str = "info"
    breaker_threshold: int = 5
    breaker_cooldown_min: float = 5.0
    breaker_cooldown_max: float = 600.0
    deactivate_after: float = 5 * 86_400.0
    outbound_allow: tuple[str, ...] = ()
    outbound_deny: tuple[str, ...] = ()
    outbound_hardened: bool = False
    statement_timeout: float = 30.0  # 0: the server's own setting applies
    queue_vacuum_after: int = 1000  # 0: leave the delivery queue to autovacuum
    statistics_after: int = 1000  # rows written between checks; 0: leave them to autovacuum

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        host, port = _address(env, "AMEBO_ADDRESS")
        return cls(
            database_url=env.get("AMEBO_DATABASE_URL") or None,
            data_dir=env.get("AMEBO_DATA_DIR") or None,
            host=host,
            port=port,
            workers=_workers(env, "AMEBO_WORKERS"),
            admin_token=env.get("AMEBO_ADMIN_TOKEN") or None,
            login_failures_per_name=_number(int, env, "AMEBO_LOGIN_FAILURES_PER_NAME", 10),
            login_failures_per_address=_number(int, env, "AMEBO_LOGIN_FAILURES_PER_ADDRESS", 30),
            max_body_bytes=_number(int, env, "AMEBO_MAX_BODY_BYTES", 1_048_576),
            delivery_timeout=_number(float, env, "AMEBO_DELIVERY_TIMEOUT", 15.0),
            delivery_batch_size=_number(int, env, "AMEBO_DELIVERY_BATCH_SIZE", 200),
            delivery_concurrency=_number(int, env, "AMEBO_DELIVERY_CONCURRENCY", 256),
            endpoint_concurrency=_number(int, env, "AMEBO_ENDPOINT_CONCURRENCY", 32),
            retry_schedule=_schedule(env, "AMEBO_RETRY_SCHEDULE"),
            default_max_retries=_number(int, env, "AMEBO_MAX_RETRIES", 7),
            poll_interval=_number(float, env, "AMEBO_POLL_INTERVAL", 5.0),
            lease_seconds=_number(float, env, "AMEBO_LEASE_SECONDS", 60.0),
            log_level=_log_level(env, "AMEBO_LOG_LEVEL"),
            breaker_threshold=_number(int, env, "AMEBO_BREAKER_THRESHOLD", 5),
            breaker_cooldown_min=_number(float, env, "AMEBO_BREAKER_COOLDOWN", 5.0),
            breaker_cooldown_max=_number(float, env, "AMEBO_BREAKER_COOLDOWN_MAX", 600.0),
            deactivate_after=_number(float, env, "AMEBO_DEACTIVATE_AFTER", 5 * 86_400.0),
            outbound_allow=_networks(env, "AMEBO_OUTBOUND_ALLOW"),
            outbound_deny=_networks(env, "AMEBO_OUTBOUND_DENY"),
            outbound_hardened=_profile(env, "AMEBO_OUTBOUND_PROFILE"),
            statement_timeout=_number(
                float, env, "AMEBO_STATEMENT_TIMEOUT", 30.0, zero_is_off=True
            ),
            queue_vacuum_after=_number(
                int, env, "AMEBO_QUEUE_VACUUM_AFTER", 1000, zero_is_off=True
            ),
            statistics_after=_number(int, env, "AMEBO_STATISTICS_AFTER", 1000, zero_is_off=True),
        )

    def __post_init__(self) -> None:
        if self.lease_seconds <= self.delivery_timeout + 1:
            raise ConfigError(
                f"AMEBO_LEASE_SECONDS ({self.lease_seconds:g}) must exceed "
                f"AMEBO_DELIVERY_TIMEOUT ({self.delivery_timeout:g}) by more than a second, "
                "or a slow send could outlive its lease and be delivered twice"
            )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
