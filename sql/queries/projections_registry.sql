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
    (id, application, action, handler, max_retries, secret, active, created_at, updated_at, position)
SELECT (data ->> 'id')::uuid, data ->> 'application', data ->> 'action', data ->> 'handler',
       (data ->> 'max_retries')::integer, data ->> 'secret', true, recorded_at, recorded_at, position
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY position

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
