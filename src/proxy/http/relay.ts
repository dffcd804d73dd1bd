import http, { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HOP_BY_HOP_HEADERS } from './util.js';

/**
 * The one HTTP relay of the proxy: requests to another HTTP server over pooled keep-alive connections,
 * and answers relayed back to the client with as few socket writes as possible. Used by the HTTP
 * upstream (client POSTs relayed to the MCP server) and by owner affinity (requests forwarded to the
 * replica that owns the session).
 */

/** Pooled sockets idle for this long are closed: shorter than common server keep-alive timeouts (Node's 5 s). */
const FREE_SOCKET_TIMEOUT_MS = 4_000;
/** How often idle pooled sockets are looked at (so one is closed after 3 to 4 s idle). */
const FREE_SOCKET_SWEEP_MS = 1_000;

/** When a pooled socket was last returned to the pool (ms since the epoch). */
const FREED_AT = Symbol('freedAt');
/** A pooled socket as the agent sees it: Node's `_httpMessage` is the request it last carried. */
type FreedSocket = Socket & { [FREED_AT]?: number; _httpMessage?: { res?: IncomingMessage | null } | null };
/** TCP keep-alive probe delay of pooled sockets, ms (Node's default). */
const KEEP_ALIVE_MSECS = 1_000;

/** Whether a `Keep-Alive: timeout=N` hint (seconds) leaves under a second to reuse the socket (Node's own rule). */
function keepAliveHintTooShort(hint: string): boolean {
  const m = /^timeout=(\d+)/.exec(hint);
  return m !== null && Number.parseInt(m[1]!, 10) * 1000 - 1000 <= 0;
}

/**
 * A keep-alive agent whose idle sockets are closed after {@link FREE_SOCKET_TIMEOUT_MS}, so a socket the
 * other side is closing at that moment is never reused (→ ECONNRESET, 502). One sweep timer per agent,
 * instead of Node's per-socket inactivity timeout (`timeout`), which is re-armed on every read and write.
 */
function keepAliveAgent(module: typeof http | typeof https): http.Agent {
  // https.Agent extends http.Agent: one base type for both.
  const Base = module.Agent as typeof http.Agent;
  const agent = new (class extends Base {
    /**
     * Node's `keepSocketAlive` (Node 20): TCP keep-alive on, socket unref'd, and not kept if the server's
     * `Keep-Alive: timeout=N` hint leaves less than a second. The hint is read from the answer's
     * `rawHeaders`: Node's own reads `res.headers`, which builds the answer's header object only for
     * that. This runs once per request. Node reads the result (true: keep); @types/node declares void.
     */
    override keepSocketAlive(socket: Duplex): void {
      const s = socket as FreedSocket;
      const res = s._httpMessage?.res;
      const hint = res ? rawHeader(res.rawHeaders, 'keep-alive') : undefined;
      if (hint !== undefined && keepAliveHintTooShort(hint)) return false as unknown as void;
      s.setKeepAlive(true, KEEP_ALIVE_MSECS);
      s.unref();
      if (s.timeout) s.setTimeout(0);
      // A property of the socket, not a WeakMap entry.
      s[FREED_AT] = Date.now();
      return true as unknown as void;
    }
  })({ keepAlive: true, keepAliveMsecs: KEEP_ALIVE_MSECS, maxFreeSockets: 256, scheduling: 'lifo' });
  const sweep = setInterval(() => {
    const stale = Date.now() - (FREE_SOCKET_TIMEOUT_MS - FREE_SOCKET_SWEEP_MS);
    for (const sockets of Object.values(agent.freeSockets)) {
      for (const socket of sockets ?? []) if (((socket as FreedSocket)[FREED_AT] ?? 0) <= stale) socket.destroy();
    }
  }, FREE_SOCKET_SWEEP_MS);
  sweep.unref();
  const destroy = agent.destroy.bind(agent);
  agent.destroy = () => {
    clearInterval(sweep);
    destroy();
  };
  return agent;
}

/**
 * How long the head of an answer may wait for its first body bytes before it is sent on its own.
 * Sending it together with the first bytes (usually the whole answer) saves a write per request.
 */
export const HEAD_DEFER_MS = 50;

