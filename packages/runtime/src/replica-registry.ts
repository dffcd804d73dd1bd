import type { Cluster, Redis } from 'ioredis';
import { SessionStoreUnavailableError } from './session-store.js';

/**
 * The replica registry of owner affinity (`mcp-migrate proxy --affinity owner`, docs/proxy.md
 * "Owner affinity"): which replicas are alive and how to reach them.
 *
 * Each replica registers `{ replicaId, url }` and refreshes it every `heartbeatIntervalMs` (default
 * 1,000) with a time to live of three intervals, so a replica that stops heartbeating (killed, hung,
 * cut off from the store) disappears from the registry within three intervals. A replica that shuts
 * down on purpose {@link ReplicaRegistry.deregister}s first, so others take its sessions over at once.
 * {@link ReplicaRegistry.lookup} answers from a short local cache (one interval), so forwarding a
 * request to a session's owner does not cost a store command per request. A replica that drains
 * ({@link ReplicaRegistry.drain}) stays registered, so forwards still reach the sessions it serves,
 * but is no longer among those {@link ReplicaRegistry.accepting} new sessions.
 */
export interface ReplicaRegistry {
  /** Heartbeat period, ms. */
  readonly heartbeatIntervalMs: number;
  /** Time to live of a registration: 3 × {@link heartbeatIntervalMs}, ms. */
  readonly ttlMs: number;
  /**
   * Registers this replica and starts heartbeats. Resolves once the first write was attempted; a
   * store that is down does not reject (heartbeats keep trying and `onError` hears of each failure).
   */
  register(self: ReplicaInfo): Promise<void>;
  /**
   * The advertised URL of a live replica, or `undefined` if it is not registered (never was,
   * deregistered, or missed its heartbeats for a TTL) or was {@link markDown} recently. Answers from a
   * cache up to one heartbeat interval old unless `fresh`. Rejects with `SessionStoreUnavailableError`
   * if the store cannot be reached.
   */
  lookup(replicaId: string, options?: { fresh?: boolean }): Promise<string | undefined>;
  /** Treats `replicaId` as gone for one TTL on this replica only (e.g. it refused a connection). */
  markDown(replicaId: string): void;
  /**
   * Graceful shutdown, first step: this replica keeps its registration (heartbeats go on, so
   * forwards to the sessions it still serves keep coming) but leaves the set of replicas
   * {@link accepting} new sessions. Never rejects.
   */
  drain(): Promise<void>;
  /**
   * Ids of the other live replicas that take new sessions (registered and not draining), in no
   * particular order; from a cache up to one heartbeat interval old. Rejects with
   * `SessionStoreUnavailableError` if the store cannot be reached.
   */
  accepting(): Promise<string[]>;
  /** Stops heartbeats and removes this replica's registration (graceful shutdown). Never rejects. */
  deregister(): Promise<void>;
  /**
   * Stops heartbeats without deregistering: the registration expires after its TTL, as if the process
   * had been killed. Releases timers; does not close a shared store client.
   */
  close(): Promise<void>;
}

/** One registration. */
export interface ReplicaInfo {
  /** Opaque, unique per process (`SessionManager.replicaId`). */
  replicaId: string;
  /** Where other replicas send forwarded requests: `http(s)://HOST:PORT`. */
  url: string;
}

export interface ReplicaRegistryOptions {
  /** Heartbeat period, ms. Default 1,000. */
  heartbeatIntervalMs?: number;
  /** How long a lookup answer is reused, ms. Default: the heartbeat interval. */
  cacheMs?: number;
  /** Hears heartbeat and deregistration failures (they never throw). */
  onError?: (err: Error) => void;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Default heartbeat period, ms. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1_000;

/** Caching, heartbeats and down marks; subclasses only read and write registrations. */
abstract class BaseReplicaRegistry implements ReplicaRegistry {
  readonly heartbeatIntervalMs: number;
  readonly ttlMs: number;
  readonly #cacheMs: number;
  readonly #onError: (err: Error) => void;
  protected readonly now: () => number;
  readonly #cache = new Map<string, { url: string | undefined; until: number }>();
  readonly #down = new Map<string, number>();
  #accepting: { ids: string[]; until: number } | undefined;
  #self: ReplicaInfo | undefined;
  #draining = false;
  #timer: NodeJS.Timeout | undefined;
  #beating = false;

