import type { Pool, PoolClient } from 'pg';
import type { RuleSchedule } from '../domain/route-order';
import type { WeeklySchedule } from '../domain/routing';

/**
 * SQL for the routing lint. Every read excludes soft-deleted rows; only rules of live operators
 * (not deleted, neither ONBOARDING_FAILED nor DELETED) count.
 *
 * The lint runs in one REPEATABLE READ transaction that first writes a few temporary tables (the
 * scratch), so every kind reads the same snapshot and the prefix-level work is done once.
 *
 * A rule's prefixes are a set: its table, or its own inline list (`set_id` is the table's id or
 * the rule's), so a thousand rules on one table share one set and its entries are read once.
 * Two prefixes held by exactly the same sets are alike for every kind, so the queries work on
 * classes of prefixes, not on prefixes:
 *
 * - `lint_classes`: each distinct set of holders of the prefixes that two or more sets hold, with
 *   its first prefix and how many prefixes it has; `lint_members` lists the holders;
 * - `lint_sets`: per non-empty set its size, first prefix, and how many of its prefixes no other
 *   set holds ("lonely" ones, which together behave as one more class of that set alone).
 *
 * Building it reads the live entries a few times, mostly in index order (the prefixes two entries
 * have, the used tables' entries with such a prefix or an inline one, a count per used table),
 * whatever the number of rules; what follows is proportional to the shared prefixes, their
 * classes and the rules, not to the entries.
 */

/** The connection of a lint run: its scratch tables exist only inside `withLintScratch`. */
export interface LintScratch {
  readonly client: PoolClient;
}

/** Which rules a lint looks at: `null` for all, otherwise findings must involve one of these. */
export type LintScope = readonly string[] | null;

const SCRATCH = [
  `CREATE TEMP TABLE lint_rules ON COMMIT DROP AS
   SELECT r.id, r.operator_id, coalesce(r.prefix_table_id, r.id) AS set_id, r.prefix_table_id, r.prefixes,
          r.priority, r.cost_per_segment AS cost, r.currency, r.enabled, r.valid_from, r.valid_until, r.weekly,
          o.status = 'ACTIVE' AS operator_active,
          -- A candidate wherever it matches, at any time: only such a rule surely wins over another.
          r.enabled AND o.status = 'ACTIVE' AND r.valid_from IS NULL AND r.valid_until IS NULL AND r.weekly IS NULL
            AS always_candidate
     FROM ops.routing_rules r JOIN ops.operators o ON o.id = r.operator_id
    WHERE r.deleted_at IS NULL AND o.deleted_at IS NULL AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')`,
  `CREATE TEMP TABLE lint_inline ON COMMIT DROP AS
   SELECT DISTINCT r.id AS set_id, p.prefix FROM lint_rules r CROSS JOIN LATERAL unnest(r.prefixes) AS p(prefix)`,
  `CREATE TEMP TABLE lint_tables ON COMMIT DROP AS
   SELECT DISTINCT r.prefix_table_id AS id
     FROM lint_rules r JOIN ops.prefix_tables t ON t.id = r.prefix_table_id AND t.deleted_at IS NULL`,
  `ANALYZE lint_rules, lint_inline, lint_tables`,
  // The candidates are every inline prefix and the entries whose prefix some other entry (of any
  // table: counting on the whole prefix index streams it in order) or an inline list has; the
  // count then keeps the prefixes that two used sets really hold.
  `CREATE TEMP TABLE lint_prefixes ON COMMIT DROP AS
   SELECT prefix, array_agg(set_id ORDER BY set_id) AS holders
     FROM (SELECT set_id, prefix FROM lint_inline
           UNION ALL
           SELECT e.prefix_table_id, e.prefix
             FROM ops.prefix_table_entries e
            WHERE e.deleted_at IS NULL AND e.prefix_table_id IN (SELECT id FROM lint_tables)
              AND e.prefix IN (SELECT prefix FROM ops.prefix_table_entries WHERE deleted_at IS NULL
                                GROUP BY prefix HAVING count(*) > 1
                               UNION
                               SELECT prefix FROM lint_inline)) p
    GROUP BY prefix
   HAVING count(*) > 1`,
  `ALTER TABLE lint_prefixes ADD PRIMARY KEY (prefix)`,
  `CREATE TEMP TABLE lint_classes ON COMMIT DROP AS
   SELECT row_number() OVER (ORDER BY holders) AS id, holders, example, size
     FROM (SELECT holders, min(prefix) AS example, count(*) AS size FROM lint_prefixes GROUP BY holders) c`,
  `CREATE TEMP TABLE lint_members ON COMMIT DROP AS
   SELECT c.id AS class_id, m.set_id FROM lint_classes c CROSS JOIN unnest(c.holders) AS m(set_id)`,
  `CREATE INDEX ON lint_members (set_id)`,
  `CREATE INDEX ON lint_members (class_id, set_id)`,
  `CREATE TEMP TABLE lint_sets ON COMMIT DROP AS
   SELECT s.set_id, s.size, s.example, s.size - coalesce(h.shared, 0) AS lonely, coalesce(h.classes, 0) AS classes
     FROM (SELECT t.id AS set_id, c.size, c.example
             FROM lint_tables t
            CROSS JOIN LATERAL (SELECT count(*) AS size, min(e.prefix) AS example FROM ops.prefix_table_entries e
                                 WHERE e.prefix_table_id = t.id AND e.deleted_at IS NULL) c
            WHERE c.size > 0
           UNION ALL
           SELECT set_id, count(*), min(prefix) FROM lint_inline GROUP BY set_id) s
     LEFT JOIN (SELECT m.set_id, sum(c.size) AS shared, count(*) AS classes
                  FROM lint_members m JOIN lint_classes c ON c.id = m.class_id GROUP BY m.set_id) h
            ON h.set_id = s.set_id`,
  `ALTER TABLE lint_sets ADD PRIMARY KEY (set_id)`,
  `ANALYZE lint_prefixes, lint_classes, lint_members, lint_sets`,
];

