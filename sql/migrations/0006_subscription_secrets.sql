-- Why: signing secrets and encryption keys are credentials, not facts. In the immutable log
-- they could never be purged and anyone able to read the log could sign as amebo, so they
-- move to their own mutable table, written in the same transaction as the fact that
-- mentions them (which keeps only a fingerprint). A projection rebuild leaves it alone.

CREATE TABLE amebo.subscription_secrets (
    subscription_id uuid PRIMARY KEY,  -- no foreign key: a rebuild truncates subscriptions
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    encryption_key text
);

INSERT INTO amebo.subscription_secrets
    (subscription_id, secret, previous_secret, previous_secret_expires_at, encryption_key)
SELECT id, secret, previous_secret, previous_secret_expires_at, encryption_key
FROM amebo.subscriptions;

ALTER TABLE amebo.subscriptions ADD COLUMN encrypted boolean NOT NULL DEFAULT false;
UPDATE amebo.subscriptions SET encrypted = encryption_key IS NOT NULL;

ALTER TABLE amebo.subscriptions
    DROP COLUMN secret,
    DROP COLUMN previous_secret,
    DROP COLUMN previous_secret_expires_at,
    DROP COLUMN encryption_key;
