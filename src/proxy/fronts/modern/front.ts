import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  ErrorCode,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcErrorObject,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '@mcp-migrate/runtime';
import { runtimeRequestId } from '@mcp-migrate/runtime';
import type { ServerRequestRouter } from '@mcp-migrate/runtime';
import { sessionFingerprint } from '@mcp-migrate/runtime';
import { detailOf, ERROR_ANSWERS, errorBodyOf, errorKindOf, writeErrorAnswer, type SessionStore } from '@mcp-migrate/runtime';
import type { SessionStreams, StreamEvent, StreamFollow } from '@mcp-migrate/runtime';
import { newStreamId, STANDALONE_STREAM } from '@mcp-migrate/runtime';
import { logFailure } from '../../errors.js';
import { runExchange } from '../../exchange.js';
import { acceptsOf } from '../../http/util.js';
import { SessionGoneError, type LocalSession, type SessionManager } from '../../sessions.js';
import { UpstreamError, type ExchangeSink, type UpstreamSession } from '../../upstreams/upstream.js';
import type { EraDecision, ModernEnvelope } from './classify.js';
import { legacyCapabilities, PoolIds, pooledInitializeParams, type PoolKey } from './pool.js';
import {
  INPUT_REQUEST_CAPABILITY,
  META,
  MODERN_METHODS,
  ModernErrorCode,
  MRTR_METHODS,
  RESOURCE_UPDATED,
  SUBSCRIPTION_ACKNOWLEDGED,
  UPSTREAM_PROTOCOL_VERSION,
} from './protocol.js';
import { RequestStateCodec, requestDigest, type InputRequest, type RequestState } from './request-state.js';
import { keepAlive, ModernResponse, SSE_HEADERS, sseEvent } from './response.js';
import {
  acknowledgedFilter,
  DEFAULT_CACHE_HINTS,
  discoverResult,
  inputRequestOf,
  matchesFilter,
  missingCapability,
  modernError,
  modernResult,
  readListenFilter,
  requestNotification,
  servesSubscriptions,
  tagSubscription,
  upstreamInfo,
  type CacheHints,
  type UpstreamInfo,
} from './translate.js';

export interface ModernFrontOptions {
  sessions: SessionManager;
  store: SessionStore;
  /** Session streams shared by all replicas (MRTR continuations, `subscriptions/listen`). */
  streams: SessionStreams;
  /** Routes the client's `inputResponses` to the replica whose upstream session asked. */
  router: ServerRequestRouter;
  /** Session secrets (first mints): `requestState` MACs and pooled session ids. */
  secrets: readonly string[];
  /** Principal hash of a request (`SessionIdCodec.principalHash` of the principal header). */
  principalOf(req: IncomingMessage): string;
  logger: Logger;
  /** Lifetime of a `requestState`, and longest time an interrupted exchange waits for the client's retry, ms. Default 600,000. */
  stateTtlMs?: number;
  /** Caching hints on cacheable results. Default `ttlMs: 0`, `cacheScope: "private"`. */
  cacheHints?: CacheHints;
  /** SSE keep-alive comment interval on `subscriptions/listen` streams, ms. Default 15,000. */
  keepAliveMs?: number;
  /** After a server-to-client request, how long to wait for more before answering `input_required`, ms. Default 25. */
  inputWindowMs?: number;
  /** Liveness heartbeat of an interrupted exchange on its continuation stream, ms. Default 5,000. */
  heartbeatMs?: number;
  /** Most resource URIs one `subscriptions/listen` stream may subscribe to. Default 256. */
  maxResourceSubscriptions?: number;
}

/** The tunable part of {@link ModernFrontOptions} (`ProxyOptions.modern`). */
export type ModernTuning = Partial<Pick<ModernFrontOptions, 'stateTtlMs' | 'cacheHints' | 'keepAliveMs' | 'inputWindowMs' | 'heartbeatMs' | 'maxResourceSubscriptions'>>;

