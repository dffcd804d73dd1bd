import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  BusServerRequestRouter,
  MemoryMessageBus,
  MemoryReplicaRegistry,
  MemorySessionStreams,
  newReplicaId,
  REPLICA_ID_PATTERN,
  SESSION_EVENTS_CHANNEL,
  SESSION_ID_HEADER,
  SessionIdCodec,
  sessionFingerprint,
  writeErrorAnswer,
  type MessageBus,
  type ReplicaRegistry,
  type ServerRequestRouter,
  type SessionStore,
  type SessionStreams,
} from '@mcp-migrate/runtime';
import { answerFailure } from './errors.js';
import type { FrontContext } from './fronts/context.js';
import { createLegacySseFront, type LegacySseFront, type LegacySseOptions } from './fronts/legacy-sse.js';
import { ModernFront, type ModernTuning } from './fronts/modern/front.js';
import { StreamableHttpFront } from './fronts/streamable-http.js';
import { headerValue } from './http/util.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, RequestDeadlines, requestArrived } from './deadline.js';
import { Lifecycle } from './lifecycle.js';
import { createLogger } from './logger.js';
import { ProxyMetrics } from './metrics.js';
import { serveOperator, type OperatorPaths } from './operator.js';
import { originPolicy } from './origins.js';
import { advertisedUrl } from './owner/advertise.js';
import { OwnerRouting } from './owner/routing.js';
import { SessionManager, type LocalSession } from './sessions.js';
import type { UpstreamConnector } from './upstreams/upstream.js';
import { VerifiedIdCache } from './verified-ids.js';

export { advertisedUrl, checkAdvertiseUrl } from './owner/advertise.js';
export { isLoopbackHost, isLoopbackOrigin } from './origins.js';
export { VerifiedIdCache } from './verified-ids.js';

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
  /** Serve the legacy HTTP+SSE transport (2024-11-05) on these paths too (see `fronts/legacy-sse.ts`). Off when absent. */
  legacySse?: LegacySseOptions;
  /**
   * `owner` (the default): the replica that created a session keeps serving it and other replicas
   * forward to it, so state the server keeps per session in memory stays with the session (docs/proxy.md
   * "Owner routing"). `replay`: any replica serves any session by handshake replay, for servers whose
   * per-session state the handshake rebuilds (the analyzer's `stateless` and `proxy-replay` verdicts).
   * `none` is a deprecated name of `replay`.
   */
  affinity?: 'owner' | 'replay' | 'none';
  /**
   * Owner routing: what happens to a session whose state is gone (its owner replica died, or the
   * owner's upstream session was lost). `end` (the default): the session ends, and the client's next
   * request gets 404 (it initializes again). `replay`: another replica (or the owner) claims it and
   * serves it by handshake replay, without what tool calls wrote (declare the server replay-safe).
   */
  onOwnerLoss?: 'end' | 'replay';
  /**
   * Owner routing: the base URL other replicas forward to, `http(s)://HOST:PORT` (no path). Default:
   * `http://<bound address>:<port>`; on all interfaces, the host's one non-internal address (see `advertisedUrl`).
   */
  advertiseUrl?: string;
  /** Owner routing: the replica registry shared by all replicas. Default: an in-process one (one replica). */
  registry?: ReplicaRegistry;
  /** Owner routing: the longest wait for a TCP connection to another replica, ms; then it counts as unreachable. Default 2,000. */
  ownerConnectTimeoutMs?: number;
  /**
   * The whole-request deadline, ms from a request's arrival (`deadline.ts`): the proxy's own work on it
   * (session lookup, handshake replay or hand-over, state re-sync, a new session's `initialize`) that is
   * not done by then is answered 504 (`gatewayTimeout`). Default {@link DEFAULT_REQUEST_TIMEOUT_MS} (45,000).
   */
  requestTimeoutMs?: number;
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
  /** Owner routing: the URL other replicas forward to (after {@link listen}); `undefined` in replay mode. */
  readonly advertisedUrl: string | undefined;
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

/**
 * Builds `mcp-migrate proxy` (docs/proxy.md): the wiring of its parts. The fronts (Streamable HTTP on
 * `path`, legacy HTTP+SSE, 2026-07-28) serve requests through the session table and the one exchange
 * path; the lifecycle counts requests and drains; the operator endpoints answer `/healthz`, `/readyz`
 * and `/metrics`. Errors are the runtime's error table (`ERROR_ANSWERS`).
 */