/**
 * Runs `fn` on one snapshot with the scratch built. Nothing is written outside the temporary
 * tables, which the closing ROLLBACK discards.
 */
export async function withLintScratch<T>(pool: Pool, fn: (scratch: LintScratch) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    for (const statement of SCRATCH) await client.query(statement);
    return await fn({ client });
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

export interface ShadowedRule {
  ruleId: string;
  operatorId: string;
  /** One of the rule's prefixes, and a rule that always wins it. */
  prefix: string;
  byRuleId: string;
}

/**
 * Rules every prefix of which an always-candidate rule holding the same prefix outranks (a lower
 * priority, or the same priority and currency and a lower cost).
 *
 * At a prefix, a rule of currency c with (priority, cost) = (p, x) is outranked exactly when
 * (p, x) is above bar(c) = least((the lowest priority there, ∞), the least (priority, cost) in c
 * there), pairs compared in order (as numeric[] compares). A rule is shadowed when it is above
 * the highest bar over its prefixes: a max over the classes of its set (and its lonely prefixes)
 * per currency. Only each set's best always-candidate rules (its `front`) can set a bar.
 */
export async function findShadowedRules(s: LintScratch, scope: LintScope): Promise<ShadowedRule[]> {
  const { rows } = await s.client.query<{ rule_id: string; operator_id: string; prefix: string; by_rule_id: string }>(
    `WITH front AS MATERIALIZED (
       SELECT DISTINCT ON (set_id, currency) set_id, priority, currency, cost, id AS rule_id
         FROM (SELECT r.*, min(r.priority) OVER (PARTITION BY r.set_id) AS set_priority
                 FROM lint_rules r WHERE r.always_candidate) r
        WHERE priority = set_priority
        ORDER BY set_id, currency, cost, id
     ),
     class_lowest AS (
       SELECT m.class_id, min(f.priority)::numeric AS priority
         FROM lint_members m JOIN front f ON f.set_id = m.set_id GROUP BY m.class_id
     ),
     class_best AS (
       SELECT m.class_id, f.currency, min(ARRAY[f.priority, f.cost]) AS pair
         FROM lint_members m JOIN front f ON f.set_id = m.set_id GROUP BY m.class_id, f.currency
     ),
     set_lowest AS (SELECT set_id, min(priority)::numeric AS priority FROM front GROUP BY set_id),
     targets AS MATERIALIZED (
       SELECT DISTINCT set_id, currency FROM lint_rules WHERE $1::uuid[] IS NULL OR id = ANY($1)
     ),
     bars AS (
       SELECT t.set_id, t.currency,
              CASE WHEN l.priority IS NULL THEN '{Infinity,Infinity}'
                   ELSE least(ARRAY[l.priority, 'Infinity'], b.pair) END AS bar
         FROM targets t
         JOIN lint_members m ON m.set_id = t.set_id
         LEFT JOIN class_lowest l ON l.class_id = m.class_id
         LEFT JOIN class_best b ON b.class_id = m.class_id AND b.currency = t.currency
       UNION ALL
       SELECT t.set_id, t.currency,
              CASE WHEN l.priority IS NULL THEN '{Infinity,Infinity}'
                   ELSE least(ARRAY[l.priority, 'Infinity'], ARRAY[f.priority, f.cost]) END
         FROM targets t
         JOIN lint_sets s ON s.set_id = t.set_id AND s.lonely > 0
         LEFT JOIN set_lowest l ON l.set_id = t.set_id
         LEFT JOIN front f ON f.set_id = t.set_id AND f.currency = t.currency
     ),
     shadowed AS MATERIALIZED (
       SELECT r.id, r.operator_id, r.set_id, r.priority, r.currency, r.cost
         FROM lint_rules r
         JOIN (SELECT set_id, currency, max(bar) AS bar FROM bars GROUP BY set_id, currency) w
           ON w.set_id = r.set_id AND w.currency = r.currency
        WHERE ($1::uuid[] IS NULL OR r.id = ANY($1)) AND w.bar < ARRAY[r.priority, r.cost]
     ),
     -- The example: the first prefix of the set's first class, whose holders' fronts win it; for a
     -- set without shared prefixes, its first prefix, which only the set's own rules hold.
     first_class AS (
       SELECT DISTINCT ON (m.set_id) m.set_id, c.example, c.holders
         FROM lint_members m JOIN lint_classes c ON c.id = m.class_id
        WHERE m.set_id IN (SELECT set_id FROM shadowed)
        ORDER BY m.set_id, c.example
     ),
     examples AS (
       SELECT s.set_id, coalesce(c.example, ls.example) AS prefix, coalesce(c.holders, ARRAY[s.set_id]) AS holders
         FROM (SELECT DISTINCT set_id FROM shadowed) s
         JOIN lint_sets ls ON ls.set_id = s.set_id
         LEFT JOIN first_class c ON c.set_id = s.set_id
     )
     SELECT DISTINCT ON (s.id) s.id AS rule_id, s.operator_id, e.prefix, f.rule_id AS by_rule_id
       FROM shadowed s
       JOIN examples e ON e.set_id = s.set_id
      CROSS JOIN unnest(e.holders) AS h(set_id)
       JOIN front f ON f.set_id = h.set_id
      WHERE f.priority < s.priority OR (f.priority = s.priority AND f.currency = s.currency AND f.cost < s.cost)
      ORDER BY s.id, f.priority, f.cost, f.rule_id`,
    [scope],
  );
  return rows.map((r) => ({ ruleId: r.rule_id, operatorId: r.operator_id, prefix: r.prefix, byRuleId: r.by_rule_id }));
}

export interface DuplicatePrefixPriority {
  /** The two rules, sorted. */
  ruleIds: [string, string];
  operatorId: string;
  priority: number;
  /** The first prefix they share. */
  prefix: string;
}

/**
 * Pairs of one operator's enabled rules at the same priority with a prefix in common (whether
 * their schedules let them meet is for the caller: src/domain/route-order.ts). Two rules on one
 * table share all of it; two sets share a prefix when a class holds both, looked up from the set
 * in fewer classes (a rule on a large table beside a short inline list costs the list).
 */
export async function findDuplicatePrefixPriorities(
  s: LintScratch,
  scope: LintScope,
): Promise<DuplicatePrefixPriority[]> {
  const { rows } = await s.client.query<{
    a_id: string;
    b_id: string;
    operator_id: string;
    priority: number;
    prefix: string;
  }>(
    `WITH pairs AS MATERIALIZED (
       SELECT a.id AS a_id, b.id AS b_id, a.operator_id, a.priority, a.set_id AS a_set, b.set_id AS b_set
         FROM lint_rules a
         JOIN lint_rules b ON b.operator_id = a.operator_id AND b.priority = a.priority AND a.id < b.id
        WHERE a.enabled AND b.enabled AND ($1::uuid[] IS NULL OR a.id = ANY($1) OR b.id = ANY($1))
     ),
     across AS MATERIALIZED (
       SELECT p.*, CASE WHEN sa.classes <= sb.classes THEN p.a_set ELSE p.b_set END AS fewer,
              CASE WHEN sa.classes <= sb.classes THEN p.b_set ELSE p.a_set END AS more
         FROM pairs p JOIN lint_sets sa ON sa.set_id = p.a_set JOIN lint_sets sb ON sb.set_id = p.b_set
        WHERE p.a_set <> p.b_set AND sa.classes > 0 AND sb.classes > 0
     )
     SELECT p.a_id, p.b_id, p.operator_id, p.priority, s.example AS prefix
       FROM pairs p JOIN lint_sets s ON s.set_id = p.a_set
      WHERE p.a_set = p.b_set
     UNION ALL
     SELECT p.a_id, p.b_id, p.operator_id, p.priority, min(c.example)
       FROM across p
       JOIN lint_members f ON f.set_id = p.fewer
       JOIN lint_members m ON m.class_id = f.class_id AND m.set_id = p.more
       JOIN lint_classes c ON c.id = f.class_id
      GROUP BY p.a_id, p.b_id, p.operator_id, p.priority`,
    [scope],
  );
  return rows.map((r) => ({
    ruleIds: [r.a_id, r.b_id],
    operatorId: r.operator_id,
    priority: r.priority,
    prefix: r.prefix,
  }));
}

export interface MixedCurrencyRank {
  /** Every candidate rule at those prefixes and that priority, sorted. */
  ruleIds: string[];
  operatorIds: string[];
  currencies: string[];
  priority: number;
  /** One of the prefixes where exactly these rules meet, and how many such prefixes there are. */
  prefix: string;
  prefixCount: number;
}

/**
 * Groups of enabled, unexpired rules of ACTIVE operators that share a prefix and a priority in
 * more than one currency (whether their schedules let them meet is for the caller), one per distinct set of rules, with how many prefixes bring that set together: per
 * class and priority, the sets with rules there; a set's lonely prefixes bring its own rules
 * together (only a table can do that: an inline set is one rule, one currency).
 */
export async function findMixedCurrencyRanks(
  s: LintScratch,
  scope: LintScope,
  now: Date,
): Promise<MixedCurrencyRank[]> {
  // Lists come back as comma-joined text: a group on a shared table can name thousands of rules,
  // and splitting one string costs far less than parsing a PostgreSQL array literal.
  const { rows } = await s.client.query<{
    rule_ids: string;
    operator_ids: string;
    currencies: string;
    priority: number;
    prefix: string;
    prefix_count: string;
  }>(
    `WITH contenders AS MATERIALIZED (
       SELECT set_id, priority, min(currency) AS low, max(currency) AS high
         FROM lint_rules WHERE enabled AND operator_active AND (valid_until IS NULL OR valid_until > $2)
        GROUP BY set_id, priority
     ),
     -- Where the rules in scope compete: a group must hold one of them.
     in_scope AS MATERIALIZED (
       SELECT DISTINCT set_id, priority FROM lint_rules
        WHERE id = ANY ($1) AND enabled AND operator_active AND (valid_until IS NULL OR valid_until > $2)
     ),
     at_classes AS (
       SELECT m.class_id, c.priority, array_agg(c.set_id ORDER BY c.set_id) AS sets, min(c.low) AS low,
              max(c.high) AS high
         FROM lint_members m JOIN contenders c ON c.set_id = m.set_id
        GROUP BY m.class_id, c.priority
     ),
     groups AS MATERIALIZED (
       SELECT row_number() OVER () AS id, priority, sets, prefix, prefix_count
         FROM (SELECT priority, sets, min(prefix) AS prefix, sum(n) AS prefix_count
                 FROM (SELECT a.priority, a.sets, k.example AS prefix, k.size AS n
                         FROM at_classes a JOIN lint_classes k ON k.id = a.class_id
                        WHERE a.low <> a.high
                       UNION ALL
                       SELECT c.priority, ARRAY[c.set_id], NULL, s.lonely
                         FROM contenders c JOIN lint_sets s ON s.set_id = c.set_id
                        WHERE s.lonely > 0 AND c.low <> c.high) g
                GROUP BY priority, sets) g
        WHERE $1::uuid[] IS NULL
           OR EXISTS (SELECT 1 FROM in_scope x WHERE x.priority = g.priority AND x.set_id = ANY (g.sets))
     ),
     members AS (
       SELECT g.id, array_to_string(array_agg(r.id ORDER BY r.id), ',') AS rule_ids,
              array_to_string(array_agg(DISTINCT r.operator_id ORDER BY r.operator_id), ',') AS operator_ids,
              array_to_string(array_agg(DISTINCT r.currency ORDER BY r.currency), ',') AS currencies
         FROM groups g
        CROSS JOIN unnest(g.sets) AS m(set_id)
         JOIN lint_rules r ON r.set_id = m.set_id AND r.priority = g.priority AND r.enabled AND r.operator_active
                          AND (r.valid_until IS NULL OR r.valid_until > $2)
        GROUP BY g.id
     )
     SELECT m.rule_ids, m.operator_ids, m.currencies, g.priority, g.prefix_count,
            -- Only lonely prefixes bring these rules together: the table's first entry no other set has.
            coalesce(g.prefix, (SELECT e.prefix FROM ops.prefix_table_entries e
                                 WHERE e.prefix_table_id = g.sets[1] AND e.deleted_at IS NULL
                                   AND NOT EXISTS (SELECT 1 FROM lint_prefixes p WHERE p.prefix = e.prefix)
                                 ORDER BY e.prefix LIMIT 1)) AS prefix
       FROM members m JOIN groups g ON g.id = m.id`,
    [scope, now],
  );
  return rows.map((r) => ({
    ruleIds: r.rule_ids.split(','),
    operatorIds: r.operator_ids.split(','),
    currencies: r.currencies.split(','),
    priority: r.priority,
    prefix: r.prefix,
    prefixCount: Number(r.prefix_count),
  }));
}

export interface EmptyTableRule {
  ruleId: string;
  operatorId: string;
  prefixTableId: string;
}

/** Rules on a prefix table without live entries (or one since deleted): they match no number. */
export async function findEmptyTableRules(s: LintScratch, scope: LintScope): Promise<EmptyTableRule[]> {
  const { rows } = await s.client.query<{ id: string; operator_id: string; prefix_table_id: string }>(
    `SELECT r.id, r.operator_id, r.prefix_table_id
       FROM lint_rules r
      WHERE r.prefix_table_id IS NOT NULL AND ($1::uuid[] IS NULL OR r.id = ANY($1))
        AND NOT EXISTS (SELECT 1 FROM lint_sets s WHERE s.set_id = r.set_id)`,
    [scope],
  );
  return rows.map((r) => ({ ruleId: r.id, operatorId: r.operator_id, prefixTableId: r.prefix_table_id }));
}

export interface ExpiredRule {
  ruleId: string;
  operatorId: string;
  validUntil: string;
}

/** Rules whose validity ended at or before `now` (validUntil is exclusive). */
export async function findExpiredRules(s: LintScratch, scope: LintScope, now: Date): Promise<ExpiredRule[]> {
  const { rows } = await s.client.query<{ id: string; operator_id: string; valid_until: Date }>(
    `SELECT id, operator_id, valid_until FROM lint_rules
      WHERE valid_until <= $2 AND ($1::uuid[] IS NULL OR id = ANY($1))`,
    [scope, now],
  );
  return rows.map((r) => ({ ruleId: r.id, operatorId: r.operator_id, validUntil: r.valid_until.toISOString() }));
}

/**
 * Rules still valid at `now` with weekly windows and a validUntil less than a week and a day
 * after the later of `now` and validFrom: the ones whose remaining windows may all fall outside
 * their validity (src/domain/route-order.ts canBeActiveAgain tells).
 */
export async function findWeeklyRulesEndingSoon(
  s: LintScratch,
  scope: LintScope,
  now: Date,
): Promise<Array<RuleSchedule & { ruleId: string; operatorId: string }>> {
  const { rows } = await s.client.query<ScheduleRow & { id: string; operator_id: string }>(
    `SELECT id, operator_id, valid_from, valid_until, weekly FROM lint_rules
      WHERE weekly IS NOT NULL AND valid_until > $2
        AND valid_until - greatest(valid_from, $2) < interval '8 days'
        AND ($1::uuid[] IS NULL OR id = ANY($1))`,
    [scope, now],
  );
  return rows.map((r) => ({ ruleId: r.id, operatorId: r.operator_id, ...scheduleOf(r) }));
}

/** The schedule, currency and operator of each of `ruleIds`. */
export async function findRuleSchedules(
  s: LintScratch,
  ruleIds: readonly string[],
): Promise<Map<string, RuleSchedule & { currency: string; operatorId: string }>> {
  if (ruleIds.length === 0) return new Map();
  const { rows } = await s.client.query<ScheduleRow & { id: string; currency: string; operator_id: string }>(
    'SELECT id, operator_id, currency, valid_from, valid_until, weekly FROM lint_rules WHERE id = ANY($1)',
    [[...new Set(ruleIds)]],
  );
  return new Map(rows.map((r) => [r.id, { currency: r.currency, operatorId: r.operator_id, ...scheduleOf(r) }]));
}

interface ScheduleRow {
  valid_from: Date | null;
  valid_until: Date | null;
  weekly: WeeklySchedule | null;
}

function scheduleOf(r: ScheduleRow): RuleSchedule {
  return {
    validFrom: r.valid_from?.toISOString() ?? null,
    validUntil: r.valid_until?.toISOString() ?? null,
    weekly: r.weekly,
  };
}

/**
 * ACTIVE operators without an enabled live rule; with a scope, only the operators of its rules
 * and `operatorIds`.
 */
export async function findOperatorsWithoutEnabledRule(
  s: LintScratch,
  scope: LintScope,
  operatorIds: readonly string[] = [],
): Promise<string[]> {
  const { rows } = await s.client.query<{ id: string }>(
    `SELECT o.id FROM ops.operators o
      WHERE o.deleted_at IS NULL AND o.status = 'ACTIVE'
        AND NOT EXISTS (SELECT 1 FROM lint_rules r WHERE r.operator_id = o.id AND r.enabled)
        AND ($1::uuid[] IS NULL OR o.id IN (SELECT operator_id FROM lint_rules WHERE id = ANY($1)) OR o.id = ANY($2))`,
    [scope, operatorIds],
  );
  return rows.map((r) => r.id);
}
