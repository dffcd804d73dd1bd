import type http from 'node:http';
import net from 'node:net';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { KEEP_ALIVE_DRAIN_MS, RequestTracker } from '@mcp-migrate/runtime';


/** What a shutdown runs, in order, around the drain (see {@link Lifecycle.shutdown}). */
export interface ShutdownSteps {
  /**
   * Owner routing, first: take no new sessions, serve the sessions this replica owns until each is
   * idle and hand it over then, or at `deadline` (ms since the epoch) at the latest (`OwnerRouting.drain`).
   * The port keeps accepting connections meanwhile: the load balancer and the other replicas still
   * send this replica the requests of the sessions it serves.
   */
  handOver?(deadline: number): Promise<void>;
  /** Once connections are refused: end the fronts' own long-lived streams (2026-07-28 listens, held exchanges). */
  endStreams(): void;
  /** Last: close everything ({@link McpProxy.close}). */
  close(): Promise<void>;
}

/**
 * A replica's life: requests in flight, open standalone streams, draining and shutdown
 * (docs/proxy.md §Graceful shutdown). The one place that knows whether the replica still takes work;
 * what a draining replica keeps serving belongs here.
 */
export class Lifecycle {
  /** Set by {@link shutdown}: `/readyz` answers 503 and responses carry `Connection: close`. */
  #draining = false;
  /** Requests being answered, and open standalone GET SSE streams (ended with a `retry:` line on shutdown). */
  readonly #tracker = new RequestTracker();
  #shuttingDown: Promise<number> | undefined;

  constructor(
    readonly server: http.Server,
    readonly logger: Logger,
  ) {}

  get draining(): boolean {
    return this.#draining;
  }

  /** Marks the replica as closing (no readiness, `Connection: close`). */
  stopAccepting(): void {
    this.#draining = true;
  }

  /**
   * Counts one HTTP exchange until its response closes (then `onClose` runs): a standalone stream
   * (`stream`) is ended by shutdown, anything else is waited for.
   */
  track(res: ServerResponse, stream: boolean, onClose?: () => void): void {
    if (onClose) res.once('close', onClose);
    if (stream) this.#tracker.stream(res);
    else this.#tracker.begin(res, undefined);
    if (this.#draining) res.setHeader('connection', 'close');
  }

  /** Counts work that outlives its HTTP request (a detached exchange) as in flight. */
  trackWork(work: Promise<unknown>): void {
    this.#tracker.beginWork(work);
  }

  /**
   * Graceful shutdown: not ready (`unreadyGraceMs` for load balancers to notice), `steps.handOver` (owner
   * routing), no new connections, standalone streams ended with `retry: 1000`, in-flight requests given
   * what is left of `timeoutMs` (at least the keep-alive grace), then `steps.close()`. Resolves to the
   * requests the timeout cut off. Idempotent.
   */
  shutdown(steps: ShutdownSteps, { timeoutMs = 10_000, unreadyGraceMs = 0 } = {}): Promise<number> {
    this.#shuttingDown ??= (async () => {
      const deadline = Date.now() + timeoutMs;
      this.#draining = true;
      this.logger.info({ inFlight: this.#tracker.inFlight, streams: this.#tracker.streams, timeoutMs }, 'draining');
      if (unreadyGraceMs > 0) await new Promise((r) => setTimeout(r, unreadyGraceMs));
      if (steps.handOver) {
        await steps.handOver(deadline);
        this.logger.info({ inFlight: this.#tracker.inFlight }, 'sessions handed over');
      }
      // Stop accepting connections but keep open keep-alive connections for their next request (answered
      // with `Connection: close`) for up to KEEP_ALIVE_DRAIN_MS: closing an idle one now races with a
      // request a load balancer is just sending on it, which it then sees reset (and nginx does not retry
      // a POST). `http.Server.close` would close idle connections at once.
      net.Server.prototype.close.call(this.server);
      // Standalone GET streams never end by themselves: tell clients to reconnect (elsewhere) soon.
      this.#tracker.endStreams();
      steps.endStreams();
      await this.#drain(Math.max(deadline - Date.now(), KEEP_ALIVE_DRAIN_MS));
      const cut = this.#tracker.inFlight;
      if (cut > 0) this.logger.warn({ inFlight: cut }, 'shutdown timeout: ending requests still in flight');
      await steps.close();
      return cut;
    })();
    return this.#shuttingDown;
  }

  /** Waits until nothing is in flight and the keep-alive grace is over (or no connection is left), at most `timeoutMs`. */
  async #drain(timeoutMs: number): Promise<void> {
    const stopAt = Date.now() + timeoutMs;
    const keepAliveUntil = Date.now() + Math.min(KEEP_ALIVE_DRAIN_MS, timeoutMs);
    while (Date.now() < stopAt) {
      if (this.#tracker.inFlight > 0) {
        await this.#tracker.settled(stopAt);
        continue;
      }
      if (Date.now() >= keepAliveUntil || (await openConnections(this.server)) === 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function openConnections(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
}
