import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultStores, type RuntimeStores } from './from-env.js';
import { handshakeReplay, stateSync } from './handshake.js';
import { INITIALIZED_NOTIFICATION, initializedStep } from './client-messages.js';
import { errorAnswerResponse, writeErrorAnswer, type ErrorKind } from './error-answers.js';
import { isNotification, isRequest, isResponse, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';
import { parseSessionEvent, SESSION_EVENTS_CHANNEL, type SessionEvent } from './message-bus.js';
import { HANDSHAKE_METHODS, LAST_EVENT_ID_HEADER, SESSION_ID_HEADER, SUPPORTED_PROTOCOL_VERSIONS } from './protocol.js';
import { appendStandalone, toClientMessage } from './server-messages.js';
import { isRewrittenId } from './server-requests.js';
import { runInSession } from './session-context.js';
import { setSessionInbox } from './session-inbox.js';
import { applyChange, sessionChangeOf, type SessionRecord } from './session-record.js';
import { SessionStoreUnavailableError } from './session-store.js';
import { serveSessionStream, sessionStreamResponse, type SessionStreamRequest } from './standalone-stream.js';
import { replayInitializeRequest, replaySessionRequest, type WebEntry } from './web-entry.js';
import { OwnerAffinity, ownerAffinityFromEnv, type AffinityEvent } from './owner-affinity.js';
import { handOverAll } from './handover.js';
import { RequestTracker } from './request-tracker.js';
import { drainOnSignals, shutdownFromEnv, type ShutdownSettings } from './shutdown.js';
import { routeToOwner, type SessionLocator } from './owner-route.js';

/** What the registry needs of a Streamable HTTP server transport (SDK v1 and v2, Node or web-standard). */
export interface RegistryTransport {
  readonly sessionId?: string | undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onmessage?: ((message: any, extra?: any) => void) | undefined;
  onclose?: (() => void) | undefined;
  /** The SDK's `Transport.send(message, { relatedRequestId? })`: without `relatedRequestId`, the standalone (GET) stream. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  send?(message: any, options?: any): Promise<void>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handleRequest(...args: any[]): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * The server's own session-opening code, extracted by `mcp-migrate apply`: creates the transport
 * (with `sessionIdGenerator: registry.sessionIdGenerator(…)`), connects the MCP server to it and
 * resolves to it. Receives the request that needs the session (Node: `req, res`). Resolves
 * `undefined` where the server's code failed to open the session and answered the request itself
 * (an early exit in a `catch`): a restore then fails (`internal`, nothing written over that answer).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SessionOpener<T> = (...args: any[]) => Promise<T | undefined>;

export interface SessionTransportRegistryOptions {
  /** `node`: `handleRequest(req, res, parsedBody)` (SDK v1 `StreamableHTTPServerTransport`, v2 `NodeStreamableHTTPServerTransport`); `web`: `handleRequest(Request, { parsedBody })`. Default `node`. */
  kind?: 'node' | 'web';
  /** Stores; default: from `MCP_MIGRATE_STORE` ({@link defaultStores}). */
  stores?: RuntimeStores;
  /** Where problems are reported. Default: one line on stderr. */
  log?: (message: string) => void;
  /** Interval of SSE keep-alive comments on GET streams the registry serves, ms. Default 15,000. */
  keepAliveMs?: number;
  /** `retry:` of the priming event on standalone GET streams of 2025-11-25+ sessions, ms. Default 1,000. */
  sseRetryMs?: number;
  /**
   * `replay` (default): any replica serves any session, restoring it by handshake replay, which is right
   * only when the handshake rebuilds all per-session state. `owner`: the replica that created a session
   * serves it and other replicas forward its HTTP requests there (docs/runtime.md "Owner affinity"), for
   * servers that keep per-session state in process (timers, closures, waiters). `kind: 'node'` only.
   * `MCP_MIGRATE_AFFINITY` overrides it; `MCP_MIGRATE_ON_OWNER_LOSS`, `MCP_MIGRATE_ADVERTISE_URL` and
   * `MCP_MIGRATE_SESSION_SECRET` tune it. @throws RangeError (constructor) for invalid values.
   */
  affinity?: 'replay' | 'owner';
  /**
   * Longest {@link SessionTransportRegistry.drain}, ms (in-flight requests, then sessions are let go of
   * regardless). Default: `MCP_MIGRATE_SHUTDOWN_TIMEOUT` seconds, else 10 s.
   */
  shutdownTimeoutMs?: number;
  /**
   * Owner affinity: whether SIGTERM and SIGINT drain this replica before it exits (installed on the
   * first request). Default: `MCP_MIGRATE_SHUTDOWN_SIGNALS` (`on`/`off`), else on.
   */
  drainOnSignals?: boolean;
}

type Replay = { transport: RegistryTransport; sessionId: string; message: JsonRpcRequest | JsonRpcNotification; auth?: unknown };

/**
 * A drop-in for the `Map<sessionId, transport>` of a sessionful MCP server that makes every session
 * available on every replica behind a round-robin load balancer (`mcp-migrate apply`'s
 * `transport-registry` transform; see `docs/apply.md`).
 *
 * - The `Map` methods (`get`, `set`, `has`, `delete`, iteration) work on this replica's transports, as before.
 * - `set` (called from the server's `onsessioninitialized`) records the session's handshake — the
 *   client's `initialize` params, then `logging/setLevel` and resource subscriptions — in the session
 *   store before the server answers, using the same record as `mcp-migrate proxy`.
 * - {@link prepareNode} / {@link prepareRequest}, called first in each request handler, make the
 *   request's session local: when this replica has never seen the id but the store has it, the
 *   registry runs the server's session-opening code ({@link opener}) with `sessionIdGenerator`
 *   returning the stored id and replays the stored `initialize` and `notifications/initialized`
 *   (then the recorded level and subscriptions) through the transport's public `handleRequest`, so
 *   `extra.sessionId` and the client's capabilities are what they were. An id the store does not know
 *   (never issued, expired, or deleted on any replica) gets 404 `Session not found`, and a `DELETE`
 *   removes the session from the store for every replica.
 */
export class SessionTransportRegistry<T extends RegistryTransport = RegistryTransport> implements Iterable<[string, T]> {
  readonly kind: 'node' | 'web';
  readonly #local = new Map<string, T>();
  readonly #restoring = new AsyncLocalStorage<string>();
  readonly #replaying = new WeakSet<RegistryTransport>();
  /** Set while the registry replays messages through a transport (restore or state sync). */
  readonly #replayCtx = new AsyncLocalStorage<RegistryTransport>();
  /** The recorded state each local transport's server has seen (what a state sync starts from). */
  readonly #state = new Map<string, SessionRecord>();
  /** State syncs in progress, by session: a request for the session waits for it. */
  readonly #syncing = new Map<string, Promise<void>>();
  readonly #origin = randomBytes(9).toString('base64url');
  #listening: Promise<void> | undefined;
  readonly #watched = new WeakSet<RegistryTransport>();
  readonly #pending = new Map<string, Promise<T | undefined>>();
  readonly #stores: RuntimeStores | undefined;
  readonly #log: (message: string) => void;
  readonly #keepAliveMs: number;
  readonly #sseRetryMs: number;
  #opener: SessionOpener<T> | undefined;
  #entry: WebEntry | undefined;
  #loopback: Promise<{ port: number; token: string }> | undefined;
  readonly #jobs = new Map<string, Replay>();
  /** Owner affinity (`affinity: 'owner'`, node kind), else `undefined` (replay). */
  readonly #affinity: OwnerAffinity | undefined;
  readonly #tracker = new RequestTracker();
  readonly #shutdown: ShutdownSettings;
  #signals: (() => void) | undefined;
  #draining: Promise<void> | undefined;

  constructor(options: SessionTransportRegistryOptions = {}) {
    this.kind = options.kind ?? 'node';
    this.#stores = options.stores;
    this.#log = options.log ?? ((m) => process.stderr.write(`mcp-migrate/runtime: ${m}\n`));
    this.#keepAliveMs = options.keepAliveMs ?? 15_000;
    this.#sseRetryMs = options.sseRetryMs ?? 1_000;
    const affinity = ownerAffinityFromEnv(options.affinity);
    const shutdown = shutdownFromEnv();
    this.#shutdown = { timeoutMs: options.shutdownTimeoutMs ?? shutdown.timeoutMs, signals: options.drainOnSignals ?? shutdown.signals };
    if (affinity.mode === 'owner' && this.kind === 'web') {
      this.#log('owner affinity needs a Node server (kind node): a web-standard runtime (a Worker) cannot be addressed per instance, so sessions are restored by handshake replay');
    } else if (affinity.mode === 'owner') {
      const host = {
        stores: () => this.#s(),
        ended: (id: string) => this.#ended(id),
        has: (id: string) => this.#local.has(id),
        drop: (id: string) => this.#drop(id),
        announce: (event: AffinityEvent) => this.#publish({ ...event, origin: this.#origin }),
      };
      this.#affinity = new OwnerAffinity(host, { ...affinity.options, log: this.#log });
    }
  }

  /** `owner` when this registry routes sessions to their owner replica, else `replay`. */
  get affinity(): 'replay' | 'owner' {
    return this.#affinity ? 'owner' : 'replay';
  }

  /** This replica's id in session records' `owner` (owner affinity), else `undefined`. */
  get replicaId(): string | undefined {
    return this.#affinity?.replicaId;
  }

  /**
   * Graceful shutdown (docs/runtime.md "Graceful hand-over"); SIGTERM/SIGINT run it with owner affinity.
   * Owner affinity: this replica takes no new sessions (new ones that reach it are passed on to a
   * replica that takes them), and lets go of each session it owns as soon as no request of it is in
   * flight here, all of them at `timeoutMs` at the latest (default {@link SessionTransportRegistryOptions.shutdownTimeoutMs}):
   * `MCP_MIGRATE_ON_OWNER_LOSS=end` ends the session (404 on its next request, wherever it lands: the
   * client initializes again), `replay` releases it (the next replica claims it and replays the
   * handshake). Every mode: GET SSE streams this replica serves are ended with `retry:` (the client
   * reconnects elsewhere with `Last-Event-ID`; the session streams are in the store), requests in
   * flight get what is left of `timeoutMs` (responses carry `Connection: close` meanwhile), then the
   * HTTP servers the registry saw requests on stop listening (open keep-alive connections stay until
   * they are used up or the timeout ends, 1 s at least), and the replica deregisters and closes its
   * forwarding connections. Resolves when done; idempotent (later calls wait for the first). Never rejects.
   */
  drain(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#draining ??= (async () => {
      const deadline = Date.now() + (options.timeoutMs ?? this.#shutdown.timeoutMs);
      this.#signals?.();
      this.#tracker.closing();
      const affinity = this.#affinity;
      if (affinity) await affinity.drain();
      this.#tracker.endStreams();
      if (affinity) {
        await handOverAll<string>({ owned: () => affinity.owned(), due: (id) => !this.#tracker.busy(id), handOver: (id) => affinity.giveUp(id) }, deadline);
      }
      await this.#tracker.settled(deadline);
      await this.#tracker.closeListeners(deadline);
      const cut = await this.#tracker.settled(deadline);
      if (cut > 0) this.#log(`drain: the shutdown timeout ends ${cut} request(s) still in flight`);
      this.#tracker.endStreams();
      await affinity?.close();
    })().catch((err: unknown) => this.#log(`drain failed: ${(err as Error).message}`));
    return this.#draining;
  }

  /** {@link drain}, for code that closes its registry on shutdown. */
  async close(): Promise<void> {
    await this.drain();
  }

  /** Closes this replica's transport of a session (the server's own close handlers run) and forgets it. */
  async #drop(sessionId: string): Promise<void> {
    const local = this.#local.get(sessionId);
    if (!local) return;
    await local.close().catch(() => undefined);
    if (this.#local.get(sessionId) === local) this.delete(sessionId);
  }

  async #s(): Promise<RuntimeStores> {
    const s = this.#stores ?? defaultStores();
    await s.ready();
    return s;
  }

  /** The stores without waiting for them (the lazily created bus, streams and router). */
  #sync(): RuntimeStores {
    return this.#stores ?? defaultStores();
  }

  // ------------------------------------------------------------------ Map API (this replica)

  get size(): number {
    return this.#local.size;
  }

  has(sessionId: string): boolean {
    return this.#local.has(sessionId);
  }

  get(sessionId: string): T | undefined {
    return this.#local.get(sessionId);
  }

  /** Adds a transport of this replica; a new session's handshake is recorded in the store as it arrives. */
  set(sessionId: string, transport: T): this {
    this.#local.set(sessionId, transport);
    this.#watch(sessionId, transport);
    return this;
  }

  /** Forgets this replica's transport (the session stays in the store: only a client's DELETE ends it everywhere). */
  delete(sessionId: string): boolean {
    this.#state.delete(sessionId);
    this.#affinity?.dropped(sessionId);
    return this.#local.delete(sessionId);
  }

  clear(): void {
    this.#local.clear();
    this.#state.clear();
  }

  keys(): IterableIterator<string> {
    return this.#local.keys();
  }

  values(): IterableIterator<T> {
    return this.#local.values();
  }

  entries(): IterableIterator<[string, T]> {
    return this.#local.entries();
  }

  forEach(fn: (transport: T, sessionId: string, registry: this) => void): void {
    for (const [id, t] of this.#local) fn(t, id, this);
  }

  [Symbol.iterator](): IterableIterator<[string, T]> {
    return this.#local.entries();
  }

  // ------------------------------------------------------------------ wiring

  /**
   * Wraps the server's `sessionIdGenerator`: while a session is being restored it returns the stored
   * id. `undefined` (a server that picks stateless mode at run time: `stateless ? undefined : randomUUID`)
   * stays `undefined`, so such a transport stays stateless.
   */
  sessionIdGenerator(generate: () => string): () => string;
  sessionIdGenerator(generate: (() => string) | undefined): (() => string) | undefined;
  sessionIdGenerator(generate: (() => string) | undefined): (() => string) | undefined {
    return generate && (() => this.#restoring.getStore() ?? generate());
  }

  /** Registers the server's session-opening code (see {@link SessionOpener}). */
  opener(open: SessionOpener<T>): this {
    this.#opener = open;
    return this;
  }

  /**
   * Web-standard servers: registers the server's entry point (`(request) => app.fetch(request)`),
   * through which a session is restored instead of an {@link opener}: the stored `initialize` goes
   * through the server's own routing and session-opening code (see `web-entry.ts`).
   */
  entry(fetch: WebEntry): this {
    this.#entry = fetch;
    return this;
  }

  // ------------------------------------------------------------------ request entry points

  /**
   * Call first in a Node request handler (`(req, res)`, Express, Fastify's `raw`). Resolves `true`
   * when the handler should go on: no session id (a new session), or the session is now on this
   * replica. Resolves `false` after answering itself: 404 for an unknown or terminated session, 503
   * when the store is unreachable.
   */
  async prepareNode(req: http.IncomingMessage, res: http.ServerResponse, ...rest: unknown[]): Promise<boolean> {
    const raw = req.headers[SESSION_ID_HEADER];
    const sessionId = Array.isArray(raw) ? raw[0] : raw;
    this.#tracker.seen(req, res);
    if (req.method === 'GET') this.#tracker.stream(res);
    else this.#tracker.begin(res, sessionId);
    let touched = false;
    if (this.#affinity) {
      const routed = await this.#routeToOwner(sessionId, req, res, rest[0]);
      if (!routed) return false;
      touched = routed === 'touched';
    }
    if (!sessionId) return true;
    if (req.method === 'GET') {
      const lastEventId = header(req.headers[LAST_EVENT_ID_HEADER]);
      const get = await this.#get(sessionId, header(req.headers.accept), lastEventId);
      if (get.outcome === 'serve') {
        try {
          await serveSessionStream(res, get.request);
        } catch (err) {
          writeErrorAnswer(res, this.#failed(err));
        }
        return false;
      }
      if (get.outcome !== 'pass') {
        writeErrorAnswer(res, get.outcome);
        return false;
      }
    }
    const outcome = await this.#prepare(sessionId, req.method ?? 'POST', (req as { auth?: unknown }).auth, [req, res, ...rest], touched);
    if (outcome === 'ok') return true;
    writeErrorAnswer(res, outcome);
    return false;
  }

  /**
   * Express-style middleware (`(req, res, next)`) for a server's own HTTP route that acts for a session
   * but is not an MCP request: the page and the form of a URL-mode elicitation, which complete it with
   * `notifications/elicitation/complete` (spec: Elicitation, URL mode). With owner affinity, the route
   * runs on the replica that holds the session: `locate` says where the request carries the session id
   * ({@link SessionLocator}); the request is served here, forwarded to the owner, or answered 404 when no
   * replica holds the session (see `routeToOwner`). Put it before body parsers: a body read for the id
   * is forwarded byte for byte and given back to the stream. Without owner affinity it only calls `next()`.
   */
  ownerRoute(locate: SessionLocator): (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => void {
    return (req, res, next) => {
      this.routeNode(req, res, locate).then((serve) => serve && next(), next);
    };
  }

  /** {@link ownerRoute} for a plain node:http handler: resolves `true` when the route's code should run here, `false` once answered. */
  routeNode(req: http.IncomingMessage, res: http.ServerResponse, locate: SessionLocator): Promise<boolean> {
    return routeToOwner({ affinity: this.#affinity, isLocal: (id) => this.#local.has(id), failed: (err) => this.#failed(err) }, req, res, locate);
  }

  /**
   * Owner affinity: a request without a session id registers this replica first (so the session it may
   * create has an owner others can reach); one with a session id is served here or forwarded to the
   * session's owner (see `owner-affinity.ts`); on a draining replica a new one is passed on to a
   * replica that takes new sessions. Resolves false once the request was answered, `touched` when it
   * is served here and the fencing check refreshed the record already. Installs the signal handler of
   * {@link drain} on the first request.
   */
  async #routeToOwner(sessionId: string | undefined, req: http.IncomingMessage, res: http.ServerResponse, parsed: unknown): Promise<boolean | 'touched'> {
    if (this.#shutdown.signals && !this.#signals && !this.#draining) this.#signals = drainOnSignals(() => this.drain(), this.#log);
    const body = () => consumedBody(req, parsed);
    try {
      if (!sessionId) {
        await this.#affinity!.start(req);
        return !(await this.#affinity!.handOffNew(req, res, body));
      }
      const routed = await this.#affinity!.route(sessionId, this.#local.has(sessionId), req, res, body);
      if (routed.action === 'serve') return routed.touched ? 'touched' : true;
      if (routed.action === 'error') writeErrorAnswer(res, routed.kind, { detail: routed.detail, ...(routed.headers ? { headers: routed.headers } : {}) });
    } catch (err) {
      writeErrorAnswer(res, this.#failed(err));
    }
    return false;
  }

  /** A session ended by the owner-loss policy: its streams and pending requests go, and every replica hears of it. */
  async #ended(sessionId: string): Promise<void> {
    const s = await this.#s();
    await s.streams.delete(sessionId).catch((err: unknown) => this.#log(`could not delete the session streams: ${(err as Error).message}`));
    s.router.forget(sessionId);
    await this.#publish({ type: 'terminated', sessionId, origin: this.#origin });
  }

  /** Web-standard variant of {@link prepareNode}: resolves `undefined` to go on, or the `Response` to return. */
  async prepareRequest(request: Request, ...rest: unknown[]): Promise<Response | undefined> {
    const sessionId = request.headers.get(SESSION_ID_HEADER);
    if (!sessionId) return undefined;
    if (request.method === 'GET') {
      const get = await this.#get(sessionId, request.headers.get('accept') ?? undefined, request.headers.get(LAST_EVENT_ID_HEADER) ?? undefined);
      let outcome: 'pass' | ErrorKind;
      if (get.outcome === 'serve') {
        try {
          return await sessionStreamResponse(get.request, request.signal);
        } catch (err) {
          outcome = this.#failed(err);
        }
      } else outcome = get.outcome;
      if (outcome !== 'pass') return errorAnswerResponse(outcome);
    }
    const outcome = await this.#prepare(sessionId, request.method, undefined, [request, ...rest]);
    return outcome === 'ok' ? undefined : errorAnswerResponse(outcome);
  }

  /** Makes `sessionId` local if the store knows it; resolves to the transport, or `undefined` for an unknown session. */
  async restore(sessionId: string, ...openArgs: unknown[]): Promise<T | undefined> {
    const local = this.#local.get(sessionId);
    if (local) return local;
    let pending = this.#pending.get(sessionId);
    if (!pending) {
      pending = this.#restore(sessionId, openArgs).finally(() => this.#pending.delete(sessionId));
      this.#pending.set(sessionId, pending);
    }
    return await pending;
  }

  async #prepare(sessionId: string, method: string, auth: unknown, openArgs: unknown[], touched = false): Promise<'ok' | ErrorKind> {
    try {
      const s = await this.#s();
      const local = this.#local.get(sessionId);
      if (local) {
        // One command per steady-state request: is the session still alive (not DELETEd on another
        // replica)? With owner affinity the fencing check (`touchOwned`) was that command.
        if (!touched && !(await s.sessions.touch(sessionId))) {
          // Closed while still registered, so the server's own onclose cleanup (which usually
          // checks the map) runs; then forgotten.
          await local.close().catch(() => undefined);
          this.delete(sessionId);
          return 'sessionNotFound';
        }
        // A change recorded on another replica (logging level, subscriptions) is applied first.
        await this.#syncing.get(sessionId);
      } else if (!(await this.restore(sessionId, ...openArgs.slice(0, 2), auth))) return 'sessionNotFound';
      if (method === 'DELETE') {
        await s.sessions.delete(sessionId);
        // Its stored streams go too; their followers (GET streams on any replica) end.
        await s.streams.delete(sessionId).catch((err: unknown) => this.#log(`could not delete the session streams: ${(err as Error).message}`));
        s.router.forget(sessionId);
        await this.#publish({ type: 'terminated', sessionId, origin: this.#origin });
      }
      return 'ok';
    } catch (err) {
      return this.#failed(err);
    }
  }

  /** The error-table row of a failure (logged): `storeUnavailable` or `internal`. */
  #failed(err: unknown): 'storeUnavailable' | 'internal' {
    if (err instanceof SessionStoreUnavailableError) {
      this.#log(`session store unavailable: ${err.message}`);
      return 'storeUnavailable';
    }
    this.#log(`could not restore a session: ${(err as Error).stack ?? String(err)}`);
    return 'internal';
  }

  /**
   * A GET with a session id: served by the registry from the session's shared streams (the
   * standalone stream, or the session stream a `Last-Event-ID` names), whichever replica holds the
   * session's transport. A `Last-Event-ID` that is not a session-stream event id (one of the server's
   * own event store, for a POST stream) is passed on to the transport as before (`pass`).
   */
  async #get(
    sessionId: string,
    accept: string | undefined,
    lastEventId: string | undefined,
  ): Promise<{ outcome: 'serve'; request: SessionStreamRequest } | { outcome: 'pass' | 'sessionNotFound' | 'storeUnavailable' | 'internal' | 'notAcceptable' }> {
    try {
      const s = await this.#s();
      if (lastEventId !== undefined && s.streams.streamOf(lastEventId) === undefined) return { outcome: 'pass' };
      if (!(accept ?? '').includes('text/event-stream')) return { outcome: 'notAcceptable' };
      const record = await s.sessions.load(sessionId);
      if (!record) {
        const local = this.#local.get(sessionId);
        if (local) {
          await local.close().catch(() => undefined);
          this.delete(sessionId);
        }
        return { outcome: 'sessionNotFound' };
      }
      return {
        outcome: 'serve',
        request: {
          streams: s.streams,
          sessionId,
          protocolVersion: record.protocolVersion,
          lastEventId,
          keepAliveMs: this.#keepAliveMs,
          retryMs: this.#sseRetryMs,
        },
      };
    } catch (err) {
      return { outcome: this.#failed(err) };
    }
  }

  async #restore(sessionId: string, openArgs: unknown[]): Promise<T | undefined> {
    const s = await this.#s();
    const record = await s.sessions.load(sessionId);
    if (!record) return undefined;
    const [a, b, auth] = openArgs;
    const viaEntry = this.kind === 'web' && this.#entry !== undefined && a instanceof Request;
    if (!this.#opener && !viaEntry) throw new Error('no session opener registered: call registry.opener(openSession) (mcp-migrate apply generates it)');
    await this.#listen();
    const transport = viaEntry
      ? await this.#openThroughEntry(record, a, b)
      : await this.#restoring.run(sessionId, () => this.#opener!(...(this.kind === 'node' ? [a, b] : [a])));
    if (!transport) throw new Error('the session-opening code resolved no transport: it failed and answered the request itself');
    this.#replaying.add(transport);
    try {
      // Through the entry point, the server itself has already handled the stored initialize.
      for (const message of handshakeReplay(record).slice(viaEntry ? 1 : 0)) {
        if (viaEntry) await this.#replayThroughEntry(transport, record, message, a, b);
        else await this.#replay(transport, record, message, auth);
      }
    } catch (err) {
      await transport.close().catch(() => undefined);
      throw err;
    } finally {
      this.#replaying.delete(transport);
    }
    if (this.#local.get(sessionId) !== transport) this.set(sessionId, transport);
    this.#state.set(sessionId, record);
    return transport;
  }

  /** Runs the stored `initialize` through the server's web-standard entry point; resolves to the transport it registered. */
  async #openThroughEntry(record: SessionRecord, incoming: Request, rest: unknown): Promise<T> {
    const [initialize] = handshakeReplay(record) as [JsonRpcRequest];
    const request = replayInitializeRequest(incoming, initialize);
    const response = await this.#restoring.run(record.id, () => this.#entry!(request, ...(rest === undefined ? [] : [rest])));
    const text = await response.text();
    const transport = this.#local.get(record.id);
    if (response.status !== 200 || !transport) {
      await transport?.close().catch(() => undefined);
      throw new Error(`replaying initialize through the server's entry point failed: ${response.status} ${text.slice(0, 200)}${transport ? '' : ' (no transport was registered under the stored id)'}`);
    }
    return transport;
  }

  /**
   * Sends one replayed handshake message (after `initialize`) through the server's entry point, as a
   * `POST` with the session's id: the server's own route hands it to its transport, whatever that
   * transport's `handleRequest` takes (a `Request`, or a framework's context such as @hono/mcp's). The
   * reply is read and discarded.
   */
  async #replayThroughEntry(transport: T, record: SessionRecord, message: JsonRpcRequest | JsonRpcNotification, incoming: Request, rest: unknown): Promise<void> {
    const request = replaySessionRequest(incoming, message, record.id, record.protocolVersion);
    const response = await this.#replayCtx.run(transport, () => this.#restoring.run(record.id, () => this.#entry!(request, ...(rest === undefined ? [] : [rest]))));
    await response.text();
  }

  /** Sends one replayed message through the transport's public `handleRequest`; the reply is read and discarded. */
  async #replay(transport: RegistryTransport, record: SessionRecord, message: JsonRpcRequest | JsonRpcNotification, auth: unknown): Promise<void> {
    const initialize = message.method === HANDSHAKE_METHODS.initialize;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (!initialize) {
      headers[SESSION_ID_HEADER] = record.id;
      headers['mcp-protocol-version'] = record.protocolVersion;
    }
    const body = JSON.stringify(message);
    let response: Response;
    if (this.kind === 'web') {
      const request = new Request('http://mcp-migrate.invalid/mcp', { method: 'POST', headers, body });
      response = (await this.#replayCtx.run(transport, () =>
        this.#restoring.run(record.id, () => transport.handleRequest(request, { parsedBody: message, authInfo: auth })),
      )) as Response;
    } else {
      // A Node transport needs a real IncomingMessage/ServerResponse pair: a private loopback server makes one.
      const { port, token } = await this.#startLoopback();
      const job = randomBytes(12).toString('base64url');
      this.#jobs.set(job, { transport, sessionId: record.id, message, auth });
      try {
        response = await fetch(`http://127.0.0.1:${port}/${token}/${job}`, { method: 'POST', headers, body });
      } finally {
        this.#jobs.delete(job);
      }
    }
    const text = await response.text();
    if (initialize && response.status !== 200) throw new Error(`replaying initialize failed: ${response.status} ${text.slice(0, 200)}`);
  }

  #startLoopback(): Promise<{ port: number; token: string }> {
    this.#loopback ??= new Promise((resolve, reject) => {
      const token = randomBytes(16).toString('base64url');
      const server = http.createServer((req, res) => {
        const [, t, job] = (req.url ?? '').split('/');
        const replay = t === token && job ? this.#jobs.get(job) : undefined;
        if (!replay) {
          res.writeHead(404).end();
          return;
        }
        if (replay.auth !== undefined) (req as { auth?: unknown }).auth = replay.auth;
        void this.#replayCtx
          .run(replay.transport, () => this.#restoring.run(replay.sessionId, () => replay.transport.handleRequest(req, res, replay.message)))
          .catch((err: unknown) => {
            if (!res.headersSent) res.writeHead(500).end(String(err));
          });
      });
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.unref();
        resolve({ port: (server.address() as AddressInfo).port, token });
      });
    });
    return this.#loopback;
  }

  // ------------------------------------------------------------------ recording

  /** Records the handshake and replayable changes of a session as the transport receives them. */
  #watch(sessionId: string, transport: T): void {
    if (this.#watched.has(transport)) return;
    this.#watched.add(transport);
    const inner = transport.onmessage;
    if (!inner) {
      this.#log('a transport was registered before the MCP server was connected to it; its handshake is not recorded (connect first, then handleRequest)');
      return;
    }
    this.#route(sessionId, transport, inner);
    void this.#listen();
    const restoring = this.#restoring.getStore() === sessionId;
    let created = restoring;
    // Whether this transport's server has had `notifications/initialized`: a restored one gets it by
    // replay; the one that created the session gets the client's, if it lands here.
    let initialized = restoring;
    transport.onmessage = (message: { method?: unknown; params?: Record<string, unknown>; id?: unknown }, extra?: unknown) => {
      if (isResponse(message as JsonRpcMessage) && isRewrittenId(message.id)) {
        // The client's answer to a server-initiated request: to the replica that sent the request.
        void this.#reply(sessionId, message as JsonRpcResponse, transport, inner, extra);
        return;
      }
      const replayed = this.#replaying.has(transport) || this.#replayCtx.getStore() === transport;
      if (!replayed && (created || message.method === HANDSHAKE_METHODS.initialized)) {
        // A restored server already had it (replayed), and a second would run its oninitialized work
        // twice; the server that created the session gets it now if the client sent it to another
        // replica (the same rule as the proxy's upstream sessions).
        const { step, had } = initializedStep(initialized, [message as JsonRpcMessage]);
        initialized = had;
        if (step === 'drop') return;
        if (step === 'send-first') inner.call(transport, INITIALIZED_NOTIFICATION, extra);
      }
      const record = replayed ? undefined : recordable(message, created);
      if (!record) return inner.call(transport, message, extra);
      // Recorded before the server sees the message, so before it answers: the client's next
      // request, wherever it lands, finds the record.
      void (async () => {
        try {
          const s = await this.#s();
          if (record.kind === 'initialize') {
            created = true;
            const requested = String(message.params?.protocolVersion ?? '');
            const owner = this.#affinity?.started ? { owner: this.#affinity.replicaId } : {};
            if (this.#affinity?.started) this.#affinity.created(sessionId);
            if (this.#affinity && !this.#affinity.started) this.#log('owner affinity: a session was created before prepareNode(req, res) registered this replica; it has no owner and is restored by replay where it lands');
            const stored = await s.sessions.create({
              ...owner,
              id: sessionId,
              principal: '',
              protocolVersion: SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : SUPPORTED_PROTOCOL_VERSIONS[0]!,
              initializeParams: message.params ?? {},
            });
            this.#state.set(sessionId, stored);
          } else {
            const revision = await s.sessions.update(sessionId, record.change);
            const state = this.#state.get(sessionId);
            if (revision !== undefined) {
              if (state) this.#state.set(sessionId, { ...applyChange(state, record.change), revision });
              // Other replicas holding a transport of this session replay the change into theirs.
              await this.#publish({ type: 'changed', sessionId, revision, origin: this.#origin });
            }
          }
        } catch (err) {
          this.#log(`could not record session state (${String(message.method)}): ${(err as Error).message}`);
        }
        inner.call(transport, message, extra);
      })();
    };
  }

  /**
   * Routes what the server sends to the client across replicas (spec §Sending Messages to the
   * Server, §Listening for Messages from the Server): wraps `transport.send` so that
   * - a server-to-client request gets a client-facing id from `router.outgoing`, naming this replica;
   *   the client's answer, on whichever replica it lands, comes back here and is handed, with the
   *   server's original id, to the transport's `onmessage` (the SDK's `Protocol` resolves its request);
   * - a request or notification sent outside a request (no `relatedRequestId`: the standalone stream)
   *   is appended to the session's standalone stream in the shared streams, which the replica holding
   *   the client's GET delivers (notifications the server sends while its handshake is replayed are
   *   dropped: the client saw them when the session was created);
   * - the server's `notifications/cancelled` for a rewritten request names the client-facing id.
   */
  #route(sessionId: string, transport: T, inner: NonNullable<RegistryTransport['onmessage']>): void {
    const send = transport.send;
    if (typeof send !== 'function') return;
    const stores = this.#sync();
    transport.send = async (message: JsonRpcMessage, options?: { relatedRequestId?: unknown }) => {
      // A request another replica's server queued for a task (delivered here by tasks/result) already has its client-facing id.
      const out = isRequest(message) && isRewrittenId(message.id) ? message : toClientMessage(stores.router, sessionId, message, (response) => inner.call(transport, response, undefined));
      // In the session's context: the transport's event store appends to this session's streams.
      if (options?.relatedRequestId !== undefined || isResponse(message)) return await runInSession(sessionId, () => send.call(transport, out, options));
      if (isNotification(message) && (this.#replaying.has(transport) || this.#replayCtx.getStore() === transport)) return;
      let stored: boolean;
      try {
        stored = await appendStandalone(stores.streams, sessionId, out);
      } catch (err) {
        // A request fails (the SDK rejects its promise); a lost notification is logged, as the SDK
        // drops one when no GET stream is open.
        if (isRequest(message)) throw err;
        this.#log(`could not send a notification on the standalone stream: ${(err as Error).message}`);
        return;
      }
      // The session was deleted: a notification has nobody to go to; a request can never be answered.
      if (!stored && isRequest(message)) throw new Error('the session no longer exists');
    };
    const handle = transport.handleRequest;
    transport.handleRequest = (...args: unknown[]) => runInSession(sessionId, () => handle.apply(transport, args));
    const removeInbox = setSessionInbox(sessionId, (response) => inner.call(transport, response, undefined));
    const onclose = transport.onclose;
    transport.onclose = () => {
      removeInbox();
      stores.router.forget(sessionId);
      onclose?.call(transport);
    };
  }

  // ------------------------------------------------------------------ session events (the proxy's channel)

  #channel(s: RuntimeStores): string {
    return `${s.keyPrefix}${SESSION_EVENTS_CHANNEL}`;
  }

  /** Subscribes, once, to the session events every replica (and `mcp-migrate proxy`) publishes. */
  #listen(): Promise<void> {
    this.#listening ??= (async () => {
      const s = await this.#s();
      await s.bus.subscribe(this.#channel(s), (raw) => this.#onEvent(raw));
    })().catch((err: unknown) => {
      this.#listening = undefined;
      this.#log(`could not subscribe to session events: ${(err as Error).message}`);
    });
    return this.#listening;
  }

  async #publish(event: SessionEvent): Promise<void> {
    try {
      const s = await this.#s();
      await s.bus.publish(this.#channel(s), JSON.stringify(event));
    } catch (err) {
      this.#log(`could not publish a session event: ${(err as Error).message}`);
    }
  }

  #onEvent(raw: string): void {
    const event = parseSessionEvent(raw);
    if (!event || event.origin === this.#origin) return;
    this.#affinity?.onEvent(event);
    const local = this.#local.get(event.sessionId);
    const restoring = this.#pending.has(event.sessionId);
    if (event.type === 'terminated') {
      this.#affinity?.forget(event.sessionId);
      // Deleted on another replica: close the transport now rather than on the session's next request here.
      if (!local) return;
      void local
        .close()
        .catch(() => undefined)
        .finally(() => {
          if (this.#local.get(event.sessionId) === local) this.delete(event.sessionId);
        });
    } else if (event.type === 'changed' && (local || restoring)) {
      // A restore in progress may have loaded the record before this change: check once it is done.
      const known = this.#state.get(event.sessionId)?.revision ?? (restoring ? -1 : Infinity);
      if (known < event.revision) this.#syncState(event.sessionId);
    }
  }

  /**
   * Replays into this replica's transport the state changes recorded elsewhere (`stateSync`: the
   * `logging/setLevel`, `resources/subscribe` and `resources/unsubscribe` requests that move it to
   * the stored state), as the proxy does for its upstream sessions. Requests for the session wait for it.
   */
  #syncState(sessionId: string): void {
    const previous = this.#syncing.get(sessionId) ?? this.#pending.get(sessionId)?.catch(() => undefined) ?? Promise.resolve();
    const run: Promise<void> = previous
      .then(async () => {
        const s = await this.#s();
        const record = await s.sessions.load(sessionId);
        const transport = this.#local.get(sessionId);
        const from = this.#state.get(sessionId);
        if (!record || !transport || !from || record.revision <= from.revision) return;
        for (const message of stateSync(from, record)) await this.#replay(transport, record, message, undefined);
        if (this.#local.get(sessionId) === transport) this.#state.set(sessionId, record);
      })
      .catch((err: unknown) => this.#log(`could not apply a session change from another replica: ${(err as Error).message}`))
      .finally(() => {
        if (this.#syncing.get(sessionId) === run) this.#syncing.delete(sessionId);
      });
    this.#syncing.set(sessionId, run);
  }

  async #reply(sessionId: string, response: JsonRpcResponse, transport: T, inner: NonNullable<RegistryTransport['onmessage']>, extra: unknown): Promise<void> {
    try {
      const s = await this.#s();
      if ((await s.router.reply(sessionId, response)) === 'unknown') inner.call(transport, response, extra);
    } catch (err) {
      this.#log(`could not route an answer to a server-initiated request: ${(err as Error).message}`);
    }
  }
}

type Recordable = { kind: 'initialize' } | { kind: 'change'; change: NonNullable<ReturnType<typeof sessionChangeOf>> };

/**
 * What the server's code already read of a request's body, to forward it: `parsed` (a body the caller
 * passes as `prepareNode`'s third argument, e.g. Fastify's `request.body`), else `req.body` (Express's
 * body parsers), once the request stream has been read; `undefined` while it is unread (`forwardToOwner`
 * reads it). @throws Error when the stream was read and neither holds the body (forwarding an empty POST
 * would be a wrong request: the client gets 500 and the log says what to pass).
 */
function consumedBody(req: http.IncomingMessage, parsed: unknown): unknown {
  if (!req.readableEnded) return undefined;
  const body = parsed ?? (req as { body?: unknown }).body;
  if (body !== undefined || req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') return body ?? Buffer.alloc(0);
  throw new Error("owner affinity: the server's code read this request's body before prepareNode, and neither req.body nor prepareNode's third argument holds it; call prepareNode(req, res, parsedBody) to forward it to the session's owner");
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** What the registry records of a client message: the session's `initialize` (once), or its replayable state change. */
function recordable(message: { method?: unknown; params?: Record<string, unknown> }, created: boolean): Recordable | undefined {
  if (message.method === HANDSHAKE_METHODS.initialize) return created ? undefined : { kind: 'initialize' };
  const change = sessionChangeOf(message as JsonRpcMessage);
  return change ? { kind: 'change', change } : undefined;
}
