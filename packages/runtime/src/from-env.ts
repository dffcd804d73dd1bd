import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from './kv-store.js';
import { MemorySessionStore } from './memory-store.js';
import { MemoryMessageBus, type MessageBus } from './message-bus.js';
import { RedisMessageBus } from './redis-bus.js';
import { RedisSessionStore, createRedisStoreClient, waitForRedis } from './redis-store.js';
import { RedisSessionStreams } from './redis-streams.js';
import { parseStoreUrl } from './redis-url.js';
import type { Cluster, Redis } from 'ioredis';
import { BusServerRequestRouter, newReplicaId, type ServerRequestRouter } from './server-requests.js';
import type { SessionStore } from './session-store.js';
import { MemorySessionStreams, type SessionStreams } from './session-streams.js';

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
  /** The Redis client (`Redis` or `Cluster`) every part uses; absent for `memory`. */
  readonly redis?: Redis | Cluster;
  /**
   * The replica's message bus: Redis pub/sub on one dedicated subscriber connection
   * (`RedisMessageBus`), or in-process for `memory`. Created on first use of `bus`, `streams` or `router`.
   */
  readonly bus: MessageBus;
  /**
   * Server-to-client SSE streams of every session, shared by the replicas (`RedisSessionStreams` at
   * `<prefix>{<sid>}:…`, the proxy's layout; `MemorySessionStreams` for `memory`). The standalone GET
   * stream of a migrated server's session lives here, so any replica can serve it.
   */
  readonly streams: SessionStreams;
  /**
   * Routes a client's answer to a server-initiated request to the replica that sent the request
   * (`BusServerRequestRouter`, this replica's inbox `<prefix>replica:<replicaId>` on {@link bus}).
   */
  readonly router: ServerRequestRouter;
  /** Resolves once the store is reachable (or after a short wait: a store that is down answers 503 until it is back), and, if the router was created, once its inbox subscription is active. */
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
  const keyPrefix = env.MCP_MIGRATE_KEY_PREFIX ?? 'mcpm:';
  const ttlMs = Number(env.MCP_MIGRATE_SESSION_TTL_MS ?? 3_600_000);
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('MCP_MIGRATE_SESSION_TTL_MS must be a positive number of milliseconds');
  let lastError = '';
  try {
    return storesFromUrl(env[STORE_ENV] ?? 'memory', {
      keyPrefix,
      ttlMs,
      onError: (err) => {
        if (err.message !== lastError) process.stderr.write(`mcp-migrate/runtime: Redis: ${err.message}\n`);
        lastError = err.message;
      },
      onSubscriberError: (err) => process.stderr.write(`mcp-migrate/runtime: Redis subscriber: ${err.message}\n`),
    });
  } catch (err) {
    throw new RangeError(`${STORE_ENV}: ${(err as Error).message}`);
  }
}

export interface StoresFromUrlOptions {
  /** Prefix of every key and channel. */
  keyPrefix: string;
  /** Sliding TTL of session records and streams, ms. */
  ttlMs: number;
  /** Redis connection errors (ioredis emits them as events). */
  onError?: (err: Error) => void;
  /** Errors of the bus's subscriber connection. Default: {@link onError}. */
  onSubscriberError?: (err: Error) => void;
  /** Whether closing `sessions` also closes the Redis client (the proxy closes its parts one by one). Default false: {@link RuntimeStores.close} does. */
  sessionsOwnClient?: boolean;
}

/**
 * The stores a store URL names (`memory`, `redis://…`, `rediss://…`, `redis+cluster://…`, see
 * `redis-url.ts`): the one construction shared by `mcp-migrate proxy` (`--store`) and
 * {@link storesFromEnv}. One Redis client serves the session store, key-value store, session streams
 * and replica registry, without ioredis auto-pipelining: a steady-state request sends one command,
 * which auto-pipelining would wrap in a pipeline and send a turn later (more CPU per request in
 * `bench/proxy`), and on a Cluster it would group a command by the slot of its first argument, which for
 * the session streams' delete script is not a key, so a whole pipeline could fail. Bus, streams and
 * router are created on first use. @throws RangeError for an unparsable URL.
 */
