-- Why: events and delivery status are projections of the log, read by the API and the GUI.
-- The payload stays in the log only (events.position points at it) so each event is stored
-- once. delivery_queue is the hot work table: small (rows leave when a delivery finishes),
-- separate from the immutable log, vacuumed aggressively, with one index matching the claim.

CREATE TABLE amebo.events (
    id uuid PRIMARY KEY,
    action text NOT NULL,
    application text NOT NULL,
    deduper text,
    position bigint NOT NULL,
    published_at timestamptz NOT NULL
);

CREATE UNIQUE INDEX events_deduper_key ON amebo.events (action, deduper) WHERE deduper IS NOT NULL;
CREATE INDEX events_action_idx ON amebo.events (action, id);

CREATE TYPE amebo.delivery_status AS ENUM ('pending', 'failed', 'succeeded', 'dead');

CREATE TABLE amebo.deliveries (
    id uuid PRIMARY KEY,
    event_id uuid NOT NULL,
    subscription_id uuid NOT NULL,
    status amebo.delivery_status NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_status_code integer,
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX deliveries_event_idx ON amebo.deliveries (event_id);
CREATE INDEX deliveries_subscription_idx ON amebo.deliveries (subscription_id, status);

-- run_at is when the row may next be claimed: its due time while waiting, its lease expiry
-- while claimed. One predicate (run_at <= now()) therefore finds both due work and work whose
-- worker died, and one index serves it.
CREATE TABLE amebo.delivery_queue (
    delivery_id uuid PRIMARY KEY,
    event_id uuid NOT NULL,
    subscription_id uuid NOT NULL,
    attempt integer NOT NULL,
    run_at timestamptz NOT NULL,
    lease_token uuid
) WITH (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);

CREATE INDEX delivery_queue_run_at_idx ON amebo.delivery_queue (run_at);
