-- name: delivery_claim
-- Leases up to %(limit)s due deliveries in one statement and returns what sending needs,
-- plus, on every row, the seconds until the next unclaimed row of an eligible subscription
-- falls due (NULL when there is none): the worker sleeps that long unless woken, without a
-- second round trip to ask. Always at least one row: with nothing claimed, the delivery
-- columns are NULL.
-- A lease moves run_at to its expiry: if this worker dies, the row falls due again then.
--
-- Subscriptions whose endpoint is saturated (%(busy)s) are skipped without reading their
-- backlog: a skip scan finds the subscriptions with queued work, each gives its oldest due
-- rows (a fair share, so one backlog cannot crowd out the rest), and the oldest of those are
-- locked. Cost follows the subscriptions with work and the rows claimed, not the queue.
-- They are left out of the next due time too: their rows are due, but the worker waits for
-- a slot of theirs to free, not for the clock.
WITH eligible AS (
    SELECT subscription_id
    FROM amebo.queued_subscriptions() AS subscription_id
    WHERE subscription_id <> ALL(%(busy)s::uuid[])
), candidates AS (
    SELECT due.delivery_id
    FROM eligible
    CROSS JOIN LATERAL (
        SELECT q.delivery_id, q.run_at
        FROM amebo.delivery_queue AS q
        WHERE q.subscription_id = eligible.subscription_id AND q.run_at <= now()
        ORDER BY q.subscription_id, q.run_at  -- the (subscription_id, run_at) index's order
        LIMIT (SELECT ceil(2.0 * %(limit)s / greatest(count(*), 1)) FROM eligible)
    ) AS due
    ORDER BY due.run_at
    LIMIT %(limit)s
), ready AS (
    -- Locked by primary key; run_at is checked again on the locked row, so a row another
    -- worker claimed meanwhile is left alone.
    SELECT delivery_id
    FROM amebo.delivery_queue
    WHERE delivery_id = ANY(ARRAY(SELECT delivery_id FROM candidates)) AND run_at <= now()
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE amebo.delivery_queue AS q
    SET run_at = now() + make_interval(secs => %(lease_seconds)s), lease_token = %(token)s
    FROM ready
    WHERE q.delivery_id = ready.delivery_id
    RETURNING q.delivery_id, q.event_id, q.subscription_id, q.attempt
), next_due AS (
    -- This statement's snapshot still shows the claimed rows as due: skip them by id.
    SELECT extract(epoch FROM min(first.run_at) - now())::float8 AS seconds
    FROM eligible
    CROSS JOIN LATERAL (
        SELECT q.run_at
        FROM amebo.delivery_queue AS q
        WHERE q.subscription_id = eligible.subscription_id
          AND q.delivery_id <> ALL(ARRAY(SELECT delivery_id FROM claimed))
        ORDER BY q.subscription_id, q.run_at
        LIMIT 1
    ) AS first
), sendable AS (
    SELECT c.delivery_id, c.event_id, c.subscription_id, c.attempt, e.action, e.application,
           e.published_at, (l.data -> 'payload')::text AS payload_json, s.handler, k.secret,
           CASE WHEN k.previous_secret_expires_at > now() THEN k.previous_secret END
               AS previous_secret,
           k.encryption_key, s.max_retries, s.retry_schedule
    FROM claimed AS c
    JOIN amebo.events AS e ON e.id = c.event_id
    JOIN amebo.log AS l ON l.position = e.position
    JOIN amebo.subscriptions AS s ON s.id = c.subscription_id
    JOIN amebo.subscription_secrets AS k ON k.subscription_id = c.subscription_id
)
SELECT n.seconds AS next_due_in, r.*
FROM next_due AS n
LEFT JOIN sendable AS r ON true

-- name: delivery_outcomes_record
-- Records a batch of outcomes whose leases are still held, with their facts, projections and
-- the endpoints' health, in one statement (sql/migrations/0013). The outcomes arrive as one
-- JSON array of objects: encoded in one call, not per element.
SELECT delivery_id, failing_subscription, failing_for
FROM amebo.record_outcomes(%(outcomes)s::jsonb, %(threshold)s::integer,
                           %(cooldown_min)s::float8, %(cooldown_max)s::float8,
                           %(deactivate_after)s::float8)

