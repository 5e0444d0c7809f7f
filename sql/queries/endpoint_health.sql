-- name: endpoint_health_reset
-- A retry asked for by a person means "try now": close these circuits and start counting
-- failures afresh.
DELETE FROM amebo.endpoint_health
WHERE subscription_id = ANY(%(subscription_ids)s::uuid[])
