import http, { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import { finished } from 'node:stream';
import type { Logger } from 'pino';
import { handshakeReplay } from '../runtime/handshake.js';
import {
  classifyMessage,
  isRequest,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../runtime/jsonrpc.js';
import { HANDSHAKE_METHODS, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER } from '../runtime/protocol.js';
import type { SessionRecord } from '../runtime/session-record.js';
import { forwardableRequestHeaders, forwardableResponseHeaders, headerValue } from './http-util.js';
import { SseParser } from './sse.js';
import {
  UpstreamError,
  UpstreamLostSessionError,
  type AppliedState,
  type ClientGet,
  type ClientPost,
  type CloseReason,
  type ForwardResult,
  type InitializeOutcome,
  type UpstreamConnector,
  type UpstreamSession,
} from './upstream.js';

export interface HttpUpstreamOptions {
  /** The upstream MCP endpoint, `http://HOST:PORT/mcp` or `https://…`. */
  url: string;
  /** Time limit for each handshake message and for buffered replies, ms. */
  handshakeTimeoutMs: number;
  logger: Logger;
}

/** Largest upstream error body read to decide whether the upstream lost the session. */
const MAX_ERROR_BODY = 64 * 1024;
/** Largest buffered reply (initialize, replayed handshake messages). */
const MAX_BUFFERED_REPLY = 8 * 1024 * 1024;

/** Headers of the client that must not be reused on runtime-originated requests. */
const RUNTIME_DROP = ['accept', 'content-type', PROTOCOL_VERSION_HEADER, 'last-event-id', 'origin'];

interface UpstreamReply {
  req: ClientRequest;
  res: IncomingMessage;
}

/**
 * Streamable HTTP upstream: every replica opens its own upstream session per client session and
 * substitutes the upstream's `Mcp-Session-Id` for the client's. Bodies are forwarded byte-for-byte and
 * SSE streams are piped back unbuffered. Keep-alive sockets are pooled.
 */
export class HttpUpstreamConnector implements UpstreamConnector {
  readonly kind = 'http' as const;
  readonly url: URL;
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
  readonly #agent: http.Agent;
  readonly #module: typeof http | typeof https;

  constructor(options: HttpUpstreamOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') {
      throw new TypeError(`upstream URL must be http: or https:, got ${this.url.protocol}`);
    }
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    this.logger = options.logger;
    this.#module = this.url.protocol === 'https:' ? https : http;
    this.#agent = new this.#module.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
  }

  /** Sends one request upstream; resolves when the response head arrives. */
  request(method: string, headers: OutgoingHttpHeaders, body?: Buffer | string, signal?: AbortSignal): Promise<UpstreamReply> {
    return new Promise((resolve, reject) => {
      const req = this.#module.request(this.url, { method, headers, agent: this.#agent, ...(signal ? { signal } : {}) });
      req.once('response', (res) => resolve({ req, res }));
      req.once('error', (err) => reject(new UpstreamError(`upstream ${method} failed: ${err.message}`, 502, { cause: err })));
      req.end(body);
    });
  }

  async initialize(args: { sessionId: string; req: IncomingMessage; raw: Buffer; message: JsonRpcRequest }): Promise<InitializeOutcome> {
    const headers: OutgoingHttpHeaders = {
      ...forwardableRequestHeaders(args.req.headers),
      'content-type': 'application/json',
      'content-length': args.raw.length,
    };
    const { req, res } = await this.request('POST', headers, args.raw);
    const body = await readAll(req, res, MAX_BUFFERED_REPLY, this.handshakeTimeoutMs);
    const status = res.statusCode ?? 502;
    const response = status >= 200 && status < 300 ? extractResponse(res, body, args.message.id) : undefined;
    const upstreamSid = headerValue(res.headers, SESSION_ID_HEADER);
    const session =
      response && 'result' in response
        ? new HttpUpstreamSession(this, args.sessionId, upstreamSid, { revision: 0, subscriptions: [] })
        : undefined;
    return {
      ...(response ? { response } : {}),
      ...(session ? { session } : {}),
      respond: (out: ServerResponse, extra: OutgoingHttpHeaders) => {
        const h = forwardableResponseHeaders(res.headers);
        delete h['content-length'];
        out.writeHead(status, { ...h, 'content-length': body.length, ...extra });
        out.end(body);
      },
    };
  }

  async replay(args: { sessionId: string; record: SessionRecord; req: IncomingMessage }): Promise<UpstreamSession> {
    const [init, ...rest] = handshakeReplay(args.record);
    const body = JSON.stringify(init);
    const headers: OutgoingHttpHeaders = {
      ...forwardableRequestHeaders(args.req.headers, RUNTIME_DROP),
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    const { req, res } = await this.request('POST', headers, body);
    const reply = await readAll(req, res, MAX_BUFFERED_REPLY, this.handshakeTimeoutMs);
    const response = res.statusCode === 200 ? extractResponse(res, reply, (init as JsonRpcRequest).id) : undefined;
    if (!response || !('result' in response)) {
      throw new UpstreamError(
        `upstream refused the replayed initialize (HTTP ${res.statusCode}${response && 'error' in response ? `, ${response.error.message}` : ''})`,
      );
    }
    const session = new HttpUpstreamSession(this, args.sessionId, headerValue(res.headers, SESSION_ID_HEADER), {
      revision: args.record.revision,
      ...(args.record.loggingLevel !== undefined ? { loggingLevel: args.record.loggingLevel } : {}),
      subscriptions: [...args.record.subscriptions],
    });
    try {
      await session.sendRuntime(rest, args.record.protocolVersion, args.req);
    } catch (err) {
      await session.close('failed');
      throw err;
    }
    session.initialized = true;
    return session;
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }
}

class HttpUpstreamSession implements UpstreamSession {
  initialized = false;
  applied: AppliedState;
  #closed = false;
  #inflight = 0;
  #lastActivity = Date.now();
  readonly #streams = new Set<ClientRequest>();

  constructor(
    readonly connector: HttpUpstreamConnector,
    readonly sessionId: string,
    /** The upstream's own session id; undefined for a sessionless upstream. */
    readonly upstreamSessionId: string | undefined,
    applied: AppliedState,
  ) {
    this.applied = applied;
  }

  get closed(): boolean {
    return this.#closed;
  }
  get busy(): boolean {
    return this.#inflight > 0;
  }
  get lastActivity(): number {
    return this.#lastActivity;
  }

  #headers(base: OutgoingHttpHeaders): OutgoingHttpHeaders {
    if (this.upstreamSessionId !== undefined) base[SESSION_ID_HEADER] = this.upstreamSessionId;
    return base;
  }

  async post(post: ClientPost): Promise<ForwardResult> {
    const headers = this.#headers({
      ...forwardableRequestHeaders(post.req.headers),
      'content-type': 'application/json',
      'content-length': post.raw.length,
    });
    return await this.#exchange('POST', headers, post.raw, post.res);
  }

  async get(get: ClientGet): Promise<ForwardResult> {
    const headers = this.#headers(forwardableRequestHeaders(get.req.headers));
    return await this.#exchange('GET', headers, undefined, get.res);
  }

  async #exchange(method: string, headers: OutgoingHttpHeaders, body: Buffer | undefined, out: ServerResponse): Promise<ForwardResult> {
    this.#inflight++;
    this.#lastActivity = Date.now();
    let upstream: UpstreamReply | undefined;
    const abort = new AbortController();
    // The client went away before the exchange finished: abort the upstream request too.
    const onClientClose = () => {
      if (!out.writableFinished) abort.abort();
    };
    out.once('close', onClientClose);
    try {
      upstream = await this.connector.request(method, headers, body, abort.signal);
      const { req, res } = upstream;
      if (out.destroyed) {
        req.destroy();
        return 'done';
      }
      this.#streams.add(req);
      const status = res.statusCode ?? 502;
      if (status === 404 || status === 400) {
        // Buffer the (small) error to tell "upstream lost the session" from a genuine 400.
        const errBody = await readAll(req, res, MAX_ERROR_BODY, this.connector.handshakeTimeoutMs);
        if (this.upstreamSessionId !== undefined && isLostSession(status, errBody)) {
          this.#closed = true;
          return 'lost';
        }
        const h = forwardableResponseHeaders(res.headers);
        delete h['content-length'];
        out.writeHead(status, { ...h, 'content-length': errBody.length });
        out.end(errBody);
        return 'done';
      }
      await pipeResponse(res, out);
      return 'done';
    } finally {
      out.off('close', onClientClose);
      if (upstream) this.#streams.delete(upstream.req);
      this.#inflight--;
      this.#lastActivity = Date.now();
    }
  }

  async sendRuntime(messages: JsonRpcMessage[], protocolVersion: string, clientReq: IncomingMessage): Promise<void> {
    const base = forwardableRequestHeaders(clientReq.headers, RUNTIME_DROP);
    for (const message of messages) {
      const body = JSON.stringify(message);
      const headers = this.#headers({
        ...base,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        [PROTOCOL_VERSION_HEADER]: protocolVersion,
      });
      this.#inflight++;
      try {
        const { req, res } = await this.connector.request('POST', headers, body);
        const reply = await readAll(req, res, MAX_BUFFERED_REPLY, this.connector.handshakeTimeoutMs);
        const status = res.statusCode ?? 502;
        if (this.upstreamSessionId !== undefined && isLostSession(status, reply)) {
          this.#closed = true;
          throw new UpstreamLostSessionError();
        }
        if (status < 200 || status >= 300) {
          throw new UpstreamError(`upstream answered ${'method' in message ? message.method : 'message'} with HTTP ${status}`);
        }
        if (isRequest(message)) {
          const response = extractResponse(res, reply, message.id);
          if (response && 'error' in response) {
            this.connector.logger.warn(
              { method: message.method, code: response.error.code, error: response.error.message },
              'upstream refused a replayed message',
            );
          }
        }
        if ('method' in message && message.method === HANDSHAKE_METHODS.initialized) this.initialized = true;
      } finally {
        this.#inflight--;
      }
    }
    this.#lastActivity = Date.now();
  }

  async close(reason: CloseReason): Promise<void> {
    const wasClosed = this.#closed;
    this.#closed = true;
    for (const req of this.#streams) req.destroy();
    this.#streams.clear();
    if (wasClosed && reason !== 'deleted') return;
    if (this.upstreamSessionId === undefined) return;
    // Tell the upstream to free the session (spec §Session Management 5). Best effort, bounded.
    try {
      const { req, res } = await this.connector.request('DELETE', { [SESSION_ID_HEADER]: this.upstreamSessionId });
      await readAll(req, res, MAX_ERROR_BODY, 2_000).catch(() => undefined);
    } catch (err) {
      this.connector.logger.debug({ err: (err as Error).message, reason }, 'upstream DELETE failed');
    }
  }
}

