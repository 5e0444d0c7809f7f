-- Why: recording a batch of delivery outcomes took seven round trips on one connection:
-- BEGIN, the leases still held, the log append, its projection, the endpoints' health, the
-- hold of circuits that opened, COMMIT. Each costs the serve process a system call or two
-- and a turn of its event loop while PostgreSQL waits "idle in transaction", and a worker
-- records a batch every few milliseconds under load. As one function, a batch is one
-- statement, which on an autocommit connection is its own transaction: one round trip
-- (the same change as amebo.publish_events, sql/migrations/0010).
--
-- The projection of delivery.attempted moves into a function so that the live path and
-- `amebo projections rebuild` still apply it with the same code (ADR 0001); the circuit
-- breaker's two statements move here unchanged, since only recording uses them.

CREATE FUNCTION amebo.apply_delivery_attempted(positions bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Attempts in one run are folded per delivery: the latest decides the status, all count.
    WITH attempt AS (
        SELECT (data ->> 'delivery_id')::uuid AS delivery_id, data ->> 'outcome' AS outcome,
               (data ->> 'attempt')::integer AS attempt,
               (data ->> 'status_code')::integer AS status_code,
               data ->> 'error' AS error, (data ->> 'next_attempt_at')::timestamptz AS next_attempt_at,
               recorded_at, position
        FROM amebo.log
        WHERE position = ANY(positions)
    ), latest AS (
        SELECT DISTINCT ON (delivery_id) *, count(*) OVER (PARTITION BY delivery_id) AS made
        FROM attempt
        ORDER BY delivery_id, position DESC
    ), status AS (
        UPDATE amebo.deliveries AS d
        SET status = latest.outcome::amebo.delivery_status,
            attempts = d.attempts + latest.made,
            next_attempt_at = latest.next_attempt_at,
            last_attempt_at = latest.recorded_at,
            last_status_code = latest.status_code,
            last_error = latest.error,
            updated_at = latest.recorded_at
        FROM latest
        WHERE d.id = latest.delivery_id
        RETURNING d.id
    ), finished AS (
        DELETE FROM amebo.delivery_queue AS q
        USING latest
        WHERE q.delivery_id = latest.delivery_id AND latest.outcome IN ('succeeded', 'dead')
        RETURNING q.delivery_id
    )
    UPDATE amebo.delivery_queue AS q
    SET run_at = latest.next_attempt_at, attempt = latest.attempt, lease_token = NULL
    FROM latest
    WHERE q.delivery_id = latest.delivery_id AND latest.outcome = 'failed';
END
$$;

-- One row per recorded outcome (delivery_id set), then one per endpoint failing for at
-- least deactivate_after seconds (failing_subscription and failing_for set), for the worker
-- to deactivate.
CREATE TYPE amebo.recorded_outcome AS (
    delivery_id uuid,
    failing_subscription uuid,
    failing_for float8
);

-- outcomes: a JSON array of objects, one per finished send: delivery_id, token (the lease
-- it was sent under), subscription_id, ok, gone (the endpoint answered 410), and the
-- delivery.attempted fact to append (stream, data). An outcome whose lease is no longer
-- held is dropped: the lease lapsed and the delivery is another claim's now.
CREATE FUNCTION amebo.record_outcomes(
    outcomes jsonb,
    threshold integer,
    cooldown_min float8,
    cooldown_max float8,
    deactivate_after float8
) RETURNS SETOF amebo.recorded_outcome
LANGUAGE plpgsql AS $$
DECLARE
    kept uuid[];
    kept_subscriptions uuid[];
    kept_ok boolean[];
    kept_gone boolean[];
    positions bigint[];
    -- Endpoints whose open circuit a success closed:
    closed uuid[];
    -- Endpoints whose circuit is open, until when, and the cooldown after the probe:
    opened uuid[];
    opened_until timestamptz[];
    opened_cooldown float8[];
    -- Endpoints failing for deactivate_after seconds or longer, and for how long:
    failing_long uuid[];
    failing_long_for float8[];
BEGIN
    -- One statement reads the input once (a CTE used twice is materialized), locks the
    -- leases still held, so that each outcome is recorded once, and appends their facts in
    -- input order. What the breaker needs comes back as arrays, not by reading the JSON again.
    WITH input AS (
        SELECT o.*
        FROM ROWS FROM (
            jsonb_to_recordset(outcomes) AS (delivery_id uuid, token uuid, subscription_id uuid,
                                             ok boolean, gone boolean, stream text, data jsonb)
        ) WITH ORDINALITY AS o (delivery_id, token, subscription_id, ok, gone, stream, data, ord)
    ), held AS (
        SELECT q.delivery_id
        FROM amebo.delivery_queue AS q
        JOIN input AS i ON i.delivery_id = q.delivery_id AND i.token = q.lease_token
        -- Found by key: a join alone was planned as a scan of the whole queue.
        WHERE q.delivery_id = ANY(ARRAY(SELECT delivery_id FROM input))
        ORDER BY q.delivery_id
        FOR UPDATE OF q
    ), appended AS (
        INSERT INTO amebo.log (stream, type, data)
        SELECT i.stream, 'delivery.attempted', i.data
        FROM input AS i
        JOIN held AS h USING (delivery_id)
        ORDER BY i.ord
        RETURNING position
    )
    SELECT (SELECT array_agg(position ORDER BY position) FROM appended),
           array_agg(i.delivery_id), array_agg(i.subscription_id), array_agg(i.ok),
           array_agg(i.gone)
    INTO positions, kept, kept_subscriptions, kept_ok, kept_gone
    FROM held AS h
    JOIN input AS i USING (delivery_id);
    IF positions IS NULL THEN
        RETURN;
    END IF;
    PERFORM amebo.apply_delivery_attempted(positions);

    RETURN QUERY SELECT id, NULL::uuid, NULL::float8 FROM unnest(kept) AS id;

    -- The circuit breaker, shared by all workers through amebo.endpoint_health: a success
    -- closes an endpoint's circuit. Failures count up; at the threshold the circuit opens
    -- for a cooldown that doubles each time it opens again, up to a ceiling. A 410 Gone does
    -- not count: it deactivates the subscription instead.
    WITH outcome AS (
        SELECT o.subscription_id, bool_or(o.ok) AS succeeded,
               (count(*) FILTER (WHERE NOT o.ok))::integer AS failures
        FROM unnest(kept_subscriptions, kept_ok, kept_gone) AS o (subscription_id, ok, gone)
        WHERE NOT o.gone
        GROUP BY o.subscription_id
    ), healed AS (
        DELETE FROM amebo.endpoint_health AS h
        USING outcome AS o
        WHERE h.subscription_id = o.subscription_id AND o.succeeded
        RETURNING h.subscription_id, h.open_until IS NOT NULL AS was_open
    ), failing AS (
        INSERT INTO amebo.endpoint_health AS h
            (subscription_id, consecutive_failures, failing_since, open_until, cooldown_seconds)
        SELECT o.subscription_id, o.failures, now(),
               CASE WHEN o.failures >= threshold
                    THEN now() + make_interval(secs => cooldown_min) END,
               CASE WHEN o.failures >= threshold THEN cooldown_min ELSE 0 END
        FROM outcome AS o
        WHERE NOT o.succeeded
        ORDER BY o.subscription_id  -- one lock order for every worker
        ON CONFLICT (subscription_id) DO UPDATE
        SET consecutive_failures = h.consecutive_failures + excluded.consecutive_failures,
            open_until = CASE
                WHEN h.consecutive_failures + excluded.consecutive_failures >= threshold
                     AND (h.open_until IS NULL OR h.open_until <= now())
                THEN now() + make_interval(secs => least(greatest(h.cooldown_seconds * 2,
                                                                  cooldown_min), cooldown_max))
                ELSE h.open_until END,
            cooldown_seconds = CASE
                WHEN h.consecutive_failures + excluded.consecutive_failures >= threshold
                     AND (h.open_until IS NULL OR h.open_until <= now())
                THEN least(greatest(h.cooldown_seconds * 2, cooldown_min), cooldown_max)
                ELSE h.cooldown_seconds END
        RETURNING h.subscription_id, h.open_until, h.cooldown_seconds,
                  extract(epoch FROM now() - h.failing_since)::float8 AS failing_for
    )
    SELECT (SELECT array_agg(subscription_id) FROM healed WHERE was_open),
           array_agg(f.subscription_id) FILTER (WHERE f.open_until IS NOT NULL),
           array_agg(f.open_until) FILTER (WHERE f.open_until IS NOT NULL),
           array_agg(f.cooldown_seconds) FILTER (WHERE f.open_until IS NOT NULL),
           array_agg(f.subscription_id) FILTER (WHERE f.failing_for >= deactivate_after),
           array_agg(f.failing_for) FILTER (WHERE f.failing_for >= deactivate_after)
    INTO closed, opened, opened_until, opened_cooldown, failing_long, failing_long_for
    FROM failing AS f;

    -- Each of the two rare cases below reads the queue, so each runs only when it applies.
    IF closed IS NOT NULL THEN
        -- A closed circuit releases the deliveries it held.
        UPDATE amebo.delivery_queue AS q
        SET run_at = greatest(coalesce(d.next_attempt_at, now()), now())
        FROM amebo.deliveries AS d
        WHERE q.subscription_id = ANY(closed) AND q.lease_token IS NULL AND d.id = q.delivery_id;
    END IF;
    IF opened IS NOT NULL THEN
        -- An open circuit holds its queued deliveries: the oldest becomes the half-open probe
        -- at open_until, the rest wait one cooldown longer (released at once if the probe
        -- succeeds).
        WITH held AS (
            SELECT *
            FROM unnest(opened, opened_until, opened_cooldown)
                AS h (subscription_id, open_until, cooldown)
        ), ranked AS (
            SELECT q.delivery_id, h.open_until, h.cooldown,
                   row_number() OVER (PARTITION BY q.subscription_id
                                      ORDER BY q.run_at, q.delivery_id) AS n
            FROM amebo.delivery_queue AS q
            JOIN held AS h USING (subscription_id)
            WHERE q.lease_token IS NULL
        )
        UPDATE amebo.delivery_queue AS q
        SET run_at = greatest(q.run_at, CASE
            WHEN r.n = 1 THEN r.open_until
            ELSE r.open_until + make_interval(secs => r.cooldown) END)
        FROM ranked AS r
        WHERE q.delivery_id = r.delivery_id;
    END IF;

    RETURN QUERY
    SELECT NULL::uuid, l.subscription_id, l.failing_for
    FROM unnest(failing_long, failing_long_for) AS l (subscription_id, failing_for);
END
$$;
