-- name: apply_event_published
-- The events and pending deliveries of event.published facts: a function
-- (sql/migrations/0010), because amebo.publish_events applies it in the same statement.
SELECT amebo.apply_event_published(%(positions)s::bigint[])

-- name: apply_delivery_attempted
-- Status and queue rows of delivery.attempted facts: a function (sql/migrations/0013),
-- because amebo.record_outcomes applies it in the same statement.
SELECT amebo.apply_delivery_attempted(%(positions)s::bigint[])

-- name: apply_delivery_retry_requested
-- A manual retry starts a fresh attempt series now.
WITH request AS (
    SELECT DISTINCT ON (data ->> 'delivery_id') (data ->> 'delivery_id')::uuid AS delivery_id,
           recorded_at
    FROM amebo.log
    WHERE position = ANY(%(positions)s::bigint[])
    ORDER BY data ->> 'delivery_id', position DESC
), reset AS (
    UPDATE amebo.deliveries AS d
    SET status = 'pending', next_attempt_at = request.recorded_at, updated_at = request.recorded_at
    FROM request
    WHERE d.id = request.delivery_id
    RETURNING d.id, d.event_id, d.subscription_id, d.next_attempt_at
)
INSERT INTO amebo.delivery_queue (delivery_id, event_id, subscription_id, attempt, run_at)
SELECT id, event_id, subscription_id, 0, next_attempt_at
FROM reset
ON CONFLICT (delivery_id) DO UPDATE
SET attempt = 0, run_at = excluded.run_at, lease_token = NULL

-- name: apply_subscription_deactivated_deliveries
-- Work still queued for a deactivated subscription is ended as dead, visibly, so it can be
-- retried by hand if the subscription comes back.
WITH gone AS (
    SELECT DISTINCT (data ->> 'id')::uuid AS subscription_id, max(recorded_at) AS recorded_at
    FROM amebo.log
    WHERE position = ANY(%(positions)s::bigint[])
    GROUP BY 1
), dropped AS (
    DELETE FROM amebo.delivery_queue AS q
    USING gone
    WHERE q.subscription_id = gone.subscription_id
    RETURNING q.delivery_id, gone.recorded_at
)
UPDATE amebo.deliveries AS d
SET status = 'dead', next_attempt_at = NULL, last_error = 'subscription deactivated',
    updated_at = dropped.recorded_at
FROM dropped
WHERE d.id = dropped.delivery_id
