/**
 * The key-value seam under apply's generated code (`KeyValueStore`), and what is built on it
 * (`storesFromEnv`, `SessionMap`, `StoreEventStore`), on memory, one redis-server and a 3-master Redis
 * Cluster: the same contract on each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEventStore,
  createSessionMap,
  createSharedMap,
  MemoryKeyValueStore,
  RedisKeyValueStore,
  sessionKey,
  storesFromEnv,
  type KeyValueStore,
  type RuntimeStores,
} from '@mcp-migrate/runtime';
import { REDIS_STORE_KINDS, startRedisStore, stopAllProcesses, type RedisStoreInstance } from '../helpers/index.js';

afterAll(async () => {
  await stopAllProcesses();
});

let n = 0;
const unique = (what: string) => `${what}-${process.pid}-${++n}-${Math.random().toString(36).slice(2)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function contract(name: string, make: () => KeyValueStore) {
  describe(`${name}: KeyValueStore contract`, () => {
    it('gets, sets, checks and deletes strings', async () => {
      const kv = make();
      const key = `kvt:map:${unique('k')}`;
      expect(await kv.get(key)).toBeUndefined();
      expect(await kv.exists(key)).toBe(false);
      await kv.set(key, '{"a":1}', 60_000);
      expect(await kv.get(key)).toBe('{"a":1}');
      expect(await kv.exists(key)).toBe(true);
      expect(await kv.del(key)).toBe(true);
      expect(await kv.del(key)).toBe(false);
      expect(await kv.get(key)).toBeUndefined();
    });

    it('appends to lists with 0-based indexes and reads them from an index', async () => {
      const kv = make();
      const key = sessionKey('kvt:', unique('sid'), 'events');
      expect(await kv.listFrom(key, 0)).toEqual([]);
      expect(await kv.append(key, 'e0', 60_000)).toBe(0);
      expect(await kv.append(key, 'e1', 60_000)).toBe(1);
      expect(await kv.append(key, 'e2', 60_000)).toBe(2);
      expect(await kv.listFrom(key, 0)).toEqual(['e0', 'e1', 'e2']);
      expect(await kv.listFrom(key, 2)).toEqual(['e2']);
      expect(await kv.listFrom(key, 3)).toEqual([]);
      expect(await kv.listFrom(key, -5)).toEqual(['e0', 'e1', 'e2']);
    });

    it('expires strings and lists after their TTL; a write refreshes it', async () => {
      const kv = make();
      const s = `kvt:set:${unique('k')}`;
      const l = sessionKey('kvt:', unique('sid'), 'events');
      await kv.set(s, '1', 300);
      await kv.append(l, 'a', 300);
      await sleep(200);
      await kv.append(l, 'b', 300); // refreshes the list's TTL
      await sleep(200);
      expect(await kv.exists(s)).toBe(false);
      expect(await kv.listFrom(l, 0)).toEqual(['a', 'b']);
      await sleep(250);
      expect(await kv.listFrom(l, 0)).toEqual([]);
    });
  });
}

contract('memory', () => new MemoryKeyValueStore());

describe.each(REDIS_STORE_KINDS)('on Redis (%s)', (kind) => {
  let redis: RedisStoreInstance;
  let stores: RuntimeStores;

  beforeAll(async () => {
    redis = await startRedisStore(kind, { name: `redis-kv-test-${kind}` });
    // The way apply's generated code gets its stores: MCP_MIGRATE_STORE.
    stores = storesFromEnv({ MCP_MIGRATE_STORE: redis.url, MCP_MIGRATE_KEY_PREFIX: 'kvt:' });
    await stores.ready();
  });

  afterAll(async () => {
    await stores?.close();
    await redis?.stop();
  });

  it(`storesFromEnv names the store ${kind === 'cluster' ? 'redis-cluster' : 'redis'} and hands out a working RedisKeyValueStore`, () => {
    expect(stores.kind).toBe(kind === 'cluster' ? 'redis-cluster' : 'redis');
    expect(stores.kv).toBeInstanceOf(RedisKeyValueStore);
  });

  contract(`redis (${kind})`, () => stores.kv);

  it('SessionMap and StoreEventStore see the same data through a second, independent set of stores (another replica)', async () => {
    const other = storesFromEnv({ MCP_MIGRATE_STORE: redis.url, MCP_MIGRATE_KEY_PREFIX: 'kvt:' });
    try {
      const mine = createSessionMap<string, { n: number }>('test#map', { stores });
      const theirs = createSessionMap<string, { n: number }>('test#map', { stores: other });
      const sid = unique('sid');
      await mine.set(sid, { n: 1 });
      expect(await theirs.get(sid)).toEqual({ n: 1 });
      expect(await theirs.delete(sid)).toBe(true);
      expect(await mine.has(sid)).toBe(false);

      // A process-level SharedMap: an entry written on one replica (URL and Date kept), no TTL unless given.
      const tokens = createSharedMap<string, { resource: URL; at: Date }>('test#Provider.tokens', { stores });
      const seen = createSharedMap<string, { resource: URL; at: Date }>('test#Provider.tokens', { stores: other });
      const token = unique('token');
      await tokens.set(token, { resource: new URL('http://localhost:3000/mcp'), at: new Date(5) });
      const read = await seen.get(token);
      expect(read?.resource).toBeInstanceOf(URL);
      expect(read?.resource.href).toBe('http://localhost:3000/mcp');
      expect(read?.at.getTime()).toBe(5);
      expect(await redis.command('PTTL', `kvt:shared:test#Provider.tokens:${token}`)).toBe(-1);
      await createSharedMap('test#short', { stores: other, ttlMs: 60_000 }).set(token, 1);
      expect(Number(await redis.command('PTTL', `kvt:shared:test#short:${token}`))).toBeGreaterThan(50_000);
      expect(await seen.delete(token)).toBe(true);
      expect(await tokens.delete(token)).toBe(false);

      const events = createEventStore({ stores });
      const ids = [];
      for (let i = 0; i < 4; i += 1) ids.push(await events.storeEvent(i % 2 === 0 ? 'stream-a' : 'stream-b', { jsonrpc: '2.0', method: 'm', params: { i } }));
      const replayer = createEventStore({ stores: other });
      expect(await replayer.getStreamIdForEventId(ids[0]!)).toBe('stream-a');
      const sent: [string, unknown][] = [];
      const stream = await replayer.replayEventsAfter(ids[0]!, { send: async (id, message) => void sent.push([id, message]) });
      expect(stream).toBe('stream-a');
      expect(sent).toEqual([[ids[2], { jsonrpc: '2.0', method: 'm', params: { i: 2 } }]]);
      // The whole event list is one key, in the namespace's slot.
      expect(await redis.keys(`kvt:{${events.namespace}}:*`)).toEqual([`kvt:{${events.namespace}}:events`]);
    } finally {
      await other.close();
    }
  });
});
