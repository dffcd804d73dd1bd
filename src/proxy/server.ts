import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  classifyMessage,
  ErrorCode,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '@mcp-migrate/runtime';
import { MemoryMessageBus, SESSION_EVENTS_CHANNEL, type MessageBus } from '@mcp-migrate/runtime';
import {
  allowsBatches,
  DEFAULT_NEGOTIATED_PROTOCOL_VERSION,
  HANDSHAKE_METHODS,
  LAST_EVENT_ID_HEADER,
  PROTOCOL_VERSION_HEADER,
  RUNTIME_ID_PREFIX,
  SESSION_ID_HEADER,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@mcp-migrate/runtime';
import { sessionChangeOf, type SessionChange } from '@mcp-migrate/runtime';
import { SessionIdCodec, sessionFingerprint, type VerifiedSessionId } from '@mcp-migrate/runtime';
import { SessionStoreUnavailableError, type SessionStore } from '@mcp-migrate/runtime';
import { BusServerRequestRouter, isRewrittenId, newReplicaId, REPLICA_ID_PATTERN, type ServerRequestRouter } from '@mcp-migrate/runtime';
import { MemorySessionStreams, type SessionStreams } from '@mcp-migrate/runtime';
import { serveSessionStream } from '@mcp-migrate/runtime';
import { MemoryReplicaRegistry, type ReplicaRegistry } from '@mcp-migrate/runtime';
import { VERSION } from '../version.js';
import { BodyTooLargeError, headerValue, readBody, sendJsonRpcError } from './http-util.js';
import { createLegacySseFront, type LegacySseOptions } from './legacy-sse.js';
import { classifyPost } from './modern/classify.js';
import { ModernFront, type ModernTuning } from './modern/front.js';
import { createLogger } from './logger.js';
import { ProxyMetrics } from './metrics.js';
import { OwnerRouting } from './owner-routing.js';
import { CapacityError, SessionGoneError, SessionManager, type LocalSession } from './sessions.js';
import { UpstreamError, UpstreamLostSessionError, type ClientPost, type UpstreamConnector, type UpstreamSession } from './upstream.js';

/** Response header naming the replica that answered (tests and operators see who served what). */
export const REPLICA_HEADER = 'x-mcp-migrate-replica';

export interface ProxyOptions {
  /** Shared session store (memory for one replica, Redis for several). */
  store: SessionStore;
  /** How to reach the MCP server. */
  upstream: UpstreamConnector;
  /** Secrets for session ids; the first mints, all verify. Replicas must share them. */
  sessionSecrets: readonly string[];
  /** Cross-replica events. Default: an in-process bus (one replica). */
  bus?: MessageBus;
  /**
   * This replica's id: in rewritten server-request ids, bus channel names and the
   * `x-mcp-migrate-replica` response header. 1–64 of `A-Z a-z 0-9 _ -`. Default: 10 random base36 characters.
   */
  replicaId?: string;
  /**
   * Server-to-client SSE streams shared by the replicas (standalone streams, resumable POST streams).
   * Default: {@link MemorySessionStreams} (one replica). Replicas sharing Redis use `RedisSessionStreams`.
   */
  streams?: SessionStreams;
  /**
   * Routing of clients' answers to server-initiated requests. Default: a `BusServerRequestRouter` on
   * `bus` with this replica's id. If given, its `replicaId` must equal {@link replicaId}.
   */
  router?: ServerRequestRouter;
  /** Interval of SSE keep-alive comments on GET streams, ms. Default 15,000. */
  keepAliveMs?: number;
  /** `retry:` of the priming event sent on standalone GET streams of 2025-11-25+ sessions, ms. Default 1,000. */
  sseRetryMs?: number;
  /** Channel name for session events. Default `mcpm:session-events`. */
  busChannel?: string;
  /** MCP endpoint path. Default `/mcp`. */
  path?: string;
  /** Health endpoint path. Default `/healthz`. */
  healthPath?: string;
  /** Readiness endpoint path. Default `/readyz`. */
  readyPath?: string;
  /** Prometheus metrics endpoint path. Default `/metrics`. */
  metricsPath?: string;
  /** Header whose value identifies the principal (lower-case). Default `authorization`. */
  principalHeader?: string;
  /** If set, requests whose `Origin` header is present and not listed get 403. */
  allowedOrigins?: readonly string[];
  /**
   * Without `allowedOrigins`: accept only loopback `Origin`s (any port), as a server bound to loopback
   * must against DNS rebinding (spec 2025-06-18+ "Security Warning": validate `Origin`; 2025-11-25: an
   * invalid `Origin` MUST get 403; SDK `createMcpExpressApp` does the same for a 127.0.0.1 host).
   * Requests without `Origin` (non-browser clients) are unaffected.
   */
  loopbackOriginsOnly?: boolean;
  /** Largest accepted POST body, bytes. Default 4 MiB (as SDK 1.x). */
  maxBodyBytes?: number;
  /** Most upstream sessions open on this replica. Default 1000. */
  maxSessions?: number;
  /** Idle time after which an upstream session is closed, ms. Default 300,000. */
  idleTimeoutMs?: number;
  /** Serve the legacy HTTP+SSE transport (2024-11-05) on these paths too (see `legacy-sse.ts`). Off when absent. */
  legacySse?: LegacySseOptions;
  /**
   * `owner`: the replica that created a session keeps serving it and other replicas forward to it
   * (docs/proxy.md "Owner affinity"). Default `none`: any replica serves any session by handshake replay.
   */
  affinity?: 'none' | 'owner';
  /**
   * Owner affinity: the base URL other replicas forward to, `http(s)://HOST:PORT` (no path). Default:
   * `http://<bound address>:<port>`; required when listening on all interfaces.
   */
  advertiseUrl?: string;
  /** Owner affinity: the replica registry shared by all replicas. Default: an in-process one (one replica). */
  registry?: ReplicaRegistry;
  /**
   * Serve 2026-07-28 (stateless) clients on the same endpoint (see `docs/modern.md`). Default true.
   * An object tunes the front (`ModernFrontOptions`: `stateTtlMs`, the
   * lifetime of an MRTR `requestState`, default 600,000 ms; `heartbeatMs`; `inputWindowMs`; `keepAliveMs`).
   */
  modern?: boolean | ModernTuning;
  logger?: Logger;
}

/** A running proxy (see {@link createProxy}). */
export interface McpProxy {
  readonly server: http.Server;
  readonly sessions: SessionManager;
  /** This replica's id (see {@link ProxyOptions.replicaId}). */
  readonly replicaId: string;
  readonly streams: SessionStreams;
  readonly router: ServerRequestRouter;
  readonly options: Readonly<ProxyOptions>;
  /** Starts listening; resolves to the bound address and the MCP endpoint URL. */
  listen(port: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /** This proxy's Prometheus metrics (its own registry). */
  readonly metrics: ProxyMetrics;
  /** False once {@link shutdown} has begun (`/readyz` answers 503). */
  readonly accepting: boolean;
  /**
   * Graceful shutdown: marks the replica not ready, waits `unreadyGraceMs` (default 0) so load
   * balancers notice, stops accepting connections, ends standalone GET SSE streams after a
   * `retry: 1000` line, lets in-flight requests finish for up to `timeoutMs` (default 10,000), then
   * {@link close}s. Resolves to the number of requests still in flight when the timeout cut them off.
   */
  shutdown(opts?: { timeoutMs?: number; unreadyGraceMs?: number }): Promise<number>;
  /** Stops accepting connections, ends open streams, closes upstream sessions, the bus, the store and the connector. */
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 4 * 1024 * 1024;
/** On shutdown, how long idle keep-alive connections stay open for one last request, ms. */
const KEEP_ALIVE_DRAIN_MS = 1_000;

function openConnections(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
}

/**
 * Builds the Streamable HTTP front of `mcp-migrate proxy` (spec 2025-03-26/06-18/11-25
 * `basic/transports.mdx` §Streamable HTTP and §Session Management).
 *
 * Status codes: 400 (no `Mcp-Session-Id` on a non-initialize request, unsupported
 * `MCP-Protocol-Version`, invalid JSON-RPC, batch for ≥ 2025-06-18; malformed JSON gets -32700),
 * 403 (`Origin` not allowed), 404 (unknown, forged, foreign, expired or terminated session: -32001),
 * 405 (other methods), 406 (GET without `text/event-stream`), 413 (body too large), 415 (POST not JSON),
 * 502/504 (upstream failed / timed out), 503 (store unavailable, or `maxSessions` busy; `Retry-After`).
 */
export function createProxy(options: ProxyOptions): McpProxy {
  const logger = options.logger ?? createLogger('info');
  const path = options.path ?? '/mcp';
  const healthPath = options.healthPath ?? '/healthz';
  const readyPath = options.readyPath ?? '/readyz';
  const metricsPath = options.metricsPath ?? '/metrics';
  const principalHeader = (options.principalHeader ?? 'authorization').toLowerCase();
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const allowedOrigins = options.allowedOrigins ? new Set(options.allowedOrigins) : undefined;
  const originAllowed = (origin: string): boolean =>
    allowedOrigins ? allowedOrigins.has(origin) : options.loopbackOriginsOnly ? isLoopbackOrigin(origin) : true;
  const codec = new SessionIdCodec(options.sessionSecrets);
  const verifier = new VerifiedIdCache(codec);
  const replicaId = options.replicaId ?? options.router?.replicaId ?? newReplicaId();
  if (!REPLICA_ID_PATTERN.test(replicaId)) throw new TypeError(`replicaId must be 1-64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(replicaId)}`);
  if (options.router && options.router.replicaId !== replicaId) {
    throw new TypeError(`router.replicaId (${options.router.replicaId}) differs from replicaId (${replicaId})`);
  }
  // Assigned before the store is wrapped; the gauge reads it at scrape time.
  let sessionsRef: SessionManager | undefined;
  const metrics = new ProxyMetrics({ openUpstreams: () => sessionsRef?.openUpstreams ?? 0 });
  const store = metrics.instrumentStore(options.store);
  const connector = options.upstream;
  const bus = options.bus ?? new MemoryMessageBus();
  const streams = options.streams ?? new MemorySessionStreams({ ttlMs: options.store.ttlMs });
  const router =
    options.router ??
    new BusServerRequestRouter({
      bus,
      replicaId,
      onDrop: (reason, sid) => logger.debug({ reason, session: sessionFingerprint(sid) }, 'answer to a server-initiated request dropped'),
    });
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const sseRetryMs = options.sseRetryMs ?? 1_000;
  connector.attach({ streams, router, logger, onStandaloneMessage: () => metrics.standaloneMessages.inc() });
  const busChannel = options.busChannel ?? `mcpm:${SESSION_EVENTS_CHANNEL}`;
  const sessions = new SessionManager({
    replicaId,
    store,
    connector,
    bus,
    busChannel,
    maxSessions: options.maxSessions ?? 1000,
    idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
    logger,
    onHandshakeReplay: () => metrics.handshakeReplays.inc(),
  });
  sessionsRef = sessions;
  const started = Promise.all([sessions.start(), router.ready]).then(() => undefined);
  const owner =
    options.affinity === 'owner'
      ? new OwnerRouting({
          replicaId,
          registry: options.registry ?? new MemoryReplicaRegistry(),
          sessions,
          store,
          bus,
          busChannel,
          sessionSecrets: options.sessionSecrets,
          metricsRegistry: metrics.registry,
          logger,
          fail: (res, err) => fail(res, err),
        })
      : undefined;
  const modern =
    options.modern !== false
      ? new ModernFront({
          sessions,
          store,
          streams,
          router,
          secrets: options.sessionSecrets,
          principalOf: (req) => codec.principalHash(headerValue(req.headers, principalHeader)),
          logger,
          ...(typeof options.modern === 'object' ? options.modern : {}),
        })
      : undefined;

  /** Set by shutdown(): `/readyz` answers 503 and responses carry `Connection: close`. */
  let draining = false;
  /** Requests being answered, except standalone GET SSE streams. */
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  /** Open standalone GET SSE streams, ended with a `retry:` line on shutdown. */
  const getStreams = new Set<ServerResponse>();

  // The legacy HTTP+SSE front (2024-11-05) on its own paths, on the same sessions, streams and router.
  const legacy = options.legacySse
    ? createLegacySseFront(options.legacySse, {
        codec,
        verify: (id, credential) => verifier.verify(id, credential),
        sessions,
        store,
        connector,
        streams,
        router,
        principalHeader,
        maxBodyBytes,
        originAllowed,
        logger,
        fail: (res, err, id) => fail(res, err, id ?? null),
        track: (work) => {
          inFlight++;
          void work.finally(() => {
            if (--inFlight === 0 && onIdle) onIdle();
          });
        },
        draining: () => draining,
        metrics,
      })
    : undefined;

  const debug = logger.isLevelEnabled('debug');
  const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
    const isStream = (req.method === 'GET' && (req.url === path || req.url?.startsWith(`${path}?`))) || (legacy?.isStream(req) ?? false);
    res.setHeader(REPLICA_HEADER, replicaId);
    if (isStream) getStreams.add(res);
    else inFlight++;
    if (draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      metrics.request(req.method, res.statusCode);
      if (isStream) getStreams.delete(res);
      else if (--inFlight === 0 && onIdle) onIdle();
    });
    if (debug) {
      const started = performance.now();
      res.once('close', () => {
        const sid = headerValue(req.headers, SESSION_ID_HEADER) ?? headerValue(res.getHeaders() as http.IncomingHttpHeaders, SESSION_ID_HEADER);
        logger.debug(
          {
            method: req.method,
            status: res.statusCode,
            ms: Math.round((performance.now() - started) * 100) / 100,
            ...(sid ? { session: sessionFingerprint(sid) } : {}),
            ...(res.writableFinished ? {} : { aborted: true }),
          },
          'request',
        );
      });
    }
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'unhandled error in request handler');
      sendJsonRpcError(res, 500, ErrorCode.InternalError, 'Internal error');
    });
  });

  /** Maps a failure to its HTTP answer. */
  function fail(res: ServerResponse, err: unknown, id: JsonRpcRequest['id'] | null = null): void {
    if (err instanceof SessionStoreUnavailableError) {
      logger.warn({ err: err.message }, 'session store unavailable');
      sendJsonRpcError(res, 503, ErrorCode.ServerError, 'Service Unavailable: session store unavailable', { id, headers: { 'retry-after': '1' } });
    } else if (err instanceof CapacityError) {
      logger.warn({ limit: err.limit }, 'no capacity for another upstream session');
      sendJsonRpcError(res, 503, ErrorCode.ServerError, 'Service Unavailable: too many sessions on this replica', { id, headers: { 'retry-after': '1' } });
    } else if (err instanceof SessionGoneError) {
      sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, 'Session not found', { id });
    } else if (err instanceof UpstreamError) {
      logger.warn({ err: err.message }, 'upstream failed');
      const prefix = err.status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
      sendJsonRpcError(res, err.status, ErrorCode.InternalError, `${prefix}: ${err.message}`, { id });
    } else {
      logger.error({ err }, 'request failed');
      sendJsonRpcError(res, 500, ErrorCode.InternalError, 'Internal error', { id });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname === healthPath && (req.method === 'GET' || req.method === 'HEAD')) return await health(res);
    if (pathname === readyPath && (req.method === 'GET' || req.method === 'HEAD')) return await ready(res);
    if (pathname === metricsPath && req.method === 'GET') return await scrape(res);
    if (legacy?.serves(pathname)) return await legacy.handle(req, res, pathname);
    if (pathname !== path) return sendJsonRpcError(res, 404, ErrorCode.ServerError, 'Not Found');
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin)) {
      return sendJsonRpcError(res, 403, ErrorCode.ServerError, 'Forbidden: Origin not allowed');
    }
    const method = req.method ?? '';
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return sendJsonRpcError(res, 405, ErrorCode.ServerError, 'Method Not Allowed', { headers: { allow: 'GET, POST, DELETE' } });
    }
    const sessionless = headerValue(req.headers, SESSION_ID_HEADER) === undefined;
    if (modern && sessionless && method !== 'POST') {
      // No session, no GET stream or DELETE: 2026-07-28 §Backward Compatibility ("respond with 405").
      return sendJsonRpcError(res, 405, ErrorCode.ServerError, 'Method Not Allowed: no session (2026-07-28 clients only POST)', { headers: { allow: 'POST' } });
    }
    // Without a session, a POST's era is known only from its body (the modern front checks its own header).
    if (!(modern && sessionless && method === 'POST') && !legacyVersionOk(req, res)) return;
    if (method === 'POST') return await post(req, res);
    if (method === 'GET') return await get(req, res);
    return await del(req, res);
  }

  /** Answers 400 and returns false for an `MCP-Protocol-Version` no legacy revision has. */
  function legacyVersionOk(req: IncomingMessage, res: ServerResponse): boolean {
    const version = headerValue(req.headers, PROTOCOL_VERSION_HEADER);
    if (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return true;
    sendJsonRpcError(
      res,
      400,
      ErrorCode.ServerError,
      `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`,
    );
    return false;
  }

  async function health(res: ServerResponse): Promise<void> {
    let storeOk = true;
    try {
      await store.ping();
    } catch {
      storeOk = false;
    }
    const body = JSON.stringify({
      status: storeOk ? 'ok' : 'unavailable',
      store: storeOk ? 'ok' : 'unavailable',
      upstream: connector.kind,
      sessions: sessions.size,
      upstreamSessions: sessions.openUpstreams,
      version: VERSION,
    });
    res.writeHead(storeOk ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  /** Ready for new work: not shutting down and the store answers. */
  async function ready(res: ServerResponse): Promise<void> {
    let storeOk = true;
    if (!draining) {
      try {
        await store.ping();
      } catch {
        storeOk = false;
      }
    }
    const ok = !draining && storeOk;
    const body = JSON.stringify({ status: ok ? 'ready' : 'unavailable', store: draining ? 'unchecked' : storeOk ? 'ok' : 'unavailable', shuttingDown: draining });
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  async function scrape(res: ServerResponse): Promise<void> {
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  /**
   * Validates the session header and starts resolving the session (one store command when cached).
   * `undefined` resolution → 404.
   */
  function resolveSession(req: IncomingMessage): { sid: string | undefined; pending?: Promise<LocalSession | undefined> } {
    const sid = headerValue(req.headers, SESSION_ID_HEADER);
    if (sid === undefined) return { sid };
    const verified = verifier.verify(sid, headerValue(req.headers, principalHeader));
    if (!verified) return { sid, pending: Promise.resolve(undefined) };
    const pending = sessions.resolve(sid, verified.principal);
    pending.catch(() => undefined); // observed below; avoid an unhandled rejection if we answer early
    return { sid, pending };
  }

  async function post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { sid, pending } = resolveSession(req);
    const contentType = headerValue(req.headers, 'content-type') ?? '';
    if (!contentType.toLowerCase().includes('application/json')) {
      req.resume();
      return sendJsonRpcError(res, 415, ErrorCode.ServerError, 'Unsupported Media Type: Content-Type must be application/json');
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        return sendJsonRpcError(res, 413, ErrorCode.ServerError, `Payload Too Large: body exceeds ${maxBodyBytes} bytes`, {
          headers: { connection: 'close' },
        });
      }
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendJsonRpcError(res, 400, ErrorCode.ParseError, 'Parse error: Invalid JSON');
    }
    if (modern && sid === undefined) {
      const decision = classifyPost(req.headers, parsed);
      if (decision.era !== 'legacy') return await modern.serve(req, res, decision);
      if (!legacyVersionOk(req, res)) return;
    }
    const batch = Array.isArray(parsed);
    const values = batch ? (parsed as unknown[]) : [parsed];
    if (values.length === 0 || values.some((v) => classifyMessage(v) === undefined)) {
      return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: not a JSON-RPC 2.0 message');
    }
    const messages = values as JsonRpcMessage[];
    if (messages.some((m) => 'id' in m && typeof m.id === 'string' && m.id.startsWith(RUNTIME_ID_PREFIX) && 'method' in m)) {
      return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, `Invalid Request: request ids starting with "${RUNTIME_ID_PREFIX}" are reserved`);
    }
    const init = messages.find((m): m is JsonRpcRequest => isRequest(m) && m.method === HANDSHAKE_METHODS.initialize);
    if (init) {
      if (batch) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: initialize must not be part of a JSON-RPC batch');
      if (sid !== undefined) {
        return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: initialize must be sent without Mcp-Session-Id', { id: init.id });
      }
      return await initialize(req, res, raw, init);
    }
    if (sid === undefined || !pending) {
      return sendJsonRpcError(res, 400, ErrorCode.ServerError, 'Bad Request: Mcp-Session-Id header is required');
    }
    let session: LocalSession | undefined;
    try {
      session = await pending;
    } catch (err) {
      return fail(res, err);
    }
    if (!session) return sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, 'Session not found');
    if (owner && !(session = await owner.route(session, req, res, raw))) return;
    const protocolVersion = session.record.protocolVersion;
    if (batch && !allowsBatches(protocolVersion)) {
      return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, `Invalid Request: JSON-RPC batches are not supported in protocol version ${protocolVersion}`);
    }
    const firstId = messages.length === 1 && isRequest(messages[0]!) ? messages[0].id : null;
    try {
      let p: ClientPost = { req, res, raw, messages, batch, protocolVersion };
      if (messages.some(isAnswerToRewritten)) {
        const rest = await routeAnswers(session, messages);
        if (rest.length === 0) {
          // Spec §Sending Messages to the Server: responses only → 202 Accepted.
          res.writeHead(202).end();
          return;
        }
        if (rest.length !== messages.length) p = { ...p, messages: rest, raw: Buffer.from(JSON.stringify(batch ? rest : rest[0])) };
      }
      await forwardPost(session, p);
    } catch (err) {
      fail(res, err, firstId);
    }
  }

  /**
   * Hands the client's answers to server-initiated requests (rewritten ids) to the router, which
   * delivers each to the upstream session that asked, on whichever replica holds it. Returns the
   * messages left to forward here (anything else, and answers whose id is not a rewritten one).
   */
  async function routeAnswers(session: LocalSession, messages: JsonRpcMessage[]): Promise<JsonRpcMessage[]> {
    const rest: JsonRpcMessage[] = [];
    for (const m of messages) {
      if (!isAnswerToRewritten(m)) {
        rest.push(m);
        continue;
      }
      const outcome = await router.reply(session.id, m);
      metrics.answerRouted(outcome);
      if (outcome === 'unknown') rest.push(m);
    }
    return rest;
  }

  async function forwardPost(session: LocalSession, p: ClientPost): Promise<void> {
    let initializedNotification = false;
    let changes: SessionChange[] | undefined;
    for (const m of p.messages) {
      if (isNotification(m) && m.method === HANDSHAKE_METHODS.initialized) initializedNotification = true;
      const change = sessionChangeOf(m);
      if (change) (changes ??= []).push(change);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      let up: UpstreamSession;
      try {
        up = sessions.readyUpstream(session) ?? (await sessions.upstreamFor(session, p.req));
        if (initializedNotification) {
          if (up.initialized && p.messages.length === 1) {
            // The handshake replay already sent it to this upstream session: do not send it twice.
            p.res.writeHead(202).end();
            return;
          }
          up.initialized = true;
        } else if (!up.initialized) {
          // The client's `notifications/initialized` went to another replica; this upstream session needs
          // one too. Marked first so that concurrent requests do not send it twice.
          up.initialized = true;
          try {
            await up.sendRuntime([{ jsonrpc: '2.0', method: HANDSHAKE_METHODS.initialized }], p.protocolVersion, p.req);
          } catch (err) {
            up.initialized = false;
            throw err;
          }
        }
        if (attempt === 0 && changes) {
          for (const change of changes) {
            if (!(await sessions.recordChange(session, up, change))) throw new SessionGoneError();
          }
        }
      } catch (err) {
        if (err instanceof UpstreamLostSessionError && attempt === 0) {
          logger.info({ session: sessionFingerprint(session.id) }, 'upstream lost the session; replaying the handshake');
          continue;
        }
        throw err;
      }
      if ((await up.post(p)) === 'done') return;
      logger.info({ session: sessionFingerprint(session.id) }, 'upstream lost the session; replaying the handshake and retrying');
    }
    throw new UpstreamError('upstream lost the session again right after a handshake replay');
  }

  async function initialize(req: IncomingMessage, res: ServerResponse, raw: Buffer, init: JsonRpcRequest): Promise<void> {
    const { id, principal } = codec.mint(headerValue(req.headers, principalHeader));
    try {
      await sessions.reserve();
    } catch (err) {
      return fail(res, err, init.id);
    }
    let adopted = false;
    try {
      const outcome = await connector.initialize({ sessionId: id, req, raw, message: init });
      if (!outcome.session || !outcome.response || !('result' in outcome.response)) {
        outcome.respond(res, {});
        return;
      }
      const result = outcome.response.result;
      const negotiated =
        typeof result.protocolVersion === 'string'
          ? result.protocolVersion
          : typeof init.params?.protocolVersion === 'string'
            ? init.params.protocolVersion
            : DEFAULT_NEGOTIATED_PROTOCOL_VERSION;
      let record;
      try {
        record = await store.create({
          id,
          principal,
          protocolVersion: negotiated,
          initializeParams: init.params ?? {},
          ...(owner ? { owner: owner.replicaId } : {}),
        });
      } catch (err) {
        await outcome.session.close('failed');
        throw err;
      }
      sessions.adopt(record, outcome.session);
      adopted = true;
      metrics.sessionsCreated.inc();
      logger.debug({ session: sessionFingerprint(id), protocolVersion: negotiated }, 'session created');
      outcome.respond(res, { [SESSION_ID_HEADER]: id });
    } catch (err) {
      fail(res, err, init.id);
    } finally {
      if (!adopted) sessions.release();
    }
  }

  /**
   * A client GET: an SSE stream served by the proxy itself from the session's streams (spec
   * §Listening for Messages from the Server, §Resumability and Redelivery), not relayed upstream.
   * - Without `Last-Event-ID`, or with one that is not ours: the standalone stream, starting with the
   *   messages no client stream has taken yet; a newer standalone GET (on any replica) ends this one.
   * - With a `Last-Event-ID` of one of the session's streams: that stream after that event (the
   *   standalone stream, or a POST stream, which ends after its last response), on any replica.
   * Events carry `id:`s; a 2025-11-25+ standalone stream opens with a priming event (`id:` + `retry:`).
   * While a standalone stream is open here, this replica keeps an upstream session for the session
   * open (opened in the background if need be), so the session's notifications keep coming.
   */
  async function get(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const accept = headerValue(req.headers, 'accept') ?? '';
    const { sid, pending } = resolveSession(req);
    if (sid === undefined || !pending) return sendJsonRpcError(res, 400, ErrorCode.ServerError, 'Bad Request: Mcp-Session-Id header is required');
    if (!accept.includes('text/event-stream')) {
      return sendJsonRpcError(res, 406, ErrorCode.ServerError, 'Not Acceptable: Client must accept text/event-stream');
    }
    let session: LocalSession | undefined;
    try {
      session = await pending;
    } catch (err) {
      return fail(res, err);
    }
    if (!session) return sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, 'Session not found');
    if (owner && !(session = await owner.route(session, req, res))) return;
    const s = session;
    try {
      // The serving code is shared with the registry of apply-migrated servers (src/runtime/standalone-stream.ts).
      await serveSessionStream(res, {
        streams,
        sessionId: s.id,
        protocolVersion: s.record.protocolVersion,
        lastEventId: headerValue(req.headers, LAST_EVENT_ID_HEADER),
        keepAliveMs,
        retryMs: sseRetryMs,
        onEvent: (event, live) => {
          if (live) metrics.busLag(event.ts);
        },
        onOpen: (standalone) => {
          if (!standalone) return;
          metrics.standaloneStreams.inc();
          const release = sessions.hold(s);
          if (!sessions.readyUpstream(s)) {
            sessions.upstreamFor(s, req).catch((err: unknown) => {
              logger.warn({ err: (err as Error).message, session: sessionFingerprint(s.id) }, 'could not open an upstream session for a standalone stream');
            });
          }
          return () => {
            release();
            metrics.standaloneStreams.dec();
          };
        },
      });
    } catch (err) {
      fail(res, err);
    }
  }

  async function del(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sid = headerValue(req.headers, SESSION_ID_HEADER);
    if (sid === undefined) return sendJsonRpcError(res, 400, ErrorCode.ServerError, 'Bad Request: Mcp-Session-Id header is required');
    if (!verifier.verify(sid, headerValue(req.headers, principalHeader))) {
      return sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, 'Session not found');
    }
    if (owner && (await owner.routeDelete(sid, req, res))) return;
    let existed: boolean;
    try {
      existed = await store.delete(sid);
    } catch (err) {
      return fail(res, err);
    }
    // Closing the upstream session (stopping a child, DELETE upstream) need not delay the answer.
    const dropped = sessions.drop(sid, 'deleted');
    if (!existed) {
      await dropped;
      return sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, 'Session not found');
    }
    await sessions.announceTermination(sid);
    // Its stored streams go too; their followers (GET streams on any replica) end.
    await streams.delete(sid).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not delete the session streams'));
    logger.debug({ session: sessionFingerprint(sid) }, 'session deleted');
    res.writeHead(200).end();
  }

  let closing: Promise<void> | undefined;
  let shuttingDown: Promise<number> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      await owner?.close();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await started.catch(() => undefined);
      modern?.close();
      await sessions.close();
      // Streams still open (GET, long POSTs) end now.
      server.closeAllConnections();
      await stopped;
      await connector.close();
      await router.close();
      await streams.close();
      await bus.close();
      await store.close();
    })();
    return closing;
  };
  return {
    server,
    sessions,
    replicaId,
    streams,
    router,
    options,
    metrics,
    get accepting() {
      return !draining;
    },
    shutdown({ timeoutMs = 10_000, unreadyGraceMs = 0 } = {}) {
      shuttingDown ??= (async () => {
        draining = true;
        // Other replicas take this one's sessions over at once instead of after missed heartbeats.
        await owner?.deregister();
        logger.info({ inFlight, streams: getStreams.size, timeoutMs }, 'draining');
        if (unreadyGraceMs > 0) await new Promise((r) => setTimeout(r, unreadyGraceMs));
        // Stop accepting connections, but keep open keep-alive connections for their next request
        // (answered with `Connection: close`) for up to KEEP_ALIVE_DRAIN_MS: closing an idle one now
        // races with a request a load balancer is just sending on it, which it then sees reset (and
        // nginx does not retry a POST). `http.Server.close` would close idle connections at once.
        net.Server.prototype.close.call(server);
        // Standalone GET streams never end by themselves: tell clients to reconnect (elsewhere) soon.
        for (const res of getStreams) endStream(res);
        modern?.close();
        const stopAt = Date.now() + timeoutMs;
        const keepAliveUntil = Date.now() + Math.min(KEEP_ALIVE_DRAIN_MS, timeoutMs);
        while (Date.now() < stopAt) {
          if (inFlight > 0) {
            let timer: NodeJS.Timeout | undefined;
            await new Promise<void>((resolve) => {
              onIdle = resolve;
              timer = setTimeout(resolve, stopAt - Date.now());
            });
            clearTimeout(timer);
            onIdle = undefined;
            continue;
          }
          if (Date.now() >= keepAliveUntil || (await openConnections(server)) === 0) break;
          await new Promise((r) => setTimeout(r, 25));
        }
        const cut = inFlight;
        if (cut > 0) logger.warn({ inFlight: cut }, 'shutdown timeout: ending requests still in flight');
        await close();
        return cut;
      })();
      return shuttingDown;
    },
    async listen(port: number, host = '127.0.0.1') {
      await started;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address() as AddressInfo;
      const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      if (owner) {
        try {
          await owner.start(advertisedUrl(options.advertiseUrl, addr));
        } catch (err) {
          await close().catch(() => undefined);
          throw err;
        }
      }
      return { host: addr.address, port: addr.port, url: `http://${shownHost}:${addr.port}${path}` };
    },
    close,
  };
}

