-- Up Migration

-- The relay's queue: the ids of outbox rows not yet on the stream. Marking a batch published
-- used to be an UPDATE that PostgreSQL could never make HOT (published_at sat in the predicate
-- of both partial indexes), so each published row wrote a new tuple and an entry in each of the
-- outbox's three unique indexes: the largest cost of a flush left. Now the relay reads its queue
-- and a mark deletes from it, while the outbox row's own update (published_at) is HOT: no index
-- names published_at, and a fill factor of 50 leaves room on each page for a row's second
-- version. A queue row is a flag on its outbox row, which carries the audit columns.

-- No insert lands between the trigger and the backfill: whatever commits first is in either.
LOCK TABLE ops.event_outbox IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE ops.event_outbox_pending (
  id bigint PRIMARY KEY REFERENCES ops.event_outbox (id) ON DELETE CASCADE
);

-- Every insert queues its rows, whoever wrote it (a replica of an earlier version included).
-- Statement-level: one call per insert statement, a prefix table's fan-out of many rows too.
CREATE FUNCTION ops.queue_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ops.event_outbox_pending (id) SELECT id FROM new_rows WHERE published_at IS NULL;
  RETURN NULL;
END $$;

CREATE TRIGGER event_outbox_queue AFTER INSERT ON ops.event_outbox
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ops.queue_outbox();

INSERT INTO ops.event_outbox_pending (id)
  SELECT id FROM ops.event_outbox WHERE published_at IS NULL;

-- A row marked unpublished again (ops undoing a skip, a test replaying a lost mark) is queued
-- again. Row-level, but its WHEN is checked before any call: the relay's marks never fire it.
CREATE FUNCTION ops.requeue_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ops.event_outbox_pending (id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;

CREATE TRIGGER event_outbox_requeue AFTER UPDATE OF published_at ON ops.event_outbox
  FOR EACH ROW WHEN (OLD.published_at IS NOT NULL AND NEW.published_at IS NULL)
  EXECUTE FUNCTION ops.requeue_outbox();

DROP INDEX ops.event_outbox_pending_idx;
-- Parked rows stay parked after ops skip them (published_at set, failed_at kept): the relay's
-- look-up filters those out; the index only has to find an operator's parked rows.
DROP INDEX ops.event_outbox_failed_idx;
CREATE INDEX event_outbox_failed_idx ON ops.event_outbox (operator_id, id) WHERE failed_at IS NOT NULL;

-- New pages only: rows already written keep their pages, and are marked the old way at worst.
ALTER TABLE ops.event_outbox SET (fillfactor = 50);

-- The relay's mark sets updated_at to now() itself: a plpgsql call per published row was a third
-- of the mark's time. The trigger is skipped only when the row already holds what it would
-- write (ops.touch_updated_at sets updated_at := now() and nothing else); any other update
-- (ops', an earlier version's, a back-dating one) is still touched.
DROP TRIGGER event_outbox_touch ON ops.event_outbox;
CREATE TRIGGER event_outbox_touch BEFORE UPDATE ON ops.event_outbox
  FOR EACH ROW WHEN (NEW.updated_at IS DISTINCT FROM now())
  EXECUTE FUNCTION ops.touch_updated_at();

-- Down Migration

DROP TRIGGER event_outbox_touch ON ops.event_outbox;
CREATE TRIGGER event_outbox_touch BEFORE UPDATE ON ops.event_outbox
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();
ALTER TABLE ops.event_outbox RESET (fillfactor);
DROP INDEX ops.event_outbox_failed_idx;
CREATE INDEX event_outbox_failed_idx ON ops.event_outbox (operator_id) WHERE failed_at IS NOT NULL AND published_at IS NULL;
CREATE INDEX event_outbox_pending_idx ON ops.event_outbox (id) WHERE published_at IS NULL;
DROP TRIGGER event_outbox_requeue ON ops.event_outbox;
DROP FUNCTION ops.requeue_outbox();
DROP TRIGGER event_outbox_queue ON ops.event_outbox;
DROP FUNCTION ops.queue_outbox();
DROP TABLE ops.event_outbox_pending;
