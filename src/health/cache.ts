import type { Redis, Result } from 'ioredis';
import { HEALTH_TTL_S, healthKey, healthTombstoneKey } from '../domain/health';
import type { HealthStatus } from '../domain/operator';
import { ACTOR_JSON, EVENT_TYPE_JSON, sharedMembers } from './events';
import type { HealthReport, ValidReport } from './report';

/**
 * The Redis health cache (README "Health ingestion") as the health pipeline writes it. A Lua
 * script makes "newer than what the cache holds" atomic per report, also between replicas, and
 * appends a status change's `operator.health` event to the outbox stream in the same step: a
 * change is never cached without its event (src/health/event-outbox.ts publishes them). A deleted
 * operator's tombstone refuses the write. A key expires a minute after its report was made (SPEC
 * 3.4: a missing key means the connector went quiet for a minute), not after it was written: a
 * report replayed from a backlog is not shown as current, and an older report can never outlive
 * a newer one's key and take its place. One call writes up to CHUNK reports in order: fewer
 * commands for the client and the server to handle than one per report, while no call holds
 * Redis long.
 *
 * The cached JSON is the report plus `reportedAtMs` (what the script compares) and
 * `previousStatus` (the status it replaced, null when the key was missing): a redelivered report
 * finds itself in the cache and gets the same answer as its first delivery. The event's JSON and
 * its `eventId` are made in the script, only for a change: the id is a UUID (version 8, RFC 9562
 * "custom") from the SHA-1 of the report's identity, so a redelivered report yields the same id,
 * which JetStream's duplicate window drops.
 */

const CHUNK = 64;
/** ARGV per report after the three shared ones. */
const PER_REPORT = 7;

