import { randomBytes } from 'node:crypto';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from './jsonrpc.js';
import type { MessageBus } from './message-bus.js';
import { RUNTIME_ID_PREFIX } from './protocol.js';
import { SessionStoreUnavailableError } from './session-store.js';

/**
 * Routing of server-initiated requests (`sampling/createMessage`, `elicitation/create`, `roots/list`,
 * `ping`) across replicas.
 *
 * Spec §Sending Messages to the Server: the client answers a server's request with a new POST, which a
 * round-robin load balancer may send to any replica, while the pending request lives in one upstream
 * session on one replica (in the TS SDK, `Protocol._responseHandlers`, ids counting from 0 per
 * instance). So every server-to-client request leaving a replica gets a client-facing id that names
 * that replica and is unique among all replicas (request ids must not repeat within a session,
 * spec `basic/index.mdx`); the replica that receives the client's response sends it to the named
 * replica over the message bus, which restores the original id and hands it to the upstream session.
 */
export interface ServerRequestRouter {
  /** This replica's id as it appears in rewritten request ids. */
  readonly replicaId: string;
  /** Resolves once the router can receive answers routed to it (its inbox subscription is active). Never rejects. */
  readonly ready?: Promise<void>;
  /**
   * Registers a request from a local upstream session of `sessionId` and returns a copy with the
   * client-facing id. `deliver` receives the client's response with the upstream's original id.
   * Pending entries expire after the router's timeout (default 10 minutes).
   */
  outgoing(sessionId: string, request: JsonRpcRequest, deliver: (response: JsonRpcResponse) => void): JsonRpcRequest;
  /**
   * Routes a client's response that arrived on this replica for `sessionId`: `local` (the id names
   * this replica: delivered here, or dropped when no request of this session is pending under it),
   * `remote` (published to the replica named in its id, which applies the same check), or `unknown`
   * (not a rewritten id: the caller forwards it as before). A response for a pending request of
   * another session is never delivered. Rejects with `SessionStoreUnavailableError` if the bus is down.
   */
  reply(sessionId: string, response: JsonRpcResponse): Promise<'local' | 'remote' | 'unknown'>;
  /**
   * The client-facing id of a request of `sessionId` still pending here under the upstream's
   * `originalId` (to rewrite the `requestId` of the server's `notifications/cancelled` for it).
   */
  clientIdOf(sessionId: string, originalId: JsonRpcId): string | undefined;
  /** Drops the pending requests of a session on this replica (its upstream session closed). */
  forget(sessionId: string): void;
  close(): Promise<void>;
}

/** Rewritten ids: `mcp-migrate:s:<replicaId>:<base36 counter>`. */
const REWRITTEN_PREFIX = `${RUNTIME_ID_PREFIX}s:`;
/** Replica ids usable in rewritten ids and channel names. */
export const REPLICA_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A random replica id: 10 base36 characters (~51 bits). */
export function newReplicaId(): string {
  return (randomBytes(8).readBigUInt64BE() >> 12n).toString(36).padStart(10, '0').slice(-10);
}

/** The replica named in a rewritten id, or `undefined` if `id` is not one. */
export function replicaOfRewrittenId(id: JsonRpcId | null): string | undefined {
  if (typeof id !== 'string' || !id.startsWith(REWRITTEN_PREFIX)) return undefined;
  const rest = id.slice(REWRITTEN_PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon <= 0 || !/^[0-9a-z]{1,14}$/.test(rest.slice(colon + 1))) return undefined;
  const replica = rest.slice(0, colon);
  return REPLICA_ID_PATTERN.test(replica) ? replica : undefined;
}

/**
 * The server's `notifications/cancelled` for one of its requests, with the `requestId` the client
 * knows (spec `basic/utilities/cancellation`); other messages are returned as they are.
 */
export function rewriteCancellation<M extends { method?: string; params?: Record<string, unknown> }>(
  router: ServerRequestRouter,
  sessionId: string,
  message: M,
): M {
  if (message.method !== 'notifications/cancelled') return message;
  const requestId = message.params?.requestId;
  if (typeof requestId !== 'string' && typeof requestId !== 'number') return message;
  const clientId = router.clientIdOf(sessionId, requestId);
  return clientId === undefined ? message : { ...message, params: { ...message.params, requestId: clientId } };
}

/** Whether a message id is a rewritten server-request id (cheap test for the POST path). */
export function isRewrittenId(id: unknown): boolean {
  return typeof id === 'string' && id.startsWith(REWRITTEN_PREFIX);
}

interface Pending {
  sessionId: string;
  originalId: JsonRpcId;
  deliver: (response: JsonRpcResponse) => void;
  timer: NodeJS.Timeout;
}

/** A reply travelling to the replica that holds the pending request. */
interface InboxMessage {
  s: string;
  r: JsonRpcResponse;
}

export interface BusServerRequestRouterOptions {
  bus: MessageBus;
  /** This replica's id (see {@link REPLICA_ID_PATTERN}). */
  replicaId: string;
  /** Prefix of inbox channel names: `<prefix>replica:<replicaId>`. Default `mcpm:`. */
  channelPrefix?: string;
  /** How long a request stays pending, ms. Default 600,000 (the SDK's elicitation tools wait 10 minutes). */
  timeoutMs?: number;
  /** Called when a reply is dropped (expired, unknown, or for another session), for logs and metrics. */
  onDrop?: (reason: 'not-pending' | 'wrong-session', sessionId: string) => void;
}

