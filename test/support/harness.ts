import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import jwt from 'jsonwebtoken';
import { Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { createAdminApp } from '../../src/api/admin-app';
import type { KvStore } from '../../src/clients/vault';
import { loadConfig, type Config } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { openResources, type Resources } from '../../src/platform/resources';
import { createWorker } from '../../src/worker';
import { createAdminServices } from '../../src/services';
import { EventWatcher } from './events';

let runtimeInstalled = false;

export interface Harness {
  config: Config;
  resources: Resources;
  baseUrl: string;
  /** fetch against the admin API with an admin token (override headers to test auth). */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Starts the worker of a harness made with `worker: false`. */
  startWorker(): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  bindTimeoutS?: number;
  drainTimeoutS?: number;
  /** Replaces the worker's Vault client, e.g. with one whose token lacks a permission. */
  workerKv?: KvStore;
  /** false: no worker polls the harness's task queue (until the test starts one). */
  worker?: boolean;
  acceptTimeoutMs?: number;
}

export function adminToken(claims: Record<string, unknown> = {}, secret = process.env.JWT_SECRET ?? ''): string {
  return jwt.sign({ sub: 'test-admin', scope: 'admin', ...claims }, secret, { expiresIn: '5m' });
}

/**
 * The service as `npm start` runs it, against the real stack: admin API on a free port and a
 * Temporal worker on a task queue of this harness's own, so test files never share workflows.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const base = loadConfig();
  const config: Config = {
    ...base,
    temporal: {
      ...base.temporal,
      taskQueue: `operator-management-test-${randomUUID()}`,
      onboardingBindTimeoutS: options.bindTimeoutS ?? 60,
      drainTimeoutS: options.drainTimeoutS ?? 60,
      onboardingAcceptTimeoutMs: options.acceptTimeoutMs ?? base.temporal.onboardingAcceptTimeoutMs,
    },
  };
  const log = createLogger(config.logLevel);
  const resources = await openResources(config, log);
  const services = createAdminServices(resources, config, log);
  services.routingExplain.start();
  const app = createAdminApp({ config, db: resources.db, log, ...services });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/admin`;

  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const startWorker = async () => {
    const kv = options.workerKv ?? resources.kv;
    worker = await createWorker(config.temporal, createActivities({ ...resources, kv }));
    running = worker.run();
  };
  if (options.worker !== false) await startWorker();
  resources.relay.start(200);

  return {
    config,
    resources,
    baseUrl,
    api(path, init = {}) {
      const { json, headers, ...rest } = init;
      return fetch(`${baseUrl}${path}`, {
        ...rest,
        headers: {
          authorization: `Bearer ${adminToken()}`,
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
          ...(headers as Record<string, string> | undefined),
        },
        body: json === undefined ? rest.body : JSON.stringify(json),
      });
    },
    startWorker,
    async stop() {
      worker?.shutdown();
      await running;
      await worker?.connection?.close();
      await new Promise((resolve) => server.close(resolve));
      services.routingExplain.stop();
      await resources.close();
    },
  };
}

let counter = 0;

/** A valid onboarding request with an endpoint no other test uses. */
export function newOperatorRequest(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> & { password: string } {
  counter++;
  return {
    name: `Carrier ${counter}`,
    host: `smsc-${randomUUID().slice(0, 8)}.example.net`,
    port: 2775,
    systemId: `acct${counter}`,
    password: `pw${randomUUID().slice(0, 6)}`,
    bindType: 'transceiver',
    tpsLimit: { tpsCap: 100, burstWindowMs: 1000, enforcementMode: 'shape' },
    routingRules: [{ prefixes: ['2547', '2541'], priority: 1, weight: 100, costPerSegment: '0.0125', currency: 'EUR' }],
    ...overrides,
  } as Record<string, unknown> & { password: string };
}

/**
 * A harness and an event watcher on its stream for the test file, started before its tests and
 * stopped after them; call the returned functions inside a test.
 */
export function useHarnessWithEvents(options: HarnessOptions = {}): { h: () => Harness; events: () => EventWatcher } {
  let h: Harness | undefined;
  let events: EventWatcher | undefined;
  beforeAll(async () => {
    h = await startHarness(options);
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
  });
  afterAll(async () => {
    await events?.stop();
    await h?.stop();
  });
  const up = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the harness is not up yet');
    return value;
  };
  return { h: () => up(h), events: () => up(events) };
}