/** Whether a client message answers a server-initiated request whose id the router rewrote. */
function isAnswerToRewritten(m: JsonRpcMessage): m is JsonRpcResponse {
  return isResponse(m) && isRewrittenId(m.id);
}

/**
 * The base URL other replicas forward to: `advertiseUrl` (checked: `http(s)://HOST[:PORT]`, no path), or
 * `http://<bound address>:<port>`. @throws Error if unset while bound to all interfaces.
 */
export function advertisedUrl(advertiseUrl: string | undefined, addr: AddressInfo): string {
  if (advertiseUrl !== undefined) return checkAdvertiseUrl(advertiseUrl);
  if (addr.address === '0.0.0.0' || addr.address === '::') {
    throw new Error('owner affinity: listening on all interfaces, so the address other replicas reach this one at must be given (--advertise-url)');
  }
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
}

/** Validates an advertised URL and returns it without a trailing slash. @throws Error */
export function checkAdvertiseUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`--advertise-url must be an http(s)://HOST:PORT URL, got "${value}"`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
    throw new Error(`--advertise-url must be http(s)://HOST:PORT without path, query or credentials, got "${value}"`);
  }
  return `${u.protocol}//${u.host}`;
}

/** Ends a standalone SSE stream with a `retry:` line so the client reconnects after 1 s. */
function endStream(res: ServerResponse): void {
  if (res.writableEnded || res.destroyed) return;
  if (!res.headersSent) {
    res.destroy();
    return;
  }
  // Destroyed once flushed: a relayed upstream stream may still try to write to it.
  res.end('retry: 1000\n\n', () => res.destroy());
}

