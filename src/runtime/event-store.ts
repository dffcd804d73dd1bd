import type { JsonRpcMessage } from './jsonrpc.js';

/**
 * SSE resumability seam (spec §Resumability and Redelivery: `id:` on SSE events, `GET` with
 * `Last-Event-ID`). Same shape as the TS SDK's `EventStore` (`storeEvent`, `replayEventsAfter`), but
 * bound to one session at construction, because the SDK's stream ids (`_GET_stream`) repeat across sessions.
 *
 * Not implemented in this release: the proxy passes `Last-Event-ID` through to an HTTP upstream and
 * ignores it for stdio upstreams. The planned implementation is a Redis Streams store at
 * `sessionKey(prefix, sid, 'events')` so any replica can replay after a failover.
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
