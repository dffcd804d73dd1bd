import type { Cluster, Redis } from 'ioredis';
import { SessionStoreUnavailableError } from './session-store.js';

/**
 * The small key-value seam under the store-backed containers `mcp-migrate apply` generates
 * ({@link SessionMap}, {@link SessionSet}, {@link StoreEventStore}). Every entry expires: per-session
 * data lives as long as a session record (a sliding TTL refreshed by writes).
 */
export interface KeyValueStore {
  /** The value at `key`, or `undefined`. */
  get(key: string): Promise<string | undefined>;
  /** Sets `key` to `value`, expiring after `ttlMs` milliseconds (`Infinity`: never expires). */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Whether `key` exists. */
  exists(key: string): Promise<boolean>;
  /** Deletes `key`; resolves to whether it existed. */
  del(key: string): Promise<boolean>;
  /** Appends `value` to the list at `key` (expiring after `ttlMs`); resolves to its 0-based index. */
  append(key: string, value: string, ttlMs: number): Promise<number>;
  /** The list at `key` from index `from` (inclusive) to its end. */
  listFrom(key: string, from: number): Promise<string[]>;
  close(): Promise<void>;
}

interface MemoryEntry {
  value: string | string[];
  expiresAt: number;
}

/** In-process {@link KeyValueStore} for one replica (`MCP_MIGRATE_STORE=memory`). */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly #entries = new Map<string, MemoryEntry>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  #live(key: string): MemoryEntry | undefined {
    const e = this.#entries.get(key);
    if (e && e.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  async get(key: string): Promise<string | undefined> {
    const e = this.#live(key);
    return typeof e?.value === 'string' ? e.value : undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
  }

  async exists(key: string): Promise<boolean> {
    return this.#live(key) !== undefined;
  }

  async del(key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined;
    this.#entries.delete(key);
    return existed;
  }

  async append(key: string, value: string, ttlMs: number): Promise<number> {
    const e = this.#live(key);
    const list = Array.isArray(e?.value) ? e.value : [];
    list.push(value);
    this.#entries.set(key, { value: list, expiresAt: this.#now() + ttlMs });
    return list.length - 1;
  }

  async listFrom(key: string, from: number): Promise<string[]> {
    const e = this.#live(key);
    return Array.isArray(e?.value) ? e.value.slice(Math.max(0, from)) : [];
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }
}

/** {@link KeyValueStore} on Redis: strings with `PX`, lists with `RPUSH` + `PEXPIRE` (one round trip each). */
export class RedisKeyValueStore implements KeyValueStore {
  readonly #client: Redis | Cluster;
  readonly #ownsClient: boolean;

  constructor(options: { client: Redis | Cluster; ownsClient?: boolean }) {
    this.#client = options.client;
    this.#ownsClient = options.ownsClient ?? false;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#run(() => this.#client.get(key))) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#run(() => (Number.isFinite(ttlMs) ? this.#client.set(key, value, 'PX', ttlMs) : this.#client.set(key, value)));
  }

  async exists(key: string): Promise<boolean> {
    return (await this.#run(() => this.#client.exists(key))) > 0;
  }

  async del(key: string): Promise<boolean> {
    return (await this.#run(() => this.#client.del(key))) > 0;
  }

  async append(key: string, value: string, ttlMs: number): Promise<number> {
    const replies = await this.#run(() => this.#client.multi().rpush(key, value).pexpire(key, ttlMs).exec());
    const failed = replies?.find(([err]) => err);
    if (!replies || failed) throw new SessionStoreUnavailableError('Redis MULTI failed', { cause: failed?.[0] });
    return Number(replies[0]![1]) - 1;
  }

  async listFrom(key: string, from: number): Promise<string[]> {
    return await this.#run(() => this.#client.lrange(key, Math.max(0, from), -1));
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.#client.quit().catch(() => this.#client.disconnect());
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof SessionStoreUnavailableError) throw err;
      throw new SessionStoreUnavailableError(`Redis store unavailable: ${(err as Error).message}`, { cause: err });
    }
  }
}
