"""What the handlers share, held on the aiohttp application under one typed key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import psycopg_pool
from aiohttp import web

from amebo.api.login_limits import LoginLimits
from amebo.auth import VerifiedLogins
from amebo.publishing import ActionCatalog, Publisher


@dataclasses.dataclass
class ApiState:
    pool: psycopg_pool.AsyncConnectionPool[Any]
    publisher: Publisher
    catalog: ActionCatalog
    admin_token: str | None
    default_max_retries: int
    max_body_bytes: int
    logins: VerifiedLogins = dataclasses.field(default_factory=VerifiedLogins)
    login_limits: LoginLimits = dataclasses.field(default_factory=LoginLimits)
    # Wakes this process's delivery worker after a handler commits due work (a retry); the
    # transaction itself notified the workers of other processes.
    wake_worker: Callable[[], None] = lambda: None


STATE: web.AppKey[ApiState] = web.AppKey("amebo_state", ApiState)
