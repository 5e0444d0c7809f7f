-- name: application_get
SELECT name, address, description, registered_at
FROM amebo.applications
WHERE name = %(name)s

-- name: application_list
SELECT name, address, description, registered_at
FROM amebo.applications
ORDER BY name

-- name: application_secret_hash
SELECT secret_hash
FROM amebo.applications
WHERE name = %(name)s

-- name: admin_token_exists
SELECT EXISTS (SELECT 1 FROM amebo.admin_tokens WHERE token_hash = %(token_hash)s)

-- name: admin_token_any
SELECT EXISTS (SELECT 1 FROM amebo.admin_tokens)

-- name: action_get
SELECT name, application, schemata, description, registered_at
FROM amebo.actions
WHERE name = %(name)s

-- name: action_list
-- q matches anywhere in the name or the description, case-insensitively.
SELECT name, application, schemata, description, registered_at
FROM amebo.actions
WHERE (%(application)s::text IS NULL OR application = %(application)s)
  AND (%(q)s::text IS NULL
       OR strpos(lower(name), lower(%(q)s)) > 0
       OR strpos(lower(description), lower(%(q)s)) > 0)
ORDER BY name
LIMIT %(limit)s

-- name: subscription_get
SELECT id, application, action, handler, max_retries, retry_schedule,
       encrypted, active, created_at, updated_at
FROM amebo.subscriptions
WHERE id = %(id)s

-- name: subscription_list
SELECT id, application, action, handler, max_retries, retry_schedule,
       encrypted, active, created_at, updated_at
FROM amebo.subscriptions
WHERE (%(application)s::text IS NULL OR application = %(application)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(active)s::boolean IS NULL OR active = %(active)s)
ORDER BY created_at, id
LIMIT %(limit)s

-- name: subscription_active_duplicate
SELECT id
FROM amebo.subscriptions
WHERE action = %(action)s AND handler = %(handler)s AND active

-- name: subscription_is_active
SELECT active
FROM amebo.subscriptions
WHERE id = %(id)s

-- name: subscription_secret_store
INSERT INTO amebo.subscription_secrets (subscription_id, secret, encryption_key)
VALUES (%(id)s, %(secret)s, %(encryption_key)s)

-- name: subscription_secret_rotate
-- The old secret keeps signing beside the new one until the grace period ends.
UPDATE amebo.subscription_secrets
SET previous_secret = secret, secret = %(secret)s, previous_secret_expires_at = %(expires_at)s
WHERE subscription_id = %(id)s
