-- Why: every write amebo accepts is a fact appended to one immutable log. Registry, events
-- and delivery state are projections of it, so the log must be impossible to rewrite: the
-- database itself refuses UPDATE, DELETE and TRUNCATE, for amebo's own role too.
-- transaction_id lets log readers skip positions that commit late (docs/adr/0002).

CREATE SCHEMA IF NOT EXISTS amebo;

-- Time-ordered UUIDs (RFC 9562 version 7) keep primary-key inserts at the right edge of the
-- index. PostgreSQL 18 has uuidv7(); this works on 14 and later.
CREATE FUNCTION amebo.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE amebo.log (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX log_stream_idx ON amebo.log (stream, position);

CREATE FUNCTION amebo.refuse_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'amebo.log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Append a new fact that supersedes the old one instead.';
END
$$;

CREATE TRIGGER log_refuses_update_delete
    BEFORE UPDATE OR DELETE ON amebo.log
    FOR EACH ROW EXECUTE FUNCTION amebo.refuse_log_change();

CREATE TRIGGER log_refuses_truncate
    BEFORE TRUNCATE ON amebo.log
    FOR EACH STATEMENT EXECUTE FUNCTION amebo.refuse_log_change();