const PUT_NEWEST = `
local ttlMs = tonumber(ARGV[1]) * 1000
local eventType = ARGV[2]
local actor = ARGV[3]
local outbox = KEYS[1]
local results = {}
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function eventId(op, instance, reportedAt)
  local h = redis.sha1hex('operator.health|' .. op .. '|' .. instance .. '|' .. reportedAt)
  local variant = string.format('%x', 8 + tonumber(string.sub(h, 17, 17), 16) % 4)
  return string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-8' .. string.sub(h, 14, 16) .. '-' ..
    variant .. string.sub(h, 18, 20) .. '-' .. string.sub(h, 21, 32)
end

-- The operator id and reportedAt go into the JSON unescaped: validateReport (src/health/report.ts)
-- lets through only a lowercase UUID and a canonical toISOString() instant; the other strings come
-- JSON-encoded from Node (body, eventType, actor) or cjson (prevJson).
local function put(key, tombstone, a)
  if redis.call('EXISTS', tombstone) == 1 then return 0, 'deleted', '' end
  local msText, instance, status, op, version, reportedAt, body =
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local ms = tonumber(msText)
  -- A report tells of the minute after it was made (after now, for a clock a little ahead): its
  -- key expires then, so one already past is not cached, and none can outlive a newer report's
  -- key and replace it (an older report's minute ends first).
  local expiresAt = math.min(ms, nowMs) + ttlMs
  if expiresAt <= nowMs then return 0, 'expired', '' end
  local previous = false
  local current = redis.call('GET', key)
  if current then
    local ok, c = pcall(cjson.decode, current)
    if ok and type(c) == 'table' and tonumber(c.reportedAtMs) then
      local cms = tonumber(c.reportedAtMs)
      if ms < cms then return 0, 'stale', '' end
      if ms == cms then
        if c.connectorInstance == instance then
          local p = c.previousStatus
          if type(p) ~= 'string' then p = '' end
          if p ~= status then return 1, 'redelivered', p end
          return 0, 'redelivered', p
        end
        -- Two instances at the same millisecond: a fixed order, so every replica agrees.
        if instance < c.connectorInstance then return 0, 'stale', '' end
      end
      if type(c.status) == 'string' then previous = c.status end
    end
  end
  local prevJson = 'null'
  if previous then prevJson = cjson.encode(previous) end
  redis.call('SET', key, '{"operatorId":"' .. op .. '",' .. body .. ',"reportedAtMs":' .. msText ..
    ',"previousStatus":' .. prevJson .. '}', 'PXAT', expiresAt)
  if previous == status then return 0, 'written', previous end
  local id = eventId(op, instance, reportedAt)
  redis.call('XADD', outbox, '*', 'eventId', id, 'event', '{"eventId":"' .. id .. '","type":' .. eventType ..
    ',"operatorId":"' .. op .. '","version":' .. version .. ',"occurredAt":"' .. reportedAt .. '","actor":' .. actor ..
    ',"data":{' .. body .. ',"previousStatus":' .. prevJson .. '}}')
  return 1, 'written', previous or ''
end

for i = 0, (#KEYS - 1) / 2 - 1 do
  local changed, write, previous = put(KEYS[2 + 2 * i], KEYS[3 + 2 * i], 4 + ${PER_REPORT} * i)
  results[#results + 1] = changed
  results[#results + 1] = write
  results[#results + 1] = previous
end
return results
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** KEYS: the outbox, then each report's key and tombstone; ARGV: see PUT_NEWEST. */
    healthPutNewest(
      numberOfKeys: number,
      ...keysAndArgs: Array<string | number>
    ): Result<Array<number | string>, Context>;
  }
}

export interface CacheOutcome {
  /** The status differs from the one the cache held before (unknown counts as different). */
  changed: boolean;
  /**
   * 'stale': an equal or newer report is cached; 'expired': the report was made more than a
   * minute ago (it says nothing about now); 'deleted': the operator is gone. Nothing written.
   */
  write: 'written' | 'stale' | 'expired' | 'redelivered' | 'deleted';
  previousStatus: HealthStatus | null;
}

export interface CachedHealth extends HealthReport {
  reportedAtMs: number;
  previousStatus: HealthStatus | null;
}

const defined = new WeakSet<Redis>();

/** Where route explain reads operators' health now: HealthCache, or a copy kept in memory (src/health/status-view.ts). */
export interface HealthStatuses {
  /** The cached status of each operator, as the routing engine would read it now; absent means unknown. */
  statuses(operatorIds: readonly string[]): Promise<Map<string, HealthStatus>>;
}

export class HealthCache implements HealthStatuses {
  constructor(private readonly redis: Redis) {
    if (!defined.has(redis)) {
      redis.defineCommand('healthPutNewest', { lua: PUT_NEWEST });
      defined.add(redis);
    }
  }

  /**
   * Writes each report unless the cache holds a newer one, in the order given (callers sort by
   * reportedAt, so each change within a batch is seen); a change also appends its event, with
   * the operator's config version from `versionOf`, to `outboxKey`. One round trip for the whole
   * batch; throws if any write failed.
   */
  async putNewest(
    reports: readonly ValidReport[],
    outboxKey: string,
    versionOf: (operatorId: string) => number,
  ): Promise<CacheOutcome[]> {
    if (reports.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (let from = 0; from < reports.length; from += CHUNK) {
      const chunk = reports.slice(from, from + CHUNK);
      const keys: string[] = [outboxKey];
      const args: Array<string | number> = [HEALTH_TTL_S, EVENT_TYPE_JSON, ACTOR_JSON];
      for (const { report, reportedAtMs } of chunk) {
        keys.push(healthKey(report.operatorId), healthTombstoneKey(report.operatorId));
        args.push(
          reportedAtMs,
          report.connectorInstance,
          report.status,
          report.operatorId,
          versionOf(report.operatorId),
          report.reportedAt,
          sharedMembers(report),
        );
      }
      pipeline.healthPutNewest(keys.length, ...keys, ...args);
    }
    const results = (await pipeline.exec()) ?? [];
    if (results.length !== Math.ceil(reports.length / CHUNK)) throw new Error('Redis pipeline answered partially');
    const flat = results.flatMap(([err, value]) => {
      if (err) throw err;
      return value as Array<number | string>;
    });
    if (flat.length !== reports.length * 3) throw new Error('Redis answered for fewer reports than it was sent');
    return reports.map((_, i) => {
      const [changed, write, previous] = flat.slice(3 * i, 3 * i + 3) as [number, CacheOutcome['write'], string];
      return { changed: changed === 1, write, previousStatus: previous === '' ? null : (previous as HealthStatus) };
    });
  }

  /** The cached report and its remaining TTL, or undefined when the key is gone ("unknown"). */
  async read(operatorId: string): Promise<{ health: CachedHealth; ttlS: number } | undefined> {
    const key = healthKey(operatorId);
    const [[getErr, raw] = [], [ttlErr, ttl] = []] = (await this.redis.multi().get(key).ttl(key).exec()) ?? [];
    if (getErr) throw getErr;
    if (ttlErr) throw ttlErr;
    if (typeof raw !== 'string') return undefined;
    return { health: JSON.parse(raw) as CachedHealth, ttlS: Number(ttl) };
  }

  /** The cached status of each operator, as the routing engine would read it now; absent means unknown. */
  async statuses(operatorIds: readonly string[]): Promise<Map<string, HealthStatus>> {
    if (operatorIds.length === 0) return new Map();
    const raw = await this.redis.mget(operatorIds.map(healthKey));
    const statuses = new Map<string, HealthStatus>();
    raw.forEach((value, i) => {
      if (typeof value === 'string') statuses.set(operatorIds[i] as string, statusOf(value));
    });
    return statuses;
  }
}

/** The status of a cached report as the health key holds it. */
export function statusOf(cached: string): HealthStatus {
  return (JSON.parse(cached) as CachedHealth).status;
}
