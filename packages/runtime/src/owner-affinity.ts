import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorKind } from './error-answers.js';
import { FORWARDED_HEADER, ForwardingMac, MISDIRECTED_HEADER } from './forwarding-mac.js';
import type { RuntimeStores } from './from-env.js';
import { handOffCandidates } from './handover.js';
import type { SessionEvent } from './message-bus.js';
import { forwardToOwner } from './node-forward.js';
import { checkAdvertiseUrl, forwardedBy, lossStep, MAX_OWNER_ROUNDS, OWNER_LOST_DETAIL, ownerStep, ownerVerdict, parseOwnerLossPolicy, type OwnerLossPolicy } from './owner-policy.js';
import { MemoryReplicaRegistry, RedisReplicaRegistry, type ReplicaRegistry } from './replica-registry.js';
import { newReplicaId } from './server-requests.js';

/** `replay`: any replica serves any session, restoring it by handshake replay; `owner`: the replica that created a session serves it. */
export type AffinityMode = 'replay' | 'owner';

export interface OwnerAffinityOptions {
  /** `MCP_MIGRATE_ON_OWNER_LOSS`; default `end`. */
  onOwnerLoss?: OwnerLossPolicy;
  /** `MCP_MIGRATE_ADVERTISE_URL`: where other replicas reach this one; default from the first request's socket. */
  advertiseUrl?: string;
  /** `MCP_MIGRATE_SESSION_SECRET` (comma-separated; the first signs forwarding headers). Default: one shared random secret in the store. */
  secrets?: readonly string[];
  /** Longest wait for a TCP connection to the owner, ms. Default 2,000. */
  connectTimeoutMs?: number;
  /** Replica registry heartbeat period, ms. Default 1,000 (a killed owner is gone within 3 s). */
  heartbeatIntervalMs?: number;
  log: (message: string) => void;
}

/**
 * What {@link OwnerAffinity.route} decided: `serve` the request here (the session is local, claimed
 * here, or unknown: the registry's usual path answers or restores it), or it was `answered`
 * (forwarded to the owner, or an error written: 404 for an ended session, 421, 503). `touched`: the
 * record's TTL was refreshed by the fencing check (`touchOwned`), so the registry sends no `touch`.
 */
export type AffinityRoute = { action: 'serve'; touched?: true } | { action: 'answered' } | { action: 'error'; kind: ErrorKind; detail?: string; headers?: Record<string, string> };

/** What the registry does for {@link OwnerAffinity} (store access and the session's cleanup when it ends). */
export interface AffinityHost {
  stores(): Promise<RuntimeStores>;
  /** Deletes the session's streams and pending requests and tells every replica it is terminated. */
  ended(sessionId: string): Promise<void>;
  /** Whether this replica holds a transport of the session. */
  has(sessionId: string): boolean;
  /** Closes this replica's transport of the session (the server's own close handlers run) and forgets it. */
  drop(sessionId: string): Promise<void>;
  /** Publishes a session event to the other replicas (never rejects). */
  announce(event: AffinityEvent): Promise<void>;
}

/** The session events owner affinity publishes (the host adds its `origin`). */
export type AffinityEvent = { type: 'owner'; sessionId: string; owner: string } | { type: 'released'; sessionId: string };

/** Owners of sessions this replica forwarded (steady path: no record load), bounded. */
const OWNER_CACHE_SIZE = 10_000;
/** Redis key (after the key prefix) of the shared forwarding secret, when no `MCP_MIGRATE_SESSION_SECRET` is given. */
export const FORWARD_SECRET_KEY = 'owner:forward-secret';

/**
 * Owner affinity for a migrated server (`SessionTransportRegistry` with `affinity: 'owner'`; docs/runtime.md
 * "Owner affinity"): the replica whose registry records a new session owns it (the record's `owner`),
 * registers itself with heartbeats in the replica registry, and serves the session; a request landing on
 * another replica is forwarded there over node:http (one hop), with a signed `x-mcp-migrate-forwarded`
 * header so the owner serves it and never forwards it again. The decisions are the proxy's
 * (`owner-policy.ts`).
 */