/** One HTTP(S) origin reached over a keep-alive agent; the URL is parsed once, not per request. */
export class HttpTarget {
  /** `Host` header value of every request. */
  readonly host: string;
  readonly #module: typeof http | typeof https;
  readonly #agent: http.Agent;
  readonly #options: { protocol: string; hostname: string; port: number | undefined; auth?: string };

  constructor(url: URL) {
    this.#module = url.protocol === 'https:' ? https : http;
    this.#agent = keepAliveAgent(this.#module);
    this.host = url.host;
    this.#options = {
      protocol: url.protocol,
      // `[::1]` → `::1` for the socket; the Host header keeps the brackets.
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port ? Number(url.port) : undefined,
    };
    if (url.username || url.password) this.#options.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  }

  /**
   * Starts one request and ends its body; the caller listens for `response` and `error`. `headers` is
   * an object, or a flat `[name, value, …]` list that includes `host` (the per-request hot path, which
   * skips Node's per-header bookkeeping).
   */
  send(method: string, path: string, headers: OutgoingHttpHeaders | string[], body?: Buffer | string): ClientRequest {
    const req = this.#module.request({ ...this.#options, method, path, headers, agent: this.#agent });
    req.end(body);
    return req;
  }

  /** Closes pooled connections. */
  close(): void {
    this.#agent.destroy();
  }
}

/**
 * A request's headers for the next hop as a flat `[name, value, …]` list: `host` first, then the
 * client's headers minus `drop` (lower-case names), then `extra`. Built in one pass: this runs per request.
 */
