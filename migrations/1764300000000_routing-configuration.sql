-- Up Migration

-- A prefix table's version (bumped by every change, the ETag of its writes), its live entry count
-- and the SHA-256 of its sorted live prefixes joined by '\n' (consumers compare it after a reload).
ALTER TABLE ops.prefix_tables
  ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  ADD COLUMN entry_count integer NOT NULL DEFAULT 0 CHECK (entry_count >= 0),
  ADD COLUMN content_hash text NOT NULL
    DEFAULT 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

-- A rule's optional schedule: validity instants, and weekly windows in one IANA time zone
-- ({"timeZone": "...", "windows": [{"days": ["mon"], "start": "08:00", "end": "18:00"}]}).
ALTER TABLE ops.routing_rules
  ADD COLUMN valid_from timestamptz,
  ADD COLUMN valid_until timestamptz,
  ADD COLUMN weekly jsonb,
  ADD CONSTRAINT routing_rules_validity_order CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until);

-- Lists page by (created_at, id), as operators do.
CREATE INDEX prefix_tables_created_idx ON ops.prefix_tables (created_at, id) WHERE deleted_at IS NULL;

-- Down Migration

DROP INDEX IF EXISTS ops.prefix_tables_created_idx;
ALTER TABLE ops.routing_rules
  DROP CONSTRAINT IF EXISTS routing_rules_validity_order,
  DROP COLUMN IF EXISTS weekly,
  DROP COLUMN IF EXISTS valid_until,
  DROP COLUMN IF EXISTS valid_from;
ALTER TABLE ops.prefix_tables
  DROP COLUMN IF EXISTS content_hash,
  DROP COLUMN IF EXISTS entry_count,
  DROP COLUMN IF EXISTS version;
