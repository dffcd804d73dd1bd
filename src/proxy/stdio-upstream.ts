import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { handshakeReplay, isRuntimeId } from '../runtime/handshake.js';
import {
  classifyMessage,
  ErrorCode,
  errorResponse,
  idKey,
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../runtime/jsonrpc.js';
import { HANDSHAKE_METHODS } from '../runtime/protocol.js';
import type { SessionRecord } from '../runtime/session-record.js';
import { sessionFingerprint } from '../runtime/session-id.js';
import { acceptsOf, sendJsonRpcError } from './http-util.js';
import { SSE_KEEPALIVE, sseMessage } from './sse.js';
import {
  UpstreamError,
  type AppliedState,
  type ClientGet,
  type ClientPost,
  type CloseReason,
  type ForwardResult,
  type InitializeOutcome,
  type UpstreamConnector,
  type UpstreamSession,
} from './upstream.js';

export interface StdioUpstreamOptions {
  command: string;
  args: readonly string[];
  /** Working directory of the children. Default: the proxy's. */
  cwd?: string;
  /** Environment of the children. Default: the proxy's minus every `MCP_MIGRATE_*` variable. */
  env?: NodeJS.ProcessEnv;
  /** Time limit for each handshake message, ms. */
  handshakeTimeoutMs: number;
  /** Interval of SSE keep-alive comments on streams the proxy serves itself, ms. Default 15,000. */
  keepAliveMs?: number;
  logger: Logger;
}

/** Server-to-client messages kept for the next GET stream when no stream can take them. */
const MAX_BACKLOG = 1_000;
/** Lines of a child's stderr kept to explain a crash. */
const STDERR_TAIL = 20;

/** The proxy's environment without its own settings (the session secret must not leak to servers). */
export function childEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('MCP_MIGRATE_')) out[k] = v;
  return out;
}

/**
 * stdio upstream (spec `basic/transports.mdx` §stdio): one child process per session per replica,
 * newline-delimited JSON-RPC on stdin/stdout, stderr logged at debug level. The proxy plays the
 * server side of Streamable HTTP for the client: it answers a POST with JSON when the reply is the only
 * message, or switches to an SSE stream when the server sends notifications or requests first, and it
 * serves the standalone GET stream itself.
 */
export class StdioUpstreamConnector implements UpstreamConnector {
  readonly kind = 'stdio' as const;
  constructor(readonly options: StdioUpstreamOptions) {}

  #spawn(sessionId: string): StdioUpstreamSession {
    return new StdioUpstreamSession(this.options, sessionId);
  }

  async initialize(args: { sessionId: string; req: IncomingMessage; raw: Buffer; message: JsonRpcRequest }): Promise<InitializeOutcome> {
    const session = this.#spawn(args.sessionId);
    let response: JsonRpcResponse;
    try {
      response = await session.request(args.message, this.options.handshakeTimeoutMs);
    } catch (err) {
      await session.close('failed');
      throw err;
    }
    const ok = 'result' in response;
    if (!ok) await session.close('failed');
    const accepts = acceptsOf(args.req);
    return {
      response,
      ...(ok ? { session } : {}),
      respond: (res: ServerResponse, headers: OutgoingHttpHeaders) => {
        if (accepts.json || !accepts.sse) {
          const body = JSON.stringify(response);
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
          res.end(body);
        } else {
          res.writeHead(200, { ...SSE_HEADERS, ...headers });
          res.end(sseMessage(response));
        }
      },
    };
  }

  async replay(args: { sessionId: string; record: SessionRecord; req: IncomingMessage }): Promise<UpstreamSession> {
    const session = this.#spawn(args.sessionId);
    const [init, ...rest] = handshakeReplay(args.record);
    try {
      const response = await session.request(init as JsonRpcRequest, this.options.handshakeTimeoutMs);
      if (!('result' in response)) throw new UpstreamError(`MCP server refused the replayed initialize: ${response.error.message}`);
      await session.sendRuntime(rest, args.record.protocolVersion);
    } catch (err) {
      await session.close('failed');
      throw err;
    }
    session.initialized = true;
    session.applied = {
      revision: args.record.revision,
      ...(args.record.loggingLevel !== undefined ? { loggingLevel: args.record.loggingLevel } : {}),
      subscriptions: [...args.record.subscriptions],
    };
    return session;
  }

  async close(): Promise<void> {}
}