export function requestHeaders(headers: IncomingHttpHeaders, host: string, drop: ReadonlySet<string>, extra: readonly string[] = []): string[] {
  const out = ['host', host];
  for (const name in headers) {
    if (drop.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  for (const v of extra) out.push(v);
  return out;
}

/**
 * The first value of header `name` (lower-case) in a `rawHeaders` list, or `undefined`. Reading an
 * answer's headers this way spares Node building its `headers` object (which it does lazily, on first
 * access, for every header): this runs per request.
 */
export function rawHeader(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}

/** Response headers always dropped by the relay: hop-by-hop ones (RFC 9110 §7.6.1). */
export const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set(HOP_BY_HOP_HEADERS);

/**
 * An answer's headers for the client as a flat list: the other side's, in its order and spelling, minus
 * `drop` (lower-case names). `contentLength` replaces its `Content-Length` when given.
 */
export function responseHeaders(raw: readonly string[], drop: ReadonlySet<string>, contentLength?: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (drop.has(lower) || (contentLength !== undefined && lower === 'content-length')) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  if (contentLength !== undefined) out.push('content-length', String(contentLength));
  return out;
}

/** Statuses that must not carry a body, hence no `Content-Length` of ours either. */
const isBodyless = (status: number) => status === 204 || status === 304 || (status >= 100 && status < 200);

export interface RelayOptions {
  /** Response headers not passed on (besides hop-by-hop ones, which the caller includes). */
  drop: ReadonlySet<string>;
  /** Send the head at once (a stream the client may wait on); otherwise with the first body bytes, or after {@link HEAD_DEFER_MS}. */
  flushHead: boolean;
  /** Keep up to this many bytes of the relayed body as text, for {@link onBroken}. */
  keep?: number;
  /**
   * The answer broke off before its end (the other side died): return what to write before ending the
   * client's response cleanly (`''` to just end it), or `undefined` to cut it (the client sees the
   * failure). `relayed` is the kept text, if it stayed within {@link keep}. Default: cut.
   */
  onBroken?: (relayed: string | undefined) => string | undefined;
}

/** The source of a relayed answer, as the relay sees it: it can be paused while the client's socket buffer is full. */
export interface RelayFlow {
  pause(): void;
  resume(): void;
}

/**
 * Writes an answer to the client as it arrives, with as few socket writes as possible:
 * - chunks that arrive together are written together, one write per event-loop turn (`setImmediate`),
 *   so nothing waits longer than the current turn: SSE events still stream unbuffered;
 * - unless `flushHead`, the head goes out with the first body bytes (or after {@link HEAD_DEFER_MS});
 * - an answer complete before anything was written (the usual case) goes out as head, body and end in
 *   one write, with a `Content-Length` instead of chunked framing.
 * Backpressure: the source is paused while the client's socket buffer is full. The source calls
 * {@link head} once, then {@link data} per chunk, then {@link end} or {@link broken}. One writer for both
 * kinds of source: a node:http `IncomingMessage` ({@link relayResponse}) and an undici dispatch handler
 * (http/dispatch.ts).
 */
export class ResponseWriter {
  #status = 502;
  #raw: readonly string[] = [];
  #chunks: Buffer[] = [];
  #size = 0;
  #headSent = false;
  #scheduled = false;
  #ended = false;
  #paused = false;
  #headTimer: NodeJS.Timeout | undefined;
  #kept: string | undefined;

  constructor(
    readonly out: ServerResponse,
    readonly o: RelayOptions,
    readonly flow: RelayFlow,
  ) {
    this.#kept = o.keep !== undefined ? '' : undefined;
  }

  #gone(): boolean {
    return this.out.destroyed || this.out.writableEnded;
  }

  #sendHead(): void {
    this.#headSent = true;
    clearTimeout(this.#headTimer);
    this.out.writeHead(this.#status, responseHeaders(this.#raw, this.o.drop));
  }

  #writeChunks(): void {
    let ok = true;
    for (const c of this.#chunks) ok = this.out.write(c) && ok;
    this.#chunks = [];
    this.#size = 0;
    if (!ok && !this.#paused) {
      this.#paused = true;
      this.flow.pause();
      this.out.once('drain', () => {
        this.#paused = false;
        this.flow.resume();
      });
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#chunks.length === 0 || this.#gone() || this.#ended) return;
    if (!this.#headSent) this.#sendHead();
    this.#writeChunks();
  };

  /** The answer's status and raw header list (`[name, value, …]`). */
  head(status: number, raw: readonly string[]): void {
    this.#status = status;
    this.#raw = raw;
    if (this.o.flushHead) {
      this.#sendHead();
      this.out.flushHeaders();
      return;
    }
    // Armed only if the answer is not over by the next turn (the usual answer is): no timer per request.
    setImmediate(() => {
      if (this.#headSent || this.#gone() || this.#ended) return;
      this.#headTimer = setTimeout(() => {
        if (!this.#headSent && !this.#gone()) {
          this.#sendHead();
          this.out.flushHeaders();
        }
      }, HEAD_DEFER_MS);
    });
  }

  data(c: Buffer): void {
    if (this.#kept !== undefined) this.#kept = this.#kept.length + c.length <= this.o.keep! ? this.#kept + c.toString('utf8') : undefined;
    this.#chunks.push(c);
    this.#size += c.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** The answer is complete. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#gone()) return;
    if (!this.#headSent) {
      this.#headSent = true;
      clearTimeout(this.#headTimer);
      const body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
      const bodyless = isBodyless(this.#status);
      this.out.writeHead(this.#status, responseHeaders(this.#raw, this.o.drop, bodyless ? undefined : body.length));
      this.out.end(bodyless ? undefined : body);
      return;
    }
    this.#writeChunks();
    this.out.end();
  }

  /** The answer broke off before its end (the other side died): see {@link RelayOptions.onBroken}. */
  broken(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#headTimer);
    if (this.#gone()) return;
    const tail = this.o.onBroken?.(this.#kept);
    if (tail === undefined) return void this.out.destroy();
    if (!this.#headSent) this.#sendHead();
    this.#writeChunks();
    this.out.end(tail);
  }
}

/** Relays a node:http answer to the client with a {@link ResponseWriter}. The caller ends `res` when the client goes away. */
export function relayResponse(res: IncomingMessage, out: ServerResponse, o: RelayOptions): void {
  const w = new ResponseWriter(out, o, { pause: () => res.pause(), resume: () => res.resume() });
  w.head(res.statusCode ?? 502, res.rawHeaders);
  res.on('data', (c: Buffer) => w.data(c));
  res.once('end', () => w.end());
  const onBroken = () => {
    if (!res.complete) w.broken();
  };
  res.on('error', onBroken);
  res.once('aborted', onBroken);
  res.once('close', onBroken);
}
