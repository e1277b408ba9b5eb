-- Up Migration

-- Which tables hold one of a number's prefixes (route explain, the routing lookup): by prefix
-- first, across tables. The (table, prefix) unique index serves per-table lookups already.
CREATE INDEX prefix_table_entries_prefix_idx ON ops.prefix_table_entries (prefix, prefix_table_id)
  WHERE deleted_at IS NULL;

-- Which rules list one of a number's prefixes inline (array overlap). Without the pending list
-- (fastupdate off) a lookup never scans unmerged entries; rules change far less often than they are read.
CREATE INDEX routing_rules_prefixes_idx ON ops.routing_rules USING gin (prefixes) WITH (fastupdate = off)
  WHERE deleted_at IS NULL;

-- Down Migration

DROP INDEX IF EXISTS ops.routing_rules_prefixes_idx;
DROP INDEX IF EXISTS ops.prefix_table_entries_prefix_idx;
