-- name: apply_application_registered
INSERT INTO amebo.applications (name, secret_hash, address, description, registered_at, position)
SELECT data ->> 'name', data ->> 'secret_hash', data ->> 'address',
       coalesce(data ->> 'description', ''), recorded_at, position
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY position

-- name: apply_action_registered
INSERT INTO amebo.actions (name, application, schemata, description, registered_at, position)
SELECT data ->> 'name', data ->> 'application', data -> 'schemata',
       coalesce(data ->> 'description', ''), recorded_at, position
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY position

-- name: apply_subscription_created
INSERT INTO amebo.subscriptions
    (id, application, action, handler, max_retries, secret, active, created_at, updated_at,
     position, encryption_key, retry_schedule)
SELECT (data ->> 'id')::uuid, data ->> 'application', data ->> 'action', data ->> 'handler',
       (data ->> 'max_retries')::integer, data ->> 'secret', true, recorded_at, recorded_at,
       position, data ->> 'encryption_key',
       CASE WHEN jsonb_typeof(data -> 'retry_schedule') = 'array'
            THEN ARRAY(SELECT jsonb_array_elements_text(data -> 'retry_schedule')::float8)
       END
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY position

-- name: apply_subscription_secret_rotated
-- The old secret keeps signing beside the new one until the grace period ends. Several
-- rotations in one run fold to the last, whose predecessor is the one before it.
UPDATE amebo.subscriptions AS s
SET previous_secret = coalesce(fact.before, s.secret),
    secret = fact.secret,
    previous_secret_expires_at = fact.expires_at,
    updated_at = fact.recorded_at,
    position = fact.position
FROM (
    SELECT DISTINCT ON (id) *
    FROM (
        SELECT (data ->> 'id')::uuid AS id, data ->> 'secret' AS secret,
               lag(data ->> 'secret') OVER (PARTITION BY data ->> 'id' ORDER BY position) AS before,
               (data ->> 'previous_secret_expires_at')::timestamptz AS expires_at,
               recorded_at, position
        FROM amebo.log
        WHERE position = ANY(%(positions)s::bigint[])
    ) AS rotation
    ORDER BY id, position DESC
) AS fact
WHERE s.id = fact.id

-- name: apply_subscription_deactivated
UPDATE amebo.subscriptions AS s
SET active = false, updated_at = fact.recorded_at, position = fact.position
FROM (
    SELECT DISTINCT ON (data ->> 'id') (data ->> 'id')::uuid AS id, recorded_at, position
    FROM amebo.log
    WHERE position = ANY(%(positions)s::bigint[])
    ORDER BY data ->> 'id', position DESC
) AS fact
WHERE s.id = fact.id

-- name: apply_admin_token_created
INSERT INTO amebo.admin_tokens (token_hash, created_at, position)
SELECT data ->> 'token_hash', recorded_at, position
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY position
