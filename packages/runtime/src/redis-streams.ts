import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { JsonRpcMessage } from './jsonrpc.js';
import type { MessageBus } from './message-bus.js';
import { sessionKey } from './redis-store.js';
import {
  checkStreamId,
  SessionStreamGoneError,
  STANDALONE_STREAM,
  type FollowClosedReason,
  type FollowOptions,
  type SessionStreams,
  type StreamEvent,
  type StreamFollow,
} from './session-streams.js';
import { SessionStoreUnavailableError } from './session-store.js';

/**
 * Appends one event, atomically: store (bounded, with TTL), remember the stream in the session's
 * stream set, note "undelivered" if no exclusive follower holds the live lease, and publish. Being one
 * script, appends are stored and published in the same order, so a follower that compares ids never
 * sees a stored event after a later live one.
 *
 * KEYS: events stream, streams set, live lease, undelivered marker, session record.
 * ARGV: maxlen, ttl ms, channel, message JSON, stream id, ts, end ('0'|'1'), require the record ('0'|'1').
 * Returns false (nothing written) when the record is required and gone: a message an upstream sends
 * after the client's `DELETE` must not bring the session's stream keys back.
 */
const APPEND_LUA = `
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[5]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[4], 't', ARGV[6], 'e', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[4], id, 'NX', 'PX', ARGV[2]) end
redis.call('PUBLISH', ARGV[3], id .. ' ' .. ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. ARGV[4])
return id
`;

/**
 * Starts a follow, atomically: for an exclusive follow take the live lease and announce it (older
 * followers end); take the undelivered marker if asked; read the stream's last entry and the stored
 * entries from the start id (inclusive) on.
 *
 * KEYS: events stream, live lease, undelivered marker.
 * ARGV: token, lease ms, exclusive ('0'|'1'), start id ('' = none, '?' = the undelivered marker), channel.
 * (The read is not limited by a count: the stream is bounded by `MAXLEN ~`.)
 * Returns { lastId, lastEnd, startUsed, entries }.
 */
const FOLLOW_LUA = `
if ARGV[3] == '1' then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  redis.call('PUBLISH', ARGV[5], '!s ' .. ARGV[1])
end
local start = ARGV[4]
if start == '?' then
  start = redis.call('GET', KEYS[3]) or ''
  redis.call('DEL', KEYS[3])
elseif ARGV[3] == '1' then
  redis.call('DEL', KEYS[3])
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local lastId = ''
local lastEnd = '0'
if last[1] then
  lastId = last[1][1]
  local f = last[1][2]
  for i = 1, #f, 2 do if f[i] == 'e' then lastEnd = f[i + 1] end end
end
local entries = {}
if start ~= '' then entries = redis.call('XRANGE', KEYS[1], start, '+') end
return { lastId, lastEnd, start, entries }
`;

/** Refreshes the live lease if this follower still holds it. KEYS: live lease. ARGV: token, lease ms. */
const LEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Releases the live lease if this follower still holds it. KEYS: live lease. ARGV: token. */
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Deletes the given keys and publishes `!d` on each channel. ARGV: channels. */
const DELETE_LUA = `
if #KEYS > 0 then redis.call('DEL', unpack(KEYS)) end
for i = 1, #ARGV do redis.call('PUBLISH', ARGV[i], '!d') end
return #KEYS
`;

interface ScriptedClient {
  mcpmStreamAppend(k1: string, k2: string, k3: string, k4: string, k5: string, ...argv: string[]): Promise<string | null>;
  mcpmStreamFollow(k1: string, k2: string, k3: string, ...argv: string[]): Promise<[string, string, string, RawEntry[]]>;
  mcpmStreamLease(k1: string, token: string, leaseMs: string): Promise<number>;
  mcpmStreamRelease(k1: string, token: string): Promise<number>;
  mcpmStreamDelete(numKeys: number, ...keysAndArgs: string[]): Promise<number>;
}

type RawEntry = [string, string[]];

export interface RedisSessionStreamsOptions {
  /** The command connection (shared with the session store). */
  client: Redis | Cluster;
  /** The replica's message bus (its one subscriber connection); live events arrive through it. */
  bus: MessageBus;
  /** Key and channel prefix. Default `mcpm:`. */
  keyPrefix?: string;
  /** TTL of a session's streams, refreshed by every append, ms. Default 3,600,000 (use the session TTL). */
  ttlMs?: number;
  /** Events kept per stream (`XADD … MAXLEN ~`, so a few more may stay). Default 1,000. */
  maxEvents?: number;
  /** Lifetime of an exclusive follower's live lease, refreshed every third of it, ms. Default 30,000. */
  leaseMs?: number;
  /**
   * Append only while the session's record (`sessionKey(prefix, sid, 'session')`, as `RedisSessionStore`
   * writes it) exists; otherwise `append` rejects with {@link SessionStreamGoneError} and writes nothing.
   * Default false (the streams alone, as in unit tests); the proxy and apply's runtime turn it on.
   */
  requireSession?: boolean;
}

