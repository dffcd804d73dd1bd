/**
 * `mcp-migrate proxy`: a Streamable HTTP reverse proxy that lets a stateful (sessionful) MCP server run
 * behind any round-robin load balancer. See `docs/proxy.md`.
 */
import type { Logger } from 'pino';
import {
  BusServerRequestRouter,
  newReplicaId,
  parseStoreUrl,
  RedisReplicaRegistry,
  SESSION_EVENTS_CHANNEL,
  SessionIdCodec,
  storesFromUrl,
  waitForRedis,
  type ReplicaRegistry,
  type RuntimeStores,
  type StoreSpec,
} from '@mcp-migrate/runtime';
import { createLogger, type LogLevel } from './logger.js';
import { externalBaseUrl } from './owner/advertise.js';
import { checkAdvertiseUrl, createProxy, isLoopbackHost, type McpProxy } from './server.js';
import { HttpUpstreamConnector } from './upstreams/http.js';
import { StdioUpstreamConnector } from './upstreams/stdio.js';
import type { UpstreamConnector } from './upstreams/upstream.js';

export { createProxy, REPLICA_HEADER, VerifiedIdCache, isLoopbackHost, isLoopbackOrigin, type McpProxy, type ProxyOptions } from './server.js';
export { OwnerRouting, ForwardingMac, FORWARDED_HEADER, MISDIRECTED_HEADER, unansweredErrors, type OwnerRoutingOptions } from './owner/routing.js';
export { ProxyMetrics } from './metrics.js';
export { HttpUpstreamConnector, type HttpUpstreamOptions } from './upstreams/http.js';
export { StdioUpstreamConnector, childEnvironment, type StdioUpstreamOptions, type StdioUpstreamSession } from './upstreams/stdio.js';
export { StartLimit, DEFAULT_MAX_STARTING } from './upstreams/start-limit.js';
export { createLegacySseFront, type LegacySseFront, type LegacySseOptions } from './fronts/legacy-sse.js';
export type { FrontContext } from './fronts/context.js';
export { SessionManager, CapacityError, SessionGoneError, type LocalSession } from './sessions.js';
export { createLogger, LOG_LEVELS, type LogLevel } from './logger.js';
export type { UpstreamConnector, UpstreamSession, UpstreamContext, ExchangeSink, ClientPost, ForwardResult, InitializeOutcome, AppliedState, CloseReason } from './upstreams/upstream.js';
export { UpstreamError, UpstreamLostSessionError } from './upstreams/upstream.js';

/** Everything `mcp-migrate proxy` is configured with (the CLI flags, parsed). */
export interface ProxyConfig {
  host: string;
  port: number;
  /** MCP endpoint path, e.g. `/mcp`. */
  path: string;
  /** `memory`, a `redis://…` / `rediss://…` URL, or a `redis+cluster://HOST:PORT[,HOST:PORT…]` / `rediss+cluster://…` Redis Cluster. */
  store: string;
  /** Redis key prefix. Default `mcpm:`. */
  storePrefix?: string;
  /** Sliding TTL of session records, ms. */
  sessionTtlMs: number;
  /** Session secrets, first mints. Required for a Redis store; generated for `memory` if empty. */
  sessionSecrets: string[];
  upstream: { url: string } | { command: string; args: string[] };
  principalHeader: string;
  allowedOrigins?: string[];
  maxBodyBytes: number;
  maxSessions: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** stdio upstream: most children starting at once (`--max-starting`). Default `DEFAULT_MAX_STARTING`. */
  maxStarting?: number;
  /** The whole-request deadline (`ProxyOptions.requestTimeoutMs`), ms. Default 45,000. */
  requestTimeoutMs?: number;
  /** Longest graceful shutdown (sessions handed over, in-flight requests finished), ms. Default 10,000. */
  shutdownTimeoutMs?: number;
  /**
   * `owner` (the default): owner routing (docs/proxy.md "Owner routing"). `replay`: handshake replay on
   * any replica, for servers whose per-session state the handshake rebuilds. `none`: deprecated name of `replay`.
   */
  affinity?: 'owner' | 'replay' | 'none';
  /** Owner routing: `end` (default) or `replay` a session whose owner, or the owner's upstream session, is lost. */
  onOwnerLoss?: 'end' | 'replay';
  /** Owner routing: `http(s)://HOST:PORT` other replicas reach this one at. Default: from `host` and the bound port. */
  advertiseUrl?: string;
  /** Owner routing: replica registry heartbeat period, ms (registrations live 3 periods). Default 1,000. */
  heartbeatIntervalMs?: number;
  /** Serve 2026-07-28 clients too (the modern front). Default true. */
  modern?: boolean;
  /** Lifetime of a 2026-07-28 `requestState`, ms. Default 600,000. */
  modernStateTtlMs?: number;
  logLevel?: LogLevel;
  logger?: Logger;
  /** Serve the legacy HTTP+SSE transport (2024-11-05) on these paths too; off when absent. */
  legacySse?: { ssePath: string; messagePath: string };
}

