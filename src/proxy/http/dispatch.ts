import { Client, Pool, type Dispatcher } from 'undici';

/**
 * An HTTP origin reached through undici's `Pool.dispatch()` with a raw handler: no request or response
 * stream objects, the answer's header list as undici parsed it. About 0.64× of node:http's client CPU
 * per request on a keep-alive POST (`bench/proxy/clients.mjs`). Idle connections follow the origin's
 * `Keep-Alive: timeout` hint (closed two seconds before it, undici's default threshold) and are checked for a pending close before
 * reuse (undici's idle socket validation).
 */
export class DispatchTarget {
  /** `Host` header value of every request. */
  readonly host: string;
  readonly #pool: Pool;

  /** `connectTimeoutMs`: longest wait for a TCP connection (error code `UND_ERR_CONNECT_TIMEOUT`). */
  constructor(url: URL, connectTimeoutMs: number) {
    this.host = url.host;
    this.#pool = new Pool(url.origin, {
      connectTimeout: connectTimeoutMs,
      // Each connection tells the handler of a request whether it goes out on a connection that was
      // already open (for the retry-once rule of a reset keep-alive connection).
      factory: (origin, opts) => new TaggingClient(origin, opts),
    });
  }

  /**
   * Starts one request with `body` (`headers`: a flat `[name, value, …]` list, `host` at most once, no
   * hop-by-hop header and no `expect`, which undici refuses). The handler is undici's raw (legacy)
   * one: `onConnect`, `onHeaders` with the raw header buffers, `onData`, `onComplete`, `onError`;
   * undici 7 marks it deprecated in its types but runs it as is, while a handler of its newer API gets
   * the answer's headers parsed into an object first (what this path avoids).
   */
  dispatch(method: Dispatcher.HttpMethod, path: string, headers: string[], body: Buffer | undefined, handler: DispatchHandler): void {
    handler.reusedSocket = false;
    this.#pool.dispatch({ method, path, headers, body: body ?? null }, handler);
  }

  /** Closes pooled connections (requests in flight are aborted). */
  close(): void {
    void this.#pool.destroy().catch(() => undefined);
  }
}

/** undici's raw (legacy) dispatch handler, plus whether the request went out on a connection already open. */
export interface DispatchHandler extends Dispatcher.DispatchHandler {
  reusedSocket: boolean;
}

/** A pool connection that marks each request it takes while already connected as sent on a reused socket. */
class TaggingClient extends Client {
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.stats.connected) (handler as DispatchHandler).reusedSocket = true;
    return super.dispatch(opts, handler);
  }
}

/** undici's raw header list (name and value buffers, alternating) as strings, as node:http's `rawHeaders` are. */
export function rawHeaderStrings(raw: Buffer[] | string[] | null): string[] {
  if (!raw) return [];
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i += 1) {
    const v = raw[i]!;
    out[i] = typeof v === 'string' ? v : v.toString('latin1');
  }
  return out;
}
