"""Builds the aiohttp application from shared state."""

from __future__ import annotations

from aiohttp import web

from amebo.api.params import storable_parameters
from amebo.api.problems import problems_middleware
from amebo.api.routes import ROUTES
from amebo.api.state import STATE, ApiState


def create_app(state: ApiState) -> web.Application:
    app = web.Application(
        middlewares=[problems_middleware, storable_parameters], client_max_size=state.max_body_bytes
    )
    app[STATE] = state
    app.add_routes(ROUTES)
    return app
