import type { Server } from 'node:http';

/**
 * Limits every listener of the service gets (admin, internal, ops), instead of Node's defaults
 * of 60 s for headers, 300 s per request and no cap on connections: a slow or flooding client
 * holds a socket for seconds, not minutes, and cannot exhaust the process's file descriptors.
 */
export interface HttpLimits {
  /** The request's headers must arrive within this (HTTP_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs: number;
  /** The whole request, body included, within this (HTTP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** A socket with no bytes either way for this long is closed (HTTP_IDLE_TIMEOUT_MS). */
  idleTimeoutMs: number;
  /** An idle kept-alive connection is closed after this (HTTP_KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs: number;
  /** Connections beyond this are refused at accept (HTTP_MAX_CONNECTIONS). */
  maxConnections: number;
}

/** How often Node checks the header and request timeouts: pass it when creating a server. */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

export function applyHttpLimits<S extends Server>(server: S, limits: HttpLimits): S {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.setTimeout(limits.idleTimeoutMs);
  server.maxConnections = limits.maxConnections;
  return server;
}
