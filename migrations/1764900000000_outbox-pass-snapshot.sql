-- Up Migration

-- The transaction that queued each row, so that one pass of the relay reads all its batches as
-- of its first read (pg_visible_in_snapshot against that read's pg_current_snapshot()). Read
-- from a moving view, a change that took its id before rows already read but committed after
-- them was skipped by the pass while the same operator's next change, committed later still,
-- went out first: out of version order. Rows queued before this migration carry none: they
-- committed long before any pass that reads them began.
-- Added without a default, then given one: no rewrite of the rows queued now.
ALTER TABLE ops.event_outbox_pending ADD COLUMN xact xid8;
ALTER TABLE ops.event_outbox_pending ALTER COLUMN xact SET DEFAULT pg_current_xact_id();

-- Down Migration

ALTER TABLE ops.event_outbox_pending DROP COLUMN xact;
