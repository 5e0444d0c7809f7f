-- name: log_append
-- Appends facts in order; the caller applies the projections to the positions returned.
-- The facts arrive as one JSON array of objects: encoded in one call, not per element.
INSERT INTO amebo.log (stream, type, data, metadata)
SELECT fact.stream, fact.type, fact.data, fact.metadata
FROM ROWS FROM (
    jsonb_to_recordset(%(facts)s::jsonb) AS (stream text, type text, data jsonb, metadata jsonb)
) WITH ORDINALITY AS fact (stream, type, data, metadata, ord)
ORDER BY fact.ord
RETURNING position, type

-- name: log_runs_after
-- One page of the log for projection rebuilds: position and type only, in position order.
SELECT position, type
FROM amebo.log
WHERE position > %(after)s
ORDER BY position
LIMIT %(limit)s

-- name: log_stream
-- Every fact of one stream, oldest first.
SELECT position, type, data, metadata, recorded_at
FROM amebo.log
WHERE stream = %(stream)s
ORDER BY position