export class OwnerAffinity {
  readonly replicaId = newReplicaId();
  readonly onOwnerLoss: OwnerLossPolicy;
  readonly #o: OwnerAffinityOptions;
  readonly #host: AffinityHost;
  readonly #agent = new http.Agent({ keepAlive: true });
  readonly #owners = new Map<string, string>();
  /** Sessions this replica owns, with their owner generation (the fencing token of `touchOwned`). */
  readonly #epochs = new Map<string, number>();
  /** Sessions being let go of ({@link giveUp}): requests for them wait, then follow the session. */
  readonly #releasing = new Map<string, Promise<void>>();
  #draining = false;
  #started: Promise<Started> | undefined;

  constructor(host: AffinityHost, options: OwnerAffinityOptions) {
    this.#host = host;
    this.#o = options;
    this.onOwnerLoss = options.onOwnerLoss ?? 'end';
  }

  /** Whether {@link start} completed (sessions created before it are recorded without an owner). */
  started = false;

  /**
   * Registers this replica (once; later calls wait for the first): its URL from `MCP_MIGRATE_ADVERTISE_URL`,
   * else `http://<req.socket.localAddress>:<localPort>` (what a pod, container or loopback replica is
   * reached at), and the forwarding secret. Rejects with the store's error (the caller answers 503).
   */
  start(req: IncomingMessage): Promise<Started> {
    this.#started ??= (async () => {
      const stores = await this.#host.stores();
      const url = this.#o.advertiseUrl !== undefined ? checkAdvertiseUrl(this.#o.advertiseUrl, 'MCP_MIGRATE_ADVERTISE_URL') : socketUrl(req);
      const mac = new ForwardingMac(await forwardSecrets(stores, this.#o.secrets));
      const onError = (err: Error): void => this.#o.log(`replica registry: ${err.message}`);
      const heartbeat = this.#o.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: this.#o.heartbeatIntervalMs } : {};
      const registry: ReplicaRegistry = stores.redis
        ? new RedisReplicaRegistry({ client: stores.redis, keyPrefix: stores.keyPrefix, onError, ...heartbeat })
        : new MemoryReplicaRegistry({ onError, ...heartbeat });
      await registry.register({ replicaId: this.replicaId, url });
      this.started = true;
      return { mac, registry, url };
    })();
    this.#started.catch(() => (this.#started = undefined));
    return this.#started;
  }

  /** Stops heartbeats and deregisters (other replicas apply the owner-loss policy to this one's sessions at once). */
  async close(): Promise<void> {
    const started = await this.#started?.catch(() => undefined);
    await started?.registry.deregister();
    this.#agent.destroy();
  }

  /**
   * Routes a request that carries session id `sessionId` (see {@link AffinityRoute}). `local`: this
   * replica holds the session's transport; it serves only after the fencing check (`touchOwned`: the
   * record still names this replica and the generation it holds), else the transport is stale (another
   * replica took the session over, e.g. after this one was paused or cut off) and is closed before the
   * request goes where the session is now. `body()`: what the server's code already read of the request
   * (`undefined`: the stream is unread), asked only when the request is forwarded. Rejects with the
   * store's errors, and with what `body()` throws.
   */
  async route(sessionId: string, local: boolean, req: IncomingMessage, res: ServerResponse, body: () => unknown): Promise<AffinityRoute> {
    const started = await this.start(req);
    const from = forwardedBy(req.headers[FORWARDED_HEADER], started.mac, sessionId, this.replicaId);
    if (from === undefined) return misdirected('forwarding header not valid for this replica');
    const releasing = this.#releasing.get(sessionId);
    if (releasing) {
      await releasing;
      local = this.#host.has(sessionId);
    }
    if (local) {
      const fence = await (await this.#host.stores()).sessions.touchOwned(sessionId, this.replicaId, this.#epochs.get(sessionId) ?? 0);
      if (fence === 'ok') return { action: 'serve', touched: true };
      if (fence === 'gone') return { action: 'serve' }; // the registry's path answers 404 and closes the transport
      await this.#stale(sessionId);
    }
    if (from !== null) return await this.#acceptForwarded(sessionId);
    return await this.#toOwner(sessionId, started, req, res, body);
  }

  /** A transport of a session another replica owns now (or another generation of this one's): closed unused, as its state is not the session's any more. */
  async #stale(sessionId: string): Promise<void> {
    this.#o.log(`session ${sessionId.slice(0, 8)}…: another replica took it over; closing this replica's transport of it unused (its state is an older owner's)`);
    this.#epochs.delete(sessionId);
    await this.#host.drop(sessionId);
  }

