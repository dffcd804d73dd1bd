import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRedisClient,
  MemorySessionStreams,
  RedisMessageBus,
  RedisSessionStreams,
  SessionStoreUnavailableError,
  SessionStreamGoneError,
  STANDALONE_STREAM,
  type JsonRpcMessage,
  type SessionStreams,
  type StreamEvent,
} from '@mcp-migrate/runtime';
import { pollUntil, redisParts, startRedis, stopAllProcesses, type RedisInstance } from '../helpers/index.js';

let redis: RedisInstance;
const parts = redisParts(() => redis);

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-streams-test' });
});
afterAll(async () => {
  await parts.closeAll();
  await redis?.stop();
  await stopAllProcesses();
});

/** One replica's view: its own command connection and its own subscriber connection, as a separate process has. */
async function redisReplica(opts: { maxEvents?: number; ttlMs?: number; leaseMs?: number; prefix?: string; requireSession?: boolean } = {}): Promise<RedisSessionStreams> {
  const { client, bus } = await parts.bus();
  const streams = new RedisSessionStreams({ client, bus, keyPrefix: opts.prefix ?? 'test:', ...opts });
  parts.onClose(() => streams.close());
  return streams;
}

let n = 0;
const sid = () => `sess-${process.pid}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
const note = (i: number): JsonRpcMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: i } });
const dataOf = (e: StreamEvent) => (e.message as unknown as { params: { data: number } }).params.data;

const until = (check: () => boolean, ms = 5_000) => pollUntil(check, ms, 10);

/**
 * The contract every SessionStreams meets. `make()` returns two views of the same storage (two
 * replicas for Redis; the same object for memory).
 */
function contract(name: string, make: (opts?: { maxEvents?: number }) => Promise<[SessionStreams, SessionStreams]>) {
  describe(`${name}: SessionStreams contract`, () => {
    it('delivers appends live to a follower on another replica, in order, with stream-encoding event ids', async () => {
      const [a, b] = await make();
      const s = sid();
      const got: StreamEvent[] = [];
      const f = await b.follow(s, STANDALONE_STREAM, {}, (e, live) => {
        expect(live).toBe(true);
        got.push(e);
      });
      const appended: StreamEvent[] = [];
      for (let i = 0; i < 20; i++) appended.push(await a.append(s, STANDALONE_STREAM, note(i)));
      expect(await until(() => got.length === 20)).toBe(true);
      expect(got.map(dataOf)).toEqual([...Array(20).keys()]);
      expect(got.map((e) => e.eventId)).toEqual(appended.map((e) => e.eventId));
      for (const e of got) {
        expect(e.eventId).toMatch(/^[\x21-\x7e]+$/);
        expect(a.streamOf(e.eventId)).toBe(STANDALONE_STREAM);
        expect(e.ts).toBeGreaterThan(0);
      }
      expect(new Set(got.map((e) => e.eventId)).size).toBe(20);
      await f.close();
    });

    it('resumes after a Last-Event-ID with exactly the missed events, then live, under concurrent appends', async () => {
      const [a, b] = await make();
      const s = sid();
      const first: StreamEvent[] = [];
      for (let i = 0; i < 10; i++) first.push(await a.append(s, STANDALONE_STREAM, note(i)));
      // Appends keep coming (unawaited, in order) while the follower starts on the other replica.
      const writer = (async () => {
        for (let i = 10; i < 200; i++) {
          void a.append(s, STANDALONE_STREAM, note(i));
          if (i % 10 === 0) await new Promise((r) => setImmediate(r));
        }
        await a.append(s, STANDALONE_STREAM, note(200));
      })();
      const got: number[] = [];
      const f = await b.follow(s, STANDALONE_STREAM, { after: first[4]!.eventId }, (e) => got.push(dataOf(e)));
      expect(f.cursor).toBe(first[4]!.eventId);
      expect(f.ended).toBe(false);
      await writer;
      expect(await until(() => got.length >= 196)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual(Array.from({ length: 196 }, (_, i) => i + 5));
      await f.close();
    });

    it('only replays the stream the Last-Event-ID names, and ignores ids that are not ours', async () => {
      const [a, b] = await make();
      const s = sid();
      const g = await a.append(s, STANDALONE_STREAM, note(1));
      await a.append(s, 'p1', note(100));
      await a.append(s, 'p1', note(101));
      await a.append(s, STANDALONE_STREAM, note(2));
      expect(b.streamOf(g.eventId)).toBe('g');
      const got: number[] = [];
      const f = await b.follow(s, STANDALONE_STREAM, { after: g.eventId }, (e) => got.push(dataOf(e)));
      expect(got).toEqual([2]);
      await f.close();
      for (const bogus of ['', 'nonsense', 'g_', '_1', 'g_x', 'g_1-2-3', 'g_99999999999999999999999-0', 'a b_1']) {
        expect(b.streamOf(bogus), bogus).toBeUndefined();
      }
      // An id of another stream given as `after` replays nothing of this one.
      const other: number[] = [];
      const f2 = await b.follow(s, 'p1', { after: g.eventId }, (e) => other.push(dataOf(e)));
      expect(other).toEqual([]);
      await f2.close();
    });

    it("never replays another session's events (a Last-Event-ID taken from session X, presented on session Y)", async () => {
      const [a, b] = await make();
      const x = sid();
      const y = sid();
      const ex = await a.append(x, STANDALONE_STREAM, note(1));
      await a.append(x, STANDALONE_STREAM, note(2));
      const got: StreamEvent[] = [];
      const f = await b.follow(y, STANDALONE_STREAM, { after: ex.eventId, undelivered: true }, (e) => got.push(e));
      await a.append(x, STANDALONE_STREAM, note(3));
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]);
      await f.close();
    });

    it('keeps events appended while no follower was live for the first standalone follower (undelivered), once', async () => {
      const [a, b] = await make();
      const s = sid();
      for (let i = 0; i < 3; i++) await a.append(s, STANDALONE_STREAM, note(i));
      const got: number[] = [];
      const f = await b.follow(s, STANDALONE_STREAM, { undelivered: true, exclusive: true }, (e) => got.push(dataOf(e)));
      expect(got).toEqual([0, 1, 2]);
      await a.append(s, STANDALONE_STREAM, note(3));
      expect(await until(() => got.length === 4)).toBe(true);
      // Resuming from the priming cursor gets everything this follow delivered.
      const again: number[] = [];
      const r = await a.follow(s, STANDALONE_STREAM, { after: f.cursor }, (e) => again.push(dataOf(e)));
      expect(again).toEqual([0, 1, 2, 3]);
      await r.close();
      await f.close();
      // Delivered while live: a later follower asking for undelivered events gets none of them …
      const later: number[] = [];
      const f2 = await a.follow(s, STANDALONE_STREAM, { undelivered: true, exclusive: true }, (e) => later.push(dataOf(e)));
      expect(later).toEqual([]);
      await f2.close();
      // … but gets what was appended after the last follower left.
      await a.append(s, STANDALONE_STREAM, note(4));
      await a.append(s, STANDALONE_STREAM, note(5));
      const last: number[] = [];
      const f3 = await b.follow(s, STANDALONE_STREAM, { undelivered: true, exclusive: true }, (e) => last.push(dataOf(e)));
      expect(last).toEqual([4, 5]);
      await f3.close();
    });

    it('a newer exclusive follow supersedes the older one, across replicas', async () => {
      const [a, b] = await make();
      const s = sid();
      const oldGot: number[] = [];
      const newGot: number[] = [];
      let closed: string | undefined;
      const older = await a.follow(s, STANDALONE_STREAM, { exclusive: true, onClosed: (r) => (closed = r) }, (e) => oldGot.push(dataOf(e)));
      await a.append(s, STANDALONE_STREAM, note(1));
      expect(await until(() => oldGot.length === 1)).toBe(true);
      const newer = await b.follow(s, STANDALONE_STREAM, { exclusive: true }, (e) => newGot.push(dataOf(e)));
      expect(await until(() => closed === 'superseded')).toBe(true);
      await a.append(s, STANDALONE_STREAM, note(2));
      expect(await until(() => newGot.length === 1)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      expect(oldGot).toEqual([1]);
      expect(newGot).toEqual([2]);
      await older.close();
      await newer.close();
    });

    it('marks the end of a POST stream; a follow after its end knows it ended', async () => {
      const [a, b] = await make();
      const s = sid();
      const e1 = await a.append(s, 'p7', note(1));
      const e2 = await a.append(s, 'p7', { jsonrpc: '2.0', id: 3, result: {} }, { end: true });
      expect(e2.end).toBe(true);
      const got: StreamEvent[] = [];
      const f = await b.follow(s, 'p7', { after: e1.eventId }, (e) => got.push(e));
      expect(f.ended).toBe(false);
      expect(got).toHaveLength(1);
      expect(got[0]!.end).toBe(true);
      expect(got[0]!.message).toEqual({ jsonrpc: '2.0', id: 3, result: {} });
      await f.close();
      const done = await b.follow(s, 'p7', { after: e2.eventId }, () => undefined);
      expect(done.ended).toBe(true);
      await done.close();
    });

    it('delete removes every stream of the session and ends its followers', async () => {
      const [a, b] = await make();
      const s = sid();
      await a.append(s, STANDALONE_STREAM, note(1));
      await a.append(s, 'p2', note(2));
      let closed: string | undefined;
      const f = await b.follow(s, 'p2', { onClosed: (r) => (closed = r) }, () => undefined);
      await a.delete(s);
      expect(await until(() => closed === 'deleted')).toBe(true);
      const got: StreamEvent[] = [];
      // The undelivered g event is gone with the rest.
      const g = await b.follow(s, STANDALONE_STREAM, { undelivered: true }, (ev) => got.push(ev));
      expect(got).toEqual([]);
      await g.close();
      await f.close();
    });

    it('keeps a bounded number of events per stream', async () => {
      const [a] = await make({ maxEvents: 10 });
      const s = sid();
      const ids: string[] = [];
      for (let i = 0; i < 400; i++) ids.push((await a.append(s, STANDALONE_STREAM, note(i))).eventId);
      const got: number[] = [];
      const f = await a.follow(s, STANDALONE_STREAM, { after: ids[0]! }, (e) => got.push(dataOf(e)));
      // Exact for memory; Redis trims whole nodes (`MAXLEN ~`), so a little more may remain.
      expect(got.length).toBeGreaterThanOrEqual(10);
      expect(got.length).toBeLessThan(250);
      expect(got.at(-1)).toBe(399);
      expect(got).toEqual(Array.from({ length: got.length }, (_, i) => 400 - got.length + i));
      await f.close();
    });
  });
}

contract('memory', async (opts) => {
  const m = new MemorySessionStreams(opts);
  parts.onClose(() => m.close());
  return [m, m];
});

contract('redis', async (opts) => {
  const prefix = `t${++n}:`;
  return [await redisReplica({ ...opts, prefix }), await redisReplica({ ...opts, prefix })];
});

describe('RedisSessionStreams specifics', () => {
  it("keeps a session's keys in one Cluster slot, with the session TTL", async () => {
    const a = await redisReplica({ prefix: 'ttl:', ttlMs: 50_000 });
    const s = sid();
    await a.append(s, STANDALONE_STREAM, note(1));
    await a.append(s, 'p3', note(2));
    const keys = (await redis.keys(`ttl:{${s}}:*`)).sort();
    expect(keys).toEqual([`ttl:{${s}}:events:g`, `ttl:{${s}}:events:p3`, `ttl:{${s}}:streams`, `ttl:{${s}}:undelivered:g`, `ttl:{${s}}:undelivered:p3`]);
    for (const k of keys) {
      const pttl = (await redis.command('PTTL', k)) as number;
      expect(pttl, k).toBeGreaterThan(40_000);
      expect(pttl, k).toBeLessThanOrEqual(50_000);
    }
    await a.delete(s);
    expect(await redis.keys(`ttl:{${s}}:*`)).toEqual([]);
  });

  it('with requireSession, appends only while the session record exists (nothing comes back after a DELETE)', async () => {
    const a = await redisReplica({ prefix: 'req:', requireSession: true });
    const s = sid();
    await expect(a.append(s, STANDALONE_STREAM, note(1))).rejects.toBeInstanceOf(SessionStreamGoneError);
    expect(await redis.keys(`req:{${s}}:*`)).toEqual([]);
    const c = await parts.client();
    await c.hset(`req:{${s}}:session`, 'principal', 'p');
    const e = await a.append(s, STANDALONE_STREAM, note(2));
    expect(e.eventId).toMatch(/^g_\d+-\d+$/);
    // The record is deleted (client DELETE), then a late upstream message arrives.
    await c.del(`req:{${s}}:session`);
    await a.delete(s);
    await expect(a.append(s, STANDALONE_STREAM, note(3))).rejects.toBeInstanceOf(SessionStreamGoneError);
    expect(await redis.keys(`req:{${s}}:*`)).toEqual([]);
  });

  it('a live exclusive follower holds a lease (no undelivered marker), released on close', async () => {
    const a = await redisReplica({ prefix: 'lease:', leaseMs: 3_000 });
    const s = sid();
    const f = await a.follow(s, STANDALONE_STREAM, { exclusive: true }, () => undefined);
    expect(await redis.keys(`lease:{${s}}:live:g`)).toHaveLength(1);
    await a.append(s, STANDALONE_STREAM, note(1));
    expect(await redis.keys(`lease:{${s}}:undelivered:g`)).toEqual([]);
    // Refreshed every third of the lease: still held after more than one lease period.
    await new Promise((r) => setTimeout(r, 3_500));
    expect(await redis.keys(`lease:{${s}}:live:g`)).toHaveLength(1);
    await f.close();
    expect(await redis.keys(`lease:{${s}}:live:g`)).toEqual([]);
  });

  it('catches up after its subscriber connection drops (bus gap): every event once, in order', async () => {
    const a = await redisReplica({ prefix: 'gap:' });
    const b = await redisReplica({ prefix: 'gap:' });
    const s = sid();
    const got: number[] = [];
    const f = await b.follow(s, STANDALONE_STREAM, {}, (e) => got.push(dataOf(e)));
    await a.append(s, STANDALONE_STREAM, note(0));
    expect(await until(() => got.length === 1)).toBe(true);
    // Drop every subscriber connection; appends made meanwhile are not received live by b.
    await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
    for (let i = 1; i <= 5; i++) await a.append(s, STANDALONE_STREAM, note(i));
    expect(await until(() => got.length === 6, 10_000)).toBe(true);
    for (let i = 6; i <= 8; i++) await a.append(s, STANDALONE_STREAM, note(i));
    expect(await until(() => got.length === 9)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    await f.close();
  });

  it('rejects with SessionStoreUnavailableError when Redis cannot be reached', async () => {
    const client = createRedisClient('redis://127.0.0.1:1', { retryStrategy: () => null });
    const bus = new RedisMessageBus(client);
    const streams = new RedisSessionStreams({ client, bus });
    await expect(streams.append('x', STANDALONE_STREAM, note(1))).rejects.toBeInstanceOf(SessionStoreUnavailableError);
    await bus.close();
    client.disconnect();
  });
});
