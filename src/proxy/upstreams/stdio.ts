import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { handshakeReplay, isRuntimeId } from '@mcp-migrate/runtime';
import {
  classifyMessage,
  ErrorCode,
  idKey,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '@mcp-migrate/runtime';
import { appendStandalone, HANDSHAKE_METHODS, toClientMessage } from '@mcp-migrate/runtime';
import type { SessionRecord } from '@mcp-migrate/runtime';
import { sessionFingerprint } from '@mcp-migrate/runtime';
import { acceptsOf } from '../http/util.js';
import { SSE_HEADERS, sseMessage } from '../http/sse.js';
import {
  localUpstreamContext,
  UpstreamError,
  type AppliedState,
  type ClientPost,
  type CloseReason,
  type ExchangeSink,
  type ForwardResult,
  type InitializeOutcome,
  type UpstreamConnector,
  type UpstreamContext,
  type UpstreamSession,
} from './upstream.js';

import { HttpTarget, PostExchange, SinkTarget } from './stdio-exchange.js';
import { DEFAULT_MAX_STARTING, StartLimit } from './start-limit.js';

export interface StdioUpstreamOptions {
  command: string;
  args: readonly string[];
  /** Working directory of the children. Default: the proxy's. */
  cwd?: string;
  /** Environment of the children. Default: the proxy's minus every `MCP_MIGRATE_*` variable. */
  env?: NodeJS.ProcessEnv;
  /** Time limit for each handshake message, ms; a child's start (waiting for a place, then `initialize`) counts within it. */
  handshakeTimeoutMs: number;
  /** Most children starting at once, spawn until `initialize` answered (`--max-starting`). Default {@link DEFAULT_MAX_STARTING}. */
  maxStarting?: number;
  logger: Logger;
}

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
 * message, or switches to an SSE stream when the server sends notifications or requests first; other
 * server messages go to the session's standalone stream (see {@link UpstreamContext}).
 */
export class StdioUpstreamConnector implements UpstreamConnector {
  readonly kind = 'stdio' as const;
  #context: UpstreamContext | undefined;
  /** Children starting now and starts waiting for a place (`--max-starting`); new sessions and replays alike. */
  readonly starts: StartLimit;
  constructor(readonly options: StdioUpstreamOptions) {
    this.starts = new StartLimit(options.maxStarting ?? DEFAULT_MAX_STARTING);
  }

  attach(context: UpstreamContext): void {
    this.#context = context;
  }

  /** The proxy's streams and router (see {@link UpstreamContext}). */
  get context(): UpstreamContext {
    return (this.#context ??= localUpstreamContext(this.options.logger));
  }

  /**
   * Starts a child once {@link starts} has a place and sends it `initialize`; the place is released when
   * the child answered (or failed). The wait and the answer together get the handshake timeout, and the
   * wait ends at `deadline` (ms since the epoch) too. Rejects like {@link StdioUpstreamSession.request};
   * a child that did not answer is stopped first.
   */
  async #start(sessionId: string, message: JsonRpcRequest, signal?: AbortSignal, deadline = Infinity): Promise<[StdioUpstreamSession, JsonRpcResponse]> {
    const began = Date.now();
    const timeoutMs = this.options.handshakeTimeoutMs;
    const release = await this.starts.acquire(Math.min(timeoutMs, deadline - began), signal);
    let session: StdioUpstreamSession;
    try {
      session = new StdioUpstreamSession(this.options, sessionId, this.context);
    } catch (err) {
      release();
      throw err;
    }
    try {
      const left = Math.max(1, timeoutMs - (Date.now() - began));
      return [session, await session.request(message, left, signal).finally(release)];
    } catch (err) {
      await session.close('failed');
      throw err;
    }
  }

  async initialize(args: { sessionId: string; req: IncomingMessage; raw: Buffer; message: JsonRpcRequest; signal?: AbortSignal; deadline?: number }): Promise<InitializeOutcome> {
    if (args.signal?.aborted) throw new UpstreamError('the client went away before initialize was sent');
    const [session, response] = await this.#start(args.sessionId, args.message, args.signal, args.deadline);
    const ok = 'result' in response;
    if (!ok) await session.close('failed');
    else if ('result' in response) session.initializeResult = response.result;
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
    const [init, ...rest] = handshakeReplay(args.record);
    const [session, response] = await this.#start(args.sessionId, init as JsonRpcRequest);
    try {
      if (!('result' in response)) throw new UpstreamError(`MCP server refused the replayed initialize: ${response.error.message}`);
      session.initializeResult = response.result;
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

interface RuntimeWaiter {
  resolve(r: JsonRpcResponse): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

class StdioUpstreamSession implements UpstreamSession {
  initialized = false;
  initializeResult: Record<string, unknown> | undefined;
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
  readonly #stderrTail: string[] = [];
  readonly #context: UpstreamContext;

  constructor(
    options: StdioUpstreamOptions,
    readonly sessionId: string,
    context: UpstreamContext,
  ) {
    this.#options = options;
    this.#context = context;
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
    return this.#exchanges.size > 0 || this.#waiters.size > 0;
  }
  get lastActivity(): number {
    return this.#lastActivity;
  }

  #write(message: JsonRpcMessage): void {
    this.#child.stdin!.write(JSON.stringify(message) + '\n');
  }

  /**
   * Sends one request and resolves with its response (used for the handshake). Rejects with
   * {@link UpstreamError}: 504 after `timeoutMs`, 502 when the child exits or `signal` aborts (the
   * client went away). The caller closes the session on rejection.
   */
  request(message: JsonRpcRequest, timeoutMs: number, signal?: AbortSignal): Promise<JsonRpcResponse> {
    if (this.closed) return Promise.reject(new UpstreamError('MCP server process is not running'));
    if (signal?.aborted) return Promise.reject(new UpstreamError(`the client went away before ${message.method} was sent`));
    const key = idKey(message.id);
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(key);
      };
      const onAbort = (): void => {
        settle();
        reject(new UpstreamError(`the client went away while waiting for the MCP server to answer ${message.method}`));
      };
      const timer = setTimeout(() => {
        settle();
        reject(new UpstreamError(`MCP server did not answer ${message.method} within ${timeoutMs} ms`, 504));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.set(key, {
        resolve: (r) => (settle(), resolve(r)),
        reject: (e) => (settle(), reject(e)),
        timer,
      });
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
    const requests = post.messages.filter(isRequest);
    if (requests.length === 0) {
      this.#lastActivity = Date.now();
      for (const m of post.messages) this.#write(m);
      post.res.writeHead(202).end();
      return 'done';
    }
    const target = new HttpTarget(post.res, acceptsOf(post.req), post.batch, this.#context, this.sessionId, requests.length);
    const exchange = new PostExchange(target, requests.map((r) => r.id));
    const onClose = () => {
      if (!exchange.finished) exchange.abandon();
    };
    post.res.once('close', onClose);
    try {
      await this.#run(exchange, requests, post.messages);
    } finally {
      post.res.off('close', onClose);
    }
    return 'done';
  }

  async exchange(
    messages: JsonRpcMessage[],
    _protocolVersion: string,
    _headers: IncomingHttpHeaders,
    sink: ExchangeSink,
    signal?: AbortSignal,
  ): Promise<ForwardResult> {
    if (this.closed) return 'lost';
    const requests = messages.filter(isRequest);
    if (requests.length === 0) {
      this.#lastActivity = Date.now();
      for (const m of messages) this.#write(m);
      return 'done';
    }
    const target = new SinkTarget(sink);
    const exchange = new PostExchange(target, requests.map((r) => r.id));
    const onAbort = () => {
      target.close();
      exchange.abandon();
    };
    if (signal?.aborted) return 'done';
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.#run(exchange, requests, messages);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return 'done';
  }

  /** Registers an exchange, writes its messages to the child and waits until it is answered or abandoned. */
  async #run(exchange: PostExchange, requests: JsonRpcRequest[], messages: JsonRpcMessage[]): Promise<void> {
    this.#lastActivity = Date.now();
    this.#exchanges.add(exchange);
    for (const r of requests) {
      this.#pending.set(idKey(r.id), exchange);
      const token = (r.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') this.#progress.set(idKey(token), exchange);
    }
    for (const m of messages) this.#write(m);
    try {
      await exchange.done;
    } finally {
      this.#exchanges.delete(exchange);
      for (const id of exchange.ids) if (this.#pending.get(idKey(id)) === exchange) this.#pending.delete(idKey(id));
      for (const [k, ex] of this.#progress) if (ex === exchange) this.#progress.delete(k);
      this.#lastActivity = Date.now();
    }
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
   * - requests (`sampling/createMessage`, `elicitation/create`, `roots/list`, `ping`) get a
   *   client-facing id (`ServerRequestRouter.outgoing`; the client's answer is written back to the
   *   child with the original id);
   * - `notifications/progress` → the exchange whose request set that `progressToken`;
   * - requests → the oldest POST stream that can carry them (most likely the call that caused them,
   *   and it works for clients without a GET stream);
   * - everything else → the session's standalone stream, followed by the client's GET on any replica
   *   (kept for a GET opened later).
   */
  #route(received: JsonRpcMessage): void {
    const message = toClientMessage(this.#context.router, this.sessionId, received, (response) => {
      if (!this.closed) this.#write(response);
    });
    if (isRequest(message)) {
      for (const ex of this.#exchanges) {
        if (ex.canStream) {
          ex.deliverOther(message);
          return;
        }
      }
      this.#standalone(message);
      return;
    }
    if ('method' in message && message.method === 'notifications/progress') {
      const token = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        const ex = this.#progress.get(idKey(token));
        if (ex?.canStream) {
          ex.deliverOther(message);
          return;
        }
      }
    }
    this.#standalone(message);
  }

  #standalone(message: JsonRpcMessage): void {
    this.#context.onStandaloneMessage?.();
    appendStandalone(this.#context.streams, this.sessionId, message).catch((err: Error) => {
      this.#log.warn({ err: err.message }, 'could not store a server message for the standalone stream; lost');
    });
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
    this.#context.router.forget(this.sessionId);
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
