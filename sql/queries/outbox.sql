-- name: outbox_claim
-- Takes up to %(limit)s committed rows, oldest first, by deleting them inside the relay's
-- open transaction: if the relay dies before it commits, the rows are back for the next one.
-- Rows another relay holds are skipped, not waited for. "taken" flags an id that some event
-- already has (producers may choose ids), which could never become a second event.
WITH picked AS (
    SELECT id
    FROM amebo.outbox
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    DELETE FROM amebo.outbox AS o
    USING picked
    WHERE o.id = picked.id
    RETURNING o.id, o.action, o.payload, o.deduper, o.metadata, o.created_at
)
-- The payload comes back as text so that one the relay cannot parse is refused alone.
SELECT c.id, c.action, c.payload::text AS payload, c.deduper, c.metadata, c.created_at,
       EXISTS (SELECT FROM amebo.events AS e WHERE e.id = c.id) AS taken
FROM claimed AS c
ORDER BY c.id

-- name: outbox_waiting
-- How many rows wait for the relay (committed ones only, as the relay sees them).
SELECT count(*) FROM amebo.outbox
