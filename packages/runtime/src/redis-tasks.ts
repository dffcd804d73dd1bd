import type { Cluster, Redis } from 'ioredis';
import type { JsonRpcId } from './jsonrpc.js';
import { sessionKey } from './redis-store.js';
import { SessionStoreUnavailableError } from './session-store.js';
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

export interface RedisTaskStoreOptions {
  client: Redis | Cluster;
  /** Key prefix, default `mcpm:` (the proxy's). */
  keyPrefix?: string;
  /** Longest lifetime of a task and of its queue, ms; also the lifetime of a task created without `ttl`. Default one hour. */
  maxTtlMs?: number;
}

/**
 * Atomic status change (Lua, one key pair in one slot): `missing` when the task is gone or belongs to
 * another session than the caller's, `terminal:<status>` when it already ended, else `ok`. With
 * ARGV[6] = `1` the task (and its queue) expire `ttl` ms from now, as the SDK's in-memory store restarts
 * its cleanup timer when a task ends.
 */
const UPDATE_LUA = `
local h = redis.call('HMGET', KEYS[1], 'status', 'sessionId', 'ttl')
if not h[1] then return 'missing' end
if ARGV[1] ~= '' and h[2] and h[2] ~= '' and h[2] ~= ARGV[1] then return 'missing' end
if h[1] == 'completed' or h[1] == 'failed' or h[1] == 'cancelled' then return 'terminal:' .. h[1] end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'lastUpdatedAt', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'statusMessage', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
if ARGV[6] == '1' and h[3] then
  redis.call('PEXPIRE', KEYS[1], h[3])
  redis.call('PEXPIRE', KEYS[2], h[3])
end
return 'ok'
`;

/** Bounded append (Lua): -1 - size when `maxSize` (ARGV[2], '' = none) is reached, else the new length. */
const ENQUEUE_LUA = `
if ARGV[2] ~= '' then
  local n = redis.call('LLEN', KEYS[1])
  if n >= tonumber(ARGV[2]) then return -1 - n end
end
local len = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return len
`;

/** Everything read and popped at once (Lua). */
const DRAIN_LUA = `
local all = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return all
`;

type Client = Redis | Cluster;
type Commands = {
  mcpmTaskUpdate(task: string, queue: string, caller: string, status: string, now: string, message: string, result: string, reset: string): Promise<string>;
  mcpmTaskEnqueue(queue: string, message: string, maxSize: string, ttlMs: number): Promise<number>;
  mcpmTaskDrain(queue: string): Promise<string[]>;
};

/** Keys of a task: its hash and its message queue, in one Cluster slot (`{<taskId>}`). */
function taskKeys(prefix: string, taskId: string): { task: string; queue: string } {
  return { task: `${prefix}task:{${taskId}}`, queue: `${prefix}task:{${taskId}}:queue` };
}

async function run<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof SessionStoreUnavailableError) throw err;
    throw new SessionStoreUnavailableError(`Redis task store unavailable: ${(err as Error).message}`, { cause: err });
  }
}

/** The client with the scripts defined, the key prefix and the longest task lifetime (defaults: `mcpm:`, one hour). */
type Settings = { c: Client & Commands; prefix: string; maxTtlMs: number };

function settings(options: RedisTaskStoreOptions): Settings {
  return { c: define(options.client), prefix: options.keyPrefix ?? 'mcpm:', maxTtlMs: options.maxTtlMs ?? 3_600_000 };
}

function define(client: Client): Client & Commands {
  // defineCommand is idempotent per name; several stores may share one client.
  client.defineCommand('mcpmTaskUpdate', { numberOfKeys: 2, lua: UPDATE_LUA });
  client.defineCommand('mcpmTaskEnqueue', { numberOfKeys: 1, lua: ENQUEUE_LUA });
  client.defineCommand('mcpmTaskDrain', { numberOfKeys: 1, lua: DRAIN_LUA });
  return client as Client & Commands;
}

