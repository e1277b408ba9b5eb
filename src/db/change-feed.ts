import type { Pool } from 'pg';
import type { Logger } from '../platform/logger';
import { PgListener } from './listener';

/**
 * The row changes the service's triggers NOTIFY, heard on one connection per pool however many
 * in-memory copies (src/db/notified-cache.ts) a process keeps: each subscribes to its channel. The
 * connection is taken with the first subscriber and given back with the last; it LISTENs on every
 * channel of CHANGE_CHANNELS, and what nobody subscribed to is dropped.
 */

/**
 * Notified at the commit of any change to what findCredentialRefs answers, with the operator id
 * (migrations/1764600000000_credential-changes-notify.sql).
 */
export const CREDENTIAL_CHANGES_CHANNEL = 'ops_credential_changes';
/**
 * Notified at the commit of any change to what findHealthTargets answers, with the operator id
 * (migrations/1765000000000_operator-changes-notify.sql).
 */
export const OPERATOR_CHANGES_CHANNEL = 'ops_operator_changes';
/**
 * Notified at the commit of a change to what route explain keeps (src/db/routing-explain.ts):
 * `table:<id>`, `inline`, `operator:<id>` (migrations/1765100000000_routing-changes-notify.sql).
 */
export const ROUTING_CHANGES_CHANNEL = 'ops_routing_changes';

export const CHANGE_CHANNELS = [CREDENTIAL_CHANGES_CHANNEL, OPERATOR_CHANGES_CHANNEL, ROUTING_CHANGES_CHANNEL] as const;
export type ChangeChannel = (typeof CHANGE_CHANNELS)[number];

export interface ChangeSubscriber {
  /** A change to `key` (the notification's payload) committed. */
  onChange(key: string): void;
  /** Changes may have been missed (the connection was lost, or listens again): forget everything. */
  onReset(): void;
}

const feeds = new WeakMap<Pool, ChangeFeed>();

export class ChangeFeed {
  private readonly subscribers = new Map<string, Set<ChangeSubscriber>>();
  private readonly listener: PgListener;
  private count = 0;

  private constructor(db: Pool, log: Logger) {
    const resetAll = () => {
      for (const set of this.subscribers.values()) for (const subscriber of set) subscriber.onReset();
    };
    this.listener = new PgListener(
      db,
      CHANGE_CHANNELS,
      {
        onNotify: (key, channel) => {
          for (const subscriber of this.subscribers.get(channel) ?? []) subscriber.onChange(key);
        },
        onListening: resetAll,
        onLost: resetAll,
      },
      log,
    );
  }

  /** The feed of `db`: one per pool, made by its first caller. */
  static of(db: Pool, log: Logger): ChangeFeed {
    let feed = feeds.get(db);
    if (!feed) feeds.set(db, (feed = new ChangeFeed(db, log)));
    return feed;
  }

  /** Whether changes are heard now: until then (and whenever they cannot be), keep nothing. */
  get listening(): boolean {
    return this.listener.listening;
  }

  /** Hears `channel` until the returned function is called. */
  subscribe(channel: ChangeChannel, subscriber: ChangeSubscriber): () => void {
    let set = this.subscribers.get(channel);
    if (!set) this.subscribers.set(channel, (set = new Set()));
    set.add(subscriber);
    if (this.count++ === 0) this.listener.start();
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      set.delete(subscriber);
      if (--this.count === 0) this.listener.stop();
    };
  }
}