-- name: delivery_list_for_event
SELECT d.id
FROM amebo.deliveries AS d
WHERE d.event_id = %(event_id)s

-- name: delivery_get
SELECT d.id, d.event_id, d.subscription_id, s.application AS subscriber, e.action, s.handler,
       d.status::text AS status, d.attempts, d.next_attempt_at, d.last_attempt_at,
       d.last_status_code, d.last_error, d.created_at, d.updated_at
FROM amebo.deliveries AS d
JOIN amebo.subscriptions AS s ON s.id = d.subscription_id
JOIN amebo.events AS e ON e.id = d.event_id
WHERE d.id = %(id)s

-- name: delivery_list
-- Newest first, filtered; "before" pages by (created_at, id).
SELECT d.id, d.event_id, d.subscription_id, s.application AS subscriber, e.action, s.handler,
       d.status::text AS status, d.attempts, d.next_attempt_at, d.last_attempt_at,
       d.last_status_code, d.last_error, d.created_at, d.updated_at
FROM amebo.deliveries AS d
JOIN amebo.subscriptions AS s ON s.id = d.subscription_id
JOIN amebo.events AS e ON e.id = d.event_id
WHERE (%(subscription_id)s::uuid IS NULL OR d.subscription_id = %(subscription_id)s)
  AND (%(subscriber)s::text IS NULL OR s.application = %(subscriber)s)
  AND (%(action)s::text IS NULL OR e.action = %(action)s)
  AND (%(status)s::text IS NULL OR d.status = %(status)s::amebo.delivery_status)
  AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s)
ORDER BY d.created_at DESC, d.id DESC
LIMIT %(limit)s

-- name: retry_job_create
INSERT INTO amebo.retry_jobs (id, requested_by, filter)
VALUES (%(id)s, %(requested_by)s, %(filter)s)

-- name: retry_job_get
SELECT id, requested_by, filter, status::text AS status, retried, requested_at, finished_at
FROM amebo.retry_jobs
WHERE id = %(id)s

-- name: retry_job_claim
-- One running job, locked for this transaction so two workers never page the same job.
SELECT id, filter, cursor
FROM amebo.retry_jobs
WHERE status = 'running'
ORDER BY requested_at
LIMIT 1
FOR UPDATE SKIP LOCKED

-- name: retry_job_page
-- The next page of deliveries a bulk retry covers, by id after the job's cursor.
SELECT d.id, d.subscription_id
FROM amebo.deliveries AS d
JOIN amebo.subscriptions AS s ON s.id = d.subscription_id
JOIN amebo.events AS e ON e.id = d.event_id
WHERE s.active
  AND d.status = ANY(%(statuses)s::amebo.delivery_status[])
  AND (%(subscription_id)s::uuid IS NULL OR d.subscription_id = %(subscription_id)s)
  AND (%(subscriber)s::text IS NULL OR s.application = %(subscriber)s)
  AND (%(action)s::text IS NULL OR e.action = %(action)s)
  AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s)
  AND (%(after)s::uuid IS NULL OR d.id > %(after)s)
ORDER BY d.id
LIMIT %(limit)s

-- name: retry_job_advance
UPDATE amebo.retry_jobs
SET cursor = %(cursor)s,
    retried = retried + %(retried)s,
    status = CASE WHEN %(finished)s THEN 'finished'::amebo.retry_job_status ELSE status END,
    finished_at = CASE WHEN %(finished)s THEN now() END
WHERE id = %(id)s

-- name: delivery_lock
-- Locks a delivery's queue row (if any) then its status row, in the order the worker's
-- recording takes them, so a manual retry and a recorded attempt never interleave: the log
-- then holds them in the order they took effect, and a rebuild agrees with the live tables.
SELECT (SELECT 1 FROM amebo.delivery_queue WHERE delivery_id = %(id)s FOR UPDATE),
       (SELECT status::text FROM amebo.deliveries WHERE id = %(id)s FOR UPDATE)

-- name: delivery_queue_upkeep_lock
-- One worker at a time vacuums the queue (amebo/delivery/upkeep.py); the key is arbitrary
-- but fixed.
SELECT pg_try_advisory_lock(7318100052001)

-- name: delivery_queue_upkeep_unlock
SELECT pg_advisory_unlock(7318100052001)

-- name: delivery_queue_vacuum
VACUUM amebo.delivery_queue