  constructor(options: ReplicaRegistryOptions = {}) {
    const interval = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    if (!Number.isFinite(interval) || interval <= 0) throw new RangeError(`heartbeat interval must be a positive number of ms, got ${interval}`);
    this.heartbeatIntervalMs = interval;
    this.ttlMs = 3 * interval;
    this.#cacheMs = options.cacheMs ?? interval;
    this.#onError = options.onError ?? (() => undefined);
    this.now = options.now ?? Date.now;
  }

  /** Writes (refreshes) a registration; `accepting`: whether it is offered for new sessions. */
  protected abstract write(info: ReplicaInfo, ttlMs: number, accepting: boolean): Promise<void>;
  protected abstract read(replicaId: string): Promise<string | undefined>;
  /** Ids of live registrations offered for new sessions. */
  protected abstract readAccepting(): Promise<string[]>;
  protected abstract remove(replicaId: string): Promise<void>;

  async register(self: ReplicaInfo): Promise<void> {
    if (self.replicaId.length === 0) throw new RangeError('replica id must not be empty');
    this.#self = { ...self };
    this.#draining = false;
    this.#cache.set(self.replicaId, { url: self.url, until: Number.POSITIVE_INFINITY });
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.#beat(), this.heartbeatIntervalMs);
    this.#timer.unref();
    await this.#beat();
  }

