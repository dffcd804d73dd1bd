import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { stateSync } from '@mcp-migrate/runtime';
import { parseSessionEvent, type MessageBus, type SessionEvent } from '@mcp-migrate/runtime';
import { applyChange, type SessionChange, type SessionRecord } from '@mcp-migrate/runtime';
import { sessionFingerprint } from '@mcp-migrate/runtime';
import type { AnsweredError, SessionStore } from '@mcp-migrate/runtime';
import type { RequestDeadlines } from './deadline.js';
import type { AppliedState, CloseReason, UpstreamConnector, UpstreamSession } from './upstreams/upstream.js';

/** This replica's view of one session: the cached record and, if open, its upstream session. */
export interface LocalSession {
  readonly id: string;
  record: SessionRecord;
  upstream: UpstreamSession | undefined;
  /** The record must be reloaded before use (another replica changed replayable state, or bus gap). */
  stale: boolean;
  lastUsed: number;
  /** When this replica last refreshed the record's TTL (load, create or `touch`), ms since the epoch. */
  touchedAt?: number;
  /**
   * Client standalone GET streams open on this replica for the session: while there is one, the
   * local upstream session is neither reaped nor evicted (it keeps producing the session's
   * notifications, as a relayed GET stream kept it busy before).
   */
  holds?: number;
  /** Owner affinity: requests of the session being served by this replica (see {@link SessionManager.begin}). */
  active?: number;
  /** Owner affinity: set while this replica hands the session over (graceful shutdown); requests wait for it. */
  releasing?: Promise<void> | undefined;
  /**
   * Owner affinity: what the previous owner handed over (`SessionRecord.handover`), kept from the claim
   * until this replica's upstream session of it is open.
   */
  handover?: string | undefined;
  /** Owner affinity: this replica claimed the session with nothing handed over, so one handshake replay is allowed. */
  replayable?: boolean;
  /** @internal single-flight of opening (replay) and state sync */
  opening?: Promise<UpstreamSession> | undefined;
  syncing?: Promise<void> | undefined;
}

/** No room for another upstream session (`--max-sessions`) and none idle to evict. → HTTP 503 (`capacity`). */
export class CapacityError extends Error implements AnsweredError {
  readonly answer = 'capacity';
  constructor(readonly limit: number) {
    super(`all ${limit} local upstream sessions are busy`);
    this.name = 'CapacityError';
  }
}

/** The session ended (DELETE, here or on another replica) while this request waited. → HTTP 404 (`sessionNotFound`). */
export class SessionGoneError extends Error implements AnsweredError {
  readonly answer = 'sessionNotFound';
  constructor() {
    super('session terminated');
    this.name = 'SessionGoneError';
  }
}

/**
 * Owner routing: the session's upstream session is gone here, and another replica owns the session now
 * (it was handed over while this request waited). Not ended: → HTTP 503 (`ownerChanging`, `Retry-After`),
 * and the client's retry is routed to the new owner.
 */
export class SessionMovedError extends Error implements AnsweredError {
  readonly answer = 'ownerChanging';
  constructor() {
    super('the session moved to another replica');
    this.name = 'SessionMovedError';
  }
}

export interface SessionManagerOptions {
  /** This replica's id (`McpProxy.replicaId`), to ignore its own bus events. */
  replicaId: string;
  store: SessionStore;
  connector: UpstreamConnector;
  bus: MessageBus;
  /** Channel of {@link SessionEvent}s shared by all replicas. */
  busChannel: string;
  /** Most upstream sessions (stdio children, HTTP upstream sessions) this replica keeps open. */
  maxSessions: number;
  /** Close an upstream session unused for this long, ms (the record stays in the store). */
  idleTimeoutMs: number;
  logger: Logger;
  /** Called once per upstream session opened by handshake replay (metrics). */
  onHandshakeReplay?: () => void;
  /**
   * Owner affinity with `--on-owner-loss end`: called instead of a handshake replay when a session this
   * replica owns has lost its upstream session (crashed child, upstream that forgot it, eviction, idle
   * reaping) and nothing was handed over: it ends the session, and the request gets 404; it resolves
   * false if another replica owns the session by now (nothing ended; the request gets 503 and its retry
   * goes there). Absent: such sessions are reopened by replay (replay mode, `--on-owner-loss replay`).
   */
  endLost?: (session: LocalSession) => Promise<boolean>;
  /**
   * Owner affinity: a session this replica owns is `touch`ed at most once per this many ms (the TTL
   * refresh is coalesced; the owner sees every request, DELETE included, so it needs no store command to
   * know the session still exists). Absent or 0: every request touches (replay mode, where another
   * replica's DELETE is only seen by the next `touch`).
   */
  ownedTouchEveryMs?: number;
  /** The whole-request deadline (`--request-timeout`): opening and re-syncing an upstream session for a request ends by it. Absent: no deadline. */
  deadlines?: RequestDeadlines;
}

