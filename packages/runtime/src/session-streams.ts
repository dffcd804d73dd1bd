import { randomBytes } from 'node:crypto';
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
 * Implementations: {@link MemorySessionStreams} (one process) and `RedisSessionStreams` (Redis
 * Streams + the replica's single pub/sub subscriber connection, see `redis-streams.ts`).
 */

/** Stream id of a session's standalone (GET) stream. POST streams get ids from {@link newStreamId}. */
export const STANDALONE_STREAM = 'g';

/** Valid stream ids: 1–64 ASCII letters and digits (no `_`, which separates the stream in an event id). */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9]{1,64}$/;

/** A fresh random stream id for a POST stream: `p` + 12 base36 characters (62 bits). */
export function newStreamId(prefix = 'p'): string {
  return prefix + (randomBytes(8).readBigUInt64BE() >> 2n).toString(36).padStart(12, '0').slice(-12);
}

/** One stored event of a session stream. */
export interface StreamEvent {
  /**
   * The SSE `id:` sent to the client: visible ASCII (0x21–0x7E), unique across every stream of the
   * session, encodes the stream (spec 2025-11-25: "event IDs SHOULD encode the originating stream"):
   * `<streamId>_<position>`.
   */
  eventId: string;
  message: JsonRpcMessage;
  /** Append time, ms since the epoch (bus-lag measurement). */
  ts: number;
  /** The last event of the stream (a POST stream's final response): a follower may end after it. */
  end?: boolean;
}

/** How a follow ended other than by {@link StreamFollow.close}. */
export type FollowClosedReason = 'superseded' | 'deleted';

export interface FollowOptions {
  /** A `Last-Event-ID` of this stream: deliver the stored events after it first. */
  after?: string;
  /**
   * Deliver first the events appended while no exclusive follower was live (a standalone stream
   * opened after the server already sent something), then live ones. Ignored with `after`.
   */
  undelivered?: boolean;
  /**
   * One follower per stream across all replicas: a newer exclusive follow ends the older one (its
   * `onClosed('superseded')`), so a client that reconnects elsewhere is never refused and no message
   * is sent on two connections. Only exclusive followers count as "live" for {@link undelivered}.
   */
  exclusive?: boolean;
  /** Called once if the follow ends by itself: superseded by a newer exclusive follow, or the session's streams were deleted. */
  onClosed?: (reason: FollowClosedReason) => void;
}

/** A live subscription to a session stream; {@link close} stops delivery. */
export interface StreamFollow {
  /**
   * An event id of this stream that, given back as `after`, delivers everything this follow
   * delivers from its start: the id of a priming event (spec 2025-11-25 §Resumability).
   */
  readonly cursor: string;
  /** The stream had already ended before this follow's start: no event will come (a resumed POST stream that was complete). */
  readonly ended: boolean;
  close(): Promise<void>;
}

