/**
 * A recording `fetch` for the probe. Every request the SDK clients and the raw checks send goes
 * through it, so each check can name the HTTP status, the JSON-RPC error and the replica that
 * answered, however the SDK reports the failure.
 *
 * - Adds the `--header` headers (a header already set, e.g. `Mcp-Session-Id`, is kept) and the run's
 *   abort signal (the `--timeout`).
 * - Reads the JSON-RPC error of any answer with status ≥ 400 from a clone of the body.
 * - Tees an SSE answer to a `GET` (the standalone stream; the legacy SSE stream) and records each
 *   message's method and arrival time, and when and how the stream ended.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { Exchange, StreamRecord } from './types.js';

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface ExchangeLogOptions {
  /** Response header naming the replica (lower case). */
  replicaHeader: string;
  /** Extra request headers (lower-case names). */
  headers: Record<string, string>;
  /** Aborts every request (the run's deadline). */
  signal: AbortSignal;
  /** Milliseconds since the run started. */
  clock: () => number;
  /** Bound on every request but a `GET` (a `GET` may hold a stream for the whole session). */
  requestTimeoutMs: () => number;
  /** The fetch to wrap; default the global one. */
  fetch?: FetchLike;
}

/** Longest error body kept, in characters. */
const MAX_ERROR_TEXT = 300;

export class ExchangeLog {
  readonly exchanges: Exchange[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: ExchangeLogOptions) {}

  /** The wrapped fetch; pass it to SDK transports as their `fetch` option. */
  readonly fetch: FetchLike = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    for (const [name, value] of Object.entries(this.o.headers)) if (!headers.has(name)) headers.set(name, value);
    const exchange: Exchange = { at: this.o.clock(), method, path: url.pathname + url.search, ...rpcOf(init.body) };
    this.exchanges.push(exchange);
    const signals = [this.o.signal, ...(init.signal ? [init.signal] : []), ...(method === 'GET' ? [] : [AbortSignal.timeout(this.o.requestTimeoutMs())])];
    const signal = AbortSignal.any(signals);
    let res: Response;
    try {
      res = await (this.o.fetch ?? fetch)(input instanceof Request ? input.url : input, { ...init, headers, signal });
    } catch (err) {
      exchange.network = networkMessage(err, signal);
      this.notify();
      throw err;
    }
    exchange.ms = this.o.clock() - exchange.at;
    exchange.status = res.status;
    const replica = res.headers.get(this.o.replicaHeader);
    if (replica) exchange.replica = replica;
    const sid = res.headers.get('mcp-session-id');
    if (sid) exchange.sessionId = sid;
    if (res.status >= 400) exchange.error = await errorOf(res.clone());
    this.notify();
    if (method === 'GET' && res.ok && res.body && /text\/event-stream/i.test(res.headers.get('content-type') ?? '')) {
      const [forClient, forLog] = res.body.tee();
      exchange.stream = { messages: [] };
      void this.follow(forLog, exchange.stream);
      return new Response(forClient, { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    return res;
  };

  /** Resolves once `test` holds for a recorded exchange or stream message, or after `ms`; returns whether it held. */
  async waitFor(test: () => boolean, ms: number): Promise<boolean> {
    if (test()) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        this.o.signal.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const check = (): void => {
        if (test()) done(true);
      };
      const onAbort = (): void => done(test());
      const timer = setTimeout(() => done(test()), Math.max(0, ms));
      this.waiters.add(check);
      this.o.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The last exchange matching `test`. */
  last(test: (e: Exchange) => boolean): Exchange | undefined {
    for (let i = this.exchanges.length - 1; i >= 0; i -= 1) if (test(this.exchanges[i]!)) return this.exchanges[i];
    return undefined;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private async follow(body: ReadableStream<Uint8Array>, record: StreamRecord): Promise<void> {
    const reader = body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!value.data || (value.event && value.event !== 'message')) continue;
        record.messages.push({ at: this.o.clock(), method: methodOf(value.data) });
        this.notify();
      }
    } catch (err) {
      record.endError = err instanceof Error ? err.message : String(err);
    }
    record.endedAt = this.o.clock();
    this.notify();
  }
}

function rpcOf(body: RequestInit['body']): { rpc?: string } {
  if (typeof body !== 'string') return {};
  try {
    const parsed = JSON.parse(body) as unknown;
    const first = (Array.isArray(parsed) ? parsed[0] : parsed) as { method?: unknown; result?: unknown; error?: unknown } | undefined;
    if (typeof first?.method === 'string') return { rpc: first.method };
    if (first && ('result' in first || 'error' in first)) return { rpc: 'response' };
  } catch {
    // not JSON: nothing to name
  }
  return {};
}

function methodOf(data: string): string {
  try {
    const msg = JSON.parse(data) as { method?: unknown };
    return typeof msg.method === 'string' ? msg.method : 'response';
  } catch {
    return 'unparsable';
  }
}

async function errorOf(res: Response): Promise<{ code?: number; message: string }> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    return { message: res.statusText };
  }
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.message === 'string') {
      return { ...(typeof body.error.code === 'number' ? { code: body.error.code } : {}), message: body.error.message.slice(0, MAX_ERROR_TEXT) };
    }
  } catch {
    // plain text or HTML from a load balancer
  }
  const plain = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return { message: (plain || res.statusText).slice(0, MAX_ERROR_TEXT) };
}

function networkMessage(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason = signal.reason as { name?: string; message?: string } | undefined;
    return reason?.name === 'TimeoutError' ? 'timed out' : `aborted${reason?.message ? ` (${reason.message})` : ''}`;
  }
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? 'fetch failed'} (${cause})` : (e.message ?? String(err));
}
