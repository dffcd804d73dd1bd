import type { JsonRpcMessage } from './jsonrpc.js';

/**
 * SSE resumability seam (spec §Resumability and Redelivery: `id:` on SSE events, `GET` with
 * `Last-Event-ID`). Same shape as the TS SDK's `EventStore` (`storeEvent`, `replayEventsAfter`), but
 * bound to one session at construction, because the SDK's stream ids (`_GET_stream`) repeat across sessions.
 *
 * The proxy does not use it: its SSE streams are `SessionStreams` (Redis Streams, shared by the
 * replicas, see `session-streams.ts`).
 */
export interface SessionEventStore {
  /** Stores an outgoing message of one SSE stream; resolves to its globally unique event id. */
  storeEvent(streamId: string, message: JsonRpcMessage): Promise<string>;
  /**
   * Re-sends the events of `lastEventId`'s stream that follow it, in order; resolves to that stream's id.
   * Must not replay events of other streams.
   */
  replayEventsAfter(
    lastEventId: string,
    sink: { send(eventId: string, message: JsonRpcMessage): Promise<void> },
  ): Promise<string>;
}
