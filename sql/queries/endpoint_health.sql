-- name: endpoint_health_record
-- Folds one batch of outcomes into each endpoint's health (a circuit breaker shared by all
-- workers). A success closes the circuit and releases the deliveries it held. Failures count
-- up; at the threshold the circuit opens for a cooldown that doubles each time it opens
-- again, up to a ceiling. Returns the endpoints still failing, with when they started to.
WITH outcome AS (
    SELECT *
    FROM unnest(%(subscription_ids)s::uuid[], %(succeeded)s::boolean[], %(failures)s::integer[])
        AS o (subscription_id, succeeded, failures)
), healed AS (
    DELETE FROM amebo.endpoint_health AS h
    USING outcome AS o
    WHERE h.subscription_id = o.subscription_id AND o.succeeded
    RETURNING h.subscription_id, h.open_until IS NOT NULL AS was_open
), released AS (
    UPDATE amebo.delivery_queue AS q
    SET run_at = greatest(coalesce(d.next_attempt_at, now()), now())
    FROM healed AS h, amebo.deliveries AS d
    WHERE h.was_open AND q.subscription_id = h.subscription_id AND q.lease_token IS NULL
      AND d.id = q.delivery_id
    RETURNING q.delivery_id
), failing AS (
    INSERT INTO amebo.endpoint_health AS h
        (subscription_id, consecutive_failures, failing_since, open_until, cooldown_seconds)
    SELECT subscription_id, failures, now(),
           CASE WHEN failures >= %(threshold)s
                THEN now() + make_interval(secs => %(cooldown_min)s) END,
           CASE WHEN failures >= %(threshold)s THEN %(cooldown_min)s ELSE 0 END
    FROM outcome
    WHERE NOT succeeded
    ON CONFLICT (subscription_id) DO UPDATE
    SET consecutive_failures = h.consecutive_failures + excluded.consecutive_failures,
        open_until = CASE
            WHEN h.consecutive_failures + excluded.consecutive_failures >= %(threshold)s
                 AND (h.open_until IS NULL OR h.open_until <= now())
            THEN now() + make_interval(secs => least(greatest(h.cooldown_seconds * 2,
                                                              %(cooldown_min)s), %(cooldown_max)s))
            ELSE h.open_until END,
        cooldown_seconds = CASE
            WHEN h.consecutive_failures + excluded.consecutive_failures >= %(threshold)s
                 AND (h.open_until IS NULL OR h.open_until <= now())
            THEN least(greatest(h.cooldown_seconds * 2, %(cooldown_min)s), %(cooldown_max)s)
            ELSE h.cooldown_seconds END
    RETURNING h.subscription_id, h.open_until, h.cooldown_seconds, h.failing_since
)
SELECT subscription_id, open_until, cooldown_seconds,
       extract(epoch FROM now() - failing_since)::float8 AS failing_for
FROM failing

-- name: endpoint_queue_hold
-- Holds an open circuit's queued deliveries: the oldest becomes the half-open probe at
-- open_until, the rest wait one cooldown longer (released at once if the probe succeeds).
WITH held AS (
    SELECT *
    FROM unnest(%(subscription_ids)s::uuid[], %(open_until)s::timestamptz[],
                %(cooldown)s::float8[]) AS h (subscription_id, open_until, cooldown)
), ranked AS (
    SELECT q.delivery_id, h.open_until, h.cooldown,
           row_number() OVER (PARTITION BY q.subscription_id ORDER BY q.run_at, q.delivery_id) AS n
    FROM amebo.delivery_queue AS q
    JOIN held AS h USING (subscription_id)
    WHERE q.lease_token IS NULL
)
UPDATE amebo.delivery_queue AS q
SET run_at = greatest(q.run_at, CASE WHEN r.n = 1 THEN r.open_until
                                     ELSE r.open_until + make_interval(secs => r.cooldown) END)
FROM ranked AS r
WHERE q.delivery_id = r.delivery_id

-- name: endpoint_health_reset
-- A retry asked for by a person means "try now": close these circuits and start counting
-- failures afresh.
DELETE FROM amebo.endpoint_health
WHERE subscription_id = ANY(%(subscription_ids)s::uuid[])