export function createProxy(options: ProxyOptions): McpProxy {
  const logger = options.logger ?? createLogger('info');
  const replicaId = checkedReplicaId(options);
  // Assigned before the store is wrapped; the gauge reads it at scrape time.
  let sessionsRef: SessionManager | undefined;
  const metrics = new ProxyMetrics({ openUpstreams: () => sessionsRef?.openUpstreams ?? 0 });
  const store = metrics.instrumentStore(options.store);
  const bus = options.bus ?? new MemoryMessageBus();
  const streams = options.streams ?? new MemorySessionStreams({ ttlMs: options.store.ttlMs });
  const router = options.router ?? busRouter(bus, replicaId, logger);
  const connector = options.upstream;
  connector.attach({ streams, router, logger, onStandaloneMessage: () => metrics.standaloneMessages.inc() });
  const busChannel = options.busChannel ?? `mcpm:${SESSION_EVENTS_CHANNEL}`;
  const affinity = options.affinity === 'replay' || options.affinity === 'none' ? 'replay' : 'owner';
  const onOwnerLoss = options.onOwnerLoss ?? 'end';
  // Assigned below; the session table ends a session whose upstream session is lost through it.
  let owner: OwnerRouting | undefined;
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
    ...(affinity === 'owner' && onOwnerLoss === 'end' ? { endLost: (s: LocalSession) => owner!.endOwned(s, 'upstream_lost') } : {}),
    ...(affinity === 'owner' ? { ownedTouchEveryMs: ownedTouchEveryMs(store.ttlMs) } : {}),
    deadlines: new RequestDeadlines(options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
  });
  sessionsRef = sessions;
  const started = Promise.all([sessions.start(), router.ready]).then(() => undefined);
  const codec = new SessionIdCodec(options.sessionSecrets);
  const verifier = new VerifiedIdCache(codec);
  const principalHeader = (options.principalHeader ?? 'authorization').toLowerCase();
  owner =
    affinity === 'owner'
      ? new OwnerRouting({
          replicaId,
          registry: options.registry ?? new MemoryReplicaRegistry(),
          sessions,
          store,
          streams,
          router,
          bus,
          busChannel,
          onOwnerLoss,
          ...(options.ownerConnectTimeoutMs !== undefined ? { connectTimeoutMs: options.ownerConnectTimeoutMs } : {}),
          sessionSecrets: options.sessionSecrets,
          metricsRegistry: metrics.registry,
          logger,
          fail: (res, err) => answerFailure(res, err, logger),
          verify: (sid, req) => verifier.verify(sid, headerValue(req.headers, principalHeader)) !== undefined,
        })
      : undefined;
  const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true });
  const lifecycle = new Lifecycle(server, logger);
  const ctx: FrontContext = {
    codec,
    verifier,
    sessions,
    store,
    connector,
    streams,
    router,
    principalHeader,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY,
    originAllowed: originPolicy(options.allowedOrigins, options.loopbackOriginsOnly ?? false),
    logger,
    metrics,
    lifecycle,
    owner,
    keepAliveMs: options.keepAliveMs ?? 15_000,
    sseRetryMs: options.sseRetryMs ?? 1_000,
  };
  const modern = options.modern !== false ? modernFront(ctx, options.sessionSecrets, codec, options.modern) : undefined;
  const legacy = options.legacySse ? createLegacySseFront(options.legacySse, ctx) : undefined;
  const streamable = new StreamableHttpFront(ctx, modern);
  const paths = { mcp: options.path ?? '/mcp', health: options.healthPath ?? '/healthz', ready: options.readyPath ?? '/readyz', metrics: options.metricsPath ?? '/metrics' };
  server.on('request', requestHandler({ replicaId, paths, lifecycle, metrics, logger, legacy, streamable, operator: { store, sessions, upstreamKind: connector.kind, metrics, lifecycle } }));

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      lifecycle.stopAccepting();
      // Whatever this replica still owns is let go of now (handed over, released or ended), never left to a dead owner.
      await owner?.drain(Date.now());
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
      return !lifecycle.draining;
    },
    get advertisedUrl() {
      return owner?.url;
    },
    shutdown: (opts) =>
      lifecycle.shutdown(
        {
          // Owner routing: new sessions go to other replicas; those this one owns are served until idle, then handed over.
          ...(owner ? { handOver: (deadline: number) => owner!.drain(deadline) } : {}),
          endStreams: () => modern?.close(),
          close,
        },
        opts,
      ),
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
          // One replica on its own (no shared registry) is reached by nobody else: its own address will do.
          await owner.start(advertisedUrl(options.advertiseUrl, addr, { alone: options.registry === undefined }));
        } catch (err) {
          await close().catch(() => undefined);
          throw err;
        }
      }
      return { host: addr.address, port: addr.port, url: `http://${shownHost}:${addr.port}${paths.mcp}` };
    },
    close,
  };
}

