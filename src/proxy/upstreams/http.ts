import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  negotiatedProtocolVersion,
  handshakeReplay,
  SESSION_ID_HEADER,
  type JsonRpcRequest,
  type SessionRecord,
} from '@mcp-migrate/runtime';
import { HttpTarget } from '../http/relay.js';
import { forwardableRequestHeaders, forwardableResponseHeaders, headerValue } from '../http/util.js';
import {
  localUpstreamContext,
  UpstreamError,
  type AppliedState,
  type InitializeOutcome,
  type UpstreamConnector,
  type UpstreamContext,
  type UpstreamSession,
} from './upstream.js';

import { HttpUpstreamSession } from './http-session.js';
import { extractResponse, MAX_BUFFERED_REPLY, readAll, RUNTIME_DROP, withoutEventIds } from './http-read.js';

export interface HttpUpstreamOptions {
  /** The upstream MCP endpoint, `http://HOST:PORT/mcp` or `https://…`. */
  url: string;
  /** Time limit for each handshake message and for buffered replies, ms. */
  handshakeTimeoutMs: number;
  logger: Logger;
}

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
  /** The upstream origin over pooled keep-alive connections (the proxy's one HTTP relay). */
  readonly #target: HttpTarget;
  /** Path and query of the MCP endpoint. */
  readonly #path: string;
  /** `Host` header value for every upstream request. */
  readonly hostHeader: string;
  /** `Authorization` from credentials in the upstream URL, sent when the client sends none. */
  readonly basicAuth: string | undefined;
  #context: UpstreamContext | undefined;

  constructor(options: HttpUpstreamOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') {
      throw new TypeError(`upstream URL must be http: or https:, got ${this.url.protocol}`);
    }
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    this.logger = options.logger;
    this.#target = new HttpTarget(this.url);
    this.#path = this.url.pathname + this.url.search;
    this.hostHeader = this.#target.host;
    if (this.url.username || this.url.password) {
      this.basicAuth = `Basic ${Buffer.from(`${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}`).toString('base64')}`;
    }
  }

  attach(context: UpstreamContext): void {
    this.#context = context;
  }

  /** The proxy's streams and router (see {@link UpstreamContext}). */
  get context(): UpstreamContext {
    return (this.#context ??= localUpstreamContext(this.logger));
  }

  /**
   * Starts one request upstream and returns it; the caller listens for `response` and `error`.
   * `headers` is either an object (runtime-originated requests) or a flat `[name, value, …]` list that
   * must include `host` (the per-request hot path, which skips Node's per-header `setHeader` bookkeeping).
   */
  send(method: string, headers: OutgoingHttpHeaders | string[], body?: Buffer | string): ClientRequest {
    return this.#target.send(method, this.#path, headers, body);
  }

  /**
   * Sends one request upstream; resolves when the response head arrives. `headTimeoutMs`: the longest
   * wait for that head (the handshake's requests pass `handshakeTimeoutMs`), then the request is
   * destroyed and the promise rejects with a 504 {@link UpstreamError}: no client waits on an
   * upstream that accepted the connection but never answers.
   */
  request(method: string, headers: OutgoingHttpHeaders, body?: Buffer | string, headTimeoutMs?: number): Promise<UpstreamReply> {
    return new Promise((resolve, reject) => {
      const req = this.send(method, headers, body);
      const timer =
        headTimeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              reject(new UpstreamError(`upstream ${method} not answered within ${headTimeoutMs} ms`, 504));
              req.destroy();
            }, headTimeoutMs);
      req.once('response', (res) => {
        clearTimeout(timer);
        resolve({ req, res });
      });
      req.once('error', (err) => {
        clearTimeout(timer);
        reject(new UpstreamError(`upstream ${method} failed: ${err.message}`, 502, { cause: err }));
      });
    });
  }

  async initialize(args: { sessionId: string; req: IncomingMessage; raw: Buffer; message: JsonRpcRequest }): Promise<InitializeOutcome> {
    const headers: OutgoingHttpHeaders = {
      ...forwardableRequestHeaders(args.req.headers),
      'content-type': 'application/json',
      'content-length': args.raw.length,
    };
    const { req, res } = await this.request('POST', headers, args.raw, this.handshakeTimeoutMs);
    const body = await readAll(req, res, MAX_BUFFERED_REPLY, this.handshakeTimeoutMs);
    const status = res.statusCode ?? 502;
    const response = status >= 200 && status < 300 ? extractResponse(res, body, args.message.id) : undefined;
    const upstreamSid = headerValue(res.headers, SESSION_ID_HEADER);
    let session: HttpUpstreamSession | undefined;
    if (response && 'result' in response) {
      const negotiated = negotiatedProtocolVersion(response.result, args.message.params);
      session = new HttpUpstreamSession(this, args.sessionId, upstreamSid, { revision: 0, subscriptions: [] }, negotiated, args.req.headers);
      session.initializeResult = response.result;
      // Open before the client has the answer, so nothing the server sends after `initialized` is missed.
      await session.startStandalone();
    }
    // Upstream event ids and priming events mean nothing to the client: drop them.
    const answer = (headerValue(res.headers, 'content-type') ?? '').includes('text/event-stream') ? withoutEventIds(body) : body;
    return {
      ...(response ? { response } : {}),
      ...(session ? { session } : {}),
      respond: (out: ServerResponse, extra: OutgoingHttpHeaders) => {
        const h = forwardableResponseHeaders(res.headers);
        delete h['content-length'];
        out.writeHead(status, { ...h, 'content-length': answer.length, ...extra });
        out.end(answer);
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
    const { req, res } = await this.request('POST', headers, body, this.handshakeTimeoutMs);
    const reply = await readAll(req, res, MAX_BUFFERED_REPLY, this.handshakeTimeoutMs);
    const response = res.statusCode === 200 ? extractResponse(res, reply, (init as JsonRpcRequest).id) : undefined;
    if (!response || !('result' in response)) {
      throw new UpstreamError(
        `upstream refused the replayed initialize (HTTP ${res.statusCode}${response && 'error' in response ? `, ${response.error.message}` : ''})`,
      );
    }
    const session = new HttpUpstreamSession(this, args.sessionId, headerValue(res.headers, SESSION_ID_HEADER), appliedOf(args.record), args.record.protocolVersion, args.req.headers);
    session.initializeResult = response.result;
    try {
      // Before `initialized`, so what the server sends right after it (e.g. `roots/list`) is not missed.
      await session.startStandalone();
      await session.sendRuntime(rest, args.record.protocolVersion, args.req);
    } catch (err) {
      await session.close('failed');
      throw err;
    }
    session.initialized = true;
    return session;
  }

  async adopt(args: { sessionId: string; record: SessionRecord; handover: string; req: IncomingMessage }): Promise<UpstreamSession> {
    let h: { upstreamSessionId?: unknown; initializeResult?: unknown; standaloneLastEventId?: unknown };
    try {
      h = JSON.parse(args.handover) as typeof h;
    } catch {
      throw new UpstreamError('the upstream session handed over cannot be read');
    }
    const upstreamSid = typeof h.upstreamSessionId === 'string' ? h.upstreamSessionId : undefined;
    const session = new HttpUpstreamSession(this, args.sessionId, upstreamSid, appliedOf(args.record), args.record.protocolVersion, args.req.headers);
    if (h.initializeResult && typeof h.initializeResult === 'object') session.initializeResult = h.initializeResult as Record<string, unknown>;
    if (typeof h.standaloneLastEventId === 'string') session.resumeStandaloneAfter(h.standaloneLastEventId);
    session.initialized = true;
    await session.startStandalone();
    return session;
  }

  async close(): Promise<void> {
    this.#target.close();
  }
}

/** The replayable state a record's upstream session reflects once replayed or handed over. */
function appliedOf(record: SessionRecord): AppliedState {
  return {
    revision: record.revision,
    ...(record.loggingLevel !== undefined ? { loggingLevel: record.loggingLevel } : {}),
    subscriptions: [...record.subscriptions],
  };
}

