/**
 * Owner routing (`mcp-migrate proxy`, the default `--affinity owner`; docs/proxy.md "Owner routing"):
 * the replica that created a session keeps serving it, so state the server keeps per session in its
 * own memory stays with the session. Other replicas forward the client's HTTP request to it. When the
 * owner is gone, `--on-owner-loss` decides: `end` (the default) ends the session, so the client's next
 * request gets 404 and it initializes again (spec §Session Management), instead of going on without
 * what its tool calls wrote; `replay` lets one replica claim the session and serve it by handshake
 * replay (for servers whose per-session state the handshake rebuilds). A replica that shuts down
 * gracefully hands its sessions over once idle (see `handover.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { parseSessionEvent, writeErrorAnswer, type MessageBus, type SessionEvent } from '@mcp-migrate/runtime';
import type { ReplicaRegistry, ServerRequestRouter, SessionStreams } from '@mcp-migrate/runtime';
import { sessionFingerprint, SESSION_ID_HEADER } from '@mcp-migrate/runtime';
import type { SessionStore } from '@mcp-migrate/runtime';
import { DispatchTarget } from '../http/dispatch.js';
import { headerValue } from '../http/util.js';
import type { LocalSession, SessionManager } from '../sessions.js';
import { attemptForward, forwardHeaders, type ForwardOutcome } from './forward.js';
import { FORWARDED_HEADER, ForwardingMac, forwardedBy, lossStep, MAX_OWNER_ROUNDS, MISDIRECTED_HEADER, ownerStep, ownerVerdict, OWNER_LOST_DETAIL, type OwnerLossPolicy, type OwnerVerdict } from '@mcp-migrate/runtime';
import { handOverAll, type HandoverCount } from './handover.js';
import { handOffCandidates } from '@mcp-migrate/runtime';
import { OwnerCache } from './owner-cache.js';
import { OwnerWatcher } from './owner-watcher.js';

export { FORWARDED_HEADER, ForwardingMac, MISDIRECTED_HEADER, OWNER_LOST_DETAIL, type OwnerLossPolicy } from '@mcp-migrate/runtime';
export { unansweredErrors } from './unanswered.js';

/** Polling of a local upstream session that must be closed once idle, and the longest wait, ms. */
const RELEASE_POLL_MS = 250;
const RELEASE_MAX_WAIT_MS = 60_000;

export interface OwnerRoutingOptions {
  /** This replica's id (`SessionManager.replicaId`): the value of `owner` in records it owns. */
  replicaId: string;
  registry: ReplicaRegistry;
  sessions: SessionManager;
  store: SessionStore;
  /** The session streams (deleted with a session that ends). */
  streams: SessionStreams;
  /** Pending server-initiated requests (forgotten with a session that ends). */
  router: ServerRequestRouter;
  bus: MessageBus;
  /** Channel of {@link SessionEvent}s (takeovers are announced there as `owner` events). */
  busChannel: string;
  /** `--on-owner-loss`. */
  onOwnerLoss: OwnerLossPolicy;
  /** The session secrets (the first signs forwarding headers, all verify). */
  sessionSecrets: readonly string[];
  /** Where the forwarding counters are registered (the proxy's own registry). */
  metricsRegistry: Registry;
  logger: Logger;
  /** Answers a request that failed with `err` (store down → 503, session gone → 404, …). */
  fail: (res: ServerResponse, err: unknown) => void;
  /** Whether a session id verifies for a request's credential (the proxy's cached verifier). */
  verify: (sessionId: string, req: IncomingMessage) => boolean;
  /** Longest wait for a TCP connection to the owner before it counts as unreachable, ms. Default 2,000. */
  connectTimeoutMs?: number;
}

/** What one forward came to. */
type ForwardResult = Exclude<ForwardOutcome, 'retry'>;
/** `outcome` label values of `mcp_migrate_owner_forwards_total`. */
const FORWARD_COUNTS = ['ok', 'owner_down', 'owner_unregistered', 'owner_unreachable', 'misdirected', 'broken'] as const;
type ForwardCount = (typeof FORWARD_COUNTS)[number];

/**
 * Routes requests of sessions owned by other replicas (see the module comment). One per proxy;
 * {@link route} and {@link routeDelete} are the hooks the fronts call once a session is resolved;
 * {@link cachedOwner} and {@link forwardCached} the steady path before that.
 */