function stateOf(record: SessionRecord): AppliedState {
  return {
    revision: record.revision,
    ...(record.loggingLevel !== undefined ? { loggingLevel: record.loggingLevel } : {}),
    subscriptions: [...record.subscriptions],
  };
}

/** How long a replica remembers an ended session, ms: far longer than a store round trip, and a few thousand ids at most. */
const ENDED_MEMORY_MS = 60_000;

/**
 * The per-replica session table: caches records after their first load (so a steady-state request costs
 * one store `touch`), opens upstream sessions by handshake replay, keeps them in sync with the
 * record, enforces `--max-sessions` (evicting the least recently used idle one) and reaps idle ones.
 */
export class SessionManager {
  /** This replica's id, to ignore its own bus events. */
  readonly replicaId: string;
  /** See {@link SessionManagerOptions.deadlines}. */
  readonly deadlines: RequestDeadlines | undefined;
  readonly #o: SessionManagerOptions;
  readonly #sessions = new Map<string, LocalSession>();
  /**
   * Sessions ended lately (DELETE here, or a `terminated` event), id → when. A request that loaded the
   * record just before the termination, and a termination event heard before that load returned, would
   * otherwise bring the session back here and open an upstream session nobody ever closes.
   */
  readonly #ended = new Map<string, number>();
  #reserved = 0;
  #reaper: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(options: SessionManagerOptions) {
    this.#o = options;
    this.replicaId = options.replicaId;
    this.deadlines = options.deadlines;
  }

  /** Subscribes to session events and starts idle reaping. */
  async start(): Promise<void> {
    const every = Math.max(250, Math.min(this.#o.idleTimeoutMs / 2, 30_000));
    this.#reaper = setInterval(() => void this.reapIdle(), every);
    this.#reaper.unref();
    this.#o.bus.onGap?.(() => {
      for (const s of this.#sessions.values()) s.stale = true;
    });
    try {
      this.#unsubscribe = await this.#o.bus.subscribe(this.#o.busChannel, (m) => this.#onEvent(m));
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'could not subscribe to session events; relying on per-request checks');
    }
  }

  /** Local sessions (for health output and tests). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Open upstream sessions. */
  get openUpstreams(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.upstream && !s.upstream.closed) n++;
    return n;
  }

  /** The local view of a session, if this replica has one (tests, diagnostics). */
  peek(id: string): LocalSession | undefined {
    return this.#sessions.get(id);
  }

  /**
   * Finds a live session for a request: cached → one `touch`; otherwise `load` and cache. Resolves to
   * `undefined` when the session is unknown, expired, deleted, or bound to another principal (→ 404).
   * Rejects with `SessionStoreUnavailableError` (→ 503).
   */
  async resolve(id: string, principal: string): Promise<LocalSession | undefined> {
    const cached = this.#sessions.get(id);
    if (cached && !cached.stale) {
      const now = Date.now();
      if (!this.#touchedLately(cached, now)) {
        if (!(await this.#o.store.touch(id))) {
          await this.drop(id, 'terminated');
          return undefined;
        }
        cached.touchedAt = now;
      }
      cached.lastUsed = now;
      return cached;
    }
    const record = await this.#o.store.load(id);
    // A termination heard while the record was on its way: the session is gone, the record is stale.
    if (this.#ended.has(id)) return undefined;
    if (!record || record.principal !== principal) {
      if (cached) await this.drop(id, 'terminated');
      return undefined;
    }
    const current = this.#sessions.get(id);
    if (current) {
      current.record = record;
      current.stale = false;
      current.lastUsed = current.touchedAt = Date.now();
      return current;
    }
    const now = Date.now();
    const session: LocalSession = { id, record, upstream: undefined, stale: false, lastUsed: now, touchedAt: now };
    this.#sessions.set(id, session);
    return session;
  }

  /**
   * The open upstream session of `session` if it can be used as it is (open, in sync with the record,
   * not being opened or re-synced): the steady-state case, answered without a promise. Otherwise
   * `undefined`, and the caller goes through {@link upstreamFor}.
   */
  readyUpstream(session: LocalSession): UpstreamSession | undefined {
    const up = session.upstream;
    if (up === undefined || up.closed || session.opening || session.syncing) return undefined;
    return up.applied.revision === session.record.revision ? up : undefined;
  }

  /**
   * A usable upstream session for `session`: the open one, or a new one by handshake replay; then
   * re-synced (`logging/setLevel`, `resources/(un)subscribe`) if the record changed since.
   * `req` supplies the client's headers (e.g. `Authorization`) for an HTTP upstream. Rejects with
   * `RequestDeadlineError` (504) once `req`'s deadline passes (the opening goes on, for the next request).
   */
  upstreamFor(session: LocalSession, req: IncomingMessage): Promise<UpstreamSession> {
    const work = this.#upstreamFor(session, req);
    return this.deadlines ? this.deadlines.race(req, work, 'opening the upstream session') : work;
  }

  async #upstreamFor(session: LocalSession, req: IncomingMessage): Promise<UpstreamSession> {
    let up = session.upstream;
    if (up?.closed) {
      session.upstream = up = undefined;
    }
    if (!up) {
      if (!session.opening) {
        session.opening = this.#open(session, req).finally(() => {
          session.opening = undefined;
        });
      }
      up = await session.opening;
    }
    while (up.applied.revision !== session.record.revision) {
      if (!session.syncing) {
        const target = session.record;
        const u = up;
        session.syncing = (async () => {
          const messages = stateSync(u.applied, target);
          await u.sendRuntime(messages, target.protocolVersion, req);
          u.applied = stateOf(target);
        })().finally(() => {
          session.syncing = undefined;
        });
      }
      await session.syncing;
    }
    return up;
  }

  async #open(session: LocalSession, req: IncomingMessage): Promise<UpstreamSession> {
    const owner = session.record.owner;
    if (owner !== undefined && owner !== this.replicaId) throw new Error('internal: no upstream session may be opened for a session another replica owns');
    const handover = session.handover;
    const adopt = handover !== undefined ? this.#o.connector.adopt : undefined;
    if (!adopt && owner !== undefined && !session.replayable && this.#o.endLost) {
      // Its state lived in the upstream session that is gone: end the session rather than go on without it.
      if (!(await this.#o.endLost(session))) throw new SessionMovedError();
      throw new SessionGoneError();
    }
    await this.reserve();
    let up: UpstreamSession;
    try {
      up = adopt
        ? await adopt.call(this.#o.connector, { sessionId: session.id, record: session.record, handover: handover!, req })
        : await this.#o.connector.replay({ sessionId: session.id, record: session.record, req });
    } finally {
      this.#reserved--;
      session.handover = undefined;
    }
    session.replayable = false;
    if (this.#sessions.get(session.id) !== session) {
      // Terminated (or handed on) while we replayed or adopted it.
      this.#o.logger.info({ session: sessionFingerprint(session.id), adopted: adopt !== undefined }, 'the session ended while its upstream session was being opened');
      await up.close(adopt ? 'handover' : 'terminated');
      throw new SessionGoneError();
    }
    if (!adopt) this.#o.onHandshakeReplay?.();
    this.#o.logger.debug({ session: sessionFingerprint(session.id) }, adopt ? 'went on with the upstream session handed over' : 'opened upstream session by handshake replay');
    session.upstream = up;
    return up;
  }

  /**
   * Reserves room for one more upstream session, evicting the least recently used idle one if at
   * `maxSessions`. Rejects with {@link CapacityError}. The caller must {@link adopt} or {@link release}.
   */
  async reserve(): Promise<void> {
    if (this.openUpstreams + this.#reserved >= this.#o.maxSessions) {
      let victim: LocalSession | undefined;
      for (const s of this.#sessions.values()) {
        if (!s.upstream || s.upstream.closed || s.upstream.busy || s.opening || (s.holds ?? 0) > 0) continue;
        if (!victim || s.lastUsed < victim.lastUsed) victim = s;
      }
      if (!victim) throw new CapacityError(this.#o.maxSessions);
      const up = victim.upstream!;
      victim.upstream = undefined;
      this.#o.logger.info({ session: sessionFingerprint(victim.id) }, 'evicted the least recently used upstream session (--max-sessions)');
      void up.close('evicted').catch(() => undefined);
    }
    this.#reserved++;
  }

  release(): void {
    this.#reserved--;
  }

  /** Registers a session created by this replica's `initialize` (consumes a {@link reserve}). */
  adopt(record: SessionRecord, upstream: UpstreamSession): LocalSession {
    this.#reserved--;
    const now = Date.now();
    const session: LocalSession = { id: record.id, record, upstream, stale: false, lastUsed: now, touchedAt: now };
    this.#sessions.set(record.id, session);
    return session;
  }

  /**
   * Records a change of replayable state in the store and the cache, and tells other replicas.
   * Resolves to false if the session is gone. Call after {@link upstreamFor} and before forwarding
   * the client's message, so the upstream session counts as already reflecting the change.
   */
  async recordChange(session: LocalSession, upstream: UpstreamSession, change: SessionChange): Promise<boolean> {
    const before = session.record.revision;
    const revision = await this.#o.store.update(session.id, change);
    if (revision === undefined) return false;
    const next = applyChange(session.record, change);
    next.revision = revision;
    session.record = next;
    if (upstream.applied.revision === before && revision === before + 1) upstream.applied = stateOf(next);
    const event: SessionEvent = { type: 'changed', sessionId: session.id, revision, origin: this.replicaId };
    this.#o.bus.publish(this.#o.busChannel, JSON.stringify(event)).catch(() => undefined);
    return true;
  }

  /** Counts a request of `session` as being served here until the returned function is called (owner affinity's hand-over waits for it). */
  begin(session: LocalSession): () => void {
    session.active = (session.active ?? 0) + 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      session.active = Math.max(0, (session.active ?? 1) - 1);
    };
  }

  /** Local sessions (owner affinity's hand-over walks those it owns). */
  all(): IterableIterator<LocalSession> {
    return this.#sessions.values();
  }

  /**
   * Keeps the session's local upstream session from being reaped or evicted (a client standalone GET
   * stream is open on this replica) until the returned function is called.
   */
  hold(session: LocalSession): () => void {
    session.holds = (session.holds ?? 0) + 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      session.holds = Math.max(0, (session.holds ?? 1) - 1);
      session.lastUsed = Date.now();
    };
  }

  /** Forgets a session locally and closes its upstream session. */
  async drop(id: string, reason: CloseReason): Promise<void> {
    if (reason === 'terminated' || reason === 'deleted') this.#remember(id);
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    const up = session.upstream;
    session.upstream = undefined;
    if (up) await up.close(reason).catch(() => undefined);
  }

  /** Tells other replicas that a session ended (client DELETE). */
  async announceTermination(id: string): Promise<void> {
    const event: SessionEvent = { type: 'terminated', sessionId: id, origin: this.replicaId };
    await this.#o.bus.publish(this.#o.busChannel, JSON.stringify(event)).catch(() => undefined);
  }

  /** Closes upstream sessions idle for longer than `idleTimeoutMs` and forgets their sessions. */
  async reapIdle(now = Date.now()): Promise<number> {
    const victims: string[] = [];
    for (const s of this.#sessions.values()) {
      if (s.opening || s.syncing || (s.holds ?? 0) > 0) continue;
      const up = s.upstream;
      if (up && !up.closed && up.busy) continue;
      const last = Math.max(s.lastUsed, up?.lastActivity ?? 0);
      if (now - last >= this.#o.idleTimeoutMs) victims.push(s.id);
    }
    for (const id of victims) await this.drop(id, 'idle');
    if (victims.length > 0) this.#o.logger.debug({ count: victims.length }, 'reaped idle sessions');
    return victims.length;
  }

  /** Closes every upstream session (replica shutdown; records stay in the store). */
  async close(): Promise<void> {
    if (this.#reaper) clearInterval(this.#reaper);
    await this.#unsubscribe?.().catch(() => undefined);
    const ids = [...this.#sessions.keys()];
    await Promise.all(ids.map((id) => this.drop(id, 'shutdown')));
  }

  /**
   * Whether a request may skip the `touch`: owner affinity, a session this replica owns, TTL refreshed
   * less than `ownedTouchEveryMs` ago. So the record expires between `ttl - ownedTouchEveryMs` and `ttl`
   * after the last request.
   */
  #touchedLately(session: LocalSession, now: number): boolean {
    const every = this.#o.ownedTouchEveryMs ?? 0;
    if (every <= 0 || session.touchedAt === undefined || session.record.owner !== this.replicaId) return false;
    return now - session.touchedAt < every;
  }

  /** Remembers an ended session for {@link ENDED_MEMORY_MS} (see {@link resolve}). */
  #remember(id: string): void {
    const now = Date.now();
    this.#ended.delete(id);
    this.#ended.set(id, now);
    // Oldest first (insertion order): forget those past the memory.
    for (const [old, at] of this.#ended) {
      if (now - at < ENDED_MEMORY_MS) break;
      this.#ended.delete(old);
    }
  }

  #onEvent(raw: string): void {
    const event = parseSessionEvent(raw);
    if (!event || event.origin === this.replicaId) return;
    if (event.type === 'terminated') this.#remember(event.sessionId);
    const session = this.#sessions.get(event.sessionId);
    if (!session) return;
    if (event.type === 'terminated') void this.drop(event.sessionId, 'terminated');
    else if (event.type === 'changed' && event.revision > session.record.revision) session.stale = true;
  }
}
