import type { JsonRpcMessage } from './jsonrpc.js';

/**
 * Server-to-client SSE streams of a session, shared by every replica (spec 2025-03-26/06-18/11-25
 * `basic/transports.mdx` §Listening for Messages from the Server, §Multiple Connections and
 * §Resumability and Redelivery).
 *
 * A message produced on any replica (by an upstream session's standalone stream, or on a POST
 * stream that must be resumable) is appended to one stream of its session. The append stores it
 * (bounded, with the session's TTL) and hands it to every live follower of that stream, on whichever
 * replica holds the client's SSE connection. A client that reconnects with `Last-Event-ID`, on any
 * replica, gets exactly the events of that one stream that follow the id, then the live ones, each
 * once and in append order.
 *
 * The Redis implementation keeps each stream in a Redis Stream at `sessionKey(prefix, sid,
 * 'events:' + streamId)` and announces appends on one pub/sub channel per session stream (the
 * replica's single subscriber connection of `RedisMessageBus`).
 */

/** Stream id of a session's standalone (GET) stream. POST streams get short random ids. */
export const STANDALONE_STREAM = 'g';

/** One stored event of a session stream. */
export interface StreamEvent {
  /**
   * The SSE `id:` sent to the client: visible ASCII (0x21–0x7E), unique across every stream of the
   * session, encodes the stream (spec 2025-11-25: "event IDs SHOULD encode the originating stream").
   */
  eventId: string;
  message: JsonRpcMessage;
  /** Append time, ms since the epoch (bus-lag measurement). */
  ts: number;
}

/** A live subscription to a session stream; {@link close} stops delivery. */
export interface StreamFollow {
  close(): Promise<void>;
}

export interface SessionStreams {
  /**
   * Stores `message` as the next event of `streamId` and delivers it to live followers.
   * Rejects with `SessionStoreUnavailableError` when the store cannot be reached.
   */
  append(sessionId: string, streamId: string, message: JsonRpcMessage): Promise<StreamEvent>;
  /**
   * Follows a stream. With `after` (a `Last-Event-ID`), first delivers the stored events after it,
   * then live ones, with no gap and no duplicate. With `undelivered`, first delivers events appended
   * while no follower was live (a standalone stream opened late). `listener` is called in append order.
   */
  follow(
    sessionId: string,
    streamId: string,
    options: { after?: string; undelivered?: boolean },
    listener: (event: StreamEvent) => void,
  ): Promise<StreamFollow>;
  /** The stream an event id belongs to, or `undefined` if it is not one of ours (then nothing is replayed). */
  streamOf(eventId: string): string | undefined;
  /** Removes every stream of a session (client `DELETE`). */
  delete(sessionId: string): Promise<void>;
  close(): Promise<void>;
}