/** Notifications the front itself appends to a continuation stream (never shown to clients). */
const MARKER_PREFIX = 'notifications/mcp-migrate/';
const STARTED: JsonRpcNotification = { jsonrpc: '2.0', method: `${MARKER_PREFIX}continuation` };
const ALIVE: JsonRpcNotification = { jsonrpc: '2.0', method: `${MARKER_PREFIX}alive` };

/**
 * A `notifications/resources/updated` for a URI already delivered on a stream less than this long ago
 * is dropped: when several replicas hold an upstream session of a pool, each is subscribed and each
 * reports the same change.
 */
const DUPLICATE_UPDATE_MS = 500;

/** Request headers that concern the client↔proxy hop only (2026-07-28 request metadata and framing). */
const CLIENT_ONLY_HEADERS = new Set([
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'mcp-session-id',
  'last-event-id',
  'accept',
  'content-type',
  'content-length',
  'origin',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The headers a modern request's upstream exchange carries: the client's end-to-end headers (e.g. `Authorization`). */
function upstreamHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || CLIENT_ONLY_HEADERS.has(name) || name.startsWith('mcp-param-')) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The params sent upstream for a modern request: the client's, without the 2026-07-28 per-request
 * fields (`_meta` protocol keys, `inputResponses`, `requestState`), with the progress token replaced by
 * a unique one (the pooled upstream session is shared by many clients whose tokens may collide).
 */
function upstreamParams(params: Record<string, unknown> | undefined, progressToken: JsonRpcId | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (k !== '_meta' && k !== 'inputResponses' && k !== 'requestState') out[k] = v;
  }
  const meta: Record<string, unknown> = {};
  const clientMeta = isObject(params?._meta) ? params._meta : {};
  for (const [k, v] of Object.entries(clientMeta)) {
    if (k === 'progressToken' || k.startsWith('io.modelcontextprotocol/')) continue;
    meta[k] = v;
  }
  if (progressToken !== undefined) meta.progressToken = progressToken;
  if (Object.keys(meta).length > 0) out._meta = meta;
  return out;
}

/** The client's params without `inputResponses` and `requestState` (a retry run as a fresh request). */
function withoutRetryFields(params: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) if (k !== 'inputResponses' && k !== 'requestState') out[k] = v;
  return out;
}

/** A pooled session as one request uses it. */
interface Pool {
  id: string;
  key: PoolKey;
  local: LocalSession;
  info: UpstreamInfo;
}

/** Everything about the modern request being answered. */
interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  out: ModernResponse;
  message: JsonRpcRequest;
  envelope: ModernEnvelope;
  principal: string;
  pool: Pool;
}

/** A server-to-client request waiting to become (or having become) an `inputRequests` entry. */
interface PendingInput {
  key: string;
  id: JsonRpcId;
  request: InputRequest;
}

/**
 * The 2026-07-28 front of the proxy (issue #8): serves modern, stateless clients from a legacy,
 * sessionful upstream on the same endpoint as legacy clients.
 *
 * - Each modern request runs on a **pooled session**: a session record like a client's, keyed by
 *   (principal, client capabilities, protocol version), with a synthetic `initialize` built from the
 *   request's `_meta`; any replica opens its upstream session by handshake replay (`SessionManager`).
 * - `server/discover` is synthesized from the upstream's `InitializeResult`; results get `resultType`,
 *   caching hints and `serverInfo`; removed or unadvertised methods get HTTP 404 with -32601.
 * - A server-to-client request during a modern request (elicitation, sampling, roots) becomes an
 *   `InputRequiredResult` with a signed `requestState` (MRTR). The exchange stays open on this replica
 *   and appends the upstream's further messages to a continuation stream of the pooled session; the
 *   client's retry, on any replica, sends `inputResponses` through the `ServerRequestRouter` and follows
 *   that stream for the rest. If the holding replica is gone (no heartbeat), the retry runs afresh.
 * - `subscriptions/listen` follows the pooled session's standalone stream (`'g'`), filtered, after an
 *   acknowledgement; resource subscriptions are recorded in the pooled session, so every replica's
 *   upstream session of the pool subscribes. See `docs/modern.md`.
 */
