import { afterAll, describe, expect, it } from 'vitest';
import { createRedisClient, createRedisStoreClient, MemoryMessageBus, RedisMessageBus, waitForRedis } from '@mcp-migrate/runtime';
import { startRedis, startRedisCluster, stopAllProcesses } from '../helpers/index.js';

afterAll(() => stopAllProcesses());

async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return await check();
}

describe('MemoryMessageBus', () => {
  it('delivers to current subscribers only', async () => {
    const bus = new MemoryMessageBus();
    const got: string[] = [];
    const off = await bus.subscribe('c', (m) => got.push(m));
    await bus.publish('c', 'one');
    await bus.publish('other', 'x');
    await off();
    await bus.publish('c', 'two');
    expect(got).toEqual(['one']);
  });
});

describe('RedisMessageBus', () => {
  it('subscribes without waiting for Redis, delivers across connections, and resubscribes after a restart', async () => {
    const redis = await startRedis({ name: 'redis-bus-test' });
    const a = createRedisClient(redis.url);
    const b = createRedisClient(redis.url);
    const busA = new RedisMessageBus(a);
    const busB = new RedisMessageBus(b);
    try {
      const got: string[] = [];
      let gaps = 0;
      busB.onGap(() => gaps++);
      // Called right away, before the subscriber connection is ready: must not throw or hang.
      await busB.subscribe('mcpm:test-events', (m) => got.push(m));
      await waitForRedis(a, 5_000);
      expect(await until(async () => (await redis.command('PUBSUB', 'NUMSUB', 'mcpm:test-events') as [string, number])[1] === 1)).toBe(true);
      await busA.publish('mcpm:test-events', 'hello');
      expect(await until(() => got.includes('hello'))).toBe(true);

      await redis.restart();
      expect(await until(async () => (await redis.command('PUBSUB', 'NUMSUB', 'mcpm:test-events') as [string, number])[1] === 1, 10_000)).toBe(true);
      expect(gaps).toBe(1);
      await waitForRedis(a, 10_000);
      await busA.publish('mcpm:test-events', 'again');
      expect(await until(() => got.includes('again'))).toBe(true);
    } finally {
      await busA.close();
      await busB.close();
      a.disconnect();
      b.disconnect();
      await redis.stop();
    }
  });
});

describe('RedisMessageBus on a Redis Cluster', () => {
  it('delivers across nodes, and moves the subscription (reporting a gap) when its node goes down', async () => {
    const cluster = await startRedisCluster({ name: 'redis-bus-cluster-test', nodeTimeoutMs: 2_000 });
    const a = createRedisStoreClient(cluster.url);
    const b = createRedisStoreClient(cluster.url);
    const busA = new RedisMessageBus(a);
    const busB = new RedisMessageBus(b);
    try {
      const got: string[] = [];
      let gaps = 0;
      busB.onGap(() => gaps++);
      // Called right away, before the cluster client has its slot map: must not throw or hang.
      await busB.subscribe('mcpm:test-events', (m) => got.push(m));
      expect(await waitForRedis(a, 5_000)).toBe(true);
      expect(await until(async () => (await cluster.subscribers('mcpm:test-events')) === 1)).toBe(true);
      // Publish on every node in turn: a cluster forwards PUBLISH to subscribers on any node.
      for (const [i, node] of cluster.nodes.entries()) await node.command('PUBLISH', 'mcpm:test-events', `via-node-${i}`);
      await busA.publish('mcpm:test-events', 'hello');
      expect(await until(() => got.includes('hello') && cluster.nodes.every((_, i) => got.includes(`via-node-${i}`)))).toBe(true);
      expect(gaps).toBe(0);

      // Stop the node that holds the subscriber connection: the subscription moves to another node.
      const numsub = async (n: (typeof cluster.nodes)[number]) => Number(((await n.command('PUBSUB', 'NUMSUB', 'mcpm:test-events')) as [string, number])[1]);
      const counts = await Promise.all(cluster.nodes.map(numsub));
      const holder = cluster.nodes[counts.indexOf(1)]!;
      await holder.kill();
      const others = cluster.nodes.filter((n) => n !== holder);
      expect(await until(async () => (await Promise.all(others.map(numsub))).reduce((x, y) => x + y, 0) === 1, 10_000)).toBe(true);
      expect(await until(() => gaps === 1, 5_000)).toBe(true);
      // Publish until it arrives (the publishing client may first hit the restarted node's old connection).
      let delivered = false;
      for (let i = 0; i < 50 && !delivered; i += 1) {
        await busA.publish('mcpm:test-events', `again-${i}`).catch(() => undefined);
        delivered = await until(() => got.some((m) => m.startsWith('again-')), 200);
      }
      expect(delivered).toBe(true);
      expect(gaps).toBe(1);
      await holder.restart();
      await cluster.waitForOk(20_000);
    } finally {
      await busA.close();
      await busB.close();
      a.disconnect();
      b.disconnect();
      await cluster.stop();
    }
  });
});
