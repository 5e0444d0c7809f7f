-- name: events_publish
-- Appends, projects and fans out a batch in one statement (sql/migrations/0010): per input
-- row in order, the event's id, whether it was created now, its log position, its fan-out,
-- and on the first row the subscriptions that may have new deliveries.
SELECT id, created, position, fanout, subscriptions
FROM amebo.publish_events(%(events)s::jsonb, %(dedupe_locks)s::bigint[])

-- name: notify
-- Run on its own, after the commits it announces. Its commit need not wait for the WAL to
-- reach disk (synchronous_commit is off for this transaction alone): a lost wake-up costs a
-- listener only its safety poll, and while this transaction commits it holds PostgreSQL's
-- cluster-wide notify lock, which every other notifying commit waits for.
SELECT set_config('synchronous_commit', 'off', true), pg_notify(%(channel)s, %(payload)s)

-- name: events_wake_workers
SELECT pg_notify('amebo_deliveries', '')

-- name: retry_jobs_wake
SELECT pg_notify('amebo_retry_jobs', '')

-- name: event_get
SELECT e.id, e.action, e.application, e.deduper, e.published_at, l.data -> 'payload' AS payload
FROM amebo.events AS e
JOIN amebo.log AS l ON l.position = e.position
WHERE e.id = %(id)s

-- name: event_list
-- Newest first; ids are time-ordered, so "before" pages through history.
SELECT e.id, e.action, e.application, e.deduper, e.published_at, l.data -> 'payload' AS payload
FROM amebo.events AS e
JOIN amebo.log AS l ON l.position = e.position
WHERE (%(action)s::text IS NULL OR e.action = %(action)s)
  AND (%(application)s::text IS NULL OR e.application = %(application)s)
  AND (%(before)s::uuid IS NULL OR e.id < %(before)s)
ORDER BY e.id DESC
LIMIT %(limit)s

-- name: event_deliveries
SELECT d.id, d.subscription_id, s.handler, d.status::text AS status, d.attempts,
       d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.updated_at
FROM amebo.deliveries AS d
JOIN amebo.subscriptions AS s ON s.id = d.subscription_id
WHERE d.event_id = %(event_id)s
ORDER BY d.created_at, d.id

-- name: action_publish_info
SELECT application, schemata
FROM amebo.actions
WHERE name = %(name)s
