import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import {
  createRedisClient,
  createRedisStoreClient,
  MemorySessionStore,
  RedisSessionStore,
  SessionStoreUnavailableError,
  sessionKey,
  waitForRedis,
  type SessionStore,
} from '@mcp-migrate/runtime';
import {
  REDIS_STORE_KINDS,
  startRedis,
  startRedisCluster,
  startRedisStore,
  stopAllProcesses,
  type RedisStoreInstance,
} from '../helpers/index.js';

afterAll(async () => {
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

// Every Redis test runs on one redis-server and on a 3-master Redis Cluster (ioredis `Cluster` client).
describe.each(REDIS_STORE_KINDS)('RedisSessionStore on Redis (%s)', (kind) => {
  let redis: RedisStoreInstance;
  let client: Redis | Cluster;

  beforeAll(async () => {
    redis = await startRedisStore(kind, { name: `redis-store-test-${kind}` });
    client = createRedisStoreClient(redis.url);
    expect(await waitForRedis(client, 5_000)).toBe(true);
  });

  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  contract(`redis (${kind})`, (ttlMs) => new RedisSessionStore({ client, ownsClient: false, keyPrefix: `t${process.pid}:`, ...(ttlMs ? { ttlMs } : {}) }));

  it('is handed the client kind the URL names', () => {
    expect((client as { isCluster?: boolean }).isCluster === true).toBe(kind === 'cluster');
  });
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

  if (kind === 'cluster') {
    it('keeps every key of a session in one cluster slot, and spreads sessions over the masters', async () => {
      const ids = Array.from({ length: 30 }, newId);
      const store = new RedisSessionStore({ client, ownsClient: false, keyPrefix: 'mcpm-slots:' });
      for (const id of ids) await store.create(input(id));
      const slot = async (key: string) => Number(await redis.command('CLUSTER', 'KEYSLOT', key));
      for (const id of ids.slice(0, 5)) {
        const s = await slot(sessionKey('mcpm-slots:', id, 'session'));
        for (const kindOfKey of ['events', 'owner', 'streams']) expect(await slot(sessionKey('mcpm-slots:', id, kindOfKey))).toBe(s);
      }
      const perNode = await Promise.all(redis.nodes.map(async (n) => (await n.keys('mcpm-slots:*')).length));
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(ids.length);
      expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    });
  }
});

describe('RedisSessionStore on Redis: outages', () => {
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

describe('RedisSessionStore on a Redis Cluster: outages', () => {
  /** A session id whose record lives on `node` (ids are random; a few dozen tries find one for each of 3 masters). */
  async function idOn(cluster: Awaited<ReturnType<typeof startRedisCluster>>, port: number, prefix: string): Promise<string> {
    for (let i = 0; i < 500; i += 1) {
      const id = newId();
      if ((await cluster.nodeFor(sessionKey(prefix, id, 'session'))).port === port) return id;
    }
    throw new Error(`no id found on port ${port}`);
  }

  it('one master down: its sessions get SessionStoreUnavailableError within the command timeout, the others keep working; all recover when it is back', async () => {
    const cluster = await startRedisCluster({ name: 'redis-cluster-master-down', nodeTimeoutMs: 2_000 });
    const c = createRedisStoreClient(cluster.url);
    try {
      expect(await waitForRedis(c, 5_000)).toBe(true);
      const store = new RedisSessionStore({ client: c, ownsClient: false });
      const victim = cluster.nodes[1]!;
      const onVictim = await idOn(cluster, victim.port, store.keyPrefix);
      const elsewhere = await idOn(cluster, cluster.nodes[0]!.port, store.keyPrefix);
      await store.create(input(onVictim));
      await store.create(input(elsewhere));
      await victim.kill();
      const started = Date.now();
      await expect(store.touch(onVictim)).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      await expect(store.load(onVictim)).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(10_000); // each command is bounded by the 2 s command timeout
      expect(await store.touch(elsewhere)).toBe(true);
      expect(await store.update(elsewhere, { kind: 'subscribe', uri: 'demo://a' })).toBe(1);
      await victim.restart(); // same port and node id (nodes.conf kept), empty data
      await cluster.waitForOk(20_000);
      let back: boolean | undefined;
      for (let i = 0; i < 50 && back === undefined; i += 1) {
        back = await store.touch(onVictim).catch(() => undefined);
        if (back === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect(back).toBe(false); // data was lost with the restart: a clean "not found"
      await store.ping();
      expect((await store.load(elsewhere))?.subscriptions).toEqual(['demo://a']);
    } finally {
      c.disconnect();
      await cluster.stop();
    }
  });

  it('every node down: fails fast (ping too), and recovers when the cluster is back', async () => {
    const cluster = await startRedisCluster({ name: 'redis-cluster-down' });
    const c = createRedisStoreClient(cluster.url);
    try {
      expect(await waitForRedis(c, 5_000)).toBe(true);
      const store = new RedisSessionStore({ client: c, ownsClient: false });
      const id = newId();
      await store.create(input(id));
      await store.ping();
      await Promise.all(cluster.nodes.map((n) => n.kill()));
      const started = Date.now();
      await expect(store.touch(id)).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      await expect(store.create(input(newId()))).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      // The client may still think it is connected for a moment; within the command timeout it knows.
      let pingFailed = false;
      for (let i = 0; i < 30 && !pingFailed; i += 1) {
        pingFailed = await store.ping().then(
          () => false,
          (err: unknown) => err instanceof SessionStoreUnavailableError,
        );
        if (!pingFailed) await new Promise((r) => setTimeout(r, 100));
      }
      expect(pingFailed).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
      await Promise.all(cluster.nodes.map((n) => n.restart()));
      await cluster.waitForOk(20_000);
      expect(await waitForRedis(c, 15_000)).toBe(true);
      await store.ping();
      expect(await store.touch(id)).toBe(false);
      const again = newId();
      await store.create(input(again));
      expect(await store.touch(again)).toBe(true);
    } finally {
      c.disconnect();
      await cluster.stop();
    }
  });
});
