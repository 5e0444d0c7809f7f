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
-- The signing secret and any encryption key are not in the fact: they live in
-- amebo.subscription_secrets, written beside it (migration 0006 says why).
INSERT INTO amebo.subscriptions
    (id, application, action, handler, max_retries, active, created_at, updated_at,
     position, encrypted, retry_schedule)
SELECT (data ->> 'id')::uuid, data ->> 'application', data ->> 'action', data ->> 'handler',
       (data ->> 'max_retries')::integer, true, recorded_at, recorded_at, position,
       coalesce((data ->> 'encrypted')::boolean, false),
       CASE WHEN jsonb_typeof(data -> 'retry_schedule') = 'array'
            THEN ARRAY(SELECT jsonb_array_elements_text(data -> 'retry_schedule')::float8)
       END
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY position

-- name: apply_subscription_secret_rotated
UPDATE amebo.subscriptions AS s
SET updated_at = fact.recorded_at, position = fact.position
FROM (
    SELECT DISTINCT ON (data ->> 'id') (data ->> 'id')::uuid AS id, recorded_at, position
    FROM amebo.log
    WHERE position = ANY(%(positions)s::bigint[])
    ORDER BY data ->> 'id', position DESC
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
