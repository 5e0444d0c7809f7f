-- Why: amebo.apply_event_published was LANGUAGE sql, and PostgreSQL before 18 keeps no plan
-- for a SQL function that is not inlined: every call parsed, analysed and planned its four
-- chained INSERTs again. Measured on PostgreSQL 15 with pg_stat_statements, that planning
-- was 0.8 ms of the 1.3 ms the projection took per publish group, more than the inserts
-- themselves. A plpgsql body is prepared once per connection and, under amebo's
-- plan_cache_mode=force_generic_plan, planned once; a one-event publish statement went from
-- 1.5 to 0.84 ms in a loop of such calls on one connection. The body is unchanged, and the
-- rebuild still calls the same function (ADR 0001).

CREATE OR REPLACE FUNCTION amebo.apply_event_published(positions bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
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
    FROM created;
END
$$;
