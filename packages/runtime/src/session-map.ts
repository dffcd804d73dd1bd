import { defaultStores, type RuntimeStores } from './from-env.js';
import { decodeValue, encodeValue } from './value-codec.js';

/**
 * Store-backed replacements for the in-process `Map`s and `Set`s an MCP server keys by session id
 * (`mcp-migrate apply`'s `session-keyed-map` transform). Every replica sees the same entries; each
 * entry is one key `<prefix>map:<name>:<key>` (or `set:`) holding the value's text (`value-codec.ts`:
 * JSON plus tagged `undefined`, `Date`, `URL`), with the session TTL refreshed on every write, so entries
 * of sessions that ended expire on their own. Process-level maps (not keyed by session) are
 * `SharedMap`s (`shared-map.ts`), on the same base.
 *
 * The API is the asynchronous subset of `Map`/`Set` that works on a shared store: `get`, `set`,
 * `has`, `delete` (`add` for sets). Iteration, `size` and `clear` would need a scan of every
 * replica's data and are deliberately absent; the transform leaves code that needs them with an
 * `@mcp-migrate-todo` marker.
 */
export abstract class StoreBacked {
  readonly #name: string;
  readonly #stores: (() => RuntimeStores) | RuntimeStores;

  constructor(name: string, options: { stores?: RuntimeStores } = {}) {
    this.#name = name;
    this.#stores = options.stores ?? defaultStores;
  }

  protected async stores(): Promise<RuntimeStores> {
    const s = typeof this.#stores === 'function' ? this.#stores() : this.#stores;
    await s.ready();
    return s;
  }

  protected key(s: RuntimeStores, kind: 'map' | 'set' | 'shared', key: unknown): string {
    return `${s.keyPrefix}${kind}:${this.#name}:${String(key)}`;
  }

  /** The value at `key` (`undefined` when absent), decoded. */
  protected async read(s: RuntimeStores, key: string): Promise<unknown> {
    const raw = await s.kv.get(key);
    return raw === undefined ? undefined : decodeValue(raw);
  }

  /** Writes `value` at `key`, expiring after `ttlMs` (`Infinity`: never). @throws UnstorableValueError for a value that does not round-trip. */
  protected async write(s: RuntimeStores, key: string, value: unknown, ttlMs: number): Promise<void> {
    await s.kv.set(key, encodeValue(value), ttlMs);
  }
}

/**
 * A `Map` whose entries live in the store. Values are plain data (`value-codec.ts`); `set` throws
 * `UnstorableValueError` for one that would not read back unchanged.
 */
export class SessionMap<K = string, V = unknown> extends StoreBacked {
  async get(key: K): Promise<V | undefined> {
    const s = await this.stores();
    return (await this.read(s, this.key(s, 'map', key))) as V | undefined;
  }

  async set(key: K, value: V): Promise<this> {
    const s = await this.stores();
    await this.write(s, this.key(s, 'map', key), value, s.ttlMs);
    return this;
  }

  async has(key: K): Promise<boolean> {
    const s = await this.stores();
    return await s.kv.exists(this.key(s, 'map', key));
  }

  async delete(key: K): Promise<boolean> {
    const s = await this.stores();
    return await s.kv.del(this.key(s, 'map', key));
  }
}

/** A `Set` whose members live in the store. */
export class SessionSet<T = string> extends StoreBacked {
  async has(value: T): Promise<boolean> {
    const s = await this.stores();
    return await s.kv.exists(this.key(s, 'set', value));
  }

  async add(value: T): Promise<this> {
    const s = await this.stores();
    await s.kv.set(this.key(s, 'set', value), '1', s.ttlMs);
    return this;
  }

  async delete(value: T): Promise<boolean> {
    const s = await this.stores();
    return await s.kv.del(this.key(s, 'set', value));
  }
}

/** A store-backed map named `name` (unique per process image: the transform uses `<file>#<variable>`). */
export function createSessionMap<K = string, V = unknown>(name: string, options?: { stores?: RuntimeStores }): SessionMap<K, V> {
  return new SessionMap<K, V>(name, options);
}

/** A store-backed set named `name`. */
export function createSessionSet<T = string>(name: string, options?: { stores?: RuntimeStores }): SessionSet<T> {
  return new SessionSet<T>(name, options);
}
