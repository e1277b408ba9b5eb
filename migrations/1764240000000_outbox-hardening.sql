-- Up Migration

-- Wakes every relay at commit: NOTIFY is delivered only when the inserting transaction commits,
-- so the happy path has no polling delay. Statement-level: one wake-up per insert statement.
CREATE FUNCTION ops.notify_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ops_outbox', '');
  RETURN NULL;
END $$;

CREATE TRIGGER event_outbox_notify AFTER INSERT ON ops.event_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION ops.notify_outbox();

-- A row that can never be published (larger than the server's max_payload) is parked with its
-- error instead of blocking every event behind it; its operator's later events wait behind it,
-- so per-operator order stays honest until ops re-drive or skip it (docs/runbook.md).
ALTER TABLE ops.event_outbox
  ADD COLUMN failed_at timestamptz,
  ADD COLUMN last_error text;

CREATE INDEX event_outbox_failed_idx ON ops.event_outbox (operator_id) WHERE failed_at IS NOT NULL AND published_at IS NULL;

-- Down Migration

DROP INDEX ops.event_outbox_failed_idx;
ALTER TABLE ops.event_outbox DROP COLUMN last_error, DROP COLUMN failed_at;
DROP TRIGGER event_outbox_notify ON ops.event_outbox;
DROP FUNCTION ops.notify_outbox();
