-- Why: the registry (applications, their actions and the subscriptions to those actions) is
-- read on every publish and every delivery, so it is projected from the log into tables
-- shaped for those reads. Rows carry the log position that last shaped them.

CREATE TABLE amebo.applications (
    name text PRIMARY KEY,
    secret_hash text NOT NULL,
    address text NOT NULL,
    description text NOT NULL DEFAULT '',
    registered_at timestamptz NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE amebo.actions (
    name text PRIMARY KEY,
    application text NOT NULL REFERENCES amebo.applications (name),
    schemata jsonb NOT NULL,
    description text NOT NULL DEFAULT '',
    registered_at timestamptz NOT NULL,
    position bigint NOT NULL
);

CREATE INDEX actions_application_idx ON amebo.actions (application);

CREATE TABLE amebo.subscriptions (
    id uuid PRIMARY KEY,
    application text NOT NULL REFERENCES amebo.applications (name),
    action text NOT NULL REFERENCES amebo.actions (name),
    handler text NOT NULL,
    max_retries integer NOT NULL,
    secret text NOT NULL,
    active boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    position bigint NOT NULL
);

CREATE INDEX subscriptions_action_idx ON amebo.subscriptions (action) WHERE active;
CREATE INDEX subscriptions_application_idx ON amebo.subscriptions (application);
-- The same handler subscribed twice to one action would receive every event twice.
CREATE UNIQUE INDEX subscriptions_action_handler_key ON amebo.subscriptions (action, handler)
    WHERE active;

-- Operator credentials: only a hash, never the token.
CREATE TABLE amebo.admin_tokens (
    token_hash text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL
);