  async #beat(): Promise<void> {
    const self = this.#self;
    if (!self || this.#beating) return; // a slow store must not pile heartbeats up
    this.#beating = true;
    try {
      await this.write(self, this.ttlMs, !this.#draining);
    } catch (err) {
      this.#onError(err as Error);
    } finally {
      this.#beating = false;
    }
  }

  async lookup(replicaId: string, options: { fresh?: boolean } = {}): Promise<string | undefined> {
    const now = this.now();
    const down = this.#down.get(replicaId);
    if (down !== undefined) {
      if (down > now) return undefined;
      this.#down.delete(replicaId);
    }
    if (replicaId === this.#self?.replicaId) return this.#self.url;
    const hit = this.#cache.get(replicaId);
    if (!options.fresh && hit && hit.until > now) return hit.url;
    const url = await this.read(replicaId);
    this.#cache.set(replicaId, { url, until: this.now() + this.#cacheMs });
    if (this.#cache.size > 1_000) this.#prune();
    return url;
  }

  markDown(replicaId: string): void {
    if (replicaId === this.#self?.replicaId) return;
    this.#down.set(replicaId, this.now() + this.ttlMs);
    this.#cache.delete(replicaId);
  }

  async drain(): Promise<void> {
    if (!this.#self || this.#draining) return;
    this.#draining = true;
    await this.#beat();
  }

  async accepting(): Promise<string[]> {
    const now = this.now();
    if (this.#accepting && this.#accepting.until > now) return this.#accepting.ids;
    const ids = (await this.readAccepting()).filter((id) => id !== this.#self?.replicaId && !((this.#down.get(id) ?? 0) > now));
    this.#accepting = { ids, until: this.now() + this.#cacheMs };
    return ids;
  }

  async deregister(): Promise<void> {
    const self = this.#stop();
    if (!self) return;
    try {
      await this.remove(self.replicaId);
    } catch (err) {
      this.#onError(err as Error);
    }
  }

  async close(): Promise<void> {
    this.#stop();
  }

  #stop(): ReplicaInfo | undefined {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const self = this.#self;
    this.#self = undefined;
    if (self) this.#cache.delete(self.replicaId);
    return self;
  }

  #prune(): void {
    const now = this.now();
    for (const [id, e] of this.#cache) if (e.until <= now) this.#cache.delete(id);
    for (const [id, until] of this.#down) if (until <= now) this.#down.delete(id);
  }
}

/**
 * Registrations shared by {@link MemoryReplicaRegistry} instances in one process (tests, embedding);
 * each entry expires like a Redis key with a TTL.
 */
export class MemoryReplicaDirectory {
  readonly entries = new Map<string, { url: string; expiresAt: number; accepting: boolean }>();
}

/** In-process {@link ReplicaRegistry}: replicas in one process sharing a {@link MemoryReplicaDirectory}. */
export class MemoryReplicaRegistry extends BaseReplicaRegistry {
  readonly directory: MemoryReplicaDirectory;

  constructor(options: ReplicaRegistryOptions & { directory?: MemoryReplicaDirectory } = {}) {
    super(options);
    this.directory = options.directory ?? new MemoryReplicaDirectory();
  }

  protected async write(info: ReplicaInfo, ttlMs: number, accepting: boolean): Promise<void> {
    this.directory.entries.set(info.replicaId, { url: info.url, expiresAt: this.now() + ttlMs, accepting });
  }

  protected async readAccepting(): Promise<string[]> {
    const now = this.now();
    return [...this.directory.entries].filter(([, e]) => e.accepting && e.expiresAt > now).map(([id]) => id);
  }

  protected async read(replicaId: string): Promise<string | undefined> {
    const e = this.directory.entries.get(replicaId);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.directory.entries.delete(replicaId);
      return undefined;
    }
    return e.url;
  }

  protected async remove(replicaId: string): Promise<void> {
    this.directory.entries.delete(replicaId);
  }
}

/**
 * {@link ReplicaRegistry} on Redis: one string key per replica, `<prefix>replicas:<replicaId>` = its
 * URL, written with `SET … PX <ttl>` on every heartbeat, read with `GET` (at most once per interval per
 * looked-up replica, thanks to the cache), removed with `DEL`; and the sorted set `<prefix>replica-set`
 * of the replicas that take new sessions (score: when the registration expires, ms), refreshed with
 * `ZADD` and pruned with `ZREMRANGEBYSCORE` on each heartbeat (a draining replica `ZREM`s itself
 * instead), read with `ZRANGEBYSCORE` only by a draining replica. Three commands per replica per
 * interval, none per request. One key per command, so it runs unchanged on Redis Cluster.
 */
export class RedisReplicaRegistry extends BaseReplicaRegistry {
  readonly keyPrefix: string;
  readonly #client: Redis | Cluster;

  /** `client` is shared (the store's command connection) and is not closed by {@link close}. */
  constructor(options: ReplicaRegistryOptions & { client: Redis | Cluster; keyPrefix?: string }) {
    super(options);
    this.#client = options.client;
    this.keyPrefix = options.keyPrefix ?? 'mcpm:';
  }

  /** The key of one registration. */
  key(replicaId: string): string {
    return `${this.keyPrefix}replicas:${replicaId}`;
  }

  /** The sorted set of the replicas that take new sessions. */
  get setKey(): string {
    return `${this.keyPrefix}replica-set`;
  }

  protected async write(info: ReplicaInfo, ttlMs: number, accepting: boolean): Promise<void> {
    const now = this.now();
    await Promise.all([
      this.#client.set(this.key(info.replicaId), info.url, 'PX', ttlMs),
      accepting ? this.#client.zadd(this.setKey, now + ttlMs, info.replicaId) : this.#client.zrem(this.setKey, info.replicaId),
      this.#client.zremrangebyscore(this.setKey, '-inf', now),
    ]);
  }

  protected async readAccepting(): Promise<string[]> {
    try {
      return await this.#client.zrangebyscore(this.setKey, this.now(), '+inf');
    } catch (err) {
      throw new SessionStoreUnavailableError(`Redis replica registry unavailable: ${(err as Error).message}`, { cause: err });
    }
  }

  protected async read(replicaId: string): Promise<string | undefined> {
    try {
      return (await this.#client.get(this.key(replicaId))) ?? undefined;
    } catch (err) {
      throw new SessionStoreUnavailableError(`Redis replica registry unavailable: ${(err as Error).message}`, { cause: err });
    }
  }

  protected async remove(replicaId: string): Promise<void> {
    await Promise.all([this.#client.del(this.key(replicaId)), this.#client.zrem(this.setKey, replicaId)]);
  }
}
