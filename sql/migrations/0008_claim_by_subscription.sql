-- Why: the claim skips subscriptions whose endpoint is saturated. Scanning the run_at index
-- and filtering them out cost time in proportion to their backlog: one slow endpoint with
-- 50,000 queued deliveries made every claim, for every healthy endpoint, read 50,000 rows.
-- Walking the queue by subscription, then by due time within each, costs in proportion to
-- the subscriptions with queued work and the rows claimed. One index, (subscription_id,
-- run_at), serves that walk, the earliest due time, and deletes by subscription; the two it
-- replaces would each be maintained on every claim for nothing.

CREATE INDEX delivery_queue_subscription_run_at_idx
    ON amebo.delivery_queue (subscription_id, run_at);
DROP INDEX amebo.delivery_queue_subscription_idx;
DROP INDEX amebo.delivery_queue_run_at_idx;

-- The subscriptions with anything queued, found by a skip scan of the index: one probe per
-- subscription, whatever the length of its backlog.
CREATE FUNCTION amebo.queued_subscriptions() RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE queued (subscription_id) AS (
        (SELECT subscription_id FROM amebo.delivery_queue ORDER BY subscription_id LIMIT 1)
        UNION ALL
        SELECT (
            SELECT q.subscription_id
            FROM amebo.delivery_queue AS q
            WHERE q.subscription_id > queued.subscription_id
            ORDER BY q.subscription_id
            LIMIT 1
        )
        FROM queued
        WHERE queued.subscription_id IS NOT NULL
    )
    SELECT subscription_id FROM queued WHERE subscription_id IS NOT NULL
$$;
