import type { ReplicaRegistry } from '@mcp-migrate/runtime';

/**
 * Notices owners that stop answering without closing their sockets (hung, cut off): their heartbeats
 * run out, so a fresh registry lookup no longer finds them. One timer for all forwards in flight,
 * ticking once per registration TTL; each tick looks up (fresh) only owners that have forwards waiting.
 */
export class OwnerWatcher {
  readonly #waiting = new Map<string, Set<() => void>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly registry: ReplicaRegistry) {}

  /** Calls `onGone` once `owner` is gone from the registry; returns the function that stops watching. */
  watch(owner: string, onGone: () => void): () => void {
    let set = this.#waiting.get(owner);
    if (!set) this.#waiting.set(owner, (set = new Set()));
    set.add(onGone);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.registry.ttlMs);
      this.#timer.unref();
    }
    const s = set;
    return () => {
      s.delete(onGone);
      if (s.size === 0 && this.#waiting.get(owner) === s) this.#waiting.delete(owner);
    };
  }

  #tick(): void {
    for (const [owner, set] of this.#waiting) {
      this.registry.lookup(owner, { fresh: true }).then(
        (url) => {
          if (url === undefined) for (const onGone of [...set]) onGone();
        },
        () => undefined,
      );
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#waiting.clear();
  }
}