export class ModernFront {
  readonly #o: ModernFrontOptions;
  readonly #states: RequestStateCodec;
  readonly #poolIds: PoolIds;
  readonly #hints: CacheHints;
  readonly #stateTtlMs: number;
  readonly #inputWindowMs: number;
  readonly #heartbeatMs: number;
  readonly #keepAliveMs: number;
  /** What the front read from each upstream session's `InitializeResult` (kept as long as the session). */
  readonly #infos = new WeakMap<object, UpstreamInfo>();
  /** Open `subscriptions/listen` streams: graceful end on shutdown. */
  readonly #listens = new Set<() => void>();
  /** Interrupted exchanges held on this replica: aborted on close. */
  readonly #held = new Set<AbortController>();
  #counter = randomBytes(4).readUInt32BE();

  constructor(options: ModernFrontOptions) {
    this.#o = options;
    this.#states = new RequestStateCodec(options.secrets);
    this.#poolIds = new PoolIds(options.secrets[0]!);
    this.#hints = options.cacheHints ?? DEFAULT_CACHE_HINTS;
    this.#stateTtlMs = options.stateTtlMs ?? 600_000;
    this.#inputWindowMs = options.inputWindowMs ?? 25;
    this.#heartbeatMs = options.heartbeatMs ?? 5_000;
    this.#keepAliveMs = options.keepAliveMs ?? 15_000;
  }

  /** Open `subscriptions/listen` streams on this replica. */
  get listening(): number {
    return this.#listens.size;
  }

  /** Interrupted exchanges (awaiting an MRTR retry) held on this replica. */
  get held(): number {
    return this.#held.size;
  }

