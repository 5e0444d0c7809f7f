-- name: apply_event_rejected
-- The rejections read model: one row per refused outbox id, pointing at its payload in the
-- log. An id refused again (a producer reused it) shows its latest refusal.
INSERT INTO amebo.rejections (id, action, deduper, reasons, written_at, rejected_at, position)
SELECT DISTINCT ON ((data ->> 'id')::uuid)
       (data ->> 'id')::uuid, data ->> 'action', data ->> 'deduper', data -> 'reasons',
       (data ->> 'written_at')::timestamptz, recorded_at, position
FROM amebo.log
WHERE position = ANY(%(positions)s::bigint[])
ORDER BY (data ->> 'id')::uuid, position DESC
ON CONFLICT (id) DO UPDATE
SET action = excluded.action, deduper = excluded.deduper, reasons = excluded.reasons,
    written_at = excluded.written_at, rejected_at = excluded.rejected_at,
    position = excluded.position
