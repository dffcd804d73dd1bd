import type { ServerResponse } from 'node:http';
import type { SessionStore } from '@mcp-migrate/runtime';
import { VERSION } from '../version.js';
import type { Lifecycle } from './lifecycle.js';
import type { ProxyMetrics } from './metrics.js';
import type { SessionManager } from './sessions.js';

/** Paths of the operator endpoints (docs/proxy.md §Health endpoint, §Operations). */
export interface OperatorPaths {
  health: string;
  ready: string;
  metrics: string;
}

export interface OperatorSources {
  store: SessionStore;
  sessions: SessionManager;
  upstreamKind: 'http' | 'stdio';
  metrics: ProxyMetrics;
  lifecycle: Lifecycle;
}

/**
 * `/healthz` (works: the store answers a ping), `/readyz` (should get new work: works and not shutting
 * down) and `/metrics` (Prometheus text). Resolves false for any other request.
 */
export function serveOperator(paths: OperatorPaths, s: OperatorSources, method: string | undefined, pathname: string, res: ServerResponse): Promise<boolean> | false {
  const read = method === 'GET' || method === 'HEAD';
  if (pathname === paths.health && read) return health(s, res).then(() => true);
  if (pathname === paths.ready && read) return ready(s, res).then(() => true);
  if (pathname === paths.metrics && method === 'GET') return scrape(s, res).then(() => true);
  return false;
}

async function storeOk(store: SessionStore): Promise<boolean> {
  try {
    await store.ping();
    return true;
  } catch {
    return false;
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

async function health(s: OperatorSources, res: ServerResponse): Promise<void> {
  const ok = await storeOk(s.store);
  json(res, ok ? 200 : 503, {
    status: ok ? 'ok' : 'unavailable',
    store: ok ? 'ok' : 'unavailable',
    upstream: s.upstreamKind,
    sessions: s.sessions.size,
    upstreamSessions: s.sessions.openUpstreams,
    version: VERSION,
  });
}

/** Ready for new work: not shutting down and the store answers. */
async function ready(s: OperatorSources, res: ServerResponse): Promise<void> {
  const draining = s.lifecycle.draining;
  const store = draining ? undefined : await storeOk(s.store);
  const ok = !draining && store === true;
  json(res, ok ? 200 : 503, { status: ok ? 'ready' : 'unavailable', store: draining ? 'unchecked' : store ? 'ok' : 'unavailable', shuttingDown: draining });
}

async function scrape(s: OperatorSources, res: ServerResponse): Promise<void> {
  const body = await s.metrics.registry.metrics();
  res.writeHead(200, { 'content-type': s.metrics.registry.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
