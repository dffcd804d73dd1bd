/**
 * Owner affinity (`mcp-migrate proxy --affinity owner`, docs/proxy.md "Owner affinity"): for servers
 * with hidden per-session state that no handshake replay rebuilds (the analyzer's `owner-routing`
 * verdict), the replica that created a session keeps serving it. Other replicas forward the client's
 * HTTP request to it; if it is gone, one of them claims the session and serves it by handshake replay,
 * so the client keeps its `Mcp-Session-Id` and never initializes again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { parseSessionEvent, writeErrorAnswer, type MessageBus, type SessionEvent } from '@mcp-migrate/runtime';
import type { ReplicaRegistry } from '@mcp-migrate/runtime';
import { sessionFingerprint, SESSION_ID_HEADER } from '@mcp-migrate/runtime';
import type { SessionStore } from '@mcp-migrate/runtime';
import { HttpTarget } from '../http/relay.js';
import { headerValue } from '../http/util.js';
import type { LocalSession, SessionManager } from '../sessions.js';
import { attemptForward, forwardHeaders, type ForwardOutcome } from './forward.js';
import { FORWARDED_HEADER, ForwardingMac, MISDIRECTED_HEADER } from './forwarding-mac.js';
import { OwnerCache } from './owner-cache.js';
import { OwnerWatcher } from './owner-watcher.js';

export { FORWARDED_HEADER, ForwardingMac, MISDIRECTED_HEADER } from './forwarding-mac.js';
export { unansweredErrors } from './unanswered.js';

/** Rounds of forward / claim / reload before giving up with 503 (ownership changing under our feet). */
const MAX_ROUNDS = 3;
/** Polling of a local upstream session that must be closed once idle, and the longest wait, ms. */
const RELEASE_POLL_MS = 250;
const RELEASE_MAX_WAIT_MS = 60_000;

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
  /** Whether a session id verifies for a request's credential (the proxy's cached verifier). */
  verify: (sessionId: string, req: IncomingMessage) => boolean;
  /** Longest wait for a TCP connection to the owner before it counts as down, ms. Default 2,000. */
  connectTimeoutMs?: number;
}

/** What one forward came to. */
type ForwardResult = Exclude<ForwardOutcome, 'retry'>;
/** `outcome` label values of `mcp_migrate_owner_forwards_total`. */
const FORWARD_COUNTS = ['ok', 'owner_down', 'owner_unregistered', 'misdirected', 'broken'] as const;
type ForwardCount = (typeof FORWARD_COUNTS)[number];

/**
 * Routes requests of sessions owned by other replicas (see the module comment). One per proxy;
 * {@link route} and {@link routeDelete} are the hooks the Streamable HTTP front calls once a session is resolved; {@link cachedOwner} and {@link forwardCached} its steady path before that.
 */
export class OwnerRouting {
  readonly replicaId: string;
  readonly registry: ReplicaRegistry;
  readonly #o: OwnerRoutingOptions;
  readonly #mac: ForwardingMac;
  /** Keep-alive connections to each owner, by URL. */
  readonly #targets = new Map<string, HttpTarget>();
  /** Owners of sessions this replica forwarded, so the steady path neither loads the record nor touches the store. */
  readonly #owners = new OwnerCache();
  /** A request whose forward to its cached owner failed: {@link route} goes on from that result instead of trying the same owner again. */
  readonly #tried = new WeakMap<IncomingMessage, { owner: string; result: 'down' | 'misdirected' }>();
  readonly #forwards: Map<ForwardCount, { inc(): void }> = new Map();
  /** Owners with forwards awaiting their answer, checked against the registry once per registration TTL. */
  readonly #watcher: OwnerWatcher;
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
    this.#watcher = new OwnerWatcher(options.registry);
    const registers = [options.metricsRegistry];
    const forwards = new Counter({
      name: 'mcp_migrate_owner_forwards_total',
      help: 'Owner affinity: requests for sessions owned by another replica, by outcome (ok: answered by the owner; owner_down: the owner could not be reached and the session was taken over; owner_unregistered: the owner was not in the replica registry; misdirected: the target was no longer the owner; broken: the owner\'s answer broke off mid-stream)',
      labelNames: ['outcome'],
      registers,
    });
    for (const o of FORWARD_COUNTS) this.#forwards.set(o, forwards.labels(o));
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
    for (const t of this.#targets.values()) t.close();
    this.#targets.clear();
    this.#watcher.close();
  }