/** A Redis stream entry id, `<ms>-<seq>`. */
const ENTRY_ID = /^(\d{1,20})-(\d{1,20})$/;
const REDIS_EVENT_ID = /^([A-Za-z0-9]{1,64})_(\d{1,20}-\d{1,20})$/;

/** Orders two entry ids. */
export function compareEntryIds(a: string, b: string): number {
  const [am, as] = splitId(a);
  const [bm, bs] = splitId(b);
  return am < bm ? -1 : am > bm ? 1 : as < bs ? -1 : as > bs ? 1 : 0;
}

function splitId(id: string): [bigint, bigint] {
  const dash = id.indexOf('-');
  return [BigInt(id.slice(0, dash)), BigInt(id.slice(dash + 1))];
}

/** The entry id right after `id` (an inclusive `XRANGE` start that excludes `id`). */
function successor(id: string): string {
  const [ms, seq] = splitId(id);
  return seq === 0xffffffffffffffffn ? `${ms + 1n}-0` : `${ms}-${seq + 1n}`;
}

/** The entry id right before `id`. */
function predecessor(id: string): string {
  const [ms, seq] = splitId(id);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0-0';
}

class RedisFollower {
  last: string;
  #buffer: { id: string; event: StreamEvent }[] | undefined = [];
  closed = false;
  /** Set once the initial replay is done; a bus gap before that is caught up right after it. */
  started = false;
  gapWhileStarting = false;
  lease: NodeJS.Timeout | undefined;
  unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    readonly sessionId: string,
    readonly streamId: string,
    readonly token: string,
    readonly options: FollowOptions,
    readonly listener: (event: StreamEvent, live: boolean) => void,
  ) {
    this.last = '0-0';
  }

  /** A message on the stream's channel. */
  onMessage(raw: string, streams: RedisSessionStreams): void {
    if (this.closed) return;
    if (raw.startsWith('!')) {
      if (raw === '!d') void streams.endFollower(this, 'deleted');
      else if (raw.startsWith('!s ') && this.options.exclusive && raw.slice(3) !== this.token) void streams.endFollower(this, 'superseded');
      return;
    }
    const parsed = parsePublished(raw, this.streamId);
    if (!parsed) return;
    if (this.#buffer) this.#buffer.push(parsed);
    else this.#deliver(parsed.id, parsed.event, true);
  }

  /** Stops delivering live events until {@link resume} (a catch-up read is running). */
  pause(): void {
    this.#buffer ??= [];
  }

  /** Delivers stored entries (catch-up), then the live ones buffered meanwhile, skipping what was delivered. */
  resume(stored: RawEntry[], live: boolean): void {
    for (const entry of stored) {
      const event = entryToEvent(this.streamId, entry);
      if (event) this.#deliver(entry[0], event, live);
    }
    const buffered = this.#buffer ?? [];
    this.#buffer = undefined;
    for (const b of buffered) this.#deliver(b.id, b.event, true);
  }

  #deliver(id: string, event: StreamEvent, live: boolean): void {
    if (this.closed || compareEntryIds(id, this.last) <= 0) return;
    this.last = id;
    try {
      this.listener(event, live);
    } catch {
      /* isolate the listener */
    }
  }
}

function entryToEvent(streamId: string, [id, fields]: RawEntry): StreamEvent | undefined {
  let m: string | undefined;
  let t = 0;
  let e = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i];
    if (f === 'm') m = fields[i + 1];
    else if (f === 't') t = Number(fields[i + 1]);
    else if (f === 'e') e = fields[i + 1] === '1';
  }
  if (m === undefined) return undefined;
  try {
    return { eventId: `${streamId}_${id}`, message: JSON.parse(m) as JsonRpcMessage, ts: t, ...(e ? { end: true } : {}) };
  } catch {
    return undefined;
  }
}

