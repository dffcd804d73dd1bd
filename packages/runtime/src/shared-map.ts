import type { RuntimeStores } from './from-env.js';
import { StoreBacked } from './session-map.js';

/** Options of {@link SharedMap}. */
export interface SharedMapOptions {
  /** The stores to use (default: `defaultStores`, from `MCP_MIGRATE_STORE`). */
  stores?: RuntimeStores;
  /**
   * Milliseconds an entry lives after its last `set` (a positive number). Default: entries never
   * expire, as in the in-process `Map` this replaces.
   */
  ttlMs?: number;
}

/**
 * A process-level `Map` whose entries live in the store, so every replica reads what any replica wrote:
 * the clients, authorization codes and tokens of an in-memory OAuth provider, or any other keyed data
 * that request handlers write into a module-level variable or a field of a once-per-process object
 * (`mcp-migrate apply`'s `shared-map` transform). Unlike `SessionMap`, entries do not follow a
 * session's TTL: they live until deleted, or `ttlMs` after their last write.
 *
 * Each entry is one key `<prefix>shared:<name>:<key>` holding the value's text (`value-codec.ts`). The
 * name must be the same on every replica (the transform derives it from the file and the variable or
 * class field, never from anything random). Keys are strings: a `Map` tells `1` from `'1'`, a store key
 * cannot.
 *
 * The API is the asynchronous subset of `Map` that works on a shared store (`get`, `set`, `has`,
 * `delete`). A value read is a fresh copy: changing it changes nothing stored until it is `set` again.
 * Each call is one store round trip and atomic on its own; a sequence (`get`, then `delete`) is not.
 */
export class SharedMap<K extends string = string, V = unknown> extends StoreBacked {
  readonly #ttlMs: number;

  /** @throws RangeError when `ttlMs` is given and is not a positive number. */
  constructor(name: string, options: SharedMapOptions = {}) {
    super(name, options);
    if (options.ttlMs !== undefined && !(options.ttlMs > 0)) throw new RangeError(`SharedMap ${name}: ttlMs must be a positive number of milliseconds, got ${options.ttlMs}`);
    this.#ttlMs = options.ttlMs ?? Infinity;
  }

  /** The value stored at `key`, or `undefined`. @throws TypeError for a key that is not a string; SessionStoreUnavailableError when the store is down. */
  async get(key: K): Promise<V | undefined> {
    const s = await this.stores();
    return (await this.read(s, this.#key(s, key))) as V | undefined;
  }

  /** Stores `value` at `key` (a copy). @throws UnstorableValueError for a value that is not plain data; TypeError for a key that is not a string. */
  async set(key: K, value: V): Promise<this> {
    const s = await this.stores();
    await this.write(s, this.#key(s, key), value, this.#ttlMs);
    return this;
  }

  /** Whether `key` has a value. */
  async has(key: K): Promise<boolean> {
    const s = await this.stores();
    return await s.kv.exists(this.#key(s, key));
  }

  /** Removes `key`; resolves to whether it had a value (atomic: of two replicas deleting one key, one sees `true`). */
  async delete(key: K): Promise<boolean> {
    const s = await this.stores();
    return await s.kv.del(this.#key(s, key));
  }

  #key(s: RuntimeStores, key: K): string {
    if (typeof key !== 'string') throw new TypeError(`SharedMap keys are strings (a store key cannot tell 1 from "1"); got a ${typeof key}`);
    return this.key(s, 'shared', key);
  }
}

/** A process-level map named `name`, the same on every replica (the transform uses `<file>#<Class>.<field>` or `<file>#<variable>`). */
export function createSharedMap<K extends string = string, V = unknown>(name: string, options?: SharedMapOptions): SharedMap<K, V> {
  return new SharedMap<K, V>(name, options);
}