  /**
   * Answers a POST that {@link classifyPost} did not route to the legacy path. Never rejects: every
   * failure becomes an HTTP answer (404/-32601 unknown or removed method, 400 validation errors,
   * 502/504 upstream failures, 503 store unavailable or no capacity).
   */
  async serve(req: IncomingMessage, res: ServerResponse, decision: Exclude<EraDecision, { era: 'legacy' }>): Promise<void> {
    if (decision.era === 'reject') {
      return new ModernResponse(res, false).error(decision.status, decision.id, decision.error);
    }
    if (decision.era === 'modern-notification') {
      // 2026-07-28 defines no client notifications over Streamable HTTP (cancellation is closing the stream).
      res.writeHead(202).end();
      return;
    }
    const { message, envelope } = decision;
    const id = message.id;
    const out = new ModernResponse(res, acceptsOf(req).sse);
    if (!Object.hasOwn(MODERN_METHODS, message.method)) {
      return out.error(404, id, { code: ErrorCode.MethodNotFound, message: `Method not found: ${message.method}` });
    }
    try {
      const principal = this.#o.principalOf(req);
      const pool = await this.#pool(req, principal, envelope);
      const needs = MODERN_METHODS[message.method];
      if (needs !== undefined && !isObject(pool.info.capabilities[needs])) {
        return out.error(404, id, { code: ErrorCode.MethodNotFound, message: `Method not found: ${message.method} (the server does not offer ${needs})` });
      }
      const call: Call = { req, res, out, message, envelope, principal, pool };
      if (message.method === 'server/discover') {
        return out.final({ jsonrpc: '2.0', id, result: discoverResult(pool.info, this.#hints) });
      }
      if (message.method === 'subscriptions/listen') return await this.#listen(call);
      if (message.params?.requestState !== undefined && MRTR_METHODS.has(message.method)) return await this.#resume(call);
      return await this.#call(call, withoutRetryFields(message.params));
    } catch (err) {
      this.#fail(out, id, err);
    }
  }

  /** Ends every `subscriptions/listen` stream with its graceful-closure result and aborts held exchanges. */
  close(): void {
    for (const end of [...this.#listens]) end();
    for (const ctl of [...this.#held]) ctl.abort();
  }

  /**
   * A failure as the error table answers it (503 store unavailable or no capacity, 404 session gone,
   * 502/504 upstream failed or timed out, else 500): the whole HTTP answer, or in-band once streaming.
   */
  #fail(out: ModernResponse, id: JsonRpcId, err: unknown): void {
    const kind = errorKindOf(err);
    logFailure(this.#o.logger, kind, err);
    if (!out.streaming) return writeErrorAnswer(out.res, kind, { id, detail: detailOf(kind, err) });
    out.error(ERROR_ANSWERS[kind].status, id, errorBodyOf(err, id).error);
  }

  /**
   * The pooled session for a request: found (one store command when cached on this replica), or its
   * record created (any replica may do so; creating an existing one rewrites identical fields), and its
   * upstream session opened here by handshake replay if needed.
   */
  async #pool(req: IncomingMessage, principal: string, envelope: ModernEnvelope): Promise<Pool> {
    const key: PoolKey = { principal, protocolVersion: envelope.protocolVersion, capabilities: legacyCapabilities(envelope.clientCapabilities) };
    const id = this.#poolIds.id(key);
    const sessions = this.#o.sessions;
    let local = await sessions.resolve(id, principal);
    if (!local) {
      await this.#o.store.create({ id, principal, protocolVersion: UPSTREAM_PROTOCOL_VERSION, initializeParams: pooledInitializeParams(key) });
      this.#o.logger.debug({ pool: sessionFingerprint(id) }, 'pooled session created');
      local = await sessions.resolve(id, principal);
      if (!local) throw new SessionGoneError();
    }
    const up = await this.#upstream(local, req);
    return { id, key, local, info: this.#infoOf(up) };
  }

  async #upstream(local: LocalSession, req: IncomingMessage): Promise<UpstreamSession> {
    return this.#o.sessions.readyUpstream(local) ?? (await this.#o.sessions.upstreamFor(local, req));
  }

  #infoOf(up: UpstreamSession): UpstreamInfo {
    const init = up.initializeResult;
    if (init === undefined) throw new UpstreamError('the upstream session did not report its InitializeResult');
    let info = this.#infos.get(init);
    if (!info) this.#infos.set(init, (info = upstreamInfo(init)));
    return info;
  }

  /**
   * The id a modern request carries upstream: `modern:<replica>:<n>`, unique across replicas and runs (the
   * counter starts at random). Not in the runtime's `mcp-migrate:` space, whose replies upstreams discard.
   */
  #nextUpstreamId(): string {
    this.#counter = (this.#counter + 1) % Number.MAX_SAFE_INTEGER;
    return `modern:${this.#o.router.replicaId}:${this.#counter.toString(36)}`;
  }

  /** The client-facing response for an upstream response. */
  #toClient(call: Call, response: JsonRpcResponse): { message: JsonRpcResponse; status: number } {
    const id = call.message.id;
    if ('result' in response) {
      return { message: { jsonrpc: '2.0', id, result: modernResult(call.message.method, response.result, call.pool.info, this.#hints) }, status: 200 };
    }
    const error = modernError(call.message.method, call.message.params, response.error);
    return { message: { jsonrpc: '2.0', id, error }, status: error.code === ErrorCode.MethodNotFound ? 404 : 200 };
  }

  /** Answers a server-to-client request upstream directly (ping, or one that cannot reach this client). */
  async #answerUpstream(poolId: string, id: JsonRpcId, answer: { result: Record<string, unknown> } | { error: JsonRpcErrorObject }): Promise<void> {
    await this.#o.router.reply(poolId, { jsonrpc: '2.0', id, ...answer } as JsonRpcResponse).catch(() => undefined);
  }

  /**
   * Classifies a server-to-client request that arrived during `call`. Returns the pending input to ask
   * the client for, or `undefined` if it was answered here (ping; unknown method; not allowed on this
   * request's method), or a -32021 error if the client lacks the capability.
   */
  #serverRequest(call: Call, m: JsonRpcRequest, key: string): PendingInput | { missing: Record<string, unknown> } | undefined {
    const poolId = call.pool.id;
    if (m.method === 'ping') {
      void this.#answerUpstream(poolId, m.id, { result: {} });
      return undefined;
    }
    if (!Object.hasOwn(INPUT_REQUEST_CAPABILITY, m.method) || !MRTR_METHODS.has(call.message.method)) {
      void this.#answerUpstream(poolId, m.id, { error: { code: ErrorCode.MethodNotFound, message: `Method not found: ${m.method} cannot reach a 2026-07-28 client here` } });
      return undefined;
    }
    const missing = missingCapability(m, call.envelope.clientCapabilities);
    if (missing) {
      void this.#answerUpstream(poolId, m.id, { error: { code: ErrorCode.MethodNotFound, message: `Client does not support ${Object.keys(missing).join(', ')}` } });
      return { missing };
    }
    return { key, id: m.id, request: inputRequestOf(m) };
  }

  #inputRequired(call: Call, state: RequestState): void {
    const inputRequests: Record<string, InputRequest> = {};
    for (const [key, r] of Object.entries(state.q)) inputRequests[key] = r;
    call.out.final({
      jsonrpc: '2.0',
      id: call.message.id,
      result: { resultType: 'input_required', inputRequests, requestState: this.#states.mint(state) },
    });
  }

  #stateFor(call: Call, stream: string, after: string, pending: PendingInput[]): RequestState {
    const k: Record<string, JsonRpcId> = {};
    const q: Record<string, InputRequest> = {};
    for (const p of pending) {
      k[p.key] = p.id;
      q[p.key] = p.request;
    }
    return {
      p: call.principal,
      s: call.pool.id,
      r: this.#o.router.replicaId,
      t: stream,
      a: after,
      k,
      q,
      m: call.message.method,
      d: requestDigest(call.message.method, call.message.params),
      e: Date.now() + this.#stateTtlMs,
    };
  }

  #missingCapability(call: Call, missing: Record<string, unknown>): void {
    call.out.error(400, call.message.id, {
      code: ModernErrorCode.MissingRequiredClientCapability,
      message: `Missing required client capability: ${Object.keys(missing).join(', ')}`,
      data: { requiredCapabilities: missing },
    });
  }

  /**
   * Runs a request on the pooled upstream session. Answers with the upstream's response, or, when the
   * upstream asks the client something, with an `InputRequiredResult` — then keeps the exchange open
   * (detached from the client) and appends its further messages to a continuation stream.
   */
  async #call(call: Call, params: Record<string, unknown>): Promise<void> {
    const { message, envelope, pool, out } = call;
    const streams = this.#o.streams;
    const upstreamId = this.#nextUpstreamId();
    const clientMeta = isObject(params._meta) ? params._meta : {};
    const clientToken = clientMeta.progressToken;
    const forwarded: JsonRpcRequest = { jsonrpc: '2.0', id: upstreamId, method: message.method, params: upstreamParams(params, clientToken !== undefined ? upstreamId : undefined) };
    const ctl = new AbortController();
    // Assigned from callbacks: typed as a union so that reads after an await are not narrowed.
    let phase = 'direct' as 'direct' | 'collecting' | 'detached' | 'done';
    const pending: PendingInput[] = [];
    let window: NodeJS.Timeout | undefined;
    let stream: string | undefined;
    let chain: Promise<unknown> = Promise.resolve();
    let heartbeat: NodeJS.Timeout | undefined;
    let expiry: NodeJS.Timeout | undefined;

    const append = (m: JsonRpcMessage) => {
      const s = stream!;
      const end = isResponse(m);
      chain = chain.then(() => streams.append(pool.id, s, m, end ? { end } : undefined)).catch((err: unknown) => {
        this.#o.logger.warn({ err: (err as Error).message, pool: sessionFingerprint(pool.id) }, 'could not append to a continuation stream');
      });
    };
    const finishDetached = () => {
      phase = 'done';
      clearInterval(heartbeat);
      clearTimeout(expiry);
      this.#held.delete(ctl);
    };
    // Aborted (shutdown, expiry): stop the heartbeat, so a retry elsewhere sees the exchange is gone.
    ctl.signal.addEventListener('abort', () => {
      if (phase === 'detached') finishDetached();
    });
    const detach = async () => {
      window = undefined;
      if (phase !== 'collecting') return;
      phase = 'detached';
      stream = newStreamId('m');
      this.#held.add(ctl);
      const started = streams.append(pool.id, stream, STARTED);
      chain = started;
      let after: StreamEvent;
      try {
        after = await started;
      } catch (err) {
        finishDetached();
        ctl.abort();
        this.#fail(out, message.id, err);
        return;
      }
      this.#inputRequired(call, this.#stateFor(call, stream, after.eventId, pending.splice(0)));
      heartbeat = setInterval(() => append(ALIVE), this.#heartbeatMs);
      heartbeat.unref();
      // No retry within the requestState's lifetime: give up the exchange (the upstream sees a cancellation).
      expiry = setTimeout(() => {
        finishDetached();
        ctl.abort();
      }, this.#stateTtlMs + this.#heartbeatMs);
      expiry.unref();
    };

    const sink: ExchangeSink = {
      message: (m) => {
        if (phase === 'done') return;
        if (phase === 'detached') return append(m);
        if (isRequest(m)) {
          const r = this.#serverRequest(call, m, `r${pending.length}`);
          if (r === undefined) return;
          if ('missing' in r) {
            phase = 'done';
            clearTimeout(window);
            ctl.abort();
            return this.#missingCapability(call, r.missing);
          }
          pending.push(r);
          if (phase === 'direct') {
            phase = 'collecting';
            window = setTimeout(() => void detach(), this.#inputWindowMs);
          }
          return;
        }
        if (isNotification(m)) {
          const n = requestNotification(m, envelope, clientToken);
          if (n) out.notify(n);
        }
      },
      response: (r) => {
        if (phase === 'done') return;
        if (phase === 'detached') {
          append(r);
          finishDetached();
          return;
        }
        phase = 'done';
        clearTimeout(window);
        const { message: m, status } = this.#toClient(call, r);
        out.final(m, status);
      },
    };
    call.res.once('close', () => {
      // Closing the response stream cancels the request (spec 2026-07-28 §Cancellation), unless it was
      // answered with input_required and now waits for the retry.
      if (phase === 'direct' || phase === 'collecting') {
        phase = 'done';
        clearTimeout(window);
        ctl.abort();
      }
    });

    const send = async (up: UpstreamSession) => {
      try {
        return await up.exchange([forwarded], pool.local.record.protocolVersion, upstreamHeaders(call.req.headers), sink, ctl.signal);
      } catch (err) {
        const now = phase as typeof phase;
        if (now === 'detached') {
          append(errorBodyOf(err, upstreamId));
          finishDetached();
          return 'done';
        }
        if (now === 'done') return 'done';
        phase = 'done';
        clearTimeout(window);
        throw err;
      }
    };
    await runExchange(this.#o.sessions, this.#o.logger, { session: pool.local, messages: [forwarded], req: call.req, send });
    if (phase === 'detached') finishDetached();
  }

  /**
   * An MRTR retry: verifies `requestState`, routes `inputResponses` to the pending server-to-client
   * requests (wherever they are held), then follows the continuation stream for the rest of the exchange.
   */
  async #resume(call: Call): Promise<void> {
    const { message, out } = call;
    const params = message.params ?? {};
    const verified = this.#states.verify(params.requestState, {
      principal: call.principal,
      method: message.method,
      digest: requestDigest(message.method, params),
    });
    if ('rejected' in verified) {
      return out.final({ jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: `Invalid requestState (${verified.rejected})` } });
    }
    const state = verified.state;
    const responses = params.inputResponses;
    if (responses !== undefined && !isObject(responses)) {
      return out.final({ jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: 'inputResponses must be an object' } });
    }
    const answered: [string, Record<string, unknown>][] = [];
    const missing: PendingInput[] = [];
    for (const [key, id] of Object.entries(state.k)) {
      const value = responses?.[key];
      if (value === undefined) {
        missing.push({ key, id, request: state.q[key]! });
        continue;
      }
      if (!isObject(value)) {
        return out.final({ jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: `inputResponses.${key} must be a result object` } });
      }
      answered.push([key, value]);
    }
    for (const [key, result] of answered) {
      await this.#o.router.reply(state.s, { jsonrpc: '2.0', id: state.k[key]!, result });
    }
    if (missing.length > 0) {
      // Ask again for what is still missing (spec mrtr.mdx §Error Handling).
      const again: RequestState = { ...state, k: {}, q: {}, e: Date.now() + this.#stateTtlMs };
      for (const p of missing) {
        again.k[p.key] = p.id;
        again.q[p.key] = p.request;
      }
      return this.#inputRequired(call, again);
    }
    await this.#follow(call, state);
  }

