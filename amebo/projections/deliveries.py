"""The events and delivery-status read models, and the queue of deliveries still to make.

``delivery_queue`` is derived like the rest; only its leases are not, since a lease is a
worker's claim on a row, not a fact about the delivery (a rebuild starts with none).
"""

from __future__ import annotations

from collections.abc import Mapping

TABLES = (
    "amebo.events",
    "amebo.deliveries",
    "amebo.delivery_queue",
)

HANDLERS: Mapping[str, tuple[str, ...]] = {
    "event.published": ("apply_event_published",),
    "delivery.attempted": ("apply_delivery_attempted",),
    "delivery.retry_requested": ("apply_delivery_retry_requested",),
    "subscription.deactivated": ("apply_subscription_deactivated_deliveries",),
}
