"""The route table: every path and method amebo answers, in one place."""

from __future__ import annotations

from aiohttp import web

from amebo.api import actions, applications, deliveries, events, meta, subscriptions

ROUTES = [
    web.get("/health", meta.health),
    web.get("/openapi.json", meta.openapi),
    web.post("/v1/applications", applications.register),
    web.get("/v1/applications", applications.list_all),
    web.get("/v1/applications/{application}", applications.get_one),
    web.post("/v1/actions", actions.register),
    web.get("/v1/actions", actions.list_all),
    web.get("/v1/actions/{action}", actions.get_one),
    web.post("/v1/subscriptions", subscriptions.create),
    web.get("/v1/subscriptions", subscriptions.list_all),
    web.get("/v1/subscriptions/{subscription_id}", subscriptions.get_one),
    web.patch("/v1/subscriptions/{subscription_id}", subscriptions.change),
    web.delete("/v1/subscriptions/{subscription_id}", subscriptions.change),
    web.post("/v1/subscriptions/{subscription_id}/rotate-secret", subscriptions.rotate_secret),
    web.post("/v1/events", events.publish),
    web.post("/v1/events/batch", events.publish_batch),
    web.get("/v1/events", events.list_all),
    web.get("/v1/events/{event_id}", events.get_one),
    web.get("/v1/deliveries", deliveries.list_all),
    web.get("/v1/deliveries/{delivery_id}", deliveries.get_one),
    web.post("/v1/deliveries/{delivery_id}/retry", deliveries.retry),
    web.post("/v1/retry-jobs", deliveries.start_job),
    web.get("/v1/retry-jobs/{job_id}", deliveries.get_job),
]
