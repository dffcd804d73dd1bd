import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import {
  createRedisClient,
  MemorySessionStore,
  RedisSessionStore,
  SessionStoreUnavailableError,
  waitForRedis,
  type SessionStore,
} from '../../src/runtime/index.js';
import { startRedis, stopAllProcesses, type RedisInstance } from '../helpers/index.js';

let redis: RedisInstance;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-store-test' });
  client = createRedisClient(redis.url);
  expect(await waitForRedis(client, 5_000)).toBe(true);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  await stopAllProcesses();
});

let n = 0;
const newId = () => `test-session-${process.pid}-${++n}-${Math.random().toString(36).slice(2)}`;

const input = (id: string) => ({
  id,
  principal: 'principal-hash',
  protocolVersion: '2025-06-18',
  initializeParams: { protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'c', version: '1' } },
});

/** The contract every SessionStore implementation meets. */
function contract(name: string, make: (ttlMs?: number) => SessionStore) {
  describe(`${name}: SessionStore contract`, () => {
    it('creates, loads, touches and deletes a record', async () => {
      const store = make();
      const id = newId();
      const created = await store.create(input(id));
      expect(created).toMatchObject({ ...input(id), subscriptions: [], revision: 0, ttlMs: store.ttlMs });
      const loaded = await store.load(id);
      expect(loaded).toMatchObject({ ...input(id), subscriptions: [], revision: 0 });
      expect(loaded!.createdAt).toBe(created.createdAt);
      expect(await store.touch(id)).toBe(true);
      expect(await store.delete(id)).toBe(true);
      expect(await store.touch(id)).toBe(false);
      expect(await store.load(id)).toBeUndefined();
      expect(await store.delete(id)).toBe(false);
    });

    it('reports unknown ids as absent, not as errors', async () => {
      const store = make();
      expect(await store.load('nope')).toBeUndefined();
      expect(await store.touch('nope')).toBe(false);
      expect(await store.update('nope', { kind: 'loggingLevel', level: 'info' })).toBeUndefined();
      // update must not resurrect a deleted record
      expect(await store.load('nope')).toBeUndefined();
    });

    it('records replayable state changes with increasing revisions', async () => {
      const store = make();
      const id = newId();
      await store.create(input(id));
      expect(await store.update(id, { kind: 'loggingLevel', level: 'debug' })).toBe(1);
      expect(await store.update(id, { kind: 'subscribe', uri: 'demo://b' })).toBe(2);
      expect(await store.update(id, { kind: 'subscribe', uri: 'demo://a' })).toBe(3);
      expect(await store.update(id, { kind: 'subscribe', uri: 'demo://c' })).toBe(4);
      expect(await store.update(id, { kind: 'unsubscribe', uri: 'demo://c' })).toBe(5);
      const r = await store.load(id);
      expect(r).toMatchObject({ loggingLevel: 'debug', subscriptions: ['demo://a', 'demo://b'], revision: 5 });
    });

    it('expires records after the TTL unless touched (sliding)', async () => {
      const store = make(300);
      const id = newId();
      await store.create(input(id));
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 150));
        expect(await store.touch(id)).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 450));
      expect(await store.touch(id)).toBe(false);
      expect(await store.load(id)).toBeUndefined();
    });
  });
}

contract('memory', (ttlMs) => new MemorySessionStore(ttlMs ? { ttlMs } : {}));
contract('redis', (ttlMs) => new RedisSessionStore({ client, ownsClient: false, keyPrefix: `t${process.pid}:`, ...(ttlMs ? { ttlMs } : {}) }));

describe('RedisSessionStore specifics', () => {
  it('keeps a session in one hash, hash-tagged by session id', async () => {
    const store = new RedisSessionStore({ client, ownsClient: false, keyPrefix: 'mcpm-layout:' });
    const id = newId();
    await store.create({ ...input(id), subscriptions: ['demo://x'] });
    expect(await redis.keys('mcpm-layout:*')).toEqual([`mcpm-layout:{${id}}:session`]);
    const pttl = Number(await redis.command('PTTL', `mcpm-layout:{${id}}:session`));
    expect(pttl).toBeGreaterThan(store.ttlMs - 5_000);
    expect(pttl).toBeLessThanOrEqual(store.ttlMs);
    expect(await redis.command('HGET', `mcpm-layout:{${id}}:session`, 'sub:demo://x')).toBe('1');
  });

  it('touch is exactly one PEXPIRE', async () => {
    const store = new RedisSessionStore({ client, ownsClient: false });
    const id = newId();
    await store.create(input(id));
    await redis.resetStats();
    for (let i = 0; i < 10; i++) await store.touch(id);
    const stats = await redis.commandStats();
    const counted = [...stats.entries()].filter(([cmd]) => cmd !== 'info' && cmd !== 'config|resetstat');
    expect(Object.fromEntries(counted.map(([k, v]) => [k, v.calls]))).toEqual({ pexpire: 10 });
  });

  it('treats a foreign or half-written hash as absent', async () => {
    const store = new RedisSessionStore({ client, ownsClient: false, keyPrefix: 'mcpm-foreign:' });
    await redis.command('HSET', 'mcpm-foreign:{x}:session', 'principal', 'p');
    expect(await store.load('x')).toBeUndefined();
  });

  it('rejects with SessionStoreUnavailableError while Redis is down, and recovers when it is back', async () => {
    const own = await startRedis({ name: 'redis-down-test' });
    const c = createRedisClient(own.url);
    try {
      expect(await waitForRedis(c, 5_000)).toBe(true);
      const store = new RedisSessionStore({ client: c, ownsClient: false });
      const id = newId();
      await store.create(input(id));
      await own.kill();
      const started = Date.now();
      await expect(store.touch(id)).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      await expect(store.load(id)).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      await expect(store.create(input(newId()))).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      await expect(store.ping()).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(5_000); // fails fast, no offline queue
      await own.restart(); // same port, empty data
      expect(await waitForRedis(c, 10_000)).toBe(true);
      await store.ping();
      expect(await store.touch(id)).toBe(false); // data was lost with the restart: a clean "not found"
      const again = newId();
      await store.create(input(again));
      expect(await store.touch(again)).toBe(true);
    } finally {
      c.disconnect();
      await own.stop();
    }
  });
});