export interface SessionStreams {
  /**
   * Stores `message` as the next event of `streamId` and delivers it to live followers. `end` marks
   * the stream's last event. Rejects with `SessionStoreUnavailableError` when the store cannot be
   * reached. Appends made one after another (without awaiting) on one replica keep their order.
   */
  append(sessionId: string, streamId: string, message: JsonRpcMessage, options?: { end?: boolean }): Promise<StreamEvent>;
  /**
   * Follows a stream. With `after` (a `Last-Event-ID`), first delivers the stored events after it,
   * then live ones, with no gap and no duplicate. With `undelivered`, first delivers events appended
   * while no follower was live (a standalone stream opened late). `listener` is called in append
   * order, with `live` false for stored events replayed at the start and true for the others; it may
   * be called before the returned promise resolves. Rejects with `SessionStoreUnavailableError`.
   */
  follow(
    sessionId: string,
    streamId: string,
    options: FollowOptions,
    listener: (event: StreamEvent, live: boolean) => void,
  ): Promise<StreamFollow>;
  /** The stream an event id belongs to, or `undefined` if it is not one of ours (then nothing is replayed). */
  streamOf(eventId: string): string | undefined;
  /** Removes every stream of a session (client `DELETE`); its followers get `onClosed('deleted')`. */
  delete(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

export interface MemorySessionStreamsOptions {
  /** Events kept per stream; older ones are dropped. Default 1,000. */
  maxEvents?: number;
  /** A session's streams are dropped this long after their last append, ms. Default 3,600,000. */
  ttlMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

interface MemoryFollower {
  listener: (event: StreamEvent, live: boolean) => void;
  options: FollowOptions;
  closed: boolean;
}

interface MemoryStream {
  events: StreamEvent[];
  /** Position of the last appended event (positions start at 1; 0 = before the first). */
  seq: number;
  followers: Set<MemoryFollower>;
  /** The exclusive follower, if one is live. */
  live: MemoryFollower | undefined;
  /** Position of the first event appended while no exclusive follower was live. */
  undelivered: number | undefined;
}

interface MemorySession {
  streams: Map<string, MemoryStream>;
  expiresAt: number;
}

const MEMORY_EVENT_ID = /^([A-Za-z0-9]{1,64})_(\d{1,15})$/;

/**
 * In-process {@link SessionStreams} for one replica (`--store memory`) and unit tests. Event ids are
 * `<streamId>_<n>` with `n` counting from 1 per stream. Delivery is synchronous, so a follow
 * replays and goes live without a gap.
 */
export class MemorySessionStreams implements SessionStreams {
  readonly maxEvents: number;
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #sessions = new Map<string, MemorySession>();
  readonly #sweep: NodeJS.Timeout;

  constructor(options: MemorySessionStreamsOptions = {}) {
    this.maxEvents = options.maxEvents ?? 1_000;
    this.ttlMs = options.ttlMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
    this.#sweep = setInterval(() => this.#sweepExpired(), Math.min(60_000, this.ttlMs));
    this.#sweep.unref();
  }

  #stream(sessionId: string, streamId: string): MemoryStream {
    let session = this.#sessions.get(sessionId);
    if (!session || session.expiresAt <= this.#now()) {
      if (session) this.#drop(sessionId, session);
      session = { streams: new Map(), expiresAt: this.#now() + this.ttlMs };
      this.#sessions.set(sessionId, session);
    }
    let stream = session.streams.get(streamId);
    if (!stream) {
      stream = { events: [], seq: 0, followers: new Set(), live: undefined, undelivered: undefined };
      session.streams.set(streamId, stream);
    }
    return stream;
  }

  async append(sessionId: string, streamId: string, message: JsonRpcMessage, options: { end?: boolean } = {}): Promise<StreamEvent> {
    checkStreamId(streamId);
    const stream = this.#stream(sessionId, streamId);
    this.#sessions.get(sessionId)!.expiresAt = this.#now() + this.ttlMs;
    stream.seq++;
    const event: StreamEvent = { eventId: `${streamId}_${stream.seq}`, message, ts: Date.now(), ...(options.end ? { end: true } : {}) };
    stream.events.push(event);
    if (stream.events.length > this.maxEvents) stream.events.shift();
    if (!stream.live && stream.undelivered === undefined) stream.undelivered = stream.seq;
    for (const f of stream.followers) deliver(f, event, true);
    return event;
  }

  async follow(
    sessionId: string,
    streamId: string,
    options: FollowOptions,
    listener: (event: StreamEvent, live: boolean) => void,
  ): Promise<StreamFollow> {
    checkStreamId(streamId);
    const stream = this.#stream(sessionId, streamId);
    const follower: MemoryFollower = { listener, options, closed: false };
    let from: number | undefined;
    if (options.after !== undefined) {
      const m = MEMORY_EVENT_ID.exec(options.after);
      if (m && m[1] === streamId) from = Number(m[2]) + 1;
    } else if (options.undelivered && stream.undelivered !== undefined) {
      from = stream.undelivered;
    }
    if (options.exclusive) {
      const previous = stream.live;
      stream.live = follower;
      stream.undelivered = undefined;
      if (previous && !previous.closed) closeFollower(stream, previous, 'superseded');
    }
    const cursor = from !== undefined ? from - 1 : stream.seq;
    const last = stream.events.at(-1);
    const ended = last?.end === true && stream.seq <= cursor;
    if (from !== undefined) {
      for (const e of stream.events) if (seqOf(e) >= from) deliver(follower, e, false);
    }
    stream.followers.add(follower);
    return {
      cursor: `${streamId}_${cursor}`,
      ended,
      close: async () => {
        follower.closed = true;
        stream.followers.delete(follower);
        if (stream.live === follower) stream.live = undefined;
      },
    };
  }

  streamOf(eventId: string): string | undefined {
    return MEMORY_EVENT_ID.exec(eventId)?.[1];
  }

  async delete(sessionId: string): Promise<void> {
    const session = this.#sessions.get(sessionId);
    if (session) this.#drop(sessionId, session);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#sessions.clear();
  }

  /** Streams kept for a session (tests). */
  streamIds(sessionId: string): string[] {
    return [...(this.#sessions.get(sessionId)?.streams.keys() ?? [])];
  }

  #drop(sessionId: string, session: MemorySession): void {
    this.#sessions.delete(sessionId);
    for (const stream of session.streams.values()) {
      for (const f of [...stream.followers]) closeFollower(stream, f, 'deleted');
    }
  }

  #sweepExpired(): void {
    const now = this.#now();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now && ![...s.streams.values()].some((st) => st.followers.size > 0)) this.#sessions.delete(id);
  }
}

function seqOf(e: StreamEvent): number {
  return Number(e.eventId.slice(e.eventId.lastIndexOf('_') + 1));
}

function deliver(f: MemoryFollower, e: StreamEvent, live: boolean): void {
  if (f.closed) return;
  try {
    f.listener(e, live);
  } catch {
    /* a failing listener must not break the producer */
  }
}

function closeFollower(stream: MemoryStream, f: MemoryFollower, reason: FollowClosedReason): void {
  f.closed = true;
  stream.followers.delete(f);
  if (stream.live === f) stream.live = undefined;
  try {
    f.options.onClosed?.(reason);
  } catch {
    /* isolate */
  }
}

/** @throws TypeError for a stream id that is not 1–64 letters and digits. */
export function checkStreamId(streamId: string): void {
  if (!STREAM_ID_PATTERN.test(streamId)) throw new TypeError(`invalid stream id ${JSON.stringify(streamId)}`);
}

/**
 * The session's record is gone (client `DELETE`, expiry): a store that checks it
 * (`RedisSessionStreams` with `requireSession`) wrote nothing. Callers drop the message quietly:
 * nobody can receive it any more.
 */
export class SessionStreamGoneError extends Error {
  constructor() {
    super('the session no longer exists; the message was not stored');
    this.name = 'SessionStreamGoneError';
  }
}