  /** Follows a continuation stream after `state.a` until the exchange's response or its next input request. */
  async #follow(call: Call, state: RequestState): Promise<void> {
    const { message, envelope, out } = call;
    const clientMeta = isObject(message.params?._meta) ? message.params._meta : {};
    const clientToken = clientMeta.progressToken;
    const pending: PendingInput[] = [];
    let last = state.a;
    let finished = false;
    let follow: StreamFollow | undefined;
    let window: NodeJS.Timeout | undefined;
    let idle: NodeJS.Timeout | undefined;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));

    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(window);
      clearTimeout(idle);
      void follow?.close().catch(() => undefined);
      resolveDone();
    };
    const restart = () => {
      // The holding replica stopped answering (gone, or the exchange expired): run the request afresh;
      // the upstream asks again if it still needs input.
      if (finished) return;
      finish();
      this.#o.logger.info({ pool: sessionFingerprint(state.s) }, 'interrupted exchange is gone; running the retried request afresh');
      void this.#call(call, withoutRetryFields(message.params)).catch((err: unknown) => this.#fail(out, message.id, err));
    };
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(restart, this.#heartbeatMs * 4);
      idle.unref();
    };
    const flush = () => {
      window = undefined;
      if (finished) return;
      finish();
      this.#inputRequired(call, { ...this.#stateFor(call, state.t, last, pending), s: state.s });
    };
    const onEvent = (event: StreamEvent) => {
      if (finished) return;
      armIdle();
      const m = event.message;
      if (isNotification(m) && m.method.startsWith(MARKER_PREFIX)) {
        last = event.eventId;
        return;
      }
      if (window !== undefined && !isRequest(m)) {
        // Something else after an input request: answer input_required now, continue after this point next time.
        clearTimeout(window);
        flush();
        return;
      }
      last = event.eventId;
      if (isResponse(m)) {
        finish();
        const { message: r, status } = this.#toClient(call, m);
        out.final(r, status);
        return;
      }
      if (isRequest(m)) {
        const r = this.#serverRequest({ ...call, pool: { ...call.pool, id: state.s } }, m, `r${pending.length}`);
        if (r === undefined) return;
        if ('missing' in r) {
          finish();
          return this.#missingCapability(call, r.missing);
        }
        pending.push(r);
        window ??= setTimeout(flush, this.#inputWindowMs);
        return;
      }
      if (isNotification(m)) {
        const n = requestNotification(m, envelope, clientToken);
        if (n) out.notify(n);
      }
    };
    call.res.once('close', finish);
    armIdle();
    follow = await this.#o.streams.follow(state.s, state.t, { after: state.a }, onEvent);
    if (finished) void follow.close().catch(() => undefined);
    await done;
  }

  /**
   * `subscriptions/listen` (spec `basic/patterns/subscriptions.mdx`): an SSE response that starts with
   * `notifications/subscriptions/acknowledged` (the honoured filter) once the follow of the pooled
   * session's standalone stream is live, then carries the matching notifications, each tagged with the
   * subscription id (the request's id), until the client closes it; on shutdown it ends with the
   * graceful-closure result.
   */
  async #listen(call: Call): Promise<void> {
    const { message, out, pool } = call;
    const id = message.id;
    if (!servesSubscriptions(pool.info.capabilities)) {
      return out.error(404, id, { code: ErrorCode.MethodNotFound, message: 'Method not found: the server offers no change notifications' });
    }
    const filter = readListenFilter(message.params);
    if (typeof filter === 'string') return out.error(200, id, { code: ErrorCode.InvalidParams, message: `Invalid params: ${filter}` });
    const ack = acknowledgedFilter(filter, pool.info.capabilities, this.#o.maxResourceSubscriptions ?? 256);
    const res = call.res;
    let follow: StreamFollow | undefined;
    let open = true;
    let early: JsonRpcNotification[] | undefined = [];
    /** Last delivery of `resources/updated` per URI: the same update from several replicas' upstream sessions goes out once. */
    const lastUpdate = new Map<string, number>();
    const stopKeepAlive = keepAlive(res, this.#keepAliveMs);
    // Keep the pooled session's record and this replica's upstream session from expiring while listening.
    const touch = setInterval(() => void this.#o.sessions.resolve(pool.id, call.principal).catch(() => undefined), Math.max(1_000, this.#keepAliveMs));
    touch.unref();
    const close = () => {
      if (!open) return;
      open = false;
      this.#listens.delete(graceful);
      stopKeepAlive();
      clearInterval(touch);
      void follow?.close().catch(() => undefined);
    };
    const graceful = () => {
      if (!res.writableEnded && !res.destroyed) {
        res.end(sseEvent({ jsonrpc: '2.0', id, result: { resultType: 'complete', _meta: { [META.subscriptionId]: id } } }));
      }
      close();
    };
    res.once('close', close);
    this.#listens.add(graceful);
    try {
      follow = await this.#o.streams.follow(pool.id, STANDALONE_STREAM, {}, (event) => {
        const m = event.message;
        if (!open || !isNotification(m) || !matchesFilter(m, ack)) return;
        if (m.method === RESOURCE_UPDATED) {
          const uri = m.params?.uri as string;
          const now = Date.now();
          if (now - (lastUpdate.get(uri) ?? -Infinity) < DUPLICATE_UPDATE_MS) return;
          lastUpdate.set(uri, now);
        }
        // Nothing goes out before the acknowledgement (spec: it MUST be the first message).
        if (early) early.push(m);
        else res.write(sseEvent(tagSubscription(m, id)));
      });
      if (ack.resourceSubscriptions) {
        ack.resourceSubscriptions = await this.#holdResources(call, ack.resourceSubscriptions);
        if (ack.resourceSubscriptions.length === 0) delete ack.resourceSubscriptions;
      }
    } catch (err) {
      close();
      return this.#fail(out, id, err);
    }
    if (!open) {
      void follow.close().catch(() => undefined);
      return;
    }
    res.writeHead(200, SSE_HEADERS);
    res.write(sseEvent({ jsonrpc: '2.0', method: SUBSCRIPTION_ACKNOWLEDGED, params: { _meta: { [META.subscriptionId]: id }, notifications: ack } }));
    for (const m of early) res.write(sseEvent(tagSubscription(m, id)));
    early = undefined;
  }

  /**
   * Records resource subscriptions in the pooled session's record (`resources/subscribe`, replayed by
   * every replica that opens or re-syncs an upstream session of the pool, like a client session's), and
   * applies them to this replica's upstream session now. Subscriptions stay for the life of the pooled
   * session (a listener leaving does not unsubscribe: another, on another replica, may rely on it);
   * at most `maxResourceSubscriptions` per pool.
   */
  async #holdResources(call: Call, uris: string[]): Promise<string[]> {
    const local = call.pool.local;
    const max = this.#o.maxResourceSubscriptions ?? 256;
    const fresh = uris.filter((u) => !local.record.subscriptions.includes(u));
    const room = Math.max(0, max - local.record.subscriptions.length);
    const adding = fresh.slice(0, room);
    const refused = new Set(fresh.slice(room));
    if (adding.length > 0) {
      const up = await this.#upstream(local, call.req);
      for (const uri of adding) {
        if (!(await this.#o.sessions.recordChange(local, up, { kind: 'subscribe', uri }))) throw new SessionGoneError();
      }
      await up.sendRuntime(
        adding.map((uri) => ({ jsonrpc: '2.0', id: runtimeRequestId('modern-sub'), method: 'resources/subscribe', params: { uri } })),
        local.record.protocolVersion,
        call.req,
      );
    }
    return uris.filter((u) => !refused.has(u));
  }
}
