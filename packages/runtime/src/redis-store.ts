import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseStoreUrl, type RedisNodeAddress } from './redis-url.js';
import { newRecord, type NewSessionRecord, type SessionChange, type SessionRecord } from './session-record.js';
import { SessionStoreUnavailableError, type OwnerClaim, type SessionStore } from './session-store.js';

/**
 * Records a change of replayable state atomically, only if the record still exists. One key, so it
 * runs unchanged on Redis Cluster; one `EVALSHA` round trip.
 */
const UPDATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[2] == 'set' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) else redis.call('HDEL', KEYS[1], ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'revision', 1)
`;

/**
 * Owner affinity: sets the `owner` field to ARGV[2] only if it is ARGV[1] now ('' = no owner), clears
 * `handover`, increments the owner generation `epoch`, and refreshes the TTL. -1: no record; 0: another
 * owner; {1, handover or '', epoch}: claimed. One key (Cluster-safe), atomic.
 */
const CLAIM_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], 'owner')
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
local handover = redis.call('HGET', KEYS[1], 'handover')
if handover == false then handover = '' end
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
redis.call('HDEL', KEYS[1], 'handover')
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, handover, epoch}
`;

/**
 * Owner affinity, the fencing check before an owner serves: refreshes the TTL only if `owner` is
 * ARGV[1] and `epoch` (absent = 0) is ARGV[2]. -1: no record; 0: another owner or generation; 1: ok.
 */
const TOUCH_OWNED_LUA = `
local v = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if v[1] == false then
  if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  return 0
end
if v[1] ~= ARGV[1] or (tonumber(v[2]) or 0) ~= tonumber(ARGV[2]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * Owner affinity, graceful hand-over: removes `owner` if it is ARGV[1] now and sets `handover` to
 * ARGV[2] ('' = none). 0: not the owner, or no record; 1: released.
 */
const RELEASE_LUA = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'owner', 'handover')
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'handover', ARGV[2]) end
return 1
`;

/** Owner affinity, `--on-owner-loss end`: deletes the record if its `owner` is ARGV[1]. 1: deleted. */
const DELETE_IF_OWNER_LUA = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;

interface ScriptedClient {
  mcpmUpdate(key: string, ttlMs: number, op: 'set' | 'del', field: string, value: string): Promise<number>;
  mcpmClaim(key: string, expected: string, next: string, ttlMs: number): Promise<number | [number, string, number]>;
  mcpmTouchOwned(key: string, owner: string, epoch: number, ttlMs: number): Promise<number>;
  mcpmRelease(key: string, current: string, handover: string): Promise<number>;
  mcpmDeleteIfOwner(key: string, owner: string): Promise<number>;
}

const SUBSCRIPTION_FIELD_PREFIX = 'sub:';

export interface RedisSessionStoreOptions {
  /** A connected ioredis client or cluster. Use {@link createRedisClient} for the recommended options. */
  client: Redis | Cluster;
  /** Key prefix. Default `mcpm:`. A session's keys are `<prefix>{<sessionId>}:<kind>`. */
  keyPrefix?: string;
  /** Sliding TTL of a record, in milliseconds. Default 3,600,000 (one hour). */
  ttlMs?: number;
  /** Whether {@link RedisSessionStore.close} also quits the client. Default true. */
  ownsClient?: boolean;
}

/**
 * {@link SessionStore} on Redis (ioredis), Redis Cluster ready.
 *
 * Layout: one hash per session at `<prefix>{<sid>}:session` with the fields `principal`,
 * `protocolVersion`, `initializeParams` (JSON), `loggingLevel`, `createdAt`, `revision`, `owner` and
 * `handover` (owner affinity only) and one `sub:<uri>` field per resource subscription; its `PEXPIRE` is the sliding TTL. The hash tag `{<sid>}`
 * puts every key of one session (this hash, and the event-stream and channel keys of later
 * releases, see `sessionKey`) in one cluster slot.
 *
 * Costs: {@link touch} = 1 `PEXPIRE` (the only command of a steady-state request);
 * {@link load} = `HGETALL` + `PEXPIRE` in one pipelined round trip; {@link update} = 1 `EVALSHA`
 * (a Lua script, atomic); {@link claimOwner}, {@link releaseOwner} and {@link deleteIfOwner} = 1
 * `EVALSHA` each (compare-and-set);
 * {@link create} = one `MULTI` round trip; {@link delete} = 1 `DEL`.
 * Every failure to reach Redis rejects with {@link SessionStoreUnavailableError}.
 */