export class OwnerRouting {
  readonly replicaId: string;
  readonly registry: ReplicaRegistry;
  readonly #o: OwnerRoutingOptions;
  readonly #mac: ForwardingMac;
  /** Keep-alive connections to each owner, by URL. */
  readonly #targets = new Map<string, DispatchTarget>();
  /** Owners of sessions this replica forwarded, so the steady path neither loads the record nor touches the store. */
  readonly #owners = new OwnerCache();
  /** A request whose forward to its cached owner failed: {@link route} goes on from that result instead of trying the same owner again. */
  readonly #tried = new WeakMap<IncomingMessage, { owner: string; result: 'down' | 'unreachable' | 'misdirected' }>();
  readonly #forwards: Map<ForwardCount, { inc(): void }> = new Map();
  /** Owners with forwards awaiting their answer, checked against the registry once per registration TTL. */
  readonly #watcher: OwnerWatcher;
  readonly #received: Counter<'outcome'>;
  readonly #takeovers: Counter;
  readonly #ended: Counter<'reason'>;
  readonly #handovers: Counter<'outcome'>;
  readonly #releasing = new Set<string>();
  #selfUrl: string | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #registered!: () => void;
  /** Resolves once this replica is in the registry: no session is created before others can find its owner. */
  readonly ready = new Promise<void>((resolve) => (this.#registered = resolve));
  #draining = false;
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
      help: 'Owner routing: requests for sessions owned by another replica, by outcome (ok: answered by the owner; owner_down: the owner was gone; owner_unregistered: the owner was not in the replica registry; owner_unreachable: no connection to a registered owner, answered 503; misdirected: the target was no longer the owner; broken: the owner\'s answer broke off mid-stream)',
      labelNames: ['outcome'],
      registers,
    });
    for (const o of FORWARD_COUNTS) this.#forwards.set(o, forwards.labels(o));
    this.#received = new Counter({
      name: 'mcp_migrate_owner_forwarded_received_total',
      help: 'Owner routing: requests forwarded to this replica by another one (served, or refused with 421)',
      labelNames: ['outcome'],
      registers,
    });
    this.#takeovers = new Counter({
      name: 'mcp_migrate_owner_takeovers_total',
      help: 'Owner routing: sessions this replica claimed (handed over, never owned, or their owner was gone with --on-owner-loss replay)',
      registers,
    });
    this.#ended = new Counter({
      name: 'mcp_migrate_owner_sessions_ended_total',
      help: 'Owner routing, --on-owner-loss end: sessions this replica ended because the state they held was gone (owner_lost: their owner replica; upstream_lost: the owner\'s own upstream session)',
      labelNames: ['reason'],
      registers,
    });
    this.#handovers = new Counter({
      name: 'mcp_migrate_owner_handovers_total',
      help: 'Owner routing, graceful shutdown: sessions this replica let go of (handed_over: with their upstream session; released: to be replayed; ended: their state could not move)',
      labelNames: ['outcome'],
      registers,
    });
  }

  /** Registers this replica at `url` (heartbeats start) and listens for takeovers by other replicas. */
  async start(url: string): Promise<void> {
    this.#selfUrl = url;
    await this.registry.register({ replicaId: this.replicaId, url });
    this.#registered();
    try {
      this.#unsubscribe = await this.#o.bus.subscribe(this.#o.busChannel, (m) => this.#onEvent(m));
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'owner routing: could not subscribe to session events');
    }
  }

  /** The URL other replicas reach this one at (after {@link start}). */
  get url(): string | undefined {
    return this.#selfUrl;
  }

  /** True once {@link drain} began: new and handed-over sessions go to other replicas. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Graceful shutdown: stops taking new sessions (the registry no longer offers this replica), serves
   * the sessions it owns until each is idle, and hands each over then (see `handover.ts`); whatever is
   * still owned at `deadline` (ms since the epoch) is handed over regardless. Never rejects.
   */
  async drain(deadline: number): Promise<void> {
    this.#draining = true;
    await this.registry.drain();
    await handOverAll(
      {
        replicaId: this.replicaId,
        sessions: this.#o.sessions,
        store: this.#o.store,
        logger: this.#o.logger,
        onOwnerLoss: this.#o.onOwnerLoss,
        announce: (event) => this.#publish(event),
        end: (s) => this.endOwned(s, 'handover'),
        count: (outcome: HandoverCount) => this.#handovers.labels(outcome).inc(),
      },
      deadline,
    );
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
   * dropped and the caller serves the request the full way (load, forward, end or take over).
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
   * The hook for POST (both transports), called once the session id is verified and the session
   * resolved. Resolves to the session to serve here (owned here, just claimed, or forwarded to us), or
   * to `undefined` when the request was answered: forwarded to the owner, or an error (404 when the
   * session ended because its owner was gone, 421, 503). `body` is the POST body as received. Never rejects.
   */
  async route(session: LocalSession, req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<LocalSession | undefined> {
    const forwarded = req.headers[FORWARDED_HEADER];
    try {
      if (forwarded !== undefined) return await this.#acceptForwarded(session, res, forwarded);
      let s = session;
      for (let round = 0; round < MAX_OWNER_ROUNDS; round++) {
        const owner = s.record.owner;
        let misdirected = false;
        const step = ownerStep(owner, this.replicaId);
        if (step === 'serve') {
          if (this.#serve(s, res)) return s;
          // Handed over meanwhile: the reload below says to whom.
        } else if (step === 'claim') {
          // Never owned, or handed over on a graceful shutdown: the replica that serves it next claims it.
          if (this.#draining && (await this.#handOff(s.id, req, res, body))) return undefined;
          if ((await this.#claim(s, undefined)) && this.#serve(s, res)) return s;
        } else {
          const verdict = await this.#toOwner(s, owner!, req, res, body);
          if (verdict === 'done') return undefined;
          if (verdict === 'unsure') return void writeErrorAnswer(res, 'ownerUnreachable');
          misdirected = verdict === 'misdirected';
          if (verdict === 'lost') {
            if (lossStep(this.#o.onOwnerLoss) === 'end') {
              if (await this.#endLost(s, owner!)) return void writeErrorAnswer(res, 'sessionNotFound', { detail: OWNER_LOST_DETAIL });
            } else if ((await this.#claim(s, owner)) && this.#serve(s, res)) return s;
          }
        }
        // A hand-over under way (this replica's drain began at an await above, before the request was counted): wait, then follow the session.
        if (s.releasing) await s.releasing;
        const fresh = await this.#reload(s);
        if (!fresh) return this.#gone(res);
        // 421 from the owner's address while the record still names it: another process listens there now.
        if (misdirected && fresh.record.owner === owner) this.registry.markDown(owner!);
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
   * A new session (`initialize`) on a draining replica goes to a replica that takes new sessions, so
   * no session starts on a replica about to go. Resolves true if forwarded and answered; false: serve
   * it here (not draining, no other replica, or it came forwarded). `sessionId`: the id the client
   * sent (legacy HTTP+SSE), else none.
   */
  async forwardNew(req: IncomingMessage, res: ServerResponse, body: Buffer, sessionId = ''): Promise<boolean> {
    if (!this.#draining || req.headers[FORWARDED_HEADER] !== undefined) return false;
    return await this.#handOff(sessionId, req, res, body);
  }

  /**
   * Checks the forwarding header of a request that creates a session (`initialize`): true to serve it
   * (no header, or one this replica verifies); false once answered 421.
   */
  acceptNew(req: IncomingMessage, res: ServerResponse, sessionId = ''): boolean {
    const from = forwardedBy(req.headers[FORWARDED_HEADER], this.#mac, sessionId, this.replicaId);
    if (from === null) return true;
    if (from !== undefined) {
      this.#received.labels('served').inc();
      return true;
    }
    this.#misdirected(res, 'forwarding header not valid for this replica');
    return false;
  }

  /**
   * The hook for DELETE, once the session id is verified: forwards it to a live owner known from the
   * local cache (so the owner closes its upstream session at once), else lets this replica delete the
   * record (the owner hears of it over the bus). Resolves true if the request was answered.
   */
  async routeDelete(sessionId: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const from = forwardedBy(req.headers[FORWARDED_HEADER], this.#mac, sessionId, this.replicaId);
    if (from !== null) {
      if (from !== undefined) {
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

  /**
   * `--on-owner-loss end`: ends a session this replica owns whose state is gone (its upstream session
   * was lost, or could not be handed over): the record, its streams and pending server requests are
   * deleted and every replica hears of it, so the client's next request gets 404. Resolves false, and
   * ends nothing, if the store says this replica does not own it any more (another one serves it, with
   * what state it has: the request must go there, not end the session). Never rejects.
   */
  async endOwned(s: LocalSession, why: 'upstream_lost' | 'handover'): Promise<boolean> {
    let deleted = false;
    try {
      deleted = await this.#o.store.deleteIfOwner(s.id, this.replicaId);
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message, session: sessionFingerprint(s.id) }, 'could not end a session whose state is gone');
    }
    if (!deleted) {
      // Another replica owns it now (or it is gone): what this replica holds of it is stale.
      this.#o.logger.info({ session: sessionFingerprint(s.id), why }, 'lost the upstream session of a session this replica no longer owns');
      await this.#o.sessions.drop(s.id, 'evicted');
      return false;
    }
    if (why === 'upstream_lost') this.#ended.labels('upstream_lost').inc();
    this.#o.logger.info({ session: sessionFingerprint(s.id), why }, 'ended the session: the state it held is gone (--on-owner-loss end)');
    await this.#afterEnd(s.id);
    return true;
  }

  /** Drops what is left of an ended session here and everywhere: local upstream session, streams, pending server requests, other replicas' copies. */
  async #afterEnd(id: string): Promise<void> {
    this.#owners.delete(id);
    this.#o.router.forget(id);
    await this.#o.sessions.drop(id, 'deleted');
    await this.#o.sessions.announceTermination(id);
    await this.#o.streams.delete(id).catch((err: unknown) => this.#o.logger.warn({ err: (err as Error).message }, 'could not delete the session streams'));
  }

  /** `--on-owner-loss end`: ends a session whose owner `owner` is gone, unless another replica claimed it meanwhile. */
  async #endLost(s: LocalSession, owner: string): Promise<boolean> {
    if (!(await this.#o.store.deleteIfOwner(s.id, owner))) return false;
    this.#ended.labels('owner_lost').inc();
    this.#o.logger.info({ session: sessionFingerprint(s.id), owner }, 'ended the session: its owner is gone, and its state with it (--on-owner-loss end)');
    await this.#afterEnd(s.id);
    return true;
  }

  /**
   * Counts the request as served here until its response closes, so a hand-over waits for it; in the
   * same synchronous step as the caller's ownership check, since a drain that starts at any `await` in
   * between takes an uncounted session for idle and hands it over under the request. `undefined`: a
   * hand-over of the session is under way (it began at such an `await`); the caller waits for it
   * (`s.releasing`) and routes the request where the session went.
   */
  #serve(s: LocalSession, res: ServerResponse): LocalSession | undefined {
    if (s.releasing) return undefined;
    res.once('close', this.#o.sessions.begin(s));
    return s;
  }

  /**
   * Forwards to the owner named by the record: `done` (answered there), `misdirected` (421: the record
   * must be reloaded), `lost` (the owner is gone: refused, reset, unregistered), `unsure` (no
   * connection, but still registered: 503, as ending or taking over a live owner's session would be wrong).
   */
  async #toOwner(s: LocalSession, owner: string, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): Promise<OwnerVerdict> {
    const tried = this.#tried.get(req);
    this.#tried.delete(req);
    let url = await this.registry.lookup(owner);
    // An owner the cache says is unregistered may just have registered: ask once more before acting on it.
    if (url === undefined && tried === undefined) url = await this.registry.lookup(owner, { fresh: true });
    if (url === undefined || url === this.#selfUrl) {
      this.#count('owner_unregistered');
      return 'lost';
    }
    this.#release(s);
    const result = tried?.owner === owner ? tried.result : await this.#forward(url, owner, s.id, req, res, body);
    if (result === 'done') {
      this.#owners.set(s.id, owner);
      return 'done';
    }
    const verdict = await ownerVerdict(result, async () => (await this.registry.lookup(owner, { fresh: true })) !== undefined);
    if (verdict === 'lost') this.registry.markDown(owner);
    return verdict;
  }

  /** Passes a request on to a replica that takes new sessions (this one drains). True once answered there. */
  async #handOff(sessionId: string, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): Promise<boolean> {
    for (const id of await handOffCandidates(this.registry)) {
      const url = await this.registry.lookup(id).catch(() => undefined);
      if (url === undefined || url === this.#selfUrl) continue;
      const result = await this.#forward(url, id, sessionId, req, res, body);
      if (result === 'done') return true;
      if (result === 'down') this.registry.markDown(id);
      if (res.headersSent) return true;
    }
    return false;
  }

  /**
   * A forwarded request: served here if the header verifies and this replica owns the session, or
   * claims it now (never owned, or handed over); else 421, and the sender reloads and routes again.
   */
  async #acceptForwarded(session: LocalSession, res: ServerResponse, header: string | string[]): Promise<LocalSession | undefined> {
    if (forwardedBy(header, this.#mac, session.id, this.replicaId) === undefined) {
      this.#misdirected(res, 'forwarding header not valid for this replica');
      return undefined;
    }
    let s = session;
    // Twice at most: a hand-over that begins while this replica claims the session is waited for once.
    for (let round = 0; round < 2; round++) {
      if (s.releasing) {
        await s.releasing;
        const fresh = await this.#reload(s);
        if (!fresh) return this.#gone(res);
        s = fresh;
      }
      const owner = s.record.owner;
      if (owner !== this.replicaId && !(owner === undefined && !this.#draining && (await this.#claim(s, undefined)))) break;
      if (this.#serve(s, res)) {
        this.#received.labels('served').inc();
        return s;
      }
    }
    // Another replica owns it by our view, or we hand our sessions over: the sender's view is older than ours.
    this.#misdirected(res, 'this replica does not own the session');
    return undefined;
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

  /**
   * Compare-and-set the owner from `expected` to this replica; on success the local record says so too,
   * and the session's next upstream session is the one handed over, or (nothing handed over) one
   * handshake replay. A local upstream session left from an earlier ownership is closed: it missed
   * what the owners in between did.
   */
  async #claim(s: LocalSession, expected: string | undefined): Promise<boolean> {
    const claim = await this.#o.store.claimOwner(s.id, expected, this.replicaId);
    if (!claim.claimed) return false;
    const { handover: _dropped, ...record } = s.record;
    s.record = { ...record, owner: this.replicaId };
    if (claim.handover !== undefined) s.handover = claim.handover;
    else s.replayable = true;
    const stale = s.upstream;
    s.upstream = undefined;
    if (stale && !stale.closed) void stale.close('evicted').catch(() => undefined);
    this.#takeovers.inc();
    this.#o.logger.info(
      { session: sessionFingerprint(s.id), previous: expected ?? null, handedOver: claim.handover !== undefined },
      'claimed the session (owner routing)',
    );
    this.#publish({ type: 'owner', sessionId: s.id, owner: this.replicaId, origin: this.replicaId });
    return true;
  }

  #publish(event: SessionEvent): void {
    this.#o.bus.publish(this.#o.busChannel, JSON.stringify(event)).catch(() => undefined);
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
    if (event.type === 'released') {
      this.#owners.delete(event.sessionId);
      const s = this.#o.sessions.peek(event.sessionId);
      if (s?.record.owner === event.origin) {
        const { owner: _gone, ...record } = s.record;
        s.record = record;
      }
      return;
    }
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
        target = new DispatchTarget(new URL(url), this.#o.connectTimeoutMs ?? 2_000);
      } catch {
        this.#o.logger.warn({ owner }, 'owner routing: the registry holds an invalid URL for the owner');
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
      watchOwner: (onGone: () => void) => this.#watcher.watch(owner, onGone),
      onAnswer: () => this.#count('ok'),
      onBroken: () => this.#count('broken'),
    };
    let result = await attemptForward(attempt, true);
    if (result === 'retry') result = await attemptForward(attempt, false);
    if (result === 'retry') result = 'down';
    if (result === 'down') {
      this.#count('owner_down');
      this.#o.logger.info({ session: sessionFingerprint(sessionId), owner }, 'owner unreachable');
    } else if (result === 'unreachable') this.#count('owner_unreachable');
    else if (result === 'misdirected') this.#count('misdirected');
    return result;
  }
}
