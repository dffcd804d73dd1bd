/**
 * Owner affinity (`mcp-migrate proxy --affinity owner`, docs/proxy.md "Owner affinity"): for servers
 * with hidden per-session state that no handshake replay rebuilds (the analyzer's `owner-routing`
 * verdict), the replica that created a session keeps serving it. Other replicas forward the client's
 * HTTP request to it; if it is gone, one of them claims the session and serves it by handshake replay,
 * so the client keeps its `Mcp-Session-Id` and never initializes again.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { ErrorCode } from '@mcp-migrate/runtime';
import type { MessageBus, SessionEvent } from '@mcp-migrate/runtime';
import type { ReplicaRegistry } from '@mcp-migrate/runtime';
import { sessionFingerprint } from '@mcp-migrate/runtime';
import type { SessionStore } from '@mcp-migrate/runtime';
import { HOP_BY_HOP_HEADERS, sendJsonRpcError } from './http-util.js';
import type { LocalSession, SessionManager } from './sessions.js';

/**
 * Request header of a forwarded request: `<from replica id, URI-encoded>;<MAC>`, the MAC being
 * base64url(HMAC-SHA256(key, session id, from, to)[0..16]) with a key derived from the session secret.
 * A request carrying it is never forwarded again (no loops); one whose MAC does not verify for this
 * replica (forged by a client, or sent to a restarted replica at the same address) gets 421.
 */
export const FORWARDED_HEADER = 'x-mcp-migrate-forwarded';
/** Response header of this proxy's own 421 answers to a forwarded request (vs. any other 421). */
export const MISDIRECTED_HEADER = 'x-mcp-migrate-misdirected';

const MAC_BYTES = 16;
/** Rounds of forward / claim / reload before giving up with 503 (ownership changing under our feet). */
const MAX_ROUNDS = 3;
/** Polling of a local upstream session that must be closed once idle, and the longest wait, ms. */
const RELEASE_POLL_MS = 250;
const RELEASE_MAX_WAIT_MS = 60_000;

