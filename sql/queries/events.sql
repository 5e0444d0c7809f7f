-- name: events_lock_dedupers
-- Serialises publishers of the same (action, deduper) so the second one sees the first.
SELECT count(pg_advisory_xact_lock(key))
FROM unnest(%(keys)s::bigint[]) AS key

-- name: events_publish
-- Appends one event.published fact per new event and answers, per input row in order, the
-- event's id, whether it was created now, and its log position. Rows whose deduper was seen
-- before (earlier in this batch or in an earlier one) get the first event's id. Each fact
-- names the subscriptions the event fans out to, so the fan-out is replayable.
WITH input AS (
    -- Payloads and metadata arrive as one JSON array each: one value to encode, not many.
    SELECT i.id, i.action, i.application, i.deduper, p.payload, m.metadata, i.ord,
           CASE WHEN i.deduper IS NULL THEN 'id:' || i.id ELSE 'deduper:' || i.deduper END
               AS dedupe_key
    FROM unnest(%(ids)s::uuid[], %(actions)s::text[], %(applications)s::text[],
                %(dedupers)s::text[])
        WITH ORDINALITY AS i (id, action, application, deduper, ord)
    JOIN jsonb_array_elements(%(payloads)s::jsonb) WITH ORDINALITY AS p (payload, ord)
        USING (ord)
    JOIN jsonb_array_elements(%(metadata)s::jsonb) WITH ORDINALITY AS m (metadata, ord)
        USING (ord)
), firsts AS (
    SELECT DISTINCT ON (action, dedupe_key) *
    FROM input
    ORDER BY action, dedupe_key, ord
), known AS (
    SELECT f.ord, e.id
    FROM firsts AS f
    JOIN amebo.events AS e ON e.action = f.action AND e.deduper = f.deduper
    WHERE f.deduper IS NOT NULL
), appended AS (
    INSERT INTO amebo.log (stream, type, data, metadata)
    SELECT 'event-' || f.id, 'event.published',
           jsonb_build_object(
               'id', f.id, 'action', f.action, 'application', f.application,
               'deduper', f.deduper, 'payload', f.payload,
               'subscriptions', coalesce(targets.ids, '[]'::jsonb)),
           f.metadata
    FROM firsts AS f
    LEFT JOIN LATERAL (
        SELECT jsonb_agg(s.id ORDER BY s.id) AS ids
        FROM amebo.subscriptions AS s
        WHERE s.action = f.action AND s.active
    ) AS targets ON true
    WHERE NOT EXISTS (SELECT 1 FROM known AS k WHERE k.ord = f.ord)
    ORDER BY f.ord
    RETURNING position, (data ->> 'id')::uuid AS id,
              jsonb_array_length(data -> 'subscriptions') AS fanout
)
SELECT coalesce(k.id, f.id) AS id,
       (a.position IS NOT NULL AND i.ord = f.ord) AS created,
       CASE WHEN i.ord = f.ord THEN a.position END AS position,
       CASE WHEN i.ord = f.ord THEN a.fanout ELSE 0 END AS fanout
FROM input AS i
JOIN firsts AS f ON f.action = i.action AND f.dedupe_key = i.dedupe_key
LEFT JOIN known AS k ON k.ord = f.ord
LEFT JOIN appended AS a ON a.id = f.id
ORDER BY i.ord

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
