-- name: tables_analyze_outgrown
-- ANALYZEs amebo's tables that have more than doubled since their statistics (at least
-- 200 rows), so that cached plans are made again for their size (amebo/db/upkeep.py).
SELECT amebo.analyze_outgrown_tables(100)
