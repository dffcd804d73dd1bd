/**
 * Cross-replica messaging seam.
 *
 * Today the proxy publishes two {@link SessionEvent}s on it:
 * - `terminated` when a client `DELETE`s a session, so other replicas close their local upstream
 *   session at once rather than on their next request (which would find the record gone) or at idle reaping;
 * - `changed` when replayable state changed (`logging/setLevel`, `resources/subscribe`/`unsubscribe`),
 *   so replicas holding an upstream session of it reload the record and re-sync that upstream
 *   session before their next request. This keeps the steady-state request at one store command.
 * Delivery is at-most-once; after a bus reconnect a replica treats every cached record as stale.
 *
 * The same bus carries, on their own channels, the live tail of session streams
 * (`RedisSessionStreams`: notifications and server requests for a client's GET stream held by another
 * replica) and the answers to server-initiated requests routed to the replica that asked
 * (`BusServerRequestRouter`, one inbox channel per replica). Each replica uses one subscriber connection.
 */
export interface MessageBus {
  /** Publishes `message` on `channel`; resolves when handed to the transport (at-most-once delivery). */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Subscribes; resolves to an unsubscribe function once the subscription is active. With
   * `confirmed`, a bus that is not connected waits (bounded) and rejects rather than resolving
   * before the subscription is active (see `RedisMessageBus.subscribe`).
   */
  subscribe(channel: string, listener: (message: string) => void, options?: { confirmed?: boolean }): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /**
   * Registers a callback for "deliveries may have been missed" (a pub/sub reconnect). Optional;
   * an in-process bus never misses deliveries.
   */
  onGap?(listener: () => void): void;
}

/** Events every replica's proxy listens to on {@link SESSION_EVENTS_CHANNEL}. */
export type SessionEvent =
  | { type: 'terminated'; sessionId: string; origin: string }
  | { type: 'changed'; sessionId: string; revision: number; origin: string }
  /**
   * Owner affinity: replica `owner` claimed the session (`SessionStore.claimOwner`), e.g. because the
   * previous owner looked dead. Other replicas update their cached record; a previous owner that was
   * only partitioned closes its upstream session of it once idle.
   */
  | { type: 'owner'; sessionId: string; owner: string; origin: string }
  /**
   * Owner affinity: the owner (`origin`) handed the session over on graceful shutdown
   * (`SessionStore.releaseOwner`): the record has no owner now, and the next replica that serves the
   * session claims it. Others update their cached record.
   */
  | { type: 'released'; sessionId: string; origin: string };

/**
 * A {@link SessionEvent} received on the bus, or `undefined` for a message that is not one (not JSON,
 * no `sessionId` or `origin`): the one reading of session events for the proxy and `SessionTransportRegistry`.
 */
export function parseSessionEvent(raw: string): SessionEvent | undefined {
  let event: SessionEvent;
  try {
    event = JSON.parse(raw) as SessionEvent;
  } catch {
    return undefined;
  }
  return typeof event?.sessionId === 'string' && typeof event.origin === 'string' ? event : undefined;
}

/** Channel (after the key prefix) carrying {@link SessionEvent}s as JSON. */
export const SESSION_EVENTS_CHANNEL = 'session-events';

/** In-process {@link MessageBus}: delivers synchronously to listeners in this process only. */
export class MemoryMessageBus implements MessageBus {
  readonly #listeners = new Map<string, Set<(message: string) => void>>();

  async publish(channel: string, message: string): Promise<void> {
    for (const l of this.#listeners.get(channel) ?? []) {
      try {
        l(message);
      } catch {
        /* a failing listener must not break the publisher */
      }
    }
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    let set = this.#listeners.get(channel);
    if (!set) this.#listeners.set(channel, (set = new Set()));
    set.add(listener);
    return async () => {
      set.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
