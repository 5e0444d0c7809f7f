-- Why: the delivery engine needs state that is operational rather than factual, kept out of
-- the log and the projections on purpose: endpoint health (the circuit breaker, shared by
-- every worker process through the database), and the progress of bulk retries (a rebuild
-- must never replay a bulk retry). Subscriptions gain what signing and encryption need:
-- an optional encryption key, the previous secret during a rotation's grace period, and an
-- optional retry schedule of their own.

ALTER TABLE amebo.subscriptions
    ADD COLUMN encryption_key text,
    ADD COLUMN previous_secret text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN retry_schedule double precision[];

CREATE TABLE amebo.endpoint_health (
    subscription_id uuid PRIMARY KEY,
    consecutive_failures integer NOT NULL,
    failing_since timestamptz NOT NULL,
    open_until timestamptz,
    cooldown_seconds double precision NOT NULL DEFAULT 0
);

CREATE TYPE amebo.retry_job_status AS ENUM ('running', 'finished');

CREATE TABLE amebo.retry_jobs (
    id uuid PRIMARY KEY,
    requested_by text,
    filter jsonb NOT NULL,
    status amebo.retry_job_status NOT NULL DEFAULT 'running',
    cursor uuid,
    retried bigint NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE INDEX retry_jobs_running_idx ON amebo.retry_jobs (requested_at) WHERE status = 'running';
CREATE INDEX deliveries_status_idx ON amebo.deliveries (status, id)
    WHERE status IN ('failed', 'dead');

-- Holding or releasing one endpoint's queued deliveries finds them by subscription.
CREATE INDEX delivery_queue_subscription_idx ON amebo.delivery_queue (subscription_id);