/** Parses `<id> <ts> <end> <json>` as published by {@link APPEND_LUA}. */
function parsePublished(raw: string, streamId: string): { id: string; event: StreamEvent } | undefined {
  const a = raw.indexOf(' ');
  const b = raw.indexOf(' ', a + 1);
  const c = raw.indexOf(' ', b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const id = raw.slice(0, a);
  if (!ENTRY_ID.test(id)) return undefined;
  try {
    const message = JSON.parse(raw.slice(c + 1)) as JsonRpcMessage;
    const end = raw.slice(b + 1, c) === '1';
    return { id, event: { eventId: `${streamId}_${id}`, message, ts: Number(raw.slice(a + 1, b)), ...(end ? { end: true } : {}) } };
  } catch {
    return undefined;
  }
}

/**
 * {@link SessionStreams} on Redis, Cluster ready (every key of a session shares its hash tag).
 *
 * Layout, per session `S` and stream `T` (`P` = key prefix):
 * - `P{S}:events:T`: a Redis Stream, one entry per event (`m` message JSON, `t` append time, `e`
 *   end flag), `XADD … MAXLEN ~ maxEvents`, `PEXPIRE ttlMs` on every append;
 * - `P{S}:streams`: the set of the session's stream ids (for `DELETE`);
 * - `P{S}:live:T`: the exclusive follower's lease (its token), `PX leaseMs`, refreshed every third;
 * - `P{S}:undelivered:T`: the first entry id appended while no lease was held;
 * - channel `P{S}:ch:T`: every append is published as `<entry id> <ts> <end> <JSON>`; `!s <token>`
 *   announces a new exclusive follower, `!d` the deletion of the session's streams.
 *
 * Event ids are `T_<entry id>`. An append is one `EVALSHA`; a follow is a `SUBSCRIBE` (only the first
 * follower of a channel on a replica) and one `EVALSHA`. A follower subscribes before it reads the
 * stored entries and drops live events it already delivered, so replay + live has no gap and no
 * duplicate; after a pub/sub reconnect (bus gap) each follower reads what it missed.
 */
export class RedisSessionStreams implements SessionStreams {
  readonly keyPrefix: string;
  readonly ttlMs: number;
  readonly maxEvents: number;
  readonly leaseMs: number;
  readonly #requireSession: boolean;
  readonly #client: Redis | Cluster;
  readonly #scripts: ScriptedClient;
  readonly #bus: MessageBus;
  readonly #followers = new Set<RedisFollower>();

  constructor(options: RedisSessionStreamsOptions) {
    this.#client = options.client;
    this.#bus = options.bus;
    this.keyPrefix = options.keyPrefix ?? 'mcpm:';
    this.ttlMs = options.ttlMs ?? 3_600_000;
    this.maxEvents = options.maxEvents ?? 1_000;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.#requireSession = options.requireSession ?? false;
    const c = this.#client;
    c.defineCommand('mcpmStreamAppend', { numberOfKeys: 5, lua: APPEND_LUA });
    c.defineCommand('mcpmStreamFollow', { numberOfKeys: 3, lua: FOLLOW_LUA });
    c.defineCommand('mcpmStreamLease', { numberOfKeys: 1, lua: LEASE_LUA });
    c.defineCommand('mcpmStreamRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    c.defineCommand('mcpmStreamDelete', { lua: DELETE_LUA });
    this.#scripts = c as unknown as ScriptedClient;
    this.#bus.onGap?.(() => {
      for (const f of this.#followers) {
        void this.#catchUp(f);
        if (f.options.exclusive) void this.#refreshLease(f);
      }
    });
  }

  #key(sessionId: string, kind: string): string {
    return sessionKey(this.keyPrefix, sessionId, kind);
  }

  /** The pub/sub channel of a session stream. */
  channel(sessionId: string, streamId: string): string {
    return this.#key(sessionId, `ch:${streamId}`);
  }

  async append(sessionId: string, streamId: string, message: JsonRpcMessage, options: { end?: boolean } = {}): Promise<StreamEvent> {
    checkStreamId(streamId);
    const ts = Date.now();
    const id = await this.#run(() =>
      this.#scripts.mcpmStreamAppend(
        this.#key(sessionId, `events:${streamId}`),
        this.#key(sessionId, 'streams'),
        this.#key(sessionId, `live:${streamId}`),
        this.#key(sessionId, `undelivered:${streamId}`),
        this.#key(sessionId, 'session'),
        String(this.maxEvents),
        String(this.ttlMs),
        this.channel(sessionId, streamId),
        JSON.stringify(message),
        streamId,
        String(ts),
        options.end ? '1' : '0',
        this.#requireSession ? '1' : '0',
      ),
    );
    if (id === null) throw new SessionStreamGoneError();
    return { eventId: `${streamId}_${id}`, message, ts, ...(options.end ? { end: true } : {}) };
  }

  async follow(
    sessionId: string,
    streamId: string,
    options: FollowOptions,
    listener: (event: StreamEvent, live: boolean) => void,
  ): Promise<StreamFollow> {
    checkStreamId(streamId);
    let after: string | undefined;
    if (options.after !== undefined) {
      const m = REDIS_EVENT_ID.exec(options.after);
      if (m && m[1] === streamId) after = m[2]!;
    }
    const token = randomBytes(12).toString('base64url');
    const f = new RedisFollower(sessionId, streamId, token, options, listener);
    const channel = this.channel(sessionId, streamId);
    // Subscribed (confirmed by Redis) before the stored entries are read: nothing falls in between.
    try {
      f.unsubscribe = await this.#bus.subscribe(channel, (raw) => f.onMessage(raw, this), { confirmed: true });
    } catch (err) {
      throw new SessionStoreUnavailableError(`Redis pub/sub unavailable: ${(err as Error).message}`, { cause: err });
    }
    this.#followers.add(f);
    try {
      const start = after !== undefined ? successor(after) : options.undelivered ? '?' : '';
      const [lastId, lastEnd, startUsed, entries] = await this.#run(() =>
        this.#scripts.mcpmStreamFollow(
          this.#key(sessionId, `events:${streamId}`),
          this.#key(sessionId, `live:${streamId}`),
          this.#key(sessionId, `undelivered:${streamId}`),
          token,
          String(this.leaseMs),
          options.exclusive ? '1' : '0',
          start,
          channel,
        ),
      );
      // The position this follow starts after: the priming event's id.
      const cursor = after ?? (startUsed !== '' ? predecessor(startUsed) : lastId || '0-0');
      const ended = lastEnd === '1' && lastId !== '' && compareEntryIds(lastId, cursor) <= 0;
      f.last = cursor;
      f.resume(entries, false);
      f.started = true;
      if (f.gapWhileStarting) void this.#catchUp(f);
      if (options.exclusive) {
        f.lease = setInterval(() => void this.#refreshLease(f), Math.max(100, Math.floor(this.leaseMs / 3)));
        f.lease.unref();
      }
      return { cursor: `${streamId}_${cursor}`, ended, close: () => this.#close(f) };
    } catch (err) {
      await this.#close(f);
      throw err;
    }
  }

  streamOf(eventId: string): string | undefined {
    return REDIS_EVENT_ID.exec(eventId)?.[1];
  }

  async delete(sessionId: string): Promise<void> {
    const members = await this.#run(() => this.#client.smembers(this.#key(sessionId, 'streams')));
    const ids = new Set([STANDALONE_STREAM, ...members.filter((m) => /^[A-Za-z0-9]{1,64}$/.test(m))]);
    const keys = [this.#key(sessionId, 'streams')];
    const channels: string[] = [];
    for (const t of ids) {
      keys.push(this.#key(sessionId, `events:${t}`), this.#key(sessionId, `live:${t}`), this.#key(sessionId, `undelivered:${t}`));
      channels.push(this.channel(sessionId, t));
    }
    await this.#run(() => this.#scripts.mcpmStreamDelete(keys.length, ...keys, ...channels));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#followers].map((f) => this.#close(f)));
  }

  /** Ends a follower by itself (superseded, deleted) and tells its owner. */
  async endFollower(f: RedisFollower, reason: FollowClosedReason): Promise<void> {
    if (f.closed) return;
    await this.#close(f, reason === 'superseded');
    try {
      f.options.onClosed?.(reason);
    } catch {
      /* isolate */
    }
  }

  async #close(f: RedisFollower, leaseLost = false): Promise<void> {
    if (f.closed) return;
    f.closed = true;
    this.#followers.delete(f);
    if (f.lease) clearInterval(f.lease);
    await f.unsubscribe?.().catch(() => undefined);
    if (f.options.exclusive && !leaseLost) {
      await this.#scripts.mcpmStreamRelease(this.#key(f.sessionId, `live:${f.streamId}`), f.token).catch(() => undefined);
    }
  }

  async #refreshLease(f: RedisFollower): Promise<void> {
    if (f.closed) return;
    let held: number;
    try {
      held = await this.#scripts.mcpmStreamLease(this.#key(f.sessionId, `live:${f.streamId}`), f.token, String(this.leaseMs));
    } catch {
      return; // Redis unreachable: try again next time
    }
    // Another follower took the lease and its announcement was missed (pub/sub gap).
    if (held === 0) await this.endFollower(f, 'superseded');
  }

  /** After a pub/sub gap: reads what the follower may have missed, then resumes live delivery. */
  async #catchUp(f: RedisFollower): Promise<void> {
    if (f.closed) return;
    if (!f.started) {
      f.gapWhileStarting = true;
      return;
    }
    f.pause();
    let entries: RawEntry[] = [];
    try {
      entries = (await this.#client.xrange(this.#key(f.sessionId, `events:${f.streamId}`), successor(f.last), '+')) as RawEntry[];
    } catch {
      /* deliver what arrives live; the client can still resume with Last-Event-ID */
    }
    f.resume(entries, true);
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof SessionStoreUnavailableError) throw err;
      throw new SessionStoreUnavailableError(`Redis session streams unavailable: ${(err as Error).message}`, { cause: err });
    }
  }
}