export class RedisSessionStore implements SessionStore {
  readonly ttlMs: number;
  readonly keyPrefix: string;
  readonly #client: Redis | Cluster;
  readonly #scripts: ScriptedClient;
  readonly #ownsClient: boolean;

  constructor(options: RedisSessionStoreOptions) {
    this.#client = options.client;
    this.keyPrefix = options.keyPrefix ?? 'mcpm:';
    this.ttlMs = options.ttlMs ?? 3_600_000;
    this.#ownsClient = options.ownsClient ?? true;
    const c = this.#client;
    // defineCommand is idempotent per name; several stores may share one client.
    c.defineCommand('mcpmUpdate', { numberOfKeys: 1, lua: UPDATE_LUA });
    c.defineCommand('mcpmClaim', { numberOfKeys: 1, lua: CLAIM_LUA });
    c.defineCommand('mcpmRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    c.defineCommand('mcpmDeleteIfOwner', { numberOfKeys: 1, lua: DELETE_IF_OWNER_LUA });
    c.defineCommand('mcpmTouchOwned', { numberOfKeys: 1, lua: TOUCH_OWNED_LUA });
    this.#scripts = c as unknown as ScriptedClient;
  }

  /** The Redis key of a session's record hash. */
  recordKey(id: string): string {
    return sessionKey(this.keyPrefix, id, 'session');
  }

  async create(input: NewSessionRecord): Promise<SessionRecord> {
    const now = Date.now();
    const fields: Record<string, string> = {
      principal: input.principal,
      protocolVersion: input.protocolVersion,
      initializeParams: JSON.stringify(input.initializeParams),
      createdAt: String(now),
      revision: '0',
    };
    if (input.loggingLevel !== undefined) fields.loggingLevel = input.loggingLevel;
    if (input.owner !== undefined) fields.owner = input.owner;
    for (const uri of input.subscriptions ?? []) fields[SUBSCRIPTION_FIELD_PREFIX + uri] = '1';
    const key = this.recordKey(input.id);
    const result = await this.#run(() => this.#client.multi().hset(key, fields).pexpire(key, this.ttlMs).exec());
    const failed = result?.find(([err]) => err);
    if (!result || failed) throw new SessionStoreUnavailableError('Redis MULTI failed', { cause: failed?.[0] });
    return newRecord(input, now, this.ttlMs);
  }

  async load(id: string): Promise<SessionRecord | undefined> {
    const key = this.recordKey(id);
    const replies = await this.#run(() => this.#client.pipeline().hgetall(key).pexpire(key, this.ttlMs).exec());
    const failed = replies?.find(([err]) => err);
    if (!replies || failed) throw new SessionStoreUnavailableError('Redis pipeline failed', { cause: failed?.[0] });
    const flat = replies[0]![1] as Record<string, string>;
    if (replies[1]![1] === 0) return undefined;
    const h = new Map<string, string>(Object.entries(flat));
    const principal = h.get('principal');
    const protocolVersion = h.get('protocolVersion');
    const init = h.get('initializeParams');
    // A hash without these fields is not ours (or a half-written record); treat it as absent.
    if (principal === undefined || protocolVersion === undefined || init === undefined) return undefined;
    let initializeParams: Record<string, unknown>;
    try {
      initializeParams = JSON.parse(init) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const subscriptions: string[] = [];
    for (const k of h.keys()) if (k.startsWith(SUBSCRIPTION_FIELD_PREFIX)) subscriptions.push(k.slice(SUBSCRIPTION_FIELD_PREFIX.length));
    const now = Date.now();
    const loggingLevel = h.get('loggingLevel');
    const owner = h.get('owner');
    const handover = h.get('handover');
    return {
      id,
      principal,
      protocolVersion,
      initializeParams,
      ...(loggingLevel !== undefined ? { loggingLevel } : {}),
      subscriptions: subscriptions.sort(),
      createdAt: Number(h.get('createdAt') ?? now),
      lastSeenAt: now,
      ttlMs: this.ttlMs,
      revision: Number(h.get('revision') ?? 0),
      ...(owner !== undefined && owner !== '' ? { owner } : {}),
      ...(handover !== undefined && handover !== '' ? { handover } : {}),
    };
  }

  async touch(id: string): Promise<boolean> {
    return (await this.#run(() => this.#client.pexpire(this.recordKey(id), this.ttlMs))) === 1;
  }

  async update(id: string, change: SessionChange): Promise<number | undefined> {
    const key = this.recordKey(id);
    let op: 'set' | 'del';
    let field: string;
    let value = '';
    switch (change.kind) {
      case 'loggingLevel':
        op = 'set';
        field = 'loggingLevel';
        value = change.level;
        break;
      case 'subscribe':
        op = 'set';
        field = SUBSCRIPTION_FIELD_PREFIX + change.uri;
        value = '1';
        break;
      case 'unsubscribe':
        op = 'del';
        field = SUBSCRIPTION_FIELD_PREFIX + change.uri;
        break;
    }
    const revision = await this.#run(() => this.#scripts.mcpmUpdate(key, this.ttlMs, op, field, value));
    return revision < 0 ? undefined : revision;
  }

  async claimOwner(id: string, expected: string | undefined, next: string): Promise<OwnerClaim> {
    if (next.length === 0) throw new RangeError('claimOwner: the new owner must be a non-empty replica id');
    const result = await this.#run(() => this.#scripts.mcpmClaim(this.recordKey(id), expected ?? '', next, this.ttlMs));
    if (!Array.isArray(result)) return { claimed: false };
    const handover = String(result[1] ?? '');
    const epoch = Number(result[2]);
    return handover === '' ? { claimed: true, epoch } : { claimed: true, handover, epoch };
  }

  async touchOwned(id: string, owner: string, epoch: number): Promise<'ok' | 'moved' | 'gone'> {
    const r = await this.#run(() => this.#scripts.mcpmTouchOwned(this.recordKey(id), owner, epoch, this.ttlMs));
    return r === 1 ? 'ok' : r === 0 ? 'moved' : 'gone';
  }

  async releaseOwner(id: string, current: string, handover?: string): Promise<boolean> {
    if (current.length === 0) throw new RangeError('releaseOwner: the current owner must be a non-empty replica id');
    return (await this.#run(() => this.#scripts.mcpmRelease(this.recordKey(id), current, handover ?? ''))) === 1;
  }

  async deleteIfOwner(id: string, owner: string): Promise<boolean> {
    if (owner.length === 0) throw new RangeError('deleteIfOwner: the owner must be a non-empty replica id');
    return (await this.#run(() => this.#scripts.mcpmDeleteIfOwner(this.recordKey(id), owner))) === 1;
  }

  async delete(id: string): Promise<boolean> {
    const n = await this.#run(() => this.#client.del(this.recordKey(id)));
    return n > 0;
  }

  async ping(): Promise<void> {
    if (this.#isCluster()) {
      // Ready = the client holds a slot map; then every master it knows must answer. (A cluster that has
      // lost all its nodes has no master left to ask, which must not pass for healthy.)
      const cluster = this.#client as Cluster;
      await this.#run(async () => {
        if (cluster.status !== 'ready') throw new Error(`Redis Cluster client is ${cluster.status}`);
        const masters = cluster.nodes('master');
        if (masters.length === 0) throw new Error('no Redis Cluster master known');
        await Promise.all(masters.map((m) => m.ping()));
      });
    } else {
      await this.#run(() => (this.#client as Redis).ping());
    }
  }

  async close(): Promise<void> {
    if (!this.#ownsClient) return;
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  #isCluster(): boolean {
    return (this.#client as { isCluster?: boolean }).isCluster === true;
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof SessionStoreUnavailableError) throw err;
      throw new SessionStoreUnavailableError(`Redis session store unavailable: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * The key of one per-session Redis object: `<prefix>{<sessionId>}:<kind>`. The `{…}` hash tag keeps
 * all of a session's keys in one Redis Cluster slot. Kinds in use: `session` (the record hash, whose
 * `owner` field carries owner affinity) and the session streams' `events:<stream>`, `live:<stream>`,
 * `undelivered:<stream>` and `streams` (see `RedisSessionStreams`).
 */
export function sessionKey(prefix: string, sessionId: string, kind: string): string {
  return `${prefix}{${sessionId}}:${kind}`;
}

/** Reconnect backoff: 50 ms doubling to 2 s, forever. */
const reconnectDelay = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2_000);

/**
 * Creates an ioredis client with the options the proxy relies on to fail fast and recover:
 * no offline queue (commands fail at once while disconnected instead of piling up),
 * `maxRetriesPerRequest: 1`, 2 s connect and command timeouts, reconnect with capped backoff
 * (50 ms doubling to 2 s, forever), auto-pipelining. `url` is `redis://…` or `rediss://…` (TLS).
 * `onError` receives connection errors (ioredis emits them as events; without a listener it logs to stderr).
 * @throws RangeError for a `redis+cluster://` URL: use {@link createRedisStoreClient} (or {@link createRedisClusterClient}).
 */
export function createRedisClient(url: string, options: RedisOptions & { onError?: (err: Error) => void } = {}): Redis {
  if (/^rediss?\+cluster:/i.test(url.trim())) throw new RangeError('createRedisClient takes one server\'s URL; use createRedisStoreClient for redis+cluster://…');
  const { onError, ...rest } = options;
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    enableAutoPipelining: true,
    retryStrategy: reconnectDelay,
    ...rest,
  });
  client.on('error', (err: Error) => onError?.(err));
  return client;
}

export interface RedisClusterClientOptions {
  /** `AUTH` user and password, the same on every node. */
  username?: string;
  password?: string;
  /** TLS to every node (`rediss+cluster://`). */
  tls?: boolean;
  /** Default true, as {@link createRedisClient}. */
  enableAutoPipelining?: boolean;
  /** Passed to ioredis as is (e.g. `natMap` when nodes announce addresses the client cannot reach). */
  clusterOptions?: ClusterOptions;
  onError?: (err: Error) => void;
}

/**
 * Creates an ioredis `Cluster` with the same fail-fast behaviour as {@link createRedisClient}: commands
 * are rejected at once while the client has no slot map (no offline queue at the cluster level);
 * commands to a node time out after 2 s (connect and command), with one retry; the client reconnects
 * to the seeds with the same capped backoff, forever. Each node's own connection keeps ioredis' per-node
 * queue, which ioredis needs to open node connections lazily; the command timeout bounds it. `seeds`
 * are any reachable nodes; the rest of the cluster and its slot map are learnt from them (`CLUSTER SLOTS`).
 */
export function createRedisClusterClient(seeds: readonly RedisNodeAddress[], options: RedisClusterClientOptions = {}): Cluster {
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.tls ? { tls: {} } : {}),
    ...options.clusterOptions?.redisOptions,
  };
  const client = new Cluster(
    seeds.map((n) => ({ host: n.host, port: n.port })),
    {
      enableOfflineQueue: false,
      enableAutoPipelining: options.enableAutoPipelining ?? true,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshTimeout: 2_000,
      ...options.clusterOptions,
      redisOptions,
    },
  );
  client.on('error', (err: Error) => options.onError?.(err));
  client.on('node error', (err: Error) => options.onError?.(err));
  return client;
}

/**
 * The client for a store URL (see `redis-url.ts`): {@link createRedisClient} for `redis://…` and
 * `rediss://…`, {@link createRedisClusterClient} for `redis+cluster://…` and `rediss+cluster://…`.
 * `enableAutoPipelining` and `onError` apply to both.
 * @throws RangeError for `memory` or an unparsable URL.
 */
export function createRedisStoreClient(url: string, options: { enableAutoPipelining?: boolean; onError?: (err: Error) => void } = {}): Redis | Cluster {
  const spec = parseStoreUrl(url);
  if (spec.kind === 'memory') throw new RangeError('createRedisStoreClient needs a Redis URL, not "memory"');
  if (spec.kind === 'redis') return createRedisClient(spec.url, options);
  return createRedisClusterClient(spec.nodes, {
    ...options,
    tls: spec.tls,
    ...(spec.username !== undefined ? { username: spec.username } : {}),
    ...(spec.password !== undefined ? { password: spec.password } : {}),
  });
}

/**
 * Resolves when the client (a `Redis` or a `Cluster`) is ready, or after `timeoutMs` (default 2,000)
 * without throwing: a store that is down at start-up is not fatal, requests get 503 until it comes back.
 */
export async function waitForRedis(client: Redis | Cluster, timeoutMs = 2_000): Promise<boolean> {
  if (client.status === 'ready') return true;
  return await new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    client.once('ready', onReady);
  });
}
