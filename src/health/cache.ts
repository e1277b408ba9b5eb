import type { Redis, Result } from 'ioredis';
import { HEALTH_TTL_S, healthKey, healthTombstoneKey } from '../domain/health';
import type { HealthStatus } from '../domain/operator';
import type { HealthReport, ValidReport } from './report';

/**
 * The Redis health cache (README "Health ingestion") as the health pipeline writes it. One Lua script per report
 * makes "newer than what the cache holds" atomic, also between replicas, and appends a status
 * change's `operator.health` event to the outbox stream in the same step: a change is never
 * cached without its event (src/health/event-outbox.ts publishes them). A deleted operator's
 * tombstone refuses the write.
 *
 * The cached JSON is the report plus `reportedAtMs` (what the script compares) and
 * `previousStatus` (the status it replaced, null when the key was missing): a redelivered report
 * finds itself in the cache and gets the same answer as its first delivery.
 */

const PUT_NEWEST = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 'deleted', ''} end
local ms = tonumber(ARGV[1])
local instance = ARGV[2]
local status = ARGV[3]
local previous = false
local current = redis.call('GET', KEYS[1])
if current then
  local ok, c = pcall(cjson.decode, current)
  if ok and type(c) == 'table' and tonumber(c.reportedAtMs) then
    local cms = tonumber(c.reportedAtMs)
    if ms < cms then return {0, 'stale', ''} end
    if ms == cms then
      if c.connectorInstance == instance then
        local p = c.previousStatus
        if type(p) ~= 'string' then p = '' end
        if p ~= status then return {1, 'redelivered', p} end
        return {0, 'redelivered', p}
      end
      -- Two instances at the same millisecond: a fixed order, so every replica agrees.
      if instance < c.connectorInstance then return {0, 'stale', ''} end
    end
    if type(c.status) == 'string' then previous = c.status end
  end
end
local prevJson = 'null'
if previous then prevJson = cjson.encode(previous) end
redis.call('SET', KEYS[1], ARGV[4] .. ',"previousStatus":' .. prevJson .. '}', 'EX', tonumber(ARGV[5]))
if previous == status then return {0, 'written', previous} end
redis.call('XADD', KEYS[2], '*', 'eventId', ARGV[6], 'event', ARGV[7] .. prevJson .. ARGV[8])
return {1, 'written', previous or ''}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    healthPutNewest(
      key: string,
      outboxKey: string,
      tombstoneKey: string,
      reportedAtMs: number,
      connectorInstance: string,
      status: string,
      jsonHead: string,
      ttlS: number,
      eventId: string,
      eventHead: string,
      eventTail: string,
    ): Result<[number, string, string], Context>;
  }
}

export interface CacheOutcome {
  /** The status differs from the one the cache held before (unknown counts as different). */
  changed: boolean;
  /** 'stale': an equal or newer report is cached, nothing written; 'deleted': the operator is gone. */
  write: 'written' | 'stale' | 'redelivered' | 'deleted';
  previousStatus: HealthStatus | null;
}

export interface CachedHealth extends HealthReport {
  reportedAtMs: number;
  previousStatus: HealthStatus | null;
}

const defined = new WeakSet<Redis>();

export class HealthCache {
  constructor(private readonly redis: Redis) {
    if (!defined.has(redis)) {
      redis.defineCommand('healthPutNewest', { numberOfKeys: 3, lua: PUT_NEWEST });
      defined.add(redis);
    }
  }

  /**
   * Writes each report unless the cache holds a newer one, in the order given (callers sort by
   * reportedAt, so each change within a batch is seen); a change also appends its event, made by
   * `eventOf` with the status it replaced, to `outboxKey`. One round trip for the whole batch;
   * throws if any write failed.
   */
  async putNewest(
    reports: readonly ValidReport[],
    outboxKey: string,
    eventOf: (report: HealthReport) => { eventId: string; head: string; tail: string },
  ): Promise<CacheOutcome[]> {
    if (reports.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const { report, reportedAtMs } of reports) {
      const json = JSON.stringify({ ...report, reportedAtMs });
      const event = eventOf(report);
      pipeline.healthPutNewest(
        healthKey(report.operatorId),
        outboxKey,
        healthTombstoneKey(report.operatorId),
        reportedAtMs,
        report.connectorInstance,
        report.status,
        json.slice(0, -1),
        HEALTH_TTL_S,
        event.eventId,
        event.head,
        event.tail,
      );
    }
    const results = (await pipeline.exec()) ?? [];
    if (results.length !== reports.length) throw new Error('Redis pipeline answered partially');
    return results.map(([err, value]) => {
      if (err) throw err;
      const [changed, write, previous] = value as [number, CacheOutcome['write'], string];
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
      if (typeof value === 'string') statuses.set(operatorIds[i] as string, (JSON.parse(value) as CachedHealth).status);
    });
    return statuses;
  }
}
