import type { IncomingMessage } from 'node:http';
import type { AnsweredError } from '@mcp-migrate/runtime';

/**
 * The whole-request deadline (`--request-timeout`, docs/proxy.md "Timeouts"): the proxy's own work on
 * a client request (finding the session, opening its upstream session by handshake replay or hand-over,
 * re-syncing its state, a new session's `initialize`) ends by one deadline counted from the request's
 * arrival, however many bounded waits it chains. The MCP server's own time on the request once its
 * messages went upstream (a tool call) is not limited here: the client's own timeout and cancellation
 * govern that.
 */

/** Default `--request-timeout`, ms: under SDK 1.x's 60 s request timeout, so the client hears why. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 45_000;

/** The proxy's part of a request did not finish by its deadline. → HTTP 504 (`gatewayTimeout`). */
export class RequestDeadlineError extends Error implements AnsweredError {
  readonly answer = 'gatewayTimeout';
  constructor(
    readonly timeoutMs: number,
    what: string,
  ) {
    super(`${what} did not finish within the request deadline of ${timeoutMs} ms (--request-timeout)`);
    this.name = 'RequestDeadlineError';
  }
}

/** When each request arrived, ms since the epoch (set by the request handler). */
const arrivals = new WeakMap<IncomingMessage, number>();

/** Records that `req` arrived now: its deadline counts from here. */
export function requestArrived(req: IncomingMessage, now = Date.now()): void {
  arrivals.set(req, now);
}

/** Deadlines of requests, `timeoutMs` after each one's arrival. */
export class RequestDeadlines {
  constructor(readonly timeoutMs: number) {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`request timeout must be a positive number of ms, got ${timeoutMs}`);
  }

  /** The deadline of `req`, ms since the epoch (from now if its arrival was not recorded). */
  of(req: IncomingMessage): number {
    return (arrivals.get(req) ?? Date.now()) + this.timeoutMs;
  }

  /**
   * `work` if it settles before `req`'s deadline; else rejects with {@link RequestDeadlineError} naming
   * `what`. The work goes on: `late` gets its value if it succeeds after the deadline (to close what
   * nobody will use). Never leaves a timer behind.
   */
  async race<T>(req: IncomingMessage, work: Promise<T>, what: string, late?: (value: T) => void): Promise<T> {
    const left = this.of(req) - Date.now();
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const expiry = new Promise<never>((_, reject) => {
      const fire = () => {
        expired = true;
        reject(new RequestDeadlineError(this.timeoutMs, what));
      };
      if (left <= 0) fire();
      else timer = setTimeout(fire, left);
    });
    expiry.catch(() => undefined);
    try {
      return await Promise.race([work, expiry]);
    } finally {
      clearTimeout(timer);
      if (expired && late) work.then(late, () => undefined);
    }
  }
}
