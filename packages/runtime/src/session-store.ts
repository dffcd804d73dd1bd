import type { NewSessionRecord, SessionChange, SessionRecord } from './session-record.js';

/**
 * Shared storage of {@link SessionRecord}s, keyed by session id. Every method either resolves or
 * rejects with {@link SessionStoreUnavailableError}; "not found" is a normal result, not an error.
 *
 * Cost contract (what the proxy's "one Redis command per steady-state request" goal relies on):
 * {@link touch} is a single round trip and a single command; {@link load} is a single round trip.
 */
export interface SessionStore {
  /** Stores a new record with the store's TTL; resolves to the stored record. */
  create(record: NewSessionRecord): Promise<SessionRecord>;
  /** Reads a record and refreshes its TTL (`lastSeenAt` becomes now); `undefined` if unknown, expired or deleted. */
  load(id: string): Promise<SessionRecord | undefined>;
  /**
   * Refreshes the TTL of a record and tells whether it still exists. `false` means the session was
   * deleted (possibly by another replica) or expired. Must be exactly one store command.
   */
  touch(id: string): Promise<boolean>;
  /**
   * Owner affinity, the fencing check of every request an owner serves: refreshes the TTL only if the
   * record's `owner` is `owner` and its owner generation is `epoch` now (0 for the replica that created
   * the session, else what its {@link claimOwner} returned). `ok`: still this replica's, refreshed;
   * `moved`: another replica claimed it (or this replica claimed it again later: another generation),
   * so what this replica holds of the session is stale and must not serve; `gone`: no record. Exactly
   * one store command (Redis: one `EVALSHA` on the record key), in place of {@link touch}.
   */
  touchOwned(id: string, owner: string, epoch: number): Promise<'ok' | 'moved' | 'gone'>;
  /** Records a change of replayable state; resolves to the new revision, or `undefined` if the record is gone. */
  update(id: string, change: SessionChange): Promise<number | undefined>;
  /**
   * Owner affinity: atomically sets the record's `owner` to `next` if it is `expected` now
   * (`undefined` = no owner), clears its `handover`, increments its owner generation and refreshes the
   * TTL. Resolves to `{ claimed: true, handover, epoch }` (what the previous owner handed over, if it
   * released the session gracefully; the new generation, ≥ 1, for {@link touchOwned}) if it did; `{ claimed: false }` if the owner was something else (another replica
   * claimed first) or the record is gone. One round trip (Redis: one `EVALSHA` on one key).
   */
  claimOwner(id: string, expected: string | undefined, next: string): Promise<OwnerClaim>;
  /**
   * Owner affinity, graceful hand-over: atomically removes the record's `owner` if it is `current`
   * now, and stores `handover` (or none) for the next claim. Resolves to false if another replica owns
   * the session or the record is gone. One round trip (Redis: one `EVALSHA`).
   */
  releaseOwner(id: string, current: string, handover?: string): Promise<boolean>;
  /**
   * Owner affinity, `--on-owner-loss end`: deletes the record only if its `owner` is `owner` now
   * (the owner that was found gone), so a session another replica claimed meanwhile is never ended.
   * Resolves to whether it deleted. One round trip (Redis: one `EVALSHA`).
   */
  deleteIfOwner(id: string, owner: string): Promise<boolean>;
  /** Deletes a record; resolves to whether it existed. */
  delete(id: string): Promise<boolean>;
  /** Resolves when the store answers (health checks). */
  ping(): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
  /** The sliding TTL applied to every record, in milliseconds. */
  readonly ttlMs: number;
}

/** What {@link SessionStore.claimOwner} came to. */
export type OwnerClaim = { claimed: false } | { claimed: true; handover?: string; epoch: number };

/**
 * The store could not be reached or did not answer in time (Redis down, connection lost, command
 * timeout). The proxy maps it to HTTP 503 with a JSON-RPC error and keeps serving once it recovers.
 */
export class SessionStoreUnavailableError extends Error {
  readonly code = 'SESSION_STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionStoreUnavailableError';
  }
}