/**
 * {@link ServerRequestRouter} over a {@link MessageBus}: each replica subscribes to its own inbox
 * channel `<prefix>replica:<replicaId>` (on the replica's one subscriber connection); a reply for a
 * request pending on replica R is published there as `{"s": sessionId, "r": response}`.
 * With {@link MemoryMessageBus} it serves one process.
 *
 * Rewritten ids are `mcp-migrate:s:<replicaId>:<n>` (visible ASCII): they live in the id space the
 * proxy reserves (`RUNTIME_ID_PREFIX`; client requests using it are refused), use their own `s:` tag
 * (the runtime's handshake ids use others), and `n` counts up from a random start, so ids differ
 * between replicas, between runs of one replica, and from every client request id.
 */
export class BusServerRequestRouter implements ServerRequestRouter {
  readonly replicaId: string;
  readonly timeoutMs: number;
  /**
   * Resolves once the inbox subscription is active, or (bus down, after the bus's bounded wait) once
   * it is registered to become active when the bus connects. Never rejects.
   */
  readonly ready: Promise<void>;
  readonly #bus: MessageBus;
  readonly #prefix: string;
  readonly #pending = new Map<string, Pending>();
  /** Session id → rewritten ids pending for it. */
  readonly #bySession = new Map<string, Set<string>>();
  readonly #onDrop: BusServerRequestRouterOptions['onDrop'];
  #counter: number;
  #unsubscribe: (() => Promise<void>) | undefined;
  #closed = false;

  constructor(options: BusServerRequestRouterOptions) {
    if (!REPLICA_ID_PATTERN.test(options.replicaId)) throw new TypeError(`invalid replica id ${JSON.stringify(options.replicaId)}`);
    this.replicaId = options.replicaId;
    this.timeoutMs = options.timeoutMs ?? 600_000;
    this.#bus = options.bus;
    this.#prefix = options.channelPrefix ?? 'mcpm:';
    this.#onDrop = options.onDrop;
    this.#counter = randomBytes(4).readUInt32BE();
    const channel = this.inbox(this.replicaId);
    const listener = (raw: string) => this.#onInbox(raw);
    const keep = (off: () => Promise<void>) => {
      if (this.#closed) void off();
      else this.#unsubscribe = off;
    };
    // Active before `ready` resolves when the bus is up; otherwise registered for when it comes up.
    this.ready = this.#bus
      .subscribe(channel, listener, { confirmed: true })
      .catch(() => this.#bus.subscribe(channel, listener))
      .then(keep, () => undefined);
  }

  /** The inbox channel of a replica. */
  inbox(replicaId: string): string {
    return `${this.#prefix}replica:${replicaId}`;
  }

  /** Requests pending on this replica (tests, diagnostics). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  outgoing(sessionId: string, request: JsonRpcRequest, deliver: (response: JsonRpcResponse) => void): JsonRpcRequest {
    this.#counter = (this.#counter + 1) % Number.MAX_SAFE_INTEGER;
    const id = `${REWRITTEN_PREFIX}${this.replicaId}:${this.#counter.toString(36)}`;
    const timer = setTimeout(() => this.#remove(id), this.timeoutMs);
    timer.unref();
    this.#pending.set(id, { sessionId, originalId: request.id, deliver, timer });
    let ids = this.#bySession.get(sessionId);
    if (!ids) this.#bySession.set(sessionId, (ids = new Set()));
    ids.add(id);
    return { ...request, id };
  }

  async reply(sessionId: string, response: JsonRpcResponse): Promise<'local' | 'remote' | 'unknown'> {
    const replica = replicaOfRewrittenId(response.id);
    if (replica === undefined) return 'unknown';
    if (replica === this.replicaId) {
      this.#deliver(sessionId, response);
      return 'local';
    }
    const message: InboxMessage = { s: sessionId, r: response };
    try {
      await this.#bus.publish(this.inbox(replica), JSON.stringify(message));
    } catch (err) {
      throw new SessionStoreUnavailableError(`message bus unavailable: ${(err as Error).message}`, { cause: err });
    }
    return 'remote';
  }

  clientIdOf(sessionId: string, originalId: JsonRpcId): string | undefined {
    for (const id of this.#bySession.get(sessionId) ?? []) {
      const p = this.#pending.get(id);
      if (p && p.originalId === originalId) return id;
    }
    return undefined;
  }

  forget(sessionId: string): void {
    for (const id of [...(this.#bySession.get(sessionId) ?? [])]) this.#remove(id);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) this.#remove(id);
    await this.#unsubscribe?.().catch(() => undefined);
  }

  #onInbox(raw: string): void {
    let m: InboxMessage;
    try {
      m = JSON.parse(raw) as InboxMessage;
    } catch {
      return;
    }
    if (typeof m?.s !== 'string' || typeof m.r !== 'object' || m.r === null) return;
    this.#deliver(m.s, m.r);
  }

  #deliver(sessionId: string, response: JsonRpcResponse): void {
    const id = response.id as string;
    const p = this.#pending.get(id);
    if (!p) {
      this.#onDrop?.('not-pending', sessionId);
      return;
    }
    if (p.sessionId !== sessionId) {
      // Another session's pending request: never delivered, and left pending for its own session.
      this.#onDrop?.('wrong-session', sessionId);
      return;
    }
    this.#remove(id);
    try {
      p.deliver({ ...response, id: p.originalId } as JsonRpcResponse);
    } catch {
      /* the upstream session went away meanwhile */
    }
  }

  #remove(id: string): void {
    const p = this.#pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    const ids = this.#bySession.get(p.sessionId);
    ids?.delete(id);
    if (ids?.size === 0) this.#bySession.delete(p.sessionId);
  }
}
