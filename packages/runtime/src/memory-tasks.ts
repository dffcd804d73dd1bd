import type { JsonRpcId } from './jsonrpc.js';
import {
  DEFAULT_TASK_POLL_INTERVAL_MS,
  TASK_PAGE_SIZE,
  effectiveTtl,
  isTerminal,
  newTaskId,
  notFound,
  overflowError,
  terminalError,
  type CreateTaskOptions,
  type QueuedMessage,
  type Task,
  type TaskMessageQueue,
  type TaskRequest,
  type TaskResult,
  type TaskStatus,
  type TaskStore,
} from './tasks.js';

interface Stored {
  task: Task;
  sessionId?: string;
  requestId: JsonRpcId;
  request: TaskRequest;
  result?: TaskResult;
  expiresAt: number;
}

/**
 * The task store for `MCP_MIGRATE_STORE=memory` (one replica): the same rules as {@link RedisTaskStore}
 * (TTL capped at `maxTtlMs`, session binding, pages of 10), in this process. Expired tasks are dropped
 * when next looked at.
 */
export class MemoryTaskStore implements TaskStore {
  readonly #tasks = new Map<string, Stored>();
  readonly #maxTtlMs: number;
  readonly #now: () => number;

  constructor(options: { maxTtlMs?: number; now?: () => number } = {}) {
    this.#maxTtlMs = options.maxTtlMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
  }

  async createTask(taskParams: CreateTaskOptions, requestId: JsonRpcId, request: TaskRequest, sessionId?: string): Promise<Task> {
    const taskId = newTaskId();
    const at = new Date(this.#now()).toISOString();
    const ttl = effectiveTtl(taskParams.ttl, this.#maxTtlMs);
    const task: Task = { taskId, status: 'working', ttl, createdAt: at, lastUpdatedAt: at, pollInterval: taskParams.pollInterval ?? DEFAULT_TASK_POLL_INTERVAL_MS };
    this.#tasks.set(taskId, { task, sessionId, requestId, request, expiresAt: this.#now() + ttl });
    return { ...task };
  }

  async getTask(taskId: string, sessionId?: string): Promise<Task | null> {
    const s = this.#lookup(taskId, sessionId);
    return s ? { ...s.task } : null;
  }

  async storeTaskResult(taskId: string, status: 'completed' | 'failed', result: TaskResult, sessionId?: string): Promise<void> {
    const s = this.#lookup(taskId, sessionId);
    if (!s) throw notFound(taskId);
    if (isTerminal(s.task.status)) throw new Error(`Cannot store result for task ${taskId} in terminal status '${s.task.status}'. Task results can only be stored once.`);
    s.result = result;
    this.#set(s, status, undefined, true);
  }

  async getTaskResult(taskId: string, sessionId?: string): Promise<TaskResult> {
    const s = this.#lookup(taskId, sessionId);
    if (!s) throw notFound(taskId);
    if (!s.result) throw new Error(`Task ${taskId} has no result stored`);
    return s.result;
  }

  async updateTaskStatus(taskId: string, status: TaskStatus, statusMessage?: string, sessionId?: string): Promise<void> {
    const s = this.#lookup(taskId, sessionId);
    if (!s) throw notFound(taskId);
    if (isTerminal(s.task.status)) throw terminalError(taskId, s.task.status, status);
    this.#set(s, status, statusMessage, isTerminal(status));
  }

  async listTasks(cursor?: string, sessionId?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    const ids = [...this.#tasks.keys()].filter((id) => this.#lookup(id, sessionId));
    let start = 0;
    if (cursor) {
      const at = ids.indexOf(cursor);
      if (at < 0) throw new Error(`Invalid cursor: ${cursor}`);
      start = at + 1;
    }
    const page = ids.slice(start, start + TASK_PAGE_SIZE);
    return { tasks: page.map((id) => ({ ...this.#tasks.get(id)!.task })), nextCursor: start + TASK_PAGE_SIZE < ids.length ? page.at(-1) : undefined };
  }

  #set(s: Stored, status: TaskStatus, statusMessage: string | undefined, reset: boolean): void {
    s.task.status = status;
    if (statusMessage) s.task.statusMessage = statusMessage;
    s.task.lastUpdatedAt = new Date(this.#now()).toISOString();
    if (reset) s.expiresAt = this.#now() + (s.task.ttl ?? this.#maxTtlMs);
  }

  #lookup(taskId: string, sessionId: string | undefined): Stored | undefined {
    const s = this.#tasks.get(taskId);
    if (s && s.expiresAt <= this.#now()) {
      this.#tasks.delete(taskId);
      return undefined;
    }
    if (s && sessionId !== undefined && s.sessionId !== undefined && s.sessionId !== sessionId) return undefined;
    return s;
  }
}

/** The task message queue for `MCP_MIGRATE_STORE=memory` (one replica): FIFO lists per task id. */
export class MemoryTaskMessageQueue implements TaskMessageQueue {
  readonly #queues = new Map<string, QueuedMessage[]>();

  async enqueue(taskId: string, message: QueuedMessage, _sessionId?: string, maxSize?: number): Promise<void> {
    const queue = this.#queues.get(taskId) ?? [];
    if (maxSize !== undefined && queue.length >= maxSize) throw overflowError(queue.length, maxSize);
    queue.push(message);
    this.#queues.set(taskId, queue);
  }

  async dequeue(taskId: string, _sessionId?: string): Promise<QueuedMessage | undefined> {
    const queue = this.#queues.get(taskId);
    const message = queue?.shift();
    if (queue?.length === 0) this.#queues.delete(taskId);
    return message;
  }

  async dequeueAll(taskId: string, _sessionId?: string): Promise<QueuedMessage[]> {
    const queue = this.#queues.get(taskId) ?? [];
    this.#queues.delete(taskId);
    return queue;
  }
}
