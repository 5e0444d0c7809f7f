-- name: log_append
-- Appends facts in order; the caller applies the projections to the positions returned.
INSERT INTO amebo.log (stream, type, data, metadata)
SELECT stream, type, data, metadata
FROM unnest(%(streams)s::text[], %(types)s::text[], %(data)s::jsonb[], %(metadata)s::jsonb[])
    WITH ORDINALITY AS fact (stream, type, data, metadata, ord)
ORDER BY ord
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
