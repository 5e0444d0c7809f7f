-- Why: a group of publishes took four round trips (BEGIN, the append, the projections,
-- COMMIT), each costing the server process a system call or two and the time for its event
-- loop to come round, while PostgreSQL waited "idle in transaction". As functions, the
-- append and its projections run as one statement, which in autocommit is its own
-- transaction: one round trip. The outbox relay calls the same function inside its own
-- transaction.
--
-- The projection of event.published moves into a function too, so that the live path and
-- `amebo projections rebuild` still apply it with the same code (ADR 0001): both call
-- amebo.apply_event_published, the rebuild through the named query of the same name.

CREATE FUNCTION amebo.apply_event_published(positions bigint[]) RETURNS void
LANGUAGE sql AS $$
    -- One read of the facts feeds two read models: the events (one row per accepted event,
    -- pointing at its payload in the log) and one pending delivery per subscription the
    -- event was fanned out to (recorded in the fact, so a rebuild yields the same rows).
    -- Delivery ids derive from the pair, never at random.
    WITH published AS (
        SELECT (data ->> 'id')::uuid AS event_id, data, position, recorded_at
        FROM amebo.log
        WHERE position = ANY(positions)
    ), event AS (
        INSERT INTO amebo.events (id, action, application, deduper, position, published_at)
        SELECT event_id, data ->> 'action', data ->> 'application', data ->> 'deduper', position,
               recorded_at
        FROM published
    ), created AS (
        INSERT INTO amebo.deliveries
            (id, event_id, subscription_id, status, attempts, next_attempt_at, created_at, updated_at)
        SELECT amebo.delivery_id(p.event_id, target.subscription_id::uuid), p.event_id,
               target.subscription_id::uuid, 'pending', 0, p.recorded_at, p.recorded_at,
               p.recorded_at
        FROM published AS p
        CROSS JOIN LATERAL jsonb_array_elements_text(p.data -> 'subscriptions')
            AS target (subscription_id)
        RETURNING id, event_id, subscription_id, next_attempt_at
    )
    INSERT INTO amebo.delivery_queue (delivery_id, event_id, subscription_id, attempt, run_at)
    SELECT id, event_id, subscription_id, 0, next_attempt_at
    FROM created
$$;

-- One row per input event, in input order (see amebo.publish_events).
CREATE TYPE amebo.published_event AS (
    id uuid,                -- the event's id; for a repeated deduper, the first event's
    created boolean,        -- whether this call created it
    position bigint,        -- its log position, when created
    fanout integer,         -- deliveries created for it
    subscriptions uuid[]    -- first row only: subscriptions that may have new deliveries
);

-- Appends one event.published fact per new event, applies the projections to them, and
-- answers per input row. Rows whose deduper was seen before (earlier in this batch or in an
-- earlier one) get the first event's id. Each fact names the subscriptions the event fans
-- out to, so the fan-out is replayable. dedupe_locks are advisory lock keys, one per
-- (action, deduper) in the batch, sorted: they serialise publishers of the same deduper so
-- that the second one sees the first.
CREATE FUNCTION amebo.publish_events(events jsonb, dedupe_locks bigint[])
RETURNS SETOF amebo.published_event
LANGUAGE plpgsql AS $$
DECLARE
    published amebo.published_event[];
BEGIN
    PERFORM pg_advisory_xact_lock(key) FROM unnest(dedupe_locks) AS key;

    WITH input AS (
        -- The batch arrives as one JSON array of objects: encoded in one call, not element by
        -- element.
        SELECT e.id, e.action, e.application, e.deduper, e.payload, e.metadata, e.ord
        FROM ROWS FROM (
            jsonb_to_recordset(events) AS (id uuid, action text, application text,
                                           deduper text, payload jsonb, metadata jsonb)
        ) WITH ORDINALITY AS e (id, action, application, deduper, payload, metadata, ord)
    ), firsts AS (
        -- The first row of each deduper in the batch; a row without one is its own first.
        SELECT DISTINCT ON (action, deduper) action, deduper, ord AS first_ord
        FROM input
        WHERE deduper IS NOT NULL
        ORDER BY action, deduper, ord
    ), resolved AS (
        SELECT i.*, coalesce(f.first_ord, i.ord) AS first_ord
        FROM input AS i
        LEFT JOIN firsts AS f ON f.action = i.action AND f.deduper = i.deduper
    ), known AS (
        SELECT f.first_ord, e.id
        FROM firsts AS f
        JOIN amebo.events AS e ON e.action = f.action AND e.deduper = f.deduper
    ), targets AS (
        -- Looked up once per action in the batch, not once per event.
        SELECT s.action, jsonb_agg(s.id ORDER BY s.id) AS ids
        FROM amebo.subscriptions AS s
        WHERE s.active AND s.action IN (SELECT DISTINCT action FROM input)
        GROUP BY s.action
    ), appended AS (
        INSERT INTO amebo.log (stream, type, data, metadata)
        SELECT 'event-' || r.id, 'event.published',
               jsonb_build_object(
                   'id', r.id, 'action', r.action, 'application', r.application,
                   'deduper', r.deduper, 'payload', r.payload,
                   'subscriptions', coalesce(t.ids, '[]'::jsonb)),
               r.metadata
        FROM resolved AS r
        LEFT JOIN targets AS t ON t.action = r.action
        WHERE r.ord = r.first_ord
          AND NOT EXISTS (SELECT 1 FROM known AS k WHERE k.first_ord = r.ord)
        ORDER BY r.ord
        RETURNING position, (data ->> 'id')::uuid AS id,
                  jsonb_array_length(data -> 'subscriptions') AS fanout
    )
    SELECT array_agg(ROW(
               coalesce(k.id, first.id),
               r.ord = r.first_ord AND a.position IS NOT NULL,
               CASE WHEN r.ord = r.first_ord THEN a.position END,
               CASE WHEN r.ord = r.first_ord THEN a.fanout ELSE 0 END,
               -- On the first row only, the subscriptions that may have new deliveries: the
               -- worker in the same process skips waking for endpoints it keeps saturated.
               CASE WHEN r.ord = 1 AND EXISTS (SELECT 1 FROM appended WHERE fanout > 0) THEN
                   (SELECT array_agg(DISTINCT target.id::uuid)
                    FROM targets, jsonb_array_elements_text(targets.ids) AS target (id))
               END
           )::amebo.published_event ORDER BY r.ord)
    INTO published
    FROM resolved AS r
    JOIN input AS first ON first.ord = r.first_ord
    LEFT JOIN known AS k ON k.first_ord = r.first_ord
    LEFT JOIN appended AS a ON a.id = first.id;

    PERFORM amebo.apply_event_published(ARRAY(
        SELECT p.position FROM unnest(published) AS p
        WHERE p.position IS NOT NULL
        ORDER BY p.position
    ));
    RETURN QUERY SELECT * FROM unnest(published);
END
$$;
