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
    -- The batch arrives as one JSON array of objects: encoded in one call, not element by
    -- element.
    SELECT e.id, e.action, e.application, e.deduper, e.payload, e.metadata, e.ord
    FROM ROWS FROM (
        jsonb_to_recordset(%(events)s::jsonb) AS (id uuid, action text, application text,
                                                   deduper text, payload jsonb, metadata jsonb)
    ) WITH ORDINALITY AS e (id, action, application, deduper, payload, metadata, ord)
), firsts AS (
    -- The first row of each deduper in the batch; a row without one is its own first.
    SELECT DISTINCT ON (action, deduper) action, deduper, ord AS first_ord
    FROM input
    WHERE deduper IS NOT NULL
    ORDER BY action, deduper, ord
), resolved AS (
    SELECT i.*, coalesce(f.first_ord, i.ord) AS first_ord
    FROM input AS i
    LEFT JOIN firsts AS f ON f.action = i.action AND f.deduper = i.deduper
), known AS (
    SELECT f.first_ord, e.id
    FROM firsts AS f
    JOIN amebo.events AS e ON e.action = f.action AND e.deduper = f.deduper
), targets AS (
    -- Looked up once per action in the batch, not once per event.
    SELECT s.action, jsonb_agg(s.id ORDER BY s.id) AS ids
    FROM amebo.subscriptions AS s
    WHERE s.active AND s.action IN (SELECT DISTINCT action FROM input)
    GROUP BY s.action
), appended AS (
    INSERT INTO amebo.log (stream, type, data, metadata)
    SELECT 'event-' || r.id, 'event.published',
           jsonb_build_object(
               'id', r.id, 'action', r.action, 'application', r.application,
               'deduper', r.deduper, 'payload', r.payload,
               'subscriptions', coalesce(t.ids, '[]'::jsonb)),
           r.metadata
    FROM resolved AS r
    LEFT JOIN targets AS t ON t.action = r.action
    WHERE r.ord = r.first_ord
      AND NOT EXISTS (SELECT 1 FROM known AS k WHERE k.first_ord = r.ord)
    ORDER BY r.ord
    RETURNING position, (data ->> 'id')::uuid AS id,
              jsonb_array_length(data -> 'subscriptions') AS fanout
), wake AS (
    -- Workers in other processes hear of new deliveries at commit, from one NOTIFY per
    -- transaction and only when there is something to deliver (it takes a global lock at
    -- commit). Sent from here, it costs no round trip of its own.
    SELECT pg_notify('amebo_deliveries', '')
    WHERE EXISTS (SELECT 1 FROM appended WHERE fanout > 0)
)
SELECT coalesce(k.id, first.id) AS id,
       (r.ord = r.first_ord AND a.position IS NOT NULL) AS created,
       CASE WHEN r.ord = r.first_ord THEN a.position END AS position,
       CASE WHEN r.ord = r.first_ord THEN a.fanout ELSE 0 END AS fanout,
       (SELECT count(*) FROM wake) AS notified
FROM resolved AS r
JOIN input AS first ON first.ord = r.first_ord
LEFT JOIN known AS k ON k.first_ord = r.first_ord
LEFT JOIN appended AS a ON a.id = first.id
ORDER BY r.ord

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