/** How many verified (session id, credential) pairs {@link VerifiedIdCache} keeps. */
const VERIFIED_CACHE_SIZE = 10_000;

/**
 * Remembers session ids that passed {@link SessionIdCodec.verify}, with the credential they were
 * presented with, so a steady-state request skips the two HMAC-SHA256 computations. Exact: a hit needs
 * the same id and the same credential, and verification depends on nothing else (the secrets are fixed
 * for the life of the process). Failures are never cached, so forged ids cannot fill it. Least recently
 * used pairs go first once {@link VERIFIED_CACHE_SIZE} are held.
 */
export class VerifiedIdCache {
  readonly #entries = new Map<string, { credential: string; verified: VerifiedSessionId }>();

  constructor(
    readonly codec: SessionIdCodec,
    readonly size = VERIFIED_CACHE_SIZE,
  ) {}

  verify(id: string, credential: string | undefined): VerifiedSessionId | undefined {
    // The codec hashes an absent credential like the empty string; so does the cache.
    const cred = credential ?? '';
    const hit = this.#entries.get(id);
    if (hit !== undefined && hit.credential === cred) {
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit.verified;
    }
    const verified = this.codec.verify(id, credential);
    if (verified) {
      if (hit === undefined && this.#entries.size >= this.size) {
        this.#entries.delete(this.#entries.keys().next().value!);
      }
      this.#entries.set(id, { credential: cred, verified });
    }
    return verified;
  }
}

/** `http://127.0.0.1:3000`, `http://localhost`, `http://[::1]:8080`: an origin on this machine. */
export function isLoopbackOrigin(origin: string): boolean {
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return false; // includes the opaque origin "null"
  }
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** True for a listen host that only this machine can reach. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}