/** Signs and verifies {@link FORWARDED_HEADER} values. The first secret signs; every secret verifies. */
export class ForwardingMac {
  readonly #keys: Buffer[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new RangeError('ForwardingMac needs at least one secret');
    // A key of its own, derived once: never the key that signs session ids.
    this.#keys = secrets.map((s) => createHmac('sha256', Buffer.from(s, 'utf8')).update('mcp-migrate/owner-forward/v1').digest());
  }

  /** The header value for a request of session `sessionId` forwarded by replica `from` to replica `to`. */
  header(sessionId: string, from: string, to: string): string {
    return `${encodeURIComponent(from)};${this.#mac(this.#keys[0]!, sessionId, from, to).toString('base64url')}`;
  }

  /** The sending replica's id if `value` was made by {@link header} for (`sessionId`, any sender, `to`); else `undefined`. */
  verify(value: string, sessionId: string, to: string): string | undefined {
    const cut = value.lastIndexOf(';');
    if (cut <= 0) return undefined;
    let from: string;
    try {
      from = decodeURIComponent(value.slice(0, cut));
    } catch {
      return undefined;
    }
    const mac = Buffer.from(value.slice(cut + 1), 'base64url');
    if (mac.length !== MAC_BYTES) return undefined;
    for (const key of this.#keys) if (timingSafeEqual(mac, this.#mac(key, sessionId, from, to))) return from;
    return undefined;
  }

  #mac(key: Buffer, sessionId: string, from: string, to: string): Buffer {
    // Length-prefixed fields: no two (sid, from, to) triples hash the same input.
    return createHmac('sha256', key)
      .update(`${sessionId.length}:${sessionId}|${from.length}:${from}|${to}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}

export interface OwnerRoutingOptions {
  /** This replica's id (`SessionManager.replicaId`): the value of `owner` in records it owns. */
  replicaId: string;
  registry: ReplicaRegistry;
  sessions: SessionManager;
  store: SessionStore;
  bus: MessageBus;
  /** Channel of {@link SessionEvent}s (takeovers are announced there as `owner` events). */
  busChannel: string;
  /** The session secrets (the first signs forwarding headers, all verify). */
  sessionSecrets: readonly string[];
  /** Where the forwarding counters are registered (the proxy's own registry). */
  metricsRegistry: Registry;
  logger: Logger;
  /** Answers a request that failed with `err` (store down → 503, session gone → 404, …). */
  fail: (res: ServerResponse, err: unknown) => void;
  /** Longest wait for a TCP connection to the owner before it counts as down, ms. Default 2,000. */
  connectTimeoutMs?: number;
}

/** What one forward attempt came to. */
type ForwardResult = 'done' | 'down' | 'misdirected';
/** `outcome` label values of `mcp_migrate_owner_forwards_total`. */
const FORWARD_OUTCOMES = ['ok', 'owner_down', 'owner_unregistered', 'misdirected', 'broken'] as const;
type ForwardOutcome = (typeof FORWARD_OUTCOMES)[number];

class OwnerGoneError extends Error {
  readonly code = 'EOWNERGONE';
}

/**
 * Routes requests of sessions owned by other replicas (see the module comment). One per proxy;
 * {@link route} and {@link routeDelete} are the hooks `server.ts` calls once a session is resolved.
 */
export class OwnerRouting {
  readonly replicaId: string;
  readonly registry: ReplicaRegistry;
  readonly #o: OwnerRoutingOptions;
  readonly #mac: ForwardingMac;
  readonly #agents = { http: new http.Agent({ keepAlive: true, maxFreeSockets: 256 }), https: new https.Agent({ keepAlive: true, maxFreeSockets: 256 }) };
  readonly #forwards: Map<ForwardOutcome, { inc(): void }> = new Map();
  readonly #received: Counter<'outcome'>;
  readonly #takeovers: Counter;
  readonly #releasing = new Set<string>();
  #selfUrl: string | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #closed = false;

  constructor(options: OwnerRoutingOptions) {
    this.#o = options;
    this.replicaId = options.replicaId;
    this.registry = options.registry;
    this.#mac = new ForwardingMac(options.sessionSecrets);
    const registers = [options.metricsRegistry];
    const forwards = new Counter({
      name: 'mcp_migrate_owner_forwards_total',
      help: 'Owner affinity: requests for sessions owned by another replica, by outcome (ok: answered by the owner; owner_down: the owner could not be reached and the session was taken over; owner_unregistered: the owner was not in the replica registry; misdirected: the target was no longer the owner; broken: the owner\'s answer broke off mid-stream)',
      labelNames: ['outcome'],
      registers,
    });
    for (const o of FORWARD_OUTCOMES) this.#forwards.set(o, forwards.labels(o));
    this.#received = new Counter({
      name: 'mcp_migrate_owner_forwarded_received_total',
      help: 'Owner affinity: requests forwarded to this replica by another one (served, or refused with 421)',
      labelNames: ['outcome'],
      registers,
    });
    this.#takeovers = new Counter({
      name: 'mcp_migrate_owner_takeovers_total',
      help: 'Owner affinity: sessions this replica claimed (their owner was gone, or they had none) and serves by handshake replay',
      registers,
    });
  }

  /** Registers this replica at `url` (heartbeats start) and listens for takeovers by other replicas. */
  async start(url: string): Promise<void> {
    this.#selfUrl = url;
    await this.registry.register({ replicaId: this.replicaId, url });
    try {
      this.#unsubscribe = await this.#o.bus.subscribe(this.#o.busChannel, (m) => this.#onEvent(m));
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'owner affinity: could not subscribe to session events');
    }
  }

  /** The URL other replicas reach this one at (after {@link start}). */
  get url(): string | undefined {
    return this.#selfUrl;
  }

  /** Removes this replica from the registry (first step of a graceful shutdown). Never rejects. */
  async deregister(): Promise<void> {
    await this.registry.deregister();
  }

  /** Deregisters, stops listening and closes idle forwarding connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.registry.deregister();
    await this.#unsubscribe?.().catch(() => undefined);
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /**
   * The hook for POST and GET, called once the session id is verified and the session resolved.
   * Resolves to the session to serve locally (owned here, just claimed, or forwarded to us), or to
   * `undefined` when the request was answered (forwarded to the owner, or an error). `body` is the
   * POST body as received (it is kept so that a request can still be served here if the owner turns
   * out to be down). Never rejects.
   */
  async route(session: LocalSession, req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<LocalSession | undefined> {
    const forwarded = req.headers[FORWARDED_HEADER];
    if (forwarded !== undefined) return this.#acceptForwarded(session, res, forwarded) ? session : undefined;
    let s = session;
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const owner = s.record.owner;
        if (owner === this.replicaId) return s;
        if (owner !== undefined) {
          const url = await this.registry.lookup(owner);
          if (url !== undefined && url !== this.#selfUrl) {
            this.#release(s);
            const result = await this.#forward(url, owner, s.id, req, res, body);
            if (result === 'done') return undefined;
            if (result === 'misdirected') {
              const fresh = await this.#reload(s);
              if (!fresh) return this.#gone(res);
              s = fresh;
              if (s.record.owner !== owner) continue; // it moved: route again
            }
            this.registry.markDown(owner);
          } else {
            this.#count('owner_unregistered');
          }
        }
        if (await this.#claim(s, owner)) return s;
        const fresh = await this.#reload(s);
        if (!fresh) return this.#gone(res);
        s = fresh;
      }
      sendJsonRpcError(res, 503, ErrorCode.ServerError, 'Service Unavailable: the owner of this session keeps changing', { headers: { 'retry-after': '1' } });
      return undefined;
    } catch (err) {
      this.#o.fail(res, err);
      return undefined;
    }
  }

  /**
   * The hook for DELETE, once the session id is verified: forwards it to a live owner known from the
   * local cache (so the owner closes its upstream session at once), else lets this replica delete the
   * record (the owner hears of it over the bus). Resolves true if the request was answered.
   */
  async routeDelete(sessionId: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const forwarded = req.headers[FORWARDED_HEADER];
    if (forwarded !== undefined) {
      const value = Array.isArray(forwarded) ? forwarded.join(',') : forwarded;
      if (this.#mac.verify(value, sessionId, this.replicaId) !== undefined) {
        this.#received.labels('served').inc();
        return false;
      }
      this.#misdirected(res, 'forwarding header not valid for this replica');
      return true;
    }
    const owner = this.#o.sessions.peek(sessionId)?.record.owner;
    if (owner === undefined || owner === this.replicaId) return false;
    let url: string | undefined;
    try {
      url = await this.registry.lookup(owner);
    } catch {
      return false;
    }
    if (url === undefined || url === this.#selfUrl) return false;
    const result = await this.#forward(url, owner, sessionId, req, res, undefined);
    if (result === 'down') this.registry.markDown(owner);
    return result === 'done';
  }

  #acceptForwarded(session: LocalSession, res: ServerResponse, header: string | string[]): boolean {
    const value = Array.isArray(header) ? header.join(',') : header;
    if (this.#mac.verify(value, session.id, this.replicaId) === undefined) {
      this.#misdirected(res, 'forwarding header not valid for this replica');
      return false;
    }
    const owner = session.record.owner;
    if (owner !== undefined && owner !== this.replicaId) {
      // Our record says another replica took the session over: the sender's view is older than ours.
      this.#misdirected(res, 'this replica no longer owns the session');
      return false;
    }
    this.#received.labels('served').inc();
    return true;
  }

  #misdirected(res: ServerResponse, why: string): void {
    this.#received.labels('refused').inc();
    sendJsonRpcError(res, 421, ErrorCode.ServerError, `Misdirected Request: ${why}`, { headers: { [MISDIRECTED_HEADER]: '1' } });
  }

  #gone(res: ServerResponse): undefined {
    sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, 'Session not found');
    return undefined;
  }

  #count(outcome: ForwardOutcome): void {
    this.#forwards.get(outcome)!.inc();
  }

  /** Compare-and-set the owner from `expected` to this replica; on success the local record says so too. */
  async #claim(s: LocalSession, expected: string | undefined): Promise<boolean> {
    if (!(await this.#o.store.claimOwner(s.id, expected, this.replicaId))) return false;
    s.record = { ...s.record, owner: this.replicaId };
    this.#takeovers.inc();
    this.#o.logger.info({ session: sessionFingerprint(s.id), previous: expected ?? null }, 'took the session over (owner affinity)');
    const event: SessionEvent = { type: 'owner', sessionId: s.id, owner: this.replicaId, origin: this.replicaId };
    this.#o.bus.publish(this.#o.busChannel, JSON.stringify(event)).catch(() => undefined);
    return true;
  }

  /** Reloads the record from the store (one round trip). `undefined`: the session is gone. */
  async #reload(s: LocalSession): Promise<LocalSession | undefined> {
    s.stale = true;
    return await this.#o.sessions.resolve(s.id, s.record.principal);
  }

  /**
   * A local upstream session of a session owned elsewhere (we owned it before another replica took
   * it over) is closed once idle, so no two replicas keep upstream state of one session.
   */
  #release(s: LocalSession): void {
    if (!s.upstream || s.upstream.closed || this.#releasing.has(s.id)) return;
    const id = s.id;
    this.#releasing.add(id);
    const deadline = Date.now() + RELEASE_MAX_WAIT_MS;
    const tick = (): void => {
      const cur = this.#o.sessions.peek(id);
      if (!cur || !cur.upstream || cur.upstream.closed || cur.record.owner === undefined || cur.record.owner === this.replicaId) {
        this.#releasing.delete(id);
        return;
      }
      if ((cur.upstream.busy || cur.opening || cur.syncing) && Date.now() < deadline) {
        setTimeout(tick, RELEASE_POLL_MS).unref();
        return;
      }
      this.#releasing.delete(id);
      this.#o.logger.info({ session: sessionFingerprint(id), owner: cur.record.owner }, 'closing the upstream session of a session another replica took over');
      void this.#o.sessions.drop(id, 'evicted');
    };
    tick();
  }

  #onEvent(raw: string): void {
    let event: SessionEvent;
    try {
      event = JSON.parse(raw) as SessionEvent;
    } catch {
      return;
    }
    if (event.type !== 'owner' || event.origin === this.replicaId) return;
    const s = this.#o.sessions.peek(event.sessionId);
    if (!s) return;
    s.record = { ...s.record, owner: event.owner };
    this.#release(s);
  }

  /** Forwards the request to `url`; one more attempt on a fresh connection if a reused keep-alive one was reset. */
  async #forward(url: string, owner: string, sessionId: string, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): Promise<ForwardResult> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      this.#o.logger.warn({ owner }, 'owner affinity: the registry holds an invalid URL for the owner');
      this.#count('owner_down');
      return 'down';
    }
    const headers = forwardHeaders(req.headers, target.host, this.#mac.header(sessionId, this.replicaId, owner), body?.length);
    let result = await this.#attempt(target, owner, req, res, headers, body, true);
    if (result === 'retry') result = await this.#attempt(target, owner, req, res, headers, body, false);
    if (result === 'retry') result = 'down';
    if (result === 'down') {
      this.#count('owner_down');
      this.#o.logger.info({ session: sessionFingerprint(sessionId), owner }, 'owner unreachable; taking the session over');
    } else if (result === 'misdirected') this.#count('misdirected');
    return result;
  }

  #attempt(
    target: URL,
    owner: string,
    req: IncomingMessage,
    res: ServerResponse,
    headers: string[],
    body: Buffer | undefined,
    mayRetry: boolean,
  ): Promise<ForwardResult | 'retry'> {
    const isHttps = target.protocol === 'https:';
    return new Promise((resolve) => {
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      let watch: NodeJS.Timeout | undefined;
      const settle = (r: ForwardResult | 'retry'): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearInterval(watch);
        resolve(r);
      };
      const out = (isHttps ? https : http).request({
        protocol: target.protocol,
        hostname: target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname,
        port: target.port || (isHttps ? 443 : 80),
        method: req.method,
        path: req.url,
        headers,
        agent: isHttps ? this.#agents.https : this.#agents.http,
      });
      const onClientGone = (): void => {
        if (!res.writableFinished) out.destroy();
        settle('done');
      };
      res.once('close', onClientGone);
      out.on('socket', (socket: Socket) => {
        if (socket.connecting) {
          socket.setNoDelay(true); // a reused keep-alive socket keeps it
          connectTimer = setTimeout(() => out.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), this.#o.connectTimeoutMs ?? 2_000);
          socket.once('connect', () => clearTimeout(connectTimer));
        }
      });
      // An owner that stopped (hung, cut off) without closing its sockets is noticed by its heartbeats
      // running out: stop waiting for its answer then, and take over.
      watch = setInterval(() => {
        this.registry.lookup(owner, { fresh: true }).then(
          (u) => {
            if (u === undefined && !settled) out.destroy(new OwnerGoneError('owner left the replica registry'));
          },
          () => undefined,
        );
      }, this.registry.ttlMs);
      watch.unref();
      out.on('response', (up) => {
        clearInterval(watch);
        if (up.statusCode === 421 && up.headers[MISDIRECTED_HEADER] !== undefined) {
          up.resume();
          settle('misdirected');
          return;
        }
        this.#count('ok');
        settle('done');
        relay(up, res, req.method === 'GET', body, () => this.#count('broken'));
      });
      out.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        if (res.destroyed || res.writableEnded) return settle('done');
        if (mayRetry && out.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return settle('retry');
        this.#o.logger.debug({ owner, err: err.message }, 'forward to the owner failed');
        settle('down');
      });
      out.end(body);
    });
  }
}

const FORWARD_DROP = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length', FORWARDED_HEADER]);

/** The client's headers minus hop-by-hop ones, with the owner's `host`, the body length and the forwarding header. */
function forwardHeaders(headers: IncomingHttpHeaders, host: string, forwarded: string, contentLength: number | undefined): string[] {
  const out = ['host', host];
  for (const name in headers) {
    if (FORWARD_DROP.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (contentLength !== undefined) out.push('content-length', String(contentLength));
  out.push(FORWARDED_HEADER, forwarded);
  return out;
}

const RESPONSE_DROP = new Set(HOP_BY_HOP_HEADERS);
/** How much of a relayed POST SSE stream is kept to tell, if it breaks, which requests got no response. */
const KEPT_SSE_BYTES = 256 * 1024;

/**
 * Streams the owner's answer back unbuffered (SSE events as they arrive), with backpressure. If the
 * owner's answer breaks off (the owner died mid-answer):
 * - a GET (standalone SSE stream) is ended cleanly, so the client reconnects to whichever replica
 *   then serves the session;
 * - a POST answered with an SSE stream gets, for each request of `body` whose response had not been
 *   relayed, a JSON-RPC error (-32603) event, then the stream ends: the client's request fails at once
 *   (and may be retried) instead of waiting for a response that will never come;
 * - any other answer is cut, so the client sees the failure.
 */
function relay(up: IncomingMessage, res: ServerResponse, isGet: boolean, body: Buffer | undefined, onBroken: () => void): void {
  const headers: Record<string, string | string[]> = {};
  for (const name in up.headers) {
    if (RESPONSE_DROP.has(name)) continue;
    const v = up.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  if (res.destroyed || res.writableEnded) {
    up.destroy();
    return;
  }
  const sse = String(up.headers['content-type'] ?? '').includes('text/event-stream');
  res.writeHead(up.statusCode ?? 502, headers);
  if (sse) res.flushHeaders();
  // Kept only for a POST's SSE answer, and only until it grows past KEPT_SSE_BYTES.
  let kept: string | undefined = sse && !isGet && body ? '' : undefined;
  const gone = (): boolean => res.destroyed || res.writableEnded;
  up.on('data', (chunk: Buffer) => {
    if (gone()) return;
    if (kept !== undefined) kept = kept.length + chunk.length <= KEPT_SSE_BYTES ? kept + chunk.toString('utf8') : undefined;
    if (!res.write(chunk)) up.pause();
  });
  res.on('drain', () => up.resume());
  res.once('close', () => {
    if (!up.complete) up.destroy();
  });
  up.once('end', () => {
    if (!gone()) res.end();
  });
  up.on('error', () => undefined);
  up.once('close', () => {
    if (up.complete || gone()) return;
    onBroken();
    if (isGet) return void res.end();
    const epilogue = kept !== undefined && body ? unansweredErrors(body, kept) : undefined;
    if (epilogue !== undefined) res.end(epilogue);
    else res.destroy();
  });
}

/**
 * SSE events with a JSON-RPC error for each request in `body` (a JSON-RPC message or batch) that has
 * no response among the `data:` lines of `relayed`; `undefined` if either cannot be read.
 */
export function unansweredErrors(body: Buffer, relayed: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const ids: (string | number)[] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    const id = (m as { id?: unknown; method?: unknown } | null)?.id;
    if ((typeof id === 'string' || typeof id === 'number') && typeof (m as { method?: unknown }).method === 'string') ids.push(id);
  }
  const answered = new Set<string | number>();
  for (const line of relayed.split('\n')) {
    if (!line.startsWith('data:')) continue;
    try {
      const m = JSON.parse(line.slice(5)) as { id?: unknown; method?: unknown; result?: unknown; error?: unknown };
      if ((typeof m.id === 'string' || typeof m.id === 'number') && m.method === undefined && ('result' in m || 'error' in m)) answered.add(m.id);
    } catch {
      // an event cut off mid-line
    }
  }
  const missing = ids.filter((id) => !answered.has(id));
  // A blank line first ends an event the owner may have left half-written.
  let out = relayed.endsWith('\n\n') || relayed.length === 0 ? '' : '\n\n';
  for (const id of missing) {
    const error = { jsonrpc: '2.0', id, error: { code: ErrorCode.InternalError, message: 'Internal error: the replica serving this session was lost while answering; the request may or may not have run' } };
    out += `event: message\ndata: ${JSON.stringify(error)}\n\n`;
  }
  return out;
}