/**
 * Owner affinity: how often, at most, a replica refreshes the TTL of a session it owns, ms: a second, or a
 * tenth of the TTL if that is shorter. Saves the one store command of nearly every steady-state request.
 */
export function ownedTouchEveryMs(ttlMs: number): number {
  return Math.min(1_000, Math.floor(ttlMs / 10));
}

function checkedReplicaId(options: ProxyOptions): string {
  const replicaId = options.replicaId ?? options.router?.replicaId ?? newReplicaId();
  if (!REPLICA_ID_PATTERN.test(replicaId)) throw new TypeError(`replicaId must be 1-64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(replicaId)}`);
  if (options.router && options.router.replicaId !== replicaId) {
    throw new TypeError(`router.replicaId (${options.router.replicaId}) differs from replicaId (${replicaId})`);
  }
  return replicaId;
}

function busRouter(bus: MessageBus, replicaId: string, logger: Logger): ServerRequestRouter {
  return new BusServerRequestRouter({
    bus,
    replicaId,
    onDrop: (reason, sid) => logger.debug({ reason, session: sessionFingerprint(sid) }, 'answer to a server-initiated request dropped'),
  });
}

function modernFront(ctx: FrontContext, secrets: readonly string[], codec: SessionIdCodec, tuning: ProxyOptions['modern']): ModernFront {
  return new ModernFront({
    sessions: ctx.sessions,
    store: ctx.store,
    streams: ctx.streams,
    router: ctx.router,
    secrets,
    principalOf: (req) => codec.principalHash(headerValue(req.headers, ctx.principalHeader)),
    logger: ctx.logger,
    ...(typeof tuning === 'object' ? tuning : {}),
  });
}

interface Dispatch {
  replicaId: string;
  paths: OperatorPaths & { mcp: string };
  lifecycle: Lifecycle;
  metrics: ProxyMetrics;
  logger: Logger;
  legacy: LegacySseFront | undefined;
  streamable: StreamableHttpFront;
  operator: Parameters<typeof serveOperator>[1];
}

/** Every HTTP request: replica header, accounting, then the operator endpoints, the legacy paths or the MCP endpoint. */
function requestHandler(d: Dispatch): (req: IncomingMessage, res: ServerResponse) => void {
  const debug = d.logger.isLevelEnabled('debug');
  return (req, res) => {
    requestArrived(req);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const stream = (req.method === 'GET' && pathname === d.paths.mcp) || (d.legacy?.isStream(req) ?? false);
    res.setHeader(REPLICA_HEADER, d.replicaId);
    d.lifecycle.track(res, stream, () => d.metrics.request(req.method, res.statusCode));
    if (debug) logWhenDone(d.logger, req, res);
    route(d, req, res, pathname).catch((err: unknown) => {
      d.logger.error({ err }, 'unhandled error in request handler');
      writeErrorAnswer(res, 'internal');
    });
  };
}

async function route(d: Dispatch, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  const operator = serveOperator(d.paths, d.operator, req.method, pathname, res);
  if (operator) return void (await operator);
  if (d.legacy?.serves(pathname)) return await d.legacy.handle(req, res, pathname);
  if (pathname !== d.paths.mcp) return writeErrorAnswer(res, 'notFound');
  await d.streamable.handle(req, res);
}

/** At debug level, every exchange once it ends: method, status, duration, session fingerprint. */
function logWhenDone(logger: Logger, req: IncomingMessage, res: ServerResponse): void {
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
