-- Why: amebo's statements keep generic plans for the life of a connection, and a plan is
-- made for the table sizes of its moment. On a young database the log holds a few rows,
-- a sequential scan is its cheapest read, and that plan stays until an ANALYZE of the table
-- invalidates it. Autovacuum analyzes after 10 % of change but looks only once per
-- autovacuum_naptime (a minute by default): within 15 seconds of a fresh start, a publish
-- group's projection (plpgsql since 0012, so its plan is kept) read 21,000 log rows to find
-- its 22. amebo's processes call this after enough writes (amebo/db/upkeep.py): it
-- analyzes the tables that have more than doubled since their statistics were taken, and
-- names them.

CREATE FUNCTION amebo.analyze_outgrown_tables(smallest bigint) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    outgrown record;
BEGIN
    -- One process at a time; the others find the statistics fresh next time. The key is
    -- arbitrary but fixed.
    IF NOT pg_try_advisory_xact_lock(7318100052002) THEN
        RETURN;
    END IF;
    FOR outgrown IN
        SELECT s.relname, keyed.columns
        FROM pg_stat_user_tables AS s
        JOIN pg_class AS c ON c.oid = s.relid
        -- The key columns only: the plans need the table's size (any ANALYZE updates it)
        -- and these columns' statistics. On a log of 100,000 facts, every column took 330-370
        -- ms (its jsonb above all), the key alone 70 ms; autovacuum still analyzes every
        -- column in its own time.
        JOIN (VALUES ('log', 'position'),
                     ('events', 'id'),
                     ('deliveries', 'id'),
                     ('delivery_queue', 'delivery_id, subscription_id, run_at'))
            AS keyed (relname, columns) ON keyed.relname = s.relname
        WHERE s.schemaname = 'amebo'
          -- reltuples is -1 until the first ANALYZE or VACUUM
          AND s.n_live_tup > 2 * greatest(c.reltuples, smallest)
    LOOP
        EXECUTE format('ANALYZE amebo.%I (%s)', outgrown.relname, outgrown.columns);
        RETURN NEXT outgrown.relname;
    END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION amebo.analyze_outgrown_tables(bigint) FROM PUBLIC;
