-- Why: services that share amebo's database publish from SQL inside their own transactions
-- (the transactional outbox), so an event exists if and only if their transaction commits.
-- They write to amebo.outbox; a relay turns committed rows into events the way the API does
-- and deletes them in the same transaction. Rows the relay refuses become event.rejected
-- facts, projected into amebo.rejections. A role, amebo_producer, may add to the outbox and
-- do nothing else. Design: docs/adr/0004-outbox-relay.md; usage and GRANTs: docs/outbox.md.

-- A hot work table like delivery_queue: rows live from the producer's commit to the relay's,
-- so it stays small, and aggressive vacuuming keeps the dead tuples of deletes from piling up
-- in front of the claim's index scan.
CREATE TABLE amebo.outbox (
    id uuid PRIMARY KEY DEFAULT amebo.uuid_v7(),
    action text NOT NULL,
    payload jsonb NOT NULL,
    deduper text,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Mistakes of shape fail the producer's own statement at once (like NOT NULL does); only
    -- what needs the registry (is the action known, does the payload fit) is judged later.
    -- 512 is the API's limit on dedupers too.
    CONSTRAINT outbox_deduper_length CHECK (deduper IS NULL OR length(deduper) BETWEEN 1 AND 512),
    CONSTRAINT outbox_metadata_object CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object')
) WITH (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);

-- One notification per statement, never per row: a NOTIFY takes a cluster-wide lock at
-- commit, so it must not scale with rows. Identical notifications in one transaction fold
-- into one, so a producer transaction costs one NOTIFY however many statements it runs.
CREATE FUNCTION amebo.outbox_wake_relay() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('amebo_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_wakes_relay
    AFTER INSERT ON amebo.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION amebo.outbox_wake_relay();

-- The id is made here rather than returned by INSERT ... RETURNING, which would need SELECT
-- on the outbox, a privilege producers do not get.
CREATE FUNCTION amebo.publish(
    action text, payload jsonb, deduper text DEFAULT NULL, metadata jsonb DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_id uuid := amebo.uuid_v7();
BEGIN
    INSERT INTO amebo.outbox (id, action, payload, deduper, metadata)
    VALUES (new_id, $1, $2, $3, $4);
    RETURN new_id;
END
$$;

CREATE TABLE amebo.rejections (
    id uuid PRIMARY KEY,
    action text NOT NULL,
    deduper text,
    reasons jsonb NOT NULL,
    written_at timestamptz NOT NULL,
    rejected_at timestamptz NOT NULL,
    position bigint NOT NULL
);

-- Roles are cluster-wide while this runs once per database (every test database too), so the
-- role is created only if missing, and a concurrent creation elsewhere is not an error. An
-- amebo whose login cannot create roles still migrates; an administrator creates the role
-- and runs the GRANTs from docs/outbox.md.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'amebo_producer') THEN
        BEGIN
            CREATE ROLE amebo_producer NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE WARNING 'amebo: cannot create role amebo_producer: %', SQLERRM
                    USING HINT = 'Create it and run the GRANTs listed in docs/outbox.md.';
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'amebo_producer') THEN
        GRANT USAGE ON SCHEMA amebo TO amebo_producer;
        -- Not created_at: it measures relay lag and is amebo's to set.
        GRANT INSERT (id, action, payload, deduper, metadata) ON amebo.outbox TO amebo_producer;
        GRANT EXECUTE ON FUNCTION amebo.publish(text, jsonb, text, jsonb) TO amebo_producer;
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION amebo.publish(text, jsonb, text, jsonb) FROM PUBLIC;
