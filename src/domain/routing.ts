/**
 * Routing configuration rules (README "Routing configuration"): what a prefix, a cost, a
 * currency, a schedule may be. The API's schemas, onboarding and the rule writes all validate
 * through these, so one rule never has two definitions.
 */

/** E.164 digits, 1 to 15 of them; a leading `+` is accepted and dropped. */
export const PREFIX_PATTERN = /^[0-9]{1,15}$/;

/** The prefix without its `+`, or undefined when it is not 1–15 digits. */
export function normalizePrefix(raw: string): string | undefined {
  const digits = raw.startsWith('+') ? raw.slice(1) : raw;
  return PREFIX_PATTERN.test(digits) ? digits : undefined;
}

/** `routing_rules.cost_per_segment numeric(14, 6)`: up to 8 integer digits and 6 decimals, never negative. */
export const COST_SCALE = 6;
export const COST_INTEGER_DIGITS = 8;
export const COST_PATTERN = new RegExp(`^[0-9]{1,${COST_INTEGER_DIGITS}}(\\.[0-9]{1,${COST_SCALE}})?$`);

/** 0 is the most preferred priority; weights share traffic within a group of equal rank. */
export const PRIORITY_RANGE = { min: 0, max: 10_000 } as const;
export const WEIGHT_RANGE = { min: 0, max: 1000 } as const;

/** Inline prefixes per rule; larger lists belong in a prefix table. */
export const INLINE_PREFIXES_MAX = 1000;

export const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** An ISO 4217 code Node's ICU knows (e.g. EUR, USD, KES). */
export function isCurrency(code: string): boolean {
  return CURRENCIES.has(code);
}

/** An IANA time zone name (or alias) ICU resolves. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A time of day, `HH:MM` in 00:00–24:00; `24:00` ends a window at midnight. */
export const TIME_OF_DAY_PATTERN = /^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$/;
/** A window starts within the day: 00:00–23:59. */
export const WINDOW_START_PATTERN = /^(?:[01][0-9]|2[0-3]):[0-5][0-9]$/;

export function minutesOf(timeOfDay: string): number {
  const [h, m] = timeOfDay.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/**
 * Local times of day in the schedule's time zone, start inclusive, end exclusive, on each of
 * `days`. An end at or before the start runs past midnight into the next day (22:00–06:00 is a
 * night; equal times are 24 hours), so every window a carrier's rate deck names is one window.
 */
export interface WeeklyWindow {
  days: Weekday[];
  start: string;
  end: string;
}

export interface WeeklySchedule {
  timeZone: string;
  windows: WeeklyWindow[];
}

export interface PrefixTable {
  id: string;
  name: string;
  description: string;
  /** Bumped by every change of the table: its ETag. */
  version: number;
  entryCount: number;
  /** SHA-256 (hex) of the sorted live prefixes joined by `\n`. */
  contentHash: string;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  updatedBy: string;
}

/** What `operator.config.prefix_table_updated` says of a table's entries change. */
export type PrefixTableChange = {
  prefixTableId: string;
  tableVersion: number;
  entryCount: number;
  contentHash: string;
  /**
   * The content hash the change was made from. A consumer holding that content at any older
   * table version applies a listed change: a rename or a description bumps the version, never
   * the content.
   */
  previousContentHash: string;
} & (
  | { replaced: false; added: string[]; removed: string[] }
  /** Too large to list: consumers reload the table (GET /v1/internal/prefix-tables/{id}/entries). */
  | { replaced: true }
);
