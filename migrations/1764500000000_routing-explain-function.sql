-- Up Migration

-- The rules a number matches (route explain), as a function so that its plan is made once per
-- connection (a generic plan) instead of on every call: for this statement planning costs twice
-- what running it does, and the planner, costing the array overlap at its default selectivity,
-- would never switch to the generic plan by itself. The operator lookups (LATERAL … OFFSET 0)
-- stay primary-key probes per matched rule: joined plainly, a generic plan hashes every operator.
-- Every live rule of an operator not failed or deleted with one of `prefixes`: the longest
-- of them in its table (table_prefix), or NULL for inline prefixes (the caller picks the longest).
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

-- Down Migration

DROP FUNCTION IF EXISTS ops.routing_rules_matching(text[]);
