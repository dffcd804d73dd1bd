import { isRequest, type JsonRpcMessage } from './jsonrpc.js';
import { HANDSHAKE_METHODS } from './protocol.js';

/**
 * The session record: everything needed to rebuild a client's MCP session on any replica by
 * handshake replay (see `docs/runtime.md` and the research digest §3.3).
 */

/** Persisted state of one MCP session. All times are milliseconds since the Unix epoch. */
export interface SessionRecord {
  /** The client-facing `Mcp-Session-Id` (see {@link SessionIdCodec}). */
  id: string;
  /** Principal hash the session is bound to (base64url, see `SessionIdCodec.principalHash`). */
  principal: string;
  /** Protocol version negotiated by `initialize` (the `protocolVersion` of the `InitializeResult`). */
  protocolVersion: string;
  /** The client's `initialize` params exactly as received (`protocolVersion`, `capabilities`, `clientInfo`, …). */
  initializeParams: Record<string, unknown>;
  /** Last level set with `logging/setLevel`, if any. */
  loggingLevel?: string;
  /** Resource URIs subscribed with `resources/subscribe` and not unsubscribed, sorted. */
  subscriptions: string[];
  createdAt: number;
  /** Last time the record was read or refreshed by `load` (the steady-state `touch` only refreshes the TTL). */
  lastSeenAt: number;
  /** Sliding time to live: the record expires this many milliseconds after the last request. */
  ttlMs: number;
  /**
   * Incremented on every change of replayable state (`loggingLevel`, `subscriptions`). Replicas learn
   * of changes through the message bus (`SessionEvent` `changed`) and re-sync their upstream session.
   */
  revision: number;
  /**
   * Owner affinity (`mcp-migrate proxy`, the default): the replica id of the replica that holds the
   * session's upstream session and serves it; other replicas forward to it. Changed only by
   * {@link SessionStore.claimOwner} (a compare-and-set). Absent in replay mode, and between a
   * graceful hand-over ({@link SessionStore.releaseOwner}) and the next claim.
   */
  owner?: string;
  /**
   * Owner affinity: what the previous owner handed over with the session when it shut down gracefully
   * (opaque to the store; the proxy's upstream connector reads it, e.g. the HTTP upstream's own session
   * id, so the next owner goes on with the same upstream session). Set by
   * {@link SessionStore.releaseOwner}, returned and cleared by the next {@link SessionStore.claimOwner}.
   */
  handover?: string;
}

/** What a caller supplies to create a record; the store fills in times and the revision. */
export type NewSessionRecord = Pick<SessionRecord, 'id' | 'principal' | 'protocolVersion' | 'initializeParams'> &
  Partial<Pick<SessionRecord, 'loggingLevel' | 'subscriptions' | 'owner'>>;

/** A change of replayable state, recorded after the client sent the corresponding request. */
export type SessionChange =
  | { kind: 'loggingLevel'; level: string }
  | { kind: 'subscribe'; uri: string }
  | { kind: 'unsubscribe'; uri: string };

/** Returns a copy of `record` with `change` applied and `revision` incremented; `record` is not modified. */
/**
 * The record a store creates from a new session: a deep copy of the `initialize` params, subscriptions
 * sorted, created and last seen at `now` (ms since the epoch), revision 0.
 */
export function newRecord(input: NewSessionRecord, now: number, ttlMs: number): SessionRecord {
  return {
    id: input.id,
    principal: input.principal,
    protocolVersion: input.protocolVersion,
    initializeParams: structuredClone(input.initializeParams),
    ...(input.loggingLevel !== undefined ? { loggingLevel: input.loggingLevel } : {}),
    subscriptions: [...(input.subscriptions ?? [])].sort(),
    createdAt: now,
    lastSeenAt: now,
    ttlMs,
    revision: 0,
    ...(input.owner !== undefined ? { owner: input.owner } : {}),
  };
}

export function applyChange(record: SessionRecord, change: SessionChange): SessionRecord {
  const next: SessionRecord = { ...record, subscriptions: [...record.subscriptions], revision: record.revision + 1 };
  switch (change.kind) {
    case 'loggingLevel':
      next.loggingLevel = change.level;
      break;
    case 'subscribe':
      if (!next.subscriptions.includes(change.uri)) next.subscriptions = [...next.subscriptions, change.uri].sort();
      break;
    case 'unsubscribe':
      next.subscriptions = next.subscriptions.filter((u) => u !== change.uri);
      break;
  }
  return next;
}

/**
 * The replayable state change a client message makes, if any: `logging/setLevel` (with a string
 * `level`), `resources/subscribe` and `resources/unsubscribe` (with a string `uri`) requests. Every
 * front records it before forwarding the message, so handshake replay on another replica restores it.
 */
export function sessionChangeOf(m: JsonRpcMessage): SessionChange | undefined {
  if (!isRequest(m)) return undefined;
  const params = m.params ?? {};
  switch (m.method) {
    case HANDSHAKE_METHODS.setLevel:
      return typeof params.level === 'string' ? { kind: 'loggingLevel', level: params.level } : undefined;
    case HANDSHAKE_METHODS.subscribe:
      return typeof params.uri === 'string' ? { kind: 'subscribe', uri: params.uri } : undefined;
    case HANDSHAKE_METHODS.unsubscribe:
      return typeof params.uri === 'string' ? { kind: 'unsubscribe', uri: params.uri } : undefined;
    default:
      return undefined;
  }
}
