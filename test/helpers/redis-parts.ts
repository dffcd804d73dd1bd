/**
 * Runtime parts on a real redis-server, one "replica" at a time: each gets its own command connection
 * and its own bus (with its own subscriber connection), as a separate process would. Used by the Redis
 * tests of the router and the session streams; `closeAll()` in `afterAll`.
 */
import type { Redis } from 'ioredis';
import { createRedisClient, RedisMessageBus, waitForRedis, type MessageBus } from '@mcp-migrate/runtime';
import type { RedisInstance } from './redis.js';

export interface RedisParts {
  /** A new command connection, ready. */
  client(): Promise<Redis>;
  /** A new connection and its bus. */
  bus(): Promise<{ client: Redis; bus: MessageBus }>;
  /** Runs `close` at {@link closeAll}, before the connections are dropped (last registered first). */
  onClose(close: () => Promise<void>): void;
  closeAll(): Promise<void>;
}

export function redisParts(redis: () => RedisInstance): RedisParts {
  const clients: Redis[] = [];
  const closers: (() => Promise<void>)[] = [];
  const client = async () => {
    const c = createRedisClient(redis().url);
    clients.push(c);
    await waitForRedis(c, 5_000);
    return c;
  };
  return {
    client,
    async bus() {
      const c = await client();
      const bus = new RedisMessageBus(c);
      closers.push(() => bus.close());
      return { client: c, bus };
    },
    onClose: (close) => void closers.push(close),
    async closeAll() {
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
      for (const c of clients.splice(0)) c.disconnect();
    },
  };
}
