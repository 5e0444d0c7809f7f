-- name: delivery_claim
-- Leases up to %(limit)s due deliveries in one statement and returns what sending needs.
-- A lease moves run_at to its expiry: if this worker dies, the row falls due again then.
WITH ready AS (
    SELECT delivery_id
    FROM amebo.delivery_queue
    WHERE run_at <= now()
    ORDER BY run_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE amebo.delivery_queue AS q
    SET run_at = now() + make_interval(secs => %(lease_seconds)s), lease_token = %(token)s
    FROM ready
    WHERE q.delivery_id = ready.delivery_id
    RETURNING q.delivery_id, q.event_id, q.subscription_id, q.attempt
)
SELECT c.delivery_id, c.event_id, c.subscription_id, c.attempt, e.action, e.application,
       e.published_at, (l.data -> 'payload')::text AS payload_json, s.handler, s.secret,
       CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret END
           AS previous_secret,
       s.encryption_key, s.max_retries, s.retry_schedule
FROM claimed AS c
JOIN amebo.events AS e ON e.id = c.event_id
JOIN amebo.log AS l ON l.position = e.position
JOIN amebo.subscriptions AS s ON s.id = c.subscription_id

-- name: delivery_leases_held
-- Which of these leases are still ours; locks them so the outcome is recorded once.
SELECT q.delivery_id
FROM amebo.delivery_queue AS q
JOIN unnest(%(ids)s::uuid[], %(tokens)s::uuid[]) AS held (delivery_id, token)
    ON held.delivery_id = q.delivery_id AND held.token = q.lease_token
FOR UPDATE OF q

-- name: delivery_next_due
SELECT extract(epoch FROM min(run_at) - now())::float8
FROM amebo.delivery_queue

-- name: delivery_list_for_event
SELECT d.id
FROM amebo.deliveries AS d
WHERE d.event_id = %(event_id)s
