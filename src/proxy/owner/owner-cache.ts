/** How many session owners {@link OwnerCache} keeps. */
const OWNER_CACHE_SIZE = 10_000;

/**
 * Session id → owner replica id, for the sessions this replica forwards (owner affinity's steady path).
 * Filled once a forward is answered; an entry goes when a forward fails (owner unreachable, gone from
 * the registry, 421), when another replica takes the session over (updated), or when the session ends.
 * Least recently used entries go first once {@link OWNER_CACHE_SIZE} are held.
 */
export class OwnerCache {
  readonly #entries = new Map<string, string>();

  constructor(readonly size = OWNER_CACHE_SIZE) {}

  get(sessionId: string): string | undefined {
    const owner = this.#entries.get(sessionId);
    if (owner !== undefined) {
      this.#entries.delete(sessionId);
      this.#entries.set(sessionId, owner);
    }
    return owner;
  }

  set(sessionId: string, owner: string): void {
    this.#entries.delete(sessionId);
    if (this.#entries.size >= this.size) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(sessionId, owner);
  }

  /** Changes the owner of a cached session only (a takeover announced on the bus). */
  update(sessionId: string, owner: string): void {
    if (this.#entries.has(sessionId)) this.#entries.set(sessionId, owner);
  }

  delete(sessionId: string): void {
    this.#entries.delete(sessionId);
  }
}