export function storesFromUrl(url: string, options: StoresFromUrlOptions): RuntimeStores {
  const spec = parseStoreUrl(url);
  const { keyPrefix, ttlMs } = options;
  if (spec.kind === 'memory') {
    const sessions = new MemorySessionStore({ ttlMs });
    const kv = new MemoryKeyValueStore();
    const x = crossReplica(keyPrefix, () => new MemoryMessageBus(), () => new MemorySessionStreams({ ttlMs }));
    return withCrossReplica({ kind: 'memory', sessions, kv, keyPrefix, ttlMs }, x, {
      ready: () => x.ready(),
      close: async () => {
        await x.close();
        await sessions.close();
        await kv.close();
      },
    });
  }
  const client = createRedisStoreClient(url, { enableAutoPipelining: false, ...(options.onError ? { onError: options.onError } : {}) });
  const sessions = new RedisSessionStore({ client, keyPrefix, ttlMs, ownsClient: options.sessionsOwnClient ?? false });
  const kv = new RedisKeyValueStore({ client });
  const onSubscriberError = options.onSubscriberError ?? options.onError;
  const x = crossReplica(
    keyPrefix,
    () => new RedisMessageBus(client, onSubscriberError ? { onError: onSubscriberError } : {}),
    (bus) => new RedisSessionStreams({ client, bus, keyPrefix, ttlMs, requireSession: true }),
  );
  let waited: Promise<void> | undefined;
  return withCrossReplica({ kind: spec.kind, sessions, kv, keyPrefix, ttlMs, redis: client }, x, {
    ready: () => {
      if (client.status === 'ready') return x.ready();
      waited ??= waitForRedis(client, 2_000).then(() => {
        waited = undefined;
      });
      return waited.then(() => x.ready());
    },
    close: async () => {
      await x.close();
      await client.quit().catch(() => client.disconnect());
    },
  });
}

type CrossReplica = ReturnType<typeof crossReplica>;

/** `base` with the lazily created bus, streams and router of `x`, and `ready`/`close`. */
function withCrossReplica(
  base: Pick<RuntimeStores, 'kind' | 'sessions' | 'kv' | 'keyPrefix' | 'ttlMs' | 'redis'>,
  x: CrossReplica,
  life: Pick<RuntimeStores, 'ready' | 'close'>,
): RuntimeStores {
  return {
    ...base,
    get bus() {
      return x.bus();
    },
    get streams() {
      return x.streams();
    },
    get router() {
      return x.router();
    },
    ...life,
  };
}

/**
 * The bus, streams and router of one replica, created on first use (a server that only uses
 * session maps opens no subscriber connection). The router gets a fresh replica id per process.
 */
function crossReplica(keyPrefix: string, makeBus: () => MessageBus, makeStreams: (bus: MessageBus) => SessionStreams) {
  let bus: MessageBus | undefined;
  let streams: SessionStreams | undefined;
  let router: BusServerRequestRouter | undefined;
  let routerReady = false;
  const getBus = () => (bus ??= makeBus());
  return {
    bus: getBus,
    streams: () => (streams ??= makeStreams(getBus())),
    router: (): ServerRequestRouter => {
      if (!router) {
        router = new BusServerRequestRouter({ bus: getBus(), replicaId: newReplicaId(), channelPrefix: keyPrefix });
        void router.ready.then(() => {
          routerReady = true;
        });
      }
      return router;
    },
    /** Resolves at once unless the router exists and its inbox is not yet subscribed (bounded by the bus's own wait). */
    ready: (): Promise<void> => (router && !routerReady ? router.ready : Promise.resolve()),
    close: async () => {
      await router?.close();
      await streams?.close();
      await bus?.close();
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
