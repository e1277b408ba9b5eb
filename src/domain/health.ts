/** The Redis health cache (README "Health ingestion"), shared by its writer (health worker) and the drain. */

/** `ops:health:{operatorId}`: the latest report as JSON, `EX 60`; missing means unknown. */
export function healthKey(operatorId: string): string {
  return `ops:health:${operatorId}`;
}

export const HEALTH_TTL_S = 60;