/** A configuration error (→ exit code 2). */
export class ProxyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyConfigError';
  }
}

export interface RunningProxy {
  proxy: McpProxy;
  /** `http://HOST:PORT/PATH` actually bound. */
  url: string;
  host: string;
  port: number;
  /** Graceful shutdown (see {@link McpProxy.shutdown}) bounded by `shutdownTimeoutMs`. */
  shutdown(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Builds store, bus and upstream from `config`, starts listening and resolves once the port accepts
 * connections. A Redis store that is down at start-up is not fatal: requests get 503 until it is back.
 * @throws ProxyConfigError for invalid settings; the listen error (e.g. `EADDRINUSE`) otherwise.
 */
export async function startProxy(config: ProxyConfig): Promise<RunningProxy> {
  const logger = config.logger ?? createLogger(config.logLevel ?? 'info');
  let storeSpec: StoreSpec;
  try {
    storeSpec = parseStoreUrl(config.store);
  } catch (err) {
    throw new ProxyConfigError(`--store: ${(err as Error).message}`);
  }
  const isMemory = storeSpec.kind === 'memory';
  let secrets = config.sessionSecrets.filter((s) => s.length > 0);
  if (secrets.length === 0) {
    if (!isMemory) {
      throw new ProxyConfigError('--session-secret (or MCP_MIGRATE_SESSION_SECRET) is required with a Redis store: all replicas must share it');
    }
    secrets = [SessionIdCodec.generateSecret()];
  }
  try {
    new SessionIdCodec(secrets);
  } catch (err) {
    throw new ProxyConfigError((err as Error).message);
  }
  const prefix = config.storePrefix ?? 'mcpm:';
  const affinity = config.affinity === 'replay' || config.affinity === 'none' ? 'replay' : 'owner';
  if (config.affinity === 'none') logger.warn('--affinity none is deprecated: it is --affinity replay');
  let advertiseUrl: string | undefined;
  if (affinity === 'owner') {
    try {
      if (config.advertiseUrl !== undefined) advertiseUrl = checkAdvertiseUrl(config.advertiseUrl);
      // Several replicas share a Redis store: on all interfaces, the address the others use must be clear now.
      else if (!isMemory && isAllInterfaces(config.host)) advertiseUrl = externalBaseUrl(config.port);
    } catch (err) {
      throw new ProxyConfigError((err as Error).message);
    }
    if (advertiseUrl !== undefined && config.port === 0 && config.advertiseUrl === undefined) {
      throw new ProxyConfigError('owner routing: listening on all interfaces on port 0, so give --advertise-url http://HOST:PORT');
    }
  }

  let connector: UpstreamConnector;
  if ('url' in config.upstream) {
    try {
      connector = new HttpUpstreamConnector({ url: config.upstream.url, handshakeTimeoutMs: config.handshakeTimeoutMs, logger });
    } catch (err) {
      throw new ProxyConfigError(`--upstream: ${(err as Error).message}`);
    }
  } else {
    connector = new StdioUpstreamConnector({
      command: config.upstream.command,
      args: config.upstream.args,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      ...(config.maxStarting !== undefined ? { maxStarting: config.maxStarting } : {}),
      logger,
    });
  }

  const stores = openStores(config, prefix, logger);
  let registry: ReplicaRegistry | undefined;
  if (affinity === 'owner') {
    const heartbeat = config.heartbeatIntervalMs ? { heartbeatIntervalMs: config.heartbeatIntervalMs } : {};
    // A memory store means one replica: createProxy's own in-process registry, reached by nobody else.
    if (stores.redis) registry = new RedisReplicaRegistry({ client: stores.redis, keyPrefix: prefix, ...heartbeat, onError: stores.onError });
  }
  if (stores.redis && !(await waitForRedis(stores.redis))) logger.warn('Redis is not reachable yet; requests get 503 until it is');
  const { sessions: store, bus, streams } = stores;
  const replicaId = newReplicaId();
  const router = new BusServerRequestRouter({ bus, replicaId, channelPrefix: prefix });

  const proxy = createProxy({
    store,
    bus,
    busChannel: `${prefix}${SESSION_EVENTS_CHANNEL}`,
    replicaId,
    streams,
    router,
    upstream: connector,
    sessionSecrets: secrets,
    path: config.path,
    principalHeader: config.principalHeader,
    ...(config.allowedOrigins && config.allowedOrigins.length > 0
      ? { allowedOrigins: config.allowedOrigins }
      : { loopbackOriginsOnly: isLoopbackHost(config.host) }),
    maxBodyBytes: config.maxBodyBytes,
    maxSessions: config.maxSessions,
    idleTimeoutMs: config.idleTimeoutMs,
    ...(config.requestTimeoutMs !== undefined ? { requestTimeoutMs: config.requestTimeoutMs } : {}),
    ...(config.legacySse ? { legacySse: config.legacySse } : {}),
    affinity,
    onOwnerLoss: config.onOwnerLoss ?? 'end',
    ...(advertiseUrl ? { advertiseUrl } : {}),
    ...(registry ? { registry } : {}),
    modern: config.modern === false ? false : { ...(config.modernStateTtlMs !== undefined ? { stateTtlMs: config.modernStateTtlMs } : {}) },
    logger,
  });
  let bound;
  try {
    bound = await proxy.listen(config.port, config.host);
  } catch (err) {
    await proxy.close().catch(() => undefined);
    throw err;
  }
  logger.info(
    {
      url: bound.url,
      store: storeSpec.kind,
      upstream: connector.kind,
      maxSessions: config.maxSessions,
      replica: replicaId,
      affinity,
      ...(affinity === 'owner' ? { onOwnerLoss: config.onOwnerLoss ?? 'end', advertiseUrl: proxy.advertisedUrl } : {}),
      ...(config.legacySse ? { legacySse: config.legacySse } : {}),
    },
    'listening',
  );
  return {
    proxy,
    url: bound.url,
    host: bound.host,
    port: bound.port,
    shutdown: () => proxy.shutdown({ timeoutMs: config.shutdownTimeoutMs ?? 10_000 }),
    close: () => proxy.close(),
  };
}

/**
 * The store, bus and streams `--store` names (the runtime's `storesFromUrl`, shared with apply's
 * generated code), with Redis connection errors logged at most every 5 s.
 */
function openStores(config: ProxyConfig, keyPrefix: string, logger: Logger): RuntimeStores & { onError: (err: Error) => void } {
  let lastLogged = 0;
  const onError = (err: Error) => {
    const now = Date.now();
    if (now - lastLogged > 5_000) {
      lastLogged = now;
      logger.warn({ err: err.message }, 'Redis connection error (retrying)');
    }
  };
  // The proxy closes store, bus and streams one by one: closing the store closes the client.
  const stores = storesFromUrl(config.store, { keyPrefix, ttlMs: config.sessionTtlMs, onError, sessionsOwnClient: true });
  return Object.assign(stores, { onError });
}

/** True for a listen host meaning "every interface" (`:PORT`, `0.0.0.0`, `::`). */
function isAllInterfaces(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}
