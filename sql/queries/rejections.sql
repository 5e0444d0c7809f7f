-- name: rejection_get
SELECT r.id, r.action, r.deduper, r.written_at, r.rejected_at, r.reasons,
       l.data -> 'payload' AS payload
FROM amebo.rejections AS r
JOIN amebo.log AS l ON l.position = r.position
WHERE r.id = %(id)s