  /**
   * The steady path of a request that reaches a replica other than its session's owner: the owner this
   * replica forwarded the session to before, if the request is not itself forwarded and its session id
   * verifies. Synchronous and without a store command; `undefined` sends the request the full way.
   */
  cachedOwner(req: IncomingMessage): { sessionId: string; owner: string } | undefined {
    if (req.headers[FORWARDED_HEADER] !== undefined) return undefined;
    const sessionId = headerValue(req.headers, SESSION_ID_HEADER);
    if (sessionId === undefined) return undefined;
    const owner = this.#owners.get(sessionId);
    if (owner === undefined || owner === this.replicaId || !this.#o.verify(sessionId, req)) return undefined;
    return { sessionId, owner };
  }

  /**
   * Forwards a request to its cached owner ({@link cachedOwner}). Resolves true once answered; false if
   * the owner is gone from the registry, unreachable or no longer the owner (421): the cache entry is
   * dropped and the caller serves the request the full way (load, forward or take over).
   */
  async forwardCached(c: { sessionId: string; owner: string }, req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<boolean> {
    let url: string | undefined;
    try {
      url = await this.registry.lookup(c.owner);
    } catch {
      url = undefined;
    }
    if (url !== undefined && url !== this.#selfUrl) {
      const result = await this.#forward(url, c.owner, c.sessionId, req, res, body);
      if (result === 'done') return true;
      this.#tried.set(req, { owner: c.owner, result });
    }
    this.#owners.delete(c.sessionId);
    return false;
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
            const tried = this.#tried.get(req);
            this.#tried.delete(req);
            const result = tried?.owner === owner ? tried.result : await this.#forward(url, owner, s.id, req, res, body);
            if (result === 'done') {
              this.#owners.set(s.id, owner);
              return undefined;
            }
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
      writeErrorAnswer(res, 'ownerChanging');
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
    this.#owners.delete(sessionId);
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
    writeErrorAnswer(res, 'misdirected', { detail: why, headers: { [MISDIRECTED_HEADER]: '1' } });
  }

  #gone(res: ServerResponse): undefined {
    writeErrorAnswer(res, 'sessionNotFound');
    return undefined;
  }

  #count(outcome: ForwardCount): void {
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
    const event = parseSessionEvent(raw);
    if (!event || event.origin === this.replicaId) return;
    if (event.type === 'terminated') return this.#owners.delete(event.sessionId);
    if (event.type !== 'owner') return;
    this.#owners.update(event.sessionId, event.owner);
    const s = this.#o.sessions.peek(event.sessionId);
    if (!s) return;
    s.record = { ...s.record, owner: event.owner };
    this.#release(s);
  }

    /** Forwards the request to `url`; one more attempt on a fresh connection if a reused keep-alive one was reset. */
  async #forward(url: string, owner: string, sessionId: string, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): Promise<ForwardResult> {
    let target = this.#targets.get(url);
    if (!target) {
      try {
        target = new HttpTarget(new URL(url));
      } catch {
        this.#o.logger.warn({ owner }, 'owner affinity: the registry holds an invalid URL for the owner');
        this.#count('owner_down');
        return 'down';
      }
      this.#targets.set(url, target);
    }
    const attempt = {
      target,
      req,
      res,
      body,
      headers: forwardHeaders(req.headers, target.host, this.#mac.header(sessionId, this.replicaId, owner), body?.length),
      connectTimeoutMs: this.#o.connectTimeoutMs ?? 2_000,
      watchOwner: (onGone: () => void) => this.#watcher.watch(owner, onGone),
      onAnswer: () => this.#count('ok'),
      onBroken: () => this.#count('broken'),
    };
    let result = await attemptForward(attempt, true);
    if (result === 'retry') result = await attemptForward(attempt, false);
    if (result === 'retry') result = 'down';
    if (result === 'down') {
      this.#count('owner_down');
      this.#o.logger.info({ session: sessionFingerprint(sessionId), owner }, 'owner unreachable; taking the session over');
    } else if (result === 'misdirected') this.#count('misdirected');
    return result;
  }
}
