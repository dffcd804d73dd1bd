/**
 * Task stores and task message queues for the MCP TS SDK's experimental tasks (`@modelcontextprotocol/sdk`
 * 1.2x–1.32: `experimental/tasks/interfaces.d.ts`), declared here without importing the SDK, so a
 * migrated server's runtime depends on ioredis alone. The shapes are the SDK's `TaskStore`,
 * `TaskMessageQueue`, `Task` and `QueuedMessage`; an SDK `Server`/`McpServer` accepts these objects as
 * its `taskStore` and `taskMessageQueue` options.
 *
 * Session binding follows the SDK's `InMemoryTaskStore`: a task created with a session id belongs to
 * that session; calls that pass a different session id treat it as not found (and `listTasks` leaves it
 * out); calls that pass none are not restricted; `listTasks` with a session id also lists the tasks
 * created without one.
 */
import { randomBytes } from 'node:crypto';
import type { JsonRpcErrorObject, JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResultResponse } from './jsonrpc.js';

/** Spec 2025-11-25 `Task.status`. */
export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

/** Spec 2025-11-25 `Task` (the SDK's `TaskSchema`). `ttl` and `pollInterval` are milliseconds; dates are ISO 8601. */
export interface Task {
  taskId: string;
  status: TaskStatus;
  ttl: number | null;
  createdAt: string;
  lastUpdatedAt: string;
  pollInterval?: number;
  statusMessage?: string;
}

/** The SDK's `CreateTaskOptions`. */
export interface CreateTaskOptions {
  ttl?: number | null;
  pollInterval?: number;
  context?: Record<string, unknown>;
}

/** A request as the SDK passes it to `createTask` (`{ method, params }`). */
export interface TaskRequest {
  method: string;
  params?: unknown;
}

/** A JSON-RPC result (the SDK's `Result`). */
export type TaskResult = { [key: string]: unknown };

/** The SDK's `TaskStore` interface. */
export interface TaskStore {
  createTask(taskParams: CreateTaskOptions, requestId: JsonRpcId, request: TaskRequest, sessionId?: string): Promise<Task>;
  getTask(taskId: string, sessionId?: string): Promise<Task | null>;
  storeTaskResult(taskId: string, status: 'completed' | 'failed', result: TaskResult, sessionId?: string): Promise<void>;
  getTaskResult(taskId: string, sessionId?: string): Promise<TaskResult>;
  updateTaskStatus(taskId: string, status: TaskStatus, statusMessage?: string, sessionId?: string): Promise<void>;
  listTasks(cursor?: string, sessionId?: string): Promise<{ tasks: Task[]; nextCursor?: string }>;
}

/** The SDK's `QueuedMessage`: a message kept for side-channel delivery through `tasks/result`. JSON-serializable. */
export type QueuedMessage =
  | { type: 'request'; message: JsonRpcRequest; timestamp: number }
  | { type: 'notification'; message: JsonRpcNotification; timestamp: number }
  | { type: 'response'; message: JsonRpcResultResponse; timestamp: number }
  | { type: 'error'; message: { jsonrpc: '2.0'; id?: JsonRpcId; error: JsonRpcErrorObject }; timestamp: number };

/** The SDK's `TaskMessageQueue` interface (FIFO per task). */
export interface TaskMessageQueue {
  /** @throws Error when `maxSize` is given and the queue already holds that many messages. */
  enqueue(taskId: string, message: QueuedMessage, sessionId?: string, maxSize?: number): Promise<void>;
  dequeue(taskId: string, sessionId?: string): Promise<QueuedMessage | undefined>;
  dequeueAll(taskId: string, sessionId?: string): Promise<QueuedMessage[]>;
}

/** Tasks per `listTasks` page, as the SDK's `InMemoryTaskStore`. */
export const TASK_PAGE_SIZE = 10;
/** `pollInterval` of a task created without one, ms (the SDK's default). */
export const DEFAULT_TASK_POLL_INTERVAL_MS = 1_000;

export function isTerminal(status: TaskStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** A task id: 16 random bytes as hex (the SDK's format). */
export function newTaskId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The lifetime a shared store gives a task, ms: the requested `ttl`, capped at `maxTtlMs`; a task
 * requested without one (`null`: unlimited in the SDK's in-memory store) gets `maxTtlMs`, and says so
 * in its `ttl` (the spec lets the receiver override the requested TTL and requires it to report the one used).
 */
export function effectiveTtl(requested: number | null | undefined, maxTtlMs: number): number {
  return typeof requested === 'number' && requested > 0 ? Math.min(requested, maxTtlMs) : maxTtlMs;
}

export const notFound = (taskId: string): Error => new Error(`Task with ID ${taskId} not found`);
export const terminalError = (taskId: string, from: string, to: string): Error =>
  new Error(`Cannot update task ${taskId} from terminal status '${from}' to '${to}'. Terminal states (completed, failed, cancelled) cannot transition to other states.`);
export const overflowError = (size: number, max: number): Error => new Error(`Task message queue overflow: queue size (${size}) exceeds maximum (${max})`);