/**
 * The SDK's `TaskStore` on Redis, shared by every replica: a client's `tasks/get`, `tasks/result`,
 * `tasks/list` and `tasks/cancel` work on whichever replica they land, and a task's worker may store
 * its result from any replica.
 *
 * Layout: one hash per task at `<prefix>task:{<taskId>}` (`status`, `lastUpdatedAt`, `statusMessage`,
 * `ttl`, `createdAt`, `pollInterval`, `sessionId`, `requestId`, `request`, `result` as JSON), expiring
 * after the task's `ttl` (restarted when it ends); listing indexes (sorted sets by creation time) at
 * `<prefix>tasks:all`, `<prefix>tasks:unbound` and, per session, `<prefix>{<sessionId>}:tasks`, pruned as
 * their tasks expire. A status change is one `EVALSHA`; a lookup one `HGETALL`.
 */
export class RedisTaskStore implements TaskStore {
  readonly #r: Settings;

  constructor(options: RedisTaskStoreOptions) {
    this.#r = settings(options);
  }

  async createTask(taskParams: CreateTaskOptions, requestId: JsonRpcId, request: TaskRequest, sessionId?: string): Promise<Task> {
    const taskId = newTaskId();
    const now = new Date();
    const ttl = effectiveTtl(taskParams.ttl, this.#r.maxTtlMs);
    const task: Task = { taskId, status: 'working', ttl, createdAt: now.toISOString(), lastUpdatedAt: now.toISOString(), pollInterval: taskParams.pollInterval ?? DEFAULT_TASK_POLL_INTERVAL_MS };
    const { task: key } = taskKeys(this.#r.prefix, taskId);
    await run(async () => {
      const fields = {
        status: task.status,
        createdAt: task.createdAt,
        lastUpdatedAt: task.lastUpdatedAt,
        ttl: String(ttl),
        pollInterval: String(task.pollInterval),
        sessionId: sessionId ?? '',
        requestId: JSON.stringify(requestId),
        request: JSON.stringify(request),
      };
      const replies = await this.#r.c.multi().hset(key, fields).pexpire(key, ttl).exec();
      const failed = replies?.find(([err]) => err);
      if (!replies || failed) throw new SessionStoreUnavailableError('Redis MULTI failed', { cause: failed?.[0] });
      const score = now.getTime();
      for (const index of this.#indexes(sessionId)) await this.#r.c.zadd(index, score, taskId).then(() => this.#r.c.pexpire(index, this.#r.maxTtlMs));
    });
    return task;
  }

  async getTask(taskId: string, sessionId?: string): Promise<Task | null> {
    const h = await this.#load(taskId, sessionId);
    return h ? taskOf(taskId, h) : null;
  }

  async storeTaskResult(taskId: string, status: 'completed' | 'failed', result: TaskResult, sessionId?: string): Promise<void> {
    const outcome = await this.#update(taskId, sessionId, status, undefined, JSON.stringify(result), true);
    if (outcome === 'missing') throw notFound(taskId);
    if (outcome.startsWith('terminal:')) {
      throw new Error(`Cannot store result for task ${taskId} in terminal status '${outcome.slice(9)}'. Task results can only be stored once.`);
    }
  }

  async getTaskResult(taskId: string, sessionId?: string): Promise<TaskResult> {
    const h = await this.#load(taskId, sessionId);
    if (!h) throw notFound(taskId);
    if (!h.result) throw new Error(`Task ${taskId} has no result stored`);
    return JSON.parse(h.result) as TaskResult;
  }

  async updateTaskStatus(taskId: string, status: TaskStatus, statusMessage?: string, sessionId?: string): Promise<void> {
    const outcome = await this.#update(taskId, sessionId, status, statusMessage, undefined, isTerminal(status));
    if (outcome === 'missing') throw notFound(taskId);
    if (outcome.startsWith('terminal:')) throw terminalError(taskId, outcome.slice(9), status);
  }

  async listTasks(cursor?: string, sessionId?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    const scored: Array<[string, number]> = [];
    const indexes = sessionId === undefined ? [`${this.#r.prefix}tasks:all`] : [sessionKey(this.#r.prefix, sessionId, 'tasks'), `${this.#r.prefix}tasks:unbound`];
    for (const index of indexes) {
      const flat = await run(() => this.#r.c.zrange(index, 0, -1, 'WITHSCORES'));
      for (let i = 0; i < flat.length; i += 2) scored.push([flat[i]!, Number(flat[i + 1])]);
    }
    scored.sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
    const loaded = await Promise.all(scored.map(async ([id]) => [id, await this.#load(id, sessionId)] as const));
    const gone = loaded.filter(([, h]) => !h).map(([id]) => id);
    if (gone.length > 0) await this.#prune(gone, sessionId).catch(() => undefined);
    const visible = loaded.filter((e): e is readonly [string, Record<string, string>] => !!e[1]);
    let start = 0;
    if (cursor) {
      const at = visible.findIndex(([id]) => id === cursor);
      if (at < 0) throw new Error(`Invalid cursor: ${cursor}`);
      start = at + 1;
    }
    const page = visible.slice(start, start + TASK_PAGE_SIZE);
    return { tasks: page.map(([id, h]) => taskOf(id, h)), nextCursor: start + TASK_PAGE_SIZE < visible.length ? page.at(-1)![0] : undefined };
  }

  #indexes(sessionId: string | undefined): string[] {
    return [`${this.#r.prefix}tasks:all`, sessionId ? sessionKey(this.#r.prefix, sessionId, 'tasks') : `${this.#r.prefix}tasks:unbound`];
  }

  async #prune(ids: string[], sessionId: string | undefined): Promise<void> {
    const indexes = new Set([`${this.#r.prefix}tasks:all`, `${this.#r.prefix}tasks:unbound`, ...this.#indexes(sessionId)]);
    for (const index of indexes) await this.#r.c.zrem(index, ...ids);
  }

  /** The task's fields, or `undefined` when it is gone or bound to another session than the caller's. */
  async #load(taskId: string, sessionId: string | undefined): Promise<Record<string, string> | undefined> {
    const h = await run(() => this.#r.c.hgetall(taskKeys(this.#r.prefix, taskId).task));
    if (!h.status) return undefined;
    if (sessionId !== undefined && h.sessionId && h.sessionId !== sessionId) return undefined;
    return h;
  }

  async #update(taskId: string, sessionId: string | undefined, status: TaskStatus, message: string | undefined, result: string | undefined, reset: boolean): Promise<string> {
    const keys = taskKeys(this.#r.prefix, taskId);
    return await run(() =>
      this.#r.c.mcpmTaskUpdate(keys.task, keys.queue, sessionId ?? '', status, new Date().toISOString(), message ?? '', result ?? '', reset ? '1' : '0'),
    );
  }
}

function taskOf(taskId: string, h: Record<string, string>): Task {
  const task: Task = {
    taskId,
    status: h.status as TaskStatus,
    ttl: h.ttl ? Number(h.ttl) : null,
    createdAt: h.createdAt!,
    lastUpdatedAt: h.lastUpdatedAt!,
  };
  if (h.pollInterval) task.pollInterval = Number(h.pollInterval);
  if (h.statusMessage) task.statusMessage = h.statusMessage;
  return task;
}

/**
 * The SDK's `TaskMessageQueue` on Redis: one list per task at `<prefix>task:{<taskId>}:queue` (the
 * task's slot), expiring with the task (at most `maxTtlMs`). Messages queued on one replica are
 * delivered by a `tasks/result` on any replica. Keys by task id only, as the SDK's in-memory queue
 * (task ids are unique; the task store decides which session sees a task).
 */
export class RedisTaskMessageQueue implements TaskMessageQueue {
  readonly #r: Settings;

  constructor(options: RedisTaskStoreOptions) {
    this.#r = settings(options);
  }

  async enqueue(taskId: string, message: QueuedMessage, _sessionId?: string, maxSize?: number): Promise<void> {
    const n = await run(() => this.#r.c.mcpmTaskEnqueue(taskKeys(this.#r.prefix, taskId).queue, JSON.stringify(message), maxSize === undefined ? '' : String(maxSize), this.#r.maxTtlMs));
    if (n < 0) throw overflowError(-1 - n, maxSize!);
  }

  async dequeue(taskId: string, _sessionId?: string): Promise<QueuedMessage | undefined> {
    const raw = await run(() => this.#r.c.lpop(taskKeys(this.#r.prefix, taskId).queue));
    return raw === null ? undefined : (JSON.parse(raw) as QueuedMessage);
  }

  async dequeueAll(taskId: string, _sessionId?: string): Promise<QueuedMessage[]> {
    const all = await run(() => this.#r.c.mcpmTaskDrain(taskKeys(this.#r.prefix, taskId).queue));
    return all.map((raw) => JSON.parse(raw) as QueuedMessage);
  }
}
