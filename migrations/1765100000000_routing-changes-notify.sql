-- Up Migration

-- Tells every API process at commit what route explain keeps in memory has changed
-- (src/services/routing-explain-cache.ts, through src/db/notified-cache.ts), so that it is dropped
-- at once rather than when it expires. Payloads: `table:<id>` (a table's name or deletion, or a
-- rule on it), `inline` (any rule with inline prefixes) and `operator:<id>` (what explain shows
-- of an operator). Prefix-table entries are not kept: explain looks them up on every call.
-- Row-level; pg_notify folds the same payload sent twice in one transaction into one.
CREATE FUNCTION ops.notify_routing_rule_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    IF OLD.prefix_table_id IS NOT NULL THEN PERFORM pg_notify('ops_routing_changes', 'table:' || OLD.prefix_table_id); END IF;
    IF OLD.prefixes IS NOT NULL THEN PERFORM pg_notify('ops_routing_changes', 'inline'); END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF NEW.prefix_table_id IS NOT NULL THEN PERFORM pg_notify('ops_routing_changes', 'table:' || NEW.prefix_table_id); END IF;
    IF NEW.prefixes IS NOT NULL THEN PERFORM pg_notify('ops_routing_changes', 'inline'); END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER routing_rules_change_notify
  AFTER INSERT OR UPDATE OR DELETE ON ops.routing_rules
  FOR EACH ROW EXECUTE FUNCTION ops.notify_routing_rule_change();

CREATE FUNCTION ops.notify_routing_named_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ops_routing_changes', TG_ARGV[0] || ':' || OLD.id);
  RETURN NULL;
END $$;

-- No column lists (as in 1765000000000): the WHEN clause sees every column an UPDATE changes.
CREATE TRIGGER prefix_tables_change_notify
  AFTER UPDATE ON ops.prefix_tables
  FOR EACH ROW
  WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
  EXECUTE FUNCTION ops.notify_routing_named_change('table');

CREATE TRIGGER prefix_tables_delete_notify
  AFTER DELETE ON ops.prefix_tables
  FOR EACH ROW EXECUTE FUNCTION ops.notify_routing_named_change('table');

CREATE TRIGGER operators_routing_change_notify
  AFTER UPDATE ON ops.operators
  FOR EACH ROW
  WHEN (OLD.name IS DISTINCT FROM NEW.name
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
  EXECUTE FUNCTION ops.notify_routing_named_change('operator');

CREATE TRIGGER operators_routing_delete_notify
  AFTER DELETE ON ops.operators
  FOR EACH ROW EXECUTE FUNCTION ops.notify_routing_named_change('operator');

-- Explain now reads the rules from memory and only the table entries from PostgreSQL.
DROP FUNCTION ops.routing_rules_matching(text[]);

-- Down Migration

DROP TRIGGER operators_routing_delete_notify ON ops.operators;
DROP TRIGGER operators_routing_change_notify ON ops.operators;
DROP TRIGGER prefix_tables_delete_notify ON ops.prefix_tables;
DROP TRIGGER prefix_tables_change_notify ON ops.prefix_tables;
DROP FUNCTION ops.notify_routing_named_change();
DROP TRIGGER routing_rules_change_notify ON ops.routing_rules;
DROP FUNCTION ops.notify_routing_rule_change();

-- As 1764500000000 made it.
CREATE FUNCTION ops.routing_rules_matching(number_prefixes text[])
RETURNS TABLE (
  id uuid, operator_id uuid, operator_name text, operator_status text, prefix_table_id uuid,
  prefix_table_name text, table_prefix text, prefixes text[], priority integer, weight integer,
  cost text, currency text, enabled boolean, valid_from timestamptz, valid_until timestamptz, weekly jsonb
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
    WITH hits AS (
      SELECT DISTINCT ON (e.prefix_table_id) e.prefix_table_id, e.prefix
        FROM ops.prefix_table_entries e
       WHERE e.deleted_at IS NULL AND e.prefix = ANY(number_prefixes)
       ORDER BY e.prefix_table_id, length(e.prefix) DESC
    )
    SELECT r.id, r.operator_id, o.name::text, o.status::text, r.prefix_table_id, t.name::text, h.prefix::text,
           r.prefixes, r.priority, r.weight, r.cost_per_segment::text, r.currency::text, r.enabled,
           r.valid_from, r.valid_until, r.weekly
      FROM hits h
      JOIN ops.prefix_tables t ON t.id = h.prefix_table_id AND t.deleted_at IS NULL
      JOIN ops.routing_rules r ON r.prefix_table_id = h.prefix_table_id AND r.deleted_at IS NULL
     CROSS JOIN LATERAL (SELECT o.name, o.status FROM ops.operators o
                          WHERE o.id = r.operator_id AND o.deleted_at IS NULL
                            AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED') OFFSET 0) o
    UNION ALL
    SELECT r.id, r.operator_id, o.name::text, o.status::text, NULL, NULL, NULL,
           r.prefixes, r.priority, r.weight, r.cost_per_segment::text, r.currency::text, r.enabled,
           r.valid_from, r.valid_until, r.weekly
      FROM ops.routing_rules r
     CROSS JOIN LATERAL (SELECT o.name, o.status FROM ops.operators o
                          WHERE o.id = r.operator_id AND o.deleted_at IS NULL
                            AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED') OFFSET 0) o
     WHERE r.deleted_at IS NULL AND r.prefixes && number_prefixes
     ORDER BY 1;
END;
$$;
