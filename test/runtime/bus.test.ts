import { afterAll, describe, expect, it } from 'vitest';
import { createRedisClient, MemoryMessageBus, RedisMessageBus, waitForRedis } from '../../src/runtime/index.js';
import { startRedis, stopAllProcesses } from '../helpers/index.js';

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