const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * One client POST in flight: collects the responses to its requests and streams server messages
 * routed to it. Answers `application/json` when the responses are all there is, `text/event-stream`
 * as soon as a server message must go out first (spec §Sending Messages to the Server: either is allowed).
 */
class PostExchange {
  readonly ids: JsonRpcId[];
  readonly #responses: JsonRpcResponse[] = [];
  readonly #res: ServerResponse;
  readonly #accepts: { json: boolean; sse: boolean };
  readonly #batch: boolean;
  #mode: 'pending' | 'sse' | 'done' = 'pending';
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor(res: ServerResponse, accepts: { json: boolean; sse: boolean }, ids: JsonRpcId[], batch: boolean) {
    this.#res = res;
    this.#accepts = accepts;
    this.ids = ids;
    this.#batch = batch;
    this.done = new Promise((r) => (this.#resolve = r));
  }

  get finished(): boolean {
    return this.#mode === 'done';
  }

  /** Whether server messages can go on this exchange (client accepts SSE, stream still open). */
  get canStream(): boolean {
    return this.#mode !== 'done' && this.#accepts.sse && !this.#res.destroyed;
  }

  deliverResponse(message: JsonRpcResponse): void {
    if (this.#mode === 'done') return;
    this.#responses.push(message);
    if (this.#mode === 'sse') this.#res.write(sseMessage(message));
    if (this.#responses.length >= this.ids.length) this.#finish();
  }

  deliverOther(message: JsonRpcMessage): void {
    if (!this.canStream) return;
    if (this.#mode === 'pending') {
      this.#mode = 'sse';
      this.#res.writeHead(200, SSE_HEADERS);
      for (const r of this.#responses) this.#res.write(sseMessage(r));
    }
    this.#res.write(sseMessage(message));
  }

  /** Answers every request still unanswered with `error` (the child exited). */
  fail(code: number, message: string): void {
    const answered = new Set(this.#responses.map((r) => (r.id === null ? '' : idKey(r.id))));
    for (const id of this.ids) if (!answered.has(idKey(id))) this.deliverResponse(errorResponse(id, code, message));
  }

  /** The client went away: stop without writing. */
  abandon(): void {
    this.#mode = 'done';
    this.#resolve();
  }

  #finish(): void {
    if (this.#mode === 'pending' && !this.#res.destroyed) {
      if (this.#accepts.json || !this.#accepts.sse) {
        const body = JSON.stringify(this.#batch ? this.#responses : this.#responses[0]);
        this.#res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        this.#res.end(body);
      } else {
        this.#res.writeHead(200, SSE_HEADERS);
        this.#res.end(this.#responses.map((r) => sseMessage(r)).join(''));
      }
    } else if (!this.#res.writableEnded) {
      this.#res.end();
    }
    this.#mode = 'done';
    this.#resolve();
  }
}

interface RuntimeWaiter {
  resolve(r: JsonRpcResponse): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

class StdioUpstreamSession implements UpstreamSession {
  initialized = false;
  applied: AppliedState = { revision: 0, subscriptions: [] };
  readonly #options: StdioUpstreamOptions;
  readonly #log: Logger;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #closed = false;
  #closing = false;
  #lastActivity = Date.now();
  /** Client request id → the exchange waiting for its response. */
  readonly #pending = new Map<string, PostExchange>();
  /** Progress token → exchange of the request that set it (`_meta.progressToken`). */
  readonly #progress = new Map<string, PostExchange>();
  /** Exchanges in arrival order, for routing unrelated server messages to the oldest open stream. */
  readonly #exchanges = new Set<PostExchange>();
  readonly #waiters = new Map<string, RuntimeWaiter>();
  #getStream: { res: ServerResponse; keepAlive: NodeJS.Timeout } | undefined;
  #backlog: JsonRpcMessage[] = [];
  readonly #stderrTail: string[] = [];

  constructor(options: StdioUpstreamOptions, sessionId: string) {
    this.#options = options;
    this.#log = options.logger.child({ session: sessionFingerprint(sessionId) });
    this.#child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: options.env ?? childEnvironment(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#log.debug({ pid: this.#child.pid, command: options.command }, 'started MCP server process');
    this.#exited = new Promise((resolve) => {
      let done = false;
      const onExit = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        if (done) return;
        done = true;
        this.#onExit(code, signal, error);
        resolve();
      };
      this.#child.once('exit', (code, signal) => onExit(code, signal));
      this.#child.once('error', (err) => onExit(null, null, err));
    });
    this.#child.stdin!.on('error', () => undefined); // EPIPE after a crash; handled by 'exit'
    createInterface({ input: this.#child.stdout!, crlfDelay: Infinity }).on('line', (line) => this.#onLine(line));
    createInterface({ input: this.#child.stderr!, crlfDelay: Infinity }).on('line', (line) => {
      this.#stderrTail.push(line);
      if (this.#stderrTail.length > STDERR_TAIL) this.#stderrTail.shift();
      this.#log.debug({ stderr: line }, 'MCP server stderr');
    });
  }

  /** The child's process id (for operators and tests). */
  get pid(): number | undefined {
    return this.#child.pid;
  }
  get closed(): boolean {
    return this.#closed || this.#closing;
  }
  get busy(): boolean {
    return this.#exchanges.size > 0 || this.#getStream !== undefined || this.#waiters.size > 0;
  }
  get lastActivity(): number {
    return this.#lastActivity;
  }

  #write(message: JsonRpcMessage): void {
    this.#child.stdin!.write(JSON.stringify(message) + '\n');
  }

  /** Sends one request and resolves with its response (used for `initialize`). */
  request(message: JsonRpcRequest, timeoutMs: number): Promise<JsonRpcResponse> {
    if (this.closed) return Promise.reject(new UpstreamError('MCP server process is not running'));
    const key = idKey(message.id);
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        reject(new UpstreamError(`MCP server did not answer ${message.method} within ${timeoutMs} ms`, 504));
      }, timeoutMs);
      this.#waiters.set(key, { resolve, reject, timer });
      this.#write(message);
    });
  }

  async sendRuntime(messages: JsonRpcMessage[], _protocolVersion?: string): Promise<void> {
    for (const m of messages) {
      if (isRequest(m)) {
        const response = await this.request(m, this.#options.handshakeTimeoutMs);
        if ('error' in response) {
          this.#log.warn({ method: m.method, code: response.error.code, error: response.error.message }, 'MCP server refused a replayed message');
        }
      } else {
        if (this.closed) throw new UpstreamError('MCP server process is not running');
        this.#write(m);
        if ('method' in m && m.method === HANDSHAKE_METHODS.initialized) this.initialized = true;
      }
    }
    this.#lastActivity = Date.now();
  }

  async post(post: ClientPost): Promise<ForwardResult> {
    // The child died after the caller picked this session: nothing was written, so replay and retry.
    if (this.closed) return 'lost';
    this.#lastActivity = Date.now();
    const requests = post.messages.filter(isRequest);
    if (requests.length === 0) {
      for (const m of post.messages) this.#write(m);
      post.res.writeHead(202).end();
      return 'done';
    }
    const exchange = new PostExchange(post.res, acceptsOf(post.req), requests.map((r) => r.id), post.batch);
    this.#exchanges.add(exchange);
    for (const r of requests) {
      this.#pending.set(idKey(r.id), exchange);
      const token = (r.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') this.#progress.set(idKey(token), exchange);
    }
    const onClose = () => {
      if (!exchange.finished) exchange.abandon();
    };
    post.res.once('close', onClose);
    for (const m of post.messages) this.#write(m);
    try {
      await exchange.done;
    } finally {
      post.res.off('close', onClose);
      this.#exchanges.delete(exchange);
      for (const id of exchange.ids) if (this.#pending.get(idKey(id)) === exchange) this.#pending.delete(idKey(id));
      for (const [k, ex] of this.#progress) if (ex === exchange) this.#progress.delete(k);
      this.#lastActivity = Date.now();
    }
    return 'done';
  }

  async get(get: ClientGet): Promise<ForwardResult> {
    if (this.closed) return 'lost';
    if (this.#getStream) {
      // As the TS SDK does: one standalone stream per session (per replica, here).
      sendJsonRpcError(get.res, 409, ErrorCode.ServerError, 'Conflict: Only one SSE stream is allowed per session');
      return 'done';
    }
    const res = get.res;
    // The client may have gone away while its session was being resolved: its 'close' has then been
    // emitted already and would never reach the listener below, leaving this session busy (never reaped) for good.
    if (res.destroyed) return 'done';
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    const keepAlive = setInterval(() => res.write(SSE_KEEPALIVE), this.#options.keepAliveMs ?? 15_000);
    keepAlive.unref();
    const stream = { res, keepAlive };
    this.#getStream = stream;
    const backlog = this.#backlog;
    this.#backlog = [];
    for (const m of backlog) res.write(sseMessage(m));
    await new Promise<void>((resolve) => res.once('close', resolve));
    clearInterval(keepAlive);
    if (this.#getStream === stream) this.#getStream = undefined;
    this.#lastActivity = Date.now();
    return 'done';
  }

  #onLine(line: string): void {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#log.warn({ line: line.slice(0, 200) }, 'MCP server wrote a non-JSON line on stdout; ignored');
      return;
    }
    const kind = classifyMessage(value);
    if (!kind) {
      this.#log.warn({ line: line.slice(0, 200) }, 'MCP server wrote an invalid JSON-RPC message; ignored');
      return;
    }
    const message = value as JsonRpcMessage;
    if (isResponse(message)) {
      if (message.id === null) return;
      const key = idKey(message.id);
      const waiter = this.#waiters.get(key);
      if (waiter) {
        this.#waiters.delete(key);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
        return;
      }
      if (isRuntimeId(message.id)) return;
      const exchange = this.#pending.get(key);
      if (exchange) {
        this.#pending.delete(key);
        exchange.deliverResponse(message);
      }
      return;
    }
    this.#route(message);
  }

  /**
   * Routes a server-to-client request or notification (stdio carries no "related request" information):
   * - `notifications/progress` → the exchange whose request set that `progressToken`;
   * - other notifications → the GET stream if open, else the oldest POST stream that can carry them;
   * - requests (`sampling/createMessage`, `elicitation/create`, `roots/list`, `ping`) → the oldest POST
   *   stream (most likely the call that caused them, and it works for clients without a GET stream),
   *   else the GET stream;
   * - otherwise a bounded backlog, flushed into the next GET stream.
   */
  #route(message: JsonRpcMessage): void {
    const isNotificationMessage = !('id' in message);
    if (isNotificationMessage && 'method' in message && message.method === 'notifications/progress') {
      const token = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        const ex = this.#progress.get(idKey(token));
        if (ex?.canStream) {
          ex.deliverOther(message);
          return;
        }
      }
    }
    const get = this.#getStream && !this.#getStream.res.destroyed ? this.#getStream : undefined;
    if (isNotificationMessage && get) {
      get.res.write(sseMessage(message));
      return;
    }
    for (const ex of this.#exchanges) {
      if (ex.canStream) {
        ex.deliverOther(message);
        return;
      }
    }
    if (get) {
      get.res.write(sseMessage(message));
      return;
    }
    this.#backlog.push(message);
    if (this.#backlog.length > MAX_BACKLOG) this.#backlog.shift();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    const expected = this.#closing;
    this.#closed = true;
    if (expected) {
      this.#log.debug({ code, signal }, 'MCP server process stopped');
    } else {
      this.#log.warn(
        { code, signal, error: error?.message, stderr: this.#stderrTail.slice(-5) },
        'MCP server process exited; the next request replays the handshake on a new one',
      );
    }
    const reason = error ? `MCP server process failed: ${error.message}` : 'MCP server process exited';
    for (const w of this.#waiters.values()) {
      clearTimeout(w.timer);
      w.reject(new UpstreamError(reason));
    }
    this.#waiters.clear();
    for (const ex of [...this.#exchanges]) ex.fail(ErrorCode.InternalError, reason);
    if (this.#getStream) {
      clearInterval(this.#getStream.keepAlive);
      this.#getStream.res.end();
      this.#getStream = undefined;
    }
  }

  async close(reason: CloseReason): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    this.#log.debug({ reason }, 'stopping MCP server process');
    // Spec §stdio shutdown: close stdin, then SIGTERM, then SIGKILL.
    this.#child.stdin!.end();
    const term = setTimeout(() => this.#child.kill('SIGTERM'), 500);
    const kill = setTimeout(() => this.#child.kill('SIGKILL'), 2_500);
    await this.#exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

export type { StdioUpstreamSession };