  /** Forwarded to us, but we hold no transport: ours if the record still names us (our transport was closed) or no one (handed over to us), else the sender's view is stale. */
  async #acceptForwarded(sessionId: string): Promise<AffinityRoute> {
    const stores = await this.#host.stores();
    const record = await stores.sessions.load(sessionId);
    if (!record) return { action: 'serve' };
    if (record.owner === this.replicaId) {
      const lost = await this.#lost(sessionId, this.replicaId);
      if (lost !== 'again') return lost;
    }
    if (record.owner === undefined && !this.#draining && (await this.#claim(sessionId, undefined))) return { action: 'serve' };
    return misdirected('this replica does not own the session');
  }

  /** A request of a session this replica holds no transport of, not forwarded: served here (claimed), forwarded to its owner, or handed off. */
  async #toOwner(sessionId: string, started: Started, req: IncomingMessage, res: ServerResponse, body: () => unknown): Promise<AffinityRoute> {
    const stores = await this.#host.stores();
    const { mac, registry, url: self } = started;
    let owner = this.#owners.get(sessionId);
    let misdirectedBy: string | undefined;
    for (let round = 0; round < MAX_OWNER_ROUNDS; round++) {
      if (owner === undefined || round > 0) {
        const record = await stores.sessions.load(sessionId);
        if (!record) return { action: 'serve' }; // the registry's path answers 404
        owner = record.owner;
        // 421 from the owner's address while the record still names it: another process listens there now.
        if (misdirectedBy !== undefined && owner === misdirectedBy) registry.markDown(owner);
        misdirectedBy = undefined;
      }
      const step = ownerStep(owner, this.replicaId);
      if (step === 'serve') {
        // Ours, but no transport here any more (closed by the server): its state is gone as if we were.
        const lost = await this.#lost(sessionId, this.replicaId);
        if (lost !== 'again') return lost;
        continue;
      }
      if (step === 'claim') {
        // Never owned, or handed over by a replica that shut down: a draining replica passes it on.
        if (this.#draining && (await this.#handOff(sessionId, started, req, res, body))) return { action: 'answered' };
        if (await this.#claim(sessionId, undefined)) return { action: 'serve' };
        continue;
      }
      const o = owner!;
      let target = await registry.lookup(o);
      if (target === undefined) target = await registry.lookup(o, { fresh: true });
      let result: 'done' | 'down' | 'unreachable' | 'misdirected' = 'down';
      if (target !== undefined && target !== self) {
        const forwarded = mac.header(sessionId, this.replicaId, o);
        result = await forwardToOwner({ url: target, forwarded, req, res, body: body(), agent: this.#agent, connectTimeoutMs: this.#o.connectTimeoutMs ?? 2_000 });
      }
      const verdict = await ownerVerdict(result, async () => (await registry.lookup(o, { fresh: true })) !== undefined);
      if (verdict === 'done') {
        this.#remember(sessionId, o);
        return { action: 'answered' };
      }
      this.#owners.delete(sessionId);
      if (verdict === 'unsure') return { action: 'error', kind: 'ownerUnreachable' };
      if (verdict === 'misdirected') misdirectedBy = o;
      if (verdict === 'lost') {
        registry.markDown(o);
        const lost = await this.#lost(sessionId, o);
        if (lost !== 'again') return lost;
      }
    }
    return { action: 'error', kind: 'ownerChanging' };
  }

  /**
   * Compare-and-set the owner from `expected` to this replica (a new owner generation). A transport of
   * the session this replica still holds from an earlier generation is closed first: the session is
   * served from a handshake replay, never from state that missed what the owners in between did.
   */
  async #claim(sessionId: string, expected: string | undefined): Promise<boolean> {
    const claim = await (await this.#host.stores()).sessions.claimOwner(sessionId, expected, this.replicaId);
    if (!claim.claimed) return false;
    if (this.#host.has(sessionId)) await this.#host.drop(sessionId);
    this.#epochs.set(sessionId, claim.epoch);
    this.#owners.delete(sessionId);
    await this.#host.announce({ type: 'owner', sessionId, owner: this.replicaId });
    return true;
  }

  /**
   * Passes a request on to another replica that takes new sessions (this one drains): `sessionId` ''
   * for a new session. Resolves true once answered there; false: serve it here (no other replica).
   */
  async #handOff(sessionId: string, started: Started, req: IncomingMessage, res: ServerResponse, body: () => unknown): Promise<boolean> {
    for (const id of await handOffCandidates(started.registry)) {
      const url = await started.registry.lookup(id).catch(() => undefined);
      if (url === undefined || url === started.url) continue;
      const forwarded = started.mac.header(sessionId, this.replicaId, id);
      const result = await forwardToOwner({ url, forwarded, req, res, body: body(), agent: this.#agent, connectTimeoutMs: this.#o.connectTimeoutMs ?? 2_000 });
      if (result === 'done' || res.headersSent) return true;
      if (result === 'down') started.registry.markDown(id);
    }
    return false;
  }

  /**
   * A request without a session id (a new session) on a draining replica goes to a replica that takes
   * new sessions, so no session starts on a replica about to go. Resolves true once answered there;
   * false: serve it here (not draining, forwarded to us already, or no other replica).
   */
  async handOffNew(req: IncomingMessage, res: ServerResponse, body: () => unknown): Promise<boolean> {
    if (!this.#draining || req.headers[FORWARDED_HEADER] !== undefined) return false;
    return await this.#handOff('', await this.start(req), req, res, body);
  }

  /**
   * The owner `owner` of `sessionId` is gone, and the state it held: `end` deletes the record if it still
   * names that owner and answers 404 (the client initializes again); `replay` claims the session for this
   * replica, which restores it by handshake replay. `again`: another replica changed the owner
   * meanwhile (claimed or ended it first): route again from a fresh record.
   */
  async #lost(sessionId: string, owner: string): Promise<AffinityRoute | 'again'> {
    const stores = await this.#host.stores();
    if (lossStep(this.onOwnerLoss) === 'end') {
      if (!(await stores.sessions.deleteIfOwner(sessionId, owner))) return 'again';
      this.#o.log(`ended session ${sessionId.slice(0, 8)}…: its owner replica ${owner} is gone, and the state it held (MCP_MIGRATE_ON_OWNER_LOSS=end)`);
      await this.#host.ended(sessionId);
      return { action: 'error', kind: 'sessionNotFound', detail: OWNER_LOST_DETAIL };
    }
    if (owner === this.replicaId) return { action: 'serve' };
    // A draining replica takes nothing over: the record goes ownerless, and the next round passes the request on.
    if (this.#draining) return (await stores.sessions.releaseOwner(sessionId, owner), 'again');
    return (await this.#claim(sessionId, owner)) ? { action: 'serve' } : 'again';
  }

  #remember(sessionId: string, owner: string): void {
    if (this.#owners.size >= OWNER_CACHE_SIZE && !this.#owners.has(sessionId)) this.#owners.delete(this.#owners.keys().next().value!);
    this.#owners.set(sessionId, owner);
  }

  /** Forgets a session's cached owner (it was terminated). */
  forget(sessionId: string): void {
    this.#owners.delete(sessionId);
    this.#epochs.delete(sessionId);
  }

  /** This replica no longer holds a transport of the session: nothing of it is left here to hand over. */
  dropped(sessionId: string): void {
    this.#epochs.delete(sessionId);
  }

  /** This replica created session `sessionId` with itself as owner (owner generation 0). */
  created(sessionId: string): void {
    this.#epochs.set(sessionId, 0);
  }

  /**
   * Another replica's session event: a takeover (`owner`) or a hand-over (`released`) drops the cached
   * owner; a takeover of a session this replica still holds a transport of closes that transport at
   * once (this replica was paused or cut off and is stale: its timers must not go on for the session).
   */
  onEvent(event: SessionEvent): void {
    if (event.type !== 'owner' && event.type !== 'released') return;
    this.#owners.delete(event.sessionId);
    if (event.type === 'owner' && event.owner !== this.replicaId && this.#host.has(event.sessionId) && !this.#releasing.has(event.sessionId)) {
      void this.#stale(event.sessionId).catch(() => undefined);
    }
  }

  /** Sessions this replica owns and is not letting go of yet (what a drain hands over). */
  owned(): string[] {
    return [...this.#epochs.keys()].filter((id) => !this.#releasing.has(id));
  }

  /** True once {@link drain} began. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Graceful shutdown, first step: takes no new sessions (the replica registry stops offering this
   * replica; new sessions and ownerless ones that reach it are passed on), keeps its registration so
   * the sessions it still owns keep reaching it. Never rejects.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    const started = await this.#started?.catch(() => undefined);
    await started?.registry.drain();
  }

  /**
   * Graceful shutdown: lets go of one owned session (its transport, and the state in it, cannot move).
   * `end`: the record is deleted if it still names this replica, with its streams, and every replica
   * hears of it, so the client's next request gets 404 at once and it initializes again; `replay`: the
   * record's owner is removed (`releaseOwner`), and the next replica that serves the session claims it
   * and replays the handshake. Then the transport is closed. Requests for the session wait for it, then
   * follow the session. Never rejects.
   */
  giveUp(sessionId: string): Promise<void> {
    const run = (async () => {
      const stores = await this.#host.stores();
      if (this.onOwnerLoss === 'end') {
        if (await stores.sessions.deleteIfOwner(sessionId, this.replicaId)) {
          this.#o.log(`ended session ${sessionId.slice(0, 8)}… on shutdown: its state lives in this replica (MCP_MIGRATE_ON_OWNER_LOSS=end); its client initializes again`);
          await this.#host.ended(sessionId);
        }
      } else if (await stores.sessions.releaseOwner(sessionId, this.replicaId)) {
        await this.#host.announce({ type: 'released', sessionId });
      }
    })()
      .catch((err: unknown) => this.#o.log(`could not hand session ${sessionId.slice(0, 8)}… over: ${(err as Error).message}`))
      .then(() => {
        this.#epochs.delete(sessionId);
        return this.#host.drop(sessionId);
      })
      .catch(() => undefined)
      .finally(() => this.#releasing.delete(sessionId));
    this.#releasing.set(sessionId, run);
    return run;
  }
}

type Started = { mac: ForwardingMac; registry: ReplicaRegistry; url: string };

function misdirected(why: string): AffinityRoute {
  return { action: 'error', kind: 'misdirected', detail: why, headers: { [MISDIRECTED_HEADER]: '1' } };
}

/** `http://<local address>:<local port>` of the socket a request arrived on (IPv4-mapped IPv6 as IPv4). */
export function socketUrl(req: IncomingMessage): string {
  let address = req.socket.localAddress ?? '127.0.0.1';
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7);
  const host = address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${req.socket.localPort}`;
}

/**
 * The secrets forwarding headers are signed with: `explicit` if given (every replica must be given the
 * same); else one random secret stored once in the store (`SET <prefix>owner:forward-secret <random> NX`,
 * then `GET`, so every replica reads the first one written; no TTL); in-process for the `memory` store.
 */
export async function forwardSecrets(stores: RuntimeStores, explicit?: readonly string[]): Promise<string[]> {
  const given = (explicit ?? []).filter((s) => s.length > 0);
  if (given.length > 0) return [...given];
  const fresh = randomBytes(32).toString('base64url');
  if (!stores.redis) return [fresh];
  const key = `${stores.keyPrefix}${FORWARD_SECRET_KEY}`;
  await stores.redis.set(key, fresh, 'NX');
  const stored = await stores.redis.get(key);
  if (!stored) throw new Error('the shared forwarding secret could not be read back from the store');
  return [stored];
}

/** The affinity settings from the environment (`MCP_MIGRATE_AFFINITY`, `MCP_MIGRATE_ON_OWNER_LOSS`, `MCP_MIGRATE_ADVERTISE_URL`, `MCP_MIGRATE_SESSION_SECRET`), over `mode`. @throws RangeError for invalid values. */
export function ownerAffinityFromEnv(mode: AffinityMode | undefined, env: NodeJS.ProcessEnv = process.env): { mode: AffinityMode; options: Omit<OwnerAffinityOptions, 'log'> } {
  const raw = env.MCP_MIGRATE_AFFINITY ?? mode ?? 'replay';
  if (raw !== 'replay' && raw !== 'owner') throw new RangeError(`MCP_MIGRATE_AFFINITY must be replay or owner, got "${raw}"`);
  if (raw === 'replay') return { mode: raw, options: {} };
  const options: Omit<OwnerAffinityOptions, 'log'> = { onOwnerLoss: parseOwnerLossPolicy(env.MCP_MIGRATE_ON_OWNER_LOSS ?? 'end', 'MCP_MIGRATE_ON_OWNER_LOSS') };
  if (env.MCP_MIGRATE_ADVERTISE_URL) options.advertiseUrl = env.MCP_MIGRATE_ADVERTISE_URL;
  if (env.MCP_MIGRATE_SESSION_SECRET) options.secrets = env.MCP_MIGRATE_SESSION_SECRET.split(',');
  return { mode: raw, options };
}
