import { defaultStores, type RuntimeStores } from './from-env.js';
import { MemoryTaskMessageQueue, MemoryTaskStore } from './memory-tasks.js';
import { RedisTaskMessageQueue, RedisTaskStore } from './redis-tasks.js';
import { isRewrittenId } from './server-requests.js';
import { sessionInbox } from './session-inbox.js';
import type { JsonRpcId } from './jsonrpc.js';
import type { CreateTaskOptions, QueuedMessage, Task, TaskMessageQueue, TaskRequest, TaskResult, TaskStatus, TaskStore } from './tasks.js';

export interface TaskStoreOptions {
  /** Stores; default: from `MCP_MIGRATE_STORE` ({@link defaultStores}), resolved on first use. */
  stores?: RuntimeStores;
  /** Longest lifetime of a task, ms (also the `ttl` of tasks requested without one). Default: the session TTL. */
  maxTtlMs?: number;
}

/** One backend per stores object: every task store and queue of a process shares the same tasks. */
const memoryStores = new WeakMap<RuntimeStores, MemoryTaskStore>();
const memoryQueues = new WeakMap<RuntimeStores, MemoryTaskMessageQueue>();

async function resolve(options: TaskStoreOptions): Promise<RuntimeStores> {
  const s = options.stores ?? defaultStores();
  await s.ready();
  return s;
}

/**
 * The task store `mcp-migrate apply` puts where a server created an SDK `InMemoryTaskStore`: on Redis
 * ({@link RedisTaskStore}) when `MCP_MIGRATE_STORE` names one, so every replica sees every task; in
 * process ({@link MemoryTaskStore}) for `memory`. The store is picked on first use, so the call can
 * stay where the server created its in-memory store (module level or per session).
 */
export class StoreTaskStore implements TaskStore {
  readonly #options: TaskStoreOptions;
  #backend: Promise<TaskStore> | undefined;

  constructor(options: TaskStoreOptions = {}) {
    this.#options = options;
  }

  #b(): Promise<TaskStore> {
    this.#backend ??= resolve(this.#options).then((s) => {
      const maxTtlMs = this.#options.maxTtlMs ?? s.ttlMs;
      if (s.redis) return new RedisTaskStore({ client: s.redis, keyPrefix: s.keyPrefix, maxTtlMs });
      let m = memoryStores.get(s);
      if (!m) memoryStores.set(s, (m = new MemoryTaskStore({ maxTtlMs })));
      return m;
    });
    return this.#backend;
  }

  async createTask(taskParams: CreateTaskOptions, requestId: JsonRpcId, request: TaskRequest, sessionId?: string): Promise<Task> {
    return await (await this.#b()).createTask(taskParams, requestId, request, sessionId);
  }

  async getTask(taskId: string, sessionId?: string): Promise<Task | null> {
    return await (await this.#b()).getTask(taskId, sessionId);
  }

  async storeTaskResult(taskId: string, status: 'completed' | 'failed', result: TaskResult, sessionId?: string): Promise<void> {
    await (await this.#b()).storeTaskResult(taskId, status, result, sessionId);
  }

  async getTaskResult(taskId: string, sessionId?: string): Promise<TaskResult> {
    return await (await this.#b()).getTaskResult(taskId, sessionId);
  }

  async updateTaskStatus(taskId: string, status: TaskStatus, statusMessage?: string, sessionId?: string): Promise<void> {
    await (await this.#b()).updateTaskStatus(taskId, status, statusMessage, sessionId);
  }

  async listTasks(cursor?: string, sessionId?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    return await (await this.#b()).listTasks(cursor, sessionId);
  }
}

/**
 * The task message queue `mcp-migrate apply` puts where a server created an SDK
 * `InMemoryTaskMessageQueue` (Redis or in process, as {@link StoreTaskStore}).
 *
 * A request the server queues for a task (the SDK queues a server-to-client request made with a
 * `relatedTask` and delivers it on the response stream of the client's next `tasks/result`, which
 * may reach another replica) gets a client-facing id from the runtime's request router naming this
 * replica, as `SessionTransportRegistry` gives requests it sends: the client's answer, wherever it
 * lands, comes back to this replica's server, whose SDK `Protocol` is waiting for it.
 */
export class StoreTaskMessageQueue implements TaskMessageQueue {
  readonly #options: TaskStoreOptions;
  #backend: Promise<{ stores: RuntimeStores; queue: TaskMessageQueue }> | undefined;

  constructor(options: TaskStoreOptions = {}) {
    this.#options = options;
  }

  #b(): Promise<{ stores: RuntimeStores; queue: TaskMessageQueue }> {
    this.#backend ??= resolve(this.#options).then((s) => {
      if (s.redis) return { stores: s, queue: new RedisTaskMessageQueue({ client: s.redis, keyPrefix: s.keyPrefix, maxTtlMs: this.#options.maxTtlMs ?? s.ttlMs }) };
      let m = memoryQueues.get(s);
      if (!m) memoryQueues.set(s, (m = new MemoryTaskMessageQueue()));
      return { stores: s, queue: m };
    });
    return this.#backend;
  }

  async enqueue(taskId: string, message: QueuedMessage, sessionId?: string, maxSize?: number): Promise<void> {
    const { stores, queue } = await this.#b();
    let queued = message;
    if (queued.type === 'request' && sessionId !== undefined && !isRewrittenId(queued.message.id)) {
      const deliver = sessionInbox(sessionId);
      if (deliver) queued = { ...queued, message: stores.router.outgoing(sessionId, queued.message, deliver) };
    }
    await queue.enqueue(taskId, queued, sessionId, maxSize);
  }

  async dequeue(taskId: string, sessionId?: string): Promise<QueuedMessage | undefined> {
    return await (await this.#b()).queue.dequeue(taskId, sessionId);
  }

  async dequeueAll(taskId: string, sessionId?: string): Promise<QueuedMessage[]> {
    return await (await this.#b()).queue.dequeueAll(taskId, sessionId);
  }
}

/** A task store shared by every replica (see {@link StoreTaskStore}). */
export function createTaskStore(options?: TaskStoreOptions): StoreTaskStore {
  return new StoreTaskStore(options);
}

/** A task message queue shared by every replica (see {@link StoreTaskMessageQueue}). */
export function createTaskMessageQueue(options?: TaskStoreOptions): StoreTaskMessageQueue {
  return new StoreTaskMessageQueue(options);
}
