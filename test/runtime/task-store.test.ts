/**
 * The runtime's task stores and task message queues (the SDK's experimental `TaskStore` and
 * `TaskMessageQueue` interfaces, what `apply`'s `task-store` transform puts in place of
 * `InMemoryTaskStore` / `InMemoryTaskMessageQueue`): one contract on memory, one redis-server and a
 * 3-master Redis Cluster, with the SDK's own rules (session binding, terminal states, pages of 10,
 * queue overflow); and what the Redis ones add: a second, independent set of stores (another
 * replica) sees the same tasks and queues, and a request queued on one replica is answered there
 * wherever the client's answer lands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTaskMessageQueue,
  createTaskStore,
  MemoryTaskMessageQueue,
  MemoryTaskStore,
  RedisTaskMessageQueue,
  RedisTaskStore,
  setSessionInbox,
  storesFromEnv,
  type JsonRpcResponse,
  type QueuedMessage,
  type RuntimeStores,
  type TaskMessageQueue,
  type TaskStore,
} from '@mcp-migrate/runtime';
import { pollUntil, REDIS_STORE_KINDS, sleep, startRedisStore, stopAllProcesses, type RedisStoreInstance } from '../helpers/index.js';

afterAll(async () => {
  await stopAllProcesses();
});

let n = 0;
const unique = (what: string) => `${what}-${process.pid}-${++n}-${Math.random().toString(36).slice(2)}`;
const REQUEST = { method: 'tools/call', params: { name: 'delay', arguments: { duration: 10 } } };

function contract(name: string, makeStore: () => TaskStore, makeQueue: () => TaskMessageQueue) {
  describe(`${name}: TaskStore contract`, () => {
    it('creates a working task with the requested TTL and poll interval, and finds it for its session', async () => {
      const store = makeStore();
      const sid = unique('sid');
      const task = await store.createTask({ ttl: 60_000, pollInterval: 250 }, 7, REQUEST, sid);
      expect(task).toMatchObject({ status: 'working', ttl: 60_000, pollInterval: 250 });
      expect(task.taskId).toMatch(/^[0-9a-f]{32}$/);
      expect(Date.parse(task.createdAt)).not.toBeNaN();
      expect(await store.getTask(task.taskId, sid)).toEqual(task);
      expect(await store.getTask(task.taskId)).toEqual(task);
      expect(await store.getTask('0'.repeat(32), sid)).toBeNull();
    });

    it('binds a task to the session that created it', async () => {
      const store = makeStore();
      const [mine, other] = [unique('sid'), unique('sid')];
      const task = await store.createTask({}, 1, REQUEST, mine);
      expect(await store.getTask(task.taskId, other)).toBeNull();
      await expect(store.updateTaskStatus(task.taskId, 'cancelled', undefined, other)).rejects.toThrow(/not found/);
      await expect(store.storeTaskResult(task.taskId, 'completed', { content: [] }, other)).rejects.toThrow(/not found/);
      await expect(store.getTaskResult(task.taskId, other)).rejects.toThrow(/not found/);
      expect((await store.listTasks(undefined, other)).tasks.map((t) => t.taskId)).not.toContain(task.taskId);
      expect((await store.listTasks(undefined, mine)).tasks.map((t) => t.taskId)).toContain(task.taskId);
    });

    it('stores a result once, moves through input_required, and refuses to leave a terminal status', async () => {
      const store = makeStore();
      const sid = unique('sid');
      const task = await store.createTask({ ttl: 60_000 }, 'r1', REQUEST, sid);
      await expect(store.getTaskResult(task.taskId, sid)).rejects.toThrow(/no result/);
      await store.updateTaskStatus(task.taskId, 'input_required', 'waiting for the user', sid);
      expect(await store.getTask(task.taskId, sid)).toMatchObject({ status: 'input_required', statusMessage: 'waiting for the user' });
      await store.updateTaskStatus(task.taskId, 'working', undefined, sid);
      await store.storeTaskResult(task.taskId, 'completed', { content: [{ type: 'text', text: 'done' }] }, sid);
      expect(await store.getTask(task.taskId, sid)).toMatchObject({ status: 'completed' });
      expect(await store.getTaskResult(task.taskId, sid)).toEqual({ content: [{ type: 'text', text: 'done' }] });
      await expect(store.storeTaskResult(task.taskId, 'failed', { content: [] }, sid)).rejects.toThrow(/terminal status 'completed'/);
      await expect(store.updateTaskStatus(task.taskId, 'working', undefined, sid)).rejects.toThrow(/terminal status 'completed'/);
    });

    it('lists a session\'s tasks and unbound ones in creation order, 10 per page, with a cursor', async () => {
      const store = makeStore();
      const sid = unique('sid');
      const created: string[] = [];
      for (let i = 0; i < 12; i += 1) {
        created.push((await store.createTask({}, i, REQUEST, i === 5 ? undefined : sid)).taskId);
        await sleep(2);
      }
      const first = await store.listTasks(undefined, sid);
      const ours = first.tasks.map((t) => t.taskId).filter((id) => created.includes(id));
      expect(first.tasks).toHaveLength(10);
      expect(first.nextCursor).toBeDefined();
      const listed = [...first.tasks];
      for (let cursor = first.nextCursor; cursor; ) {
        const page = await store.listTasks(cursor, sid);
        expect(page.tasks.length).toBeLessThanOrEqual(10);
        listed.push(...page.tasks);
        cursor = page.nextCursor;
      }
      expect(listed.map((t) => t.taskId).filter((id) => created.includes(id))).toEqual(created);
      expect(new Set(listed.map((t) => t.taskId)).size).toBe(listed.length);
      expect(ours.length).toBeGreaterThan(0);
      await expect(store.listTasks('f'.repeat(32), sid)).rejects.toThrow(/Invalid cursor/);
    });

    it('caps the lifetime of a task without a TTL and expires tasks after theirs', async () => {
      const store = makeStore();
      const endless = await store.createTask({ ttl: null }, 1, REQUEST);
      expect(endless.ttl).toBe(60_000);
      const short = await store.createTask({ ttl: 150 }, 2, REQUEST);
      expect(short.ttl).toBe(150);
      await sleep(400);
      expect(await store.getTask(short.taskId)).toBeNull();
      expect(await store.getTask(endless.taskId)).not.toBeNull();
    });
  });

  describe(`${name}: TaskMessageQueue contract`, () => {
    const message = (i: number): QueuedMessage => ({ type: 'notification', message: { jsonrpc: '2.0', method: 'notifications/message', params: { i } }, timestamp: i });

    it('is FIFO per task, drains at once, and refuses to grow past maxSize', async () => {
      const queue = makeQueue();
      const [a, b] = [unique('task'), unique('task')];
      await queue.enqueue(a, message(1), 's');
      await queue.enqueue(a, message(2), 's', 2);
      await queue.enqueue(b, message(3), 's');
      await expect(queue.enqueue(a, message(4), 's', 2)).rejects.toThrow(/overflow: queue size \(2\) exceeds maximum \(2\)/);
      expect(await queue.dequeue(a, 's')).toEqual(message(1));
      expect(await queue.dequeueAll(a, 's')).toEqual([message(2)]);
      expect(await queue.dequeue(a, 's')).toBeUndefined();
      expect(await queue.dequeueAll(b)).toEqual([message(3)]);
      expect(await queue.dequeueAll(b)).toEqual([]);
    });
  });
}

contract('memory', () => new MemoryTaskStore({ maxTtlMs: 60_000 }), () => new MemoryTaskMessageQueue());

describe.each(REDIS_STORE_KINDS)('on Redis (%s)', (kind) => {
  let redis: RedisStoreInstance;
  let stores: RuntimeStores;
  let other: RuntimeStores;
  const env = () => ({ MCP_MIGRATE_STORE: redis.url, MCP_MIGRATE_KEY_PREFIX: 'tst:', MCP_MIGRATE_SESSION_TTL_MS: '60000' });

  beforeAll(async () => {
    redis = await startRedisStore(kind, { name: `redis-task-test-${kind}` });
    // As apply's generated code gets them: MCP_MIGRATE_STORE; `other` is a second replica.
    stores = storesFromEnv(env());
    other = storesFromEnv(env());
    await Promise.all([stores.ready(), other.ready()]);
  });

  afterAll(async () => {
    await stores?.close();
    await other?.close();
    await redis?.stop();
  });

  contract(
    `redis (${kind})`,
    () => new RedisTaskStore({ client: stores.redis!, keyPrefix: 'tst:', maxTtlMs: 60_000 }),
    () => new RedisTaskMessageQueue({ client: stores.redis!, keyPrefix: 'tst:', maxTtlMs: 60_000 }),
  );

  it('createTaskStore/createTaskMessageQueue pick Redis from MCP_MIGRATE_STORE; another replica sees the task, its status, its result and its queue', async () => {
    const store = createTaskStore({ stores });
    const theirs = createTaskStore({ stores: other });
    const sid = unique('sid');
    const task = await store.createTask({ ttl: 30_000 }, 3, REQUEST, sid);
    expect(await theirs.getTask(task.taskId, sid)).toEqual(task);
    await theirs.storeTaskResult(task.taskId, 'completed', { content: [{ type: 'text', text: 'from another replica' }] }, sid);
    expect(await store.getTask(task.taskId, sid)).toMatchObject({ status: 'completed' });
    expect(await store.getTaskResult(task.taskId, sid)).toEqual({ content: [{ type: 'text', text: 'from another replica' }] });
    const queue = createTaskMessageQueue({ stores });
    await queue.enqueue(task.taskId, { type: 'notification', message: { jsonrpc: '2.0', method: 'notifications/progress' }, timestamp: 1 }, sid);
    expect(await createTaskMessageQueue({ stores: other }).dequeue(task.taskId, sid)).toMatchObject({ type: 'notification' });
    // Task keys live in the task's slot; the per-session index in the session's.
    expect(await redis.keys(`tst:task:{${task.taskId}}*`)).toEqual([`tst:task:{${task.taskId}}`]);
    expect(await redis.keys(`tst:{${sid}}:tasks`)).toEqual([`tst:{${sid}}:tasks`]);
  });

  it('a request queued on one replica gets a client-facing id naming it; the answer, received on another replica, reaches the server waiting here', async () => {
    const sid = unique('sid');
    const answers: JsonRpcResponse[] = [];
    const remove = setSessionInbox(sid, (r) => answers.push(r));
    try {
      await Promise.all([stores.router.ready, other.router.ready]);
      const queue = createTaskMessageQueue({ stores });
      const taskId = unique('task');
      await queue.enqueue(taskId, { type: 'request', message: { jsonrpc: '2.0', id: 4, method: 'elicitation/create', params: {} }, timestamp: 1 }, sid);
      // Delivered by tasks/result on the other replica, with the id the client will answer.
      const delivered = await createTaskMessageQueue({ stores: other }).dequeue(taskId, sid);
      expect(delivered?.type).toBe('request');
      const clientId = (delivered!.message as { id: string }).id;
      expect(clientId).toMatch(new RegExp(`^mcp-migrate:s:${stores.router.replicaId}:`));
      // The client's answer lands on the other replica, which routes it here with the server's own id.
      expect(await other.router.reply(sid, { jsonrpc: '2.0', id: clientId, result: { action: 'accept' } })).toBe('remote');
      await pollUntil(() => answers.length > 0, 2_000);
      expect(answers).toEqual([{ jsonrpc: '2.0', id: 4, result: { action: 'accept' } }]);
    } finally {
      remove();
    }
  });
});
