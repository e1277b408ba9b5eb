-- Up Migration

-- The outbox keeps each event's JSON exactly as the service wrote it (json, not jsonb), so the
-- relay publishes those bytes as they are: no parse and serialise again per event, and the
-- size checked at the write (EVENT_MAX_BYTES) is the size published. jsonb's own text form
-- would also differ (spaces, key order). Nothing queries inside the payload.
ALTER TABLE ops.event_outbox ALTER COLUMN payload TYPE json USING payload::json;

-- Down Migration

ALTER TABLE ops.event_outbox ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
