"""The registry read model: applications, their actions, subscriptions and admin tokens."""

from __future__ import annotations

from collections.abc import Mapping

TABLES = (
    "amebo.applications",
    "amebo.actions",
    "amebo.subscriptions",
    "amebo.admin_tokens",
)

HANDLERS: Mapping[str, tuple[str, ...]] = {
    "application.registered": ("apply_application_registered",),
    "action.registered": ("apply_action_registered",),
    "subscription.created": ("apply_subscription_created",),
    "subscription.secret_rotated": ("apply_subscription_secret_rotated",),
    "subscription.deactivated": ("apply_subscription_deactivated",),
    "admin_token.created": ("apply_admin_token_created",),
}
