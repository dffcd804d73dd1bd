import { UpstreamError } from './upstream.js';

/** Default `--max-starting`: see docs/proxy.md "Options" (a fixed number: a container's CPU quota is not what `os.availableParallelism()` reports). */
export const DEFAULT_MAX_STARTING = 4;

interface Waiter {
  grant(): void;
}

/**
 * Bounds how many stdio children a replica starts at once (`--max-starting`), from spawn until the child
 * answered `initialize`. Children of one replica share its CPU share, so a burst of N starts all finish
 * late together; with the bound the first K finish in time and the rest wait their turn. First come, first
 * served; a waiter leaves the queue when its client goes away (`signal`) or its time is up (`timeoutMs`).
 */
export class StartLimit {
  #starting = 0;
  readonly #queue: Waiter[] = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max <= 0) throw new RangeError(`the start limit must be a positive integer, got ${max}`);
  }

  /** Children starting now (spawned, `initialize` not yet answered). */
  get starting(): number {
    return this.#starting;
  }
  /** Starts waiting for a place. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Resolves with `release` (call it once the child answered `initialize` or failed; idempotent) when a
   * place is free. Rejects with {@link UpstreamError} without taking a place: 504 after `timeoutMs`, 502
   * when `signal` aborts (the client went away).
   */
  acquire(timeoutMs: number, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new UpstreamError('the client went away before its MCP server was started'));
    if (this.#starting < this.max && this.#queue.length === 0) return Promise.resolve(this.#take());
    return new Promise((resolve, reject) => {
      const leave = (err: UpstreamError): void => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        settle();
        reject(err);
      };
      const onAbort = (): void => leave(new UpstreamError('the client went away while waiting to start its MCP server'));
      const timer = setTimeout(
        () => leave(new UpstreamError(`no MCP server could start within ${timeoutMs} ms: ${this.max} were starting (--max-starting)`, 504)),
        Math.max(0, timeoutMs),
      );
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = { grant: () => (settle(), resolve(this.#take())) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  #take(): () => void {
    this.#starting++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#starting--;
      this.#queue.shift()?.grant();
    };
  }
}
