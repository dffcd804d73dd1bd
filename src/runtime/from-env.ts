import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from './kv-store.js';
import { MemorySessionStore } from './memory-store.js';
import { RedisSessionStore, createRedisStoreClient, waitForRedis } from './redis-store.js';
import { parseStoreUrl } from './redis-url.js';
import type { SessionStore } from './session-store.js';

/** The stores the code `mcp-migrate apply` generates runs on, chosen once at start-up. */
export interface RuntimeStores {
  /** `redis` for one Redis server, `redis-cluster` for a Redis Cluster, `memory` for one replica. */
  kind: 'redis' | 'redis-cluster' | 'memory';
  /** Session records (the stored handshake), shared with `mcp-migrate proxy`'s layout. */
  sessions: SessionStore;
  /** Store-backed session maps, sets and event stores. */
  kv: KeyValueStore;
  /** Prefix of every key (`mcpm:` by default, as the proxy's). */
  keyPrefix: string;
  /** Sliding TTL of sessions and of per-session data, in milliseconds. */
  ttlMs: number;
  /** Resolves once the store is reachable (or after a short wait: a store that is down answers 503 until it is back). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Environment variables read by {@link storesFromEnv}:
 * - `MCP_MIGRATE_STORE`: `redis://…` or `rediss://…` (one Redis server shared by every replica),
 *   `redis+cluster://HOST:PORT[,HOST:PORT…]` or `rediss+cluster://…` (a Redis Cluster, given by seed
 *   nodes; see `redis-url.ts`), or `memory` (one replica). Default `memory`.
 * - `MCP_MIGRATE_KEY_PREFIX`: key prefix, default `mcpm:`.
 * - `MCP_MIGRATE_SESSION_TTL_MS`: sliding session TTL, default 3,600,000 (one hour).
 */
export const STORE_ENV = 'MCP_MIGRATE_STORE';

/** Builds the stores `MCP_MIGRATE_STORE` names. @throws RangeError for a value that is neither a Redis (Cluster) URL nor `memory`. */
export function storesFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeStores {
  let spec: ReturnType<typeof parseStoreUrl>;
  try {
    spec = parseStoreUrl(env[STORE_ENV] ?? 'memory');
  } catch (err) {
    throw new RangeError(`${STORE_ENV}: ${(err as Error).message}`);
  }
  const keyPrefix = env.MCP_MIGRATE_KEY_PREFIX ?? 'mcpm:';
  const ttlMs = Number(env.MCP_MIGRATE_SESSION_TTL_MS ?? 3_600_000);
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('MCP_MIGRATE_SESSION_TTL_MS must be a positive number of milliseconds');
  if (spec.kind === 'memory') {
    const sessions = new MemorySessionStore({ ttlMs });
    const kv = new MemoryKeyValueStore();
    return {
      kind: 'memory',
      sessions,
      kv,
      keyPrefix,
      ttlMs,
      ready: async () => {},
      close: async () => {
        await sessions.close();
        await kv.close();
      },
    };
  }
  let lastError = '';
  const client = createRedisStoreClient(env[STORE_ENV]!, {
    onError: (err) => {
      if (err.message !== lastError) process.stderr.write(`mcp-migrate/runtime: Redis: ${err.message}\n`);
      lastError = err.message;
    },
  });
  const sessions = new RedisSessionStore({ client, keyPrefix, ttlMs, ownsClient: false });
  const kv = new RedisKeyValueStore({ client });
  let waited: Promise<void> | undefined;
  return {
    kind: spec.kind,
    sessions,
    kv,
    keyPrefix,
    ttlMs,
    ready: () => {
      if (client.status === 'ready') return Promise.resolve();
      waited ??= waitForRedis(client, 2_000).then(() => {
        waited = undefined;
      });
      return waited;
    },
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

let defaults: RuntimeStores | undefined;

/** The process-wide stores from the environment, created on first use. */
export function defaultStores(): RuntimeStores {
  defaults ??= storesFromEnv();
  return defaults;
}

/** Replaces the process-wide stores (tests, or a server that builds its own). */
export function setDefaultStores(stores: RuntimeStores | undefined): void {
  defaults = stores;
}
