-- Why: a delivery's id was md5(event_id || subscription_id) taken as a uuid: derived from the
-- pair, so a rebuild recreates it, but random in order, and not a valid RFC 9562 UUID. Every
-- fan-out inserted into random pages of the deliveries primary key and of (status, id), and
-- every outcome updated rows scattered across the table: once those outgrow memory, each
-- touches a page that must be read first. (Our 10,000,000-event benchmark, with ample page
-- cache, showed no cost either way; this is for servers where the indexes do not fit.)
-- The id keeps the event id's first 48 bits (its millisecond timestamp, as event ids are
-- UUIDv7) and takes the rest from the same hash, marked as an RFC 9562 version 8 UUID: still
-- derived from the pair alone, now ordered by time, so new rows land at the right edge.
-- amebo has not been released with the old derivation; a log written by a build before this
-- one rebuilds with new delivery ids that its recorded attempts do not name.

CREATE FUNCTION amebo.delivery_id(event_id uuid, subscription_id uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(set_bit(set_bit(set_bit(set_bit(
            overlay(decode(md5(event_id::text || subscription_id::text), 'hex')
                    PLACING substring(uuid_send(event_id) FROM 1 FOR 6) FROM 1 FOR 6),
            55, 1), 54, 0), 53, 0), 52, 0),  -- version 8: the high nibble of byte 6 is 1000
            71, 1), 70, 0),                  -- variant: the top bits of byte 8 are 10
        'hex')::uuid
$$;