/** Whether an upstream 400/404 means "I do not know this session" (SDK 1.x and server-everything wording). */
function isLostSession(status: number, body: Buffer): boolean {
  if (status === 404) return true;
  if (status !== 400) return false;
  const text = body.toString('utf8', 0, Math.min(body.length, 4096));
  return /session|not initialized/i.test(text);
}

/** Pipes an upstream response to the client unbuffered; resolves when either side is done. */
function pipeResponse(res: IncomingMessage, out: ServerResponse): Promise<void> {
  const headers = forwardableResponseHeaders(res.headers);
  out.writeHead(res.statusCode ?? 502, headers);
  const contentType = headerValue(res.headers, 'content-type') ?? '';
  if (contentType.includes('text/event-stream')) out.flushHeaders();
  return new Promise<void>((resolve) => {
    res.on('error', () => out.destroy());
    res.on('aborted', () => out.destroy());
    res.pipe(out);
    finished(out, () => {
      res.destroy();
      resolve();
    });
  });
}

/** Reads a whole response body with a size and time limit. */
function readAll(req: ClientRequest, res: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      req.destroy();
      reject(new UpstreamError(`upstream reply not complete within ${timeoutMs} ms`, 504));
    }, timeoutMs);
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        clearTimeout(timer);
        req.destroy();
        reject(new UpstreamError(`upstream reply larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks, size));
    });
    res.on('error', (err) => {
      clearTimeout(timer);
      reject(new UpstreamError(`upstream reply failed: ${err.message}`, 502, { cause: err }));
    });
    res.on('aborted', () => {
      clearTimeout(timer);
      reject(new UpstreamError('upstream reply aborted'));
    });
  });
}

/** Finds the JSON-RPC response with `id` in a buffered JSON or SSE body. */
export function extractResponse(res: IncomingMessage, body: Buffer, id: JsonRpcId): JsonRpcResponse | undefined {
  const contentType = headerValue(res.headers, 'content-type') ?? '';
  const candidates: unknown[] = [];
  try {
    if (contentType.includes('text/event-stream')) {
      for (const ev of new SseParser().feed(body.toString('utf8') + '\n\n')) {
        if (ev.event === 'message' && ev.data) candidates.push(JSON.parse(ev.data));
      }
    } else {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (Array.isArray(parsed)) candidates.push(...parsed);
      else candidates.push(parsed);
    }
  } catch {
    return undefined;
  }
  for (const c of candidates) {
    if (classifyMessage(c) === 'response' && (c as JsonRpcResponse).id === id) return c as JsonRpcResponse;
  }
  return undefined;
}
