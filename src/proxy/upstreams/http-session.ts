import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  appendStandalone,
  classifyMessage,
  HANDSHAKE_METHODS,
  isRequest,
  LAST_EVENT_ID_HEADER,
  PROTOCOL_VERSION_HEADER,
  SESSION_ID_HEADER,
  sessionFingerprint,
  toClientMessage,
  type JsonRpcMessage,
  type JsonRpcResponse,
} from '@mcp-migrate/runtime';
import { rawHeader, relayResponse, responseHeaders, HEAD_DEFER_MS } from '../http/relay.js';
import { forwardableRequestHeaders } from '../http/util.js';
import { isMessageEvent, readSse, type SseEvent } from '../http/sse.js';
import { ClientSseWriter, type MessageTarget } from '../http/sse-writer.js';
import {
  UpstreamError,
  UpstreamLostSessionError,
  type AppliedState,
  type ClientPost,
  type CloseReason,
  type ExchangeSink,
  type ForwardResult,
  type UpstreamSession,
} from './upstream.js';

import type { HttpUpstreamConnector } from './http.js';
import {
  extractResponse,
  isLostSession,
  MAX_BUFFERED_REPLY,
  MAX_ERROR_BODY,
  postHeaders,
  readAll,
  RESPONSE_DROP,
  RUNTIME_DROP,
  STANDALONE_MAX_FAILURES,
  STANDALONE_MIN_LIFETIME_MS,
  STORED_STREAM_GRACE_MS,
} from './http-read.js';

/** One upstream session of the HTTP upstream (see {@link HttpUpstreamConnector}). */
export class HttpUpstreamSession implements UpstreamSession {
  initialized = false;
  initializeResult: Record<string, unknown> | undefined;
  applied: AppliedState;
  #closed = false;
  #inflight = 0;
  #lastActivity = Date.now();
  readonly #streams = new Set<ClientRequest>();
  readonly #log: Logger;
  /** The client's headers of the latest exchange (for `Authorization` on requests the proxy makes itself). */
  #clientHeaders: IncomingHttpHeaders;
  /** Background standalone GET (see {@link startStandalone}). */
  #standalone: ClientRequest | undefined;
  #standaloneTimer: NodeJS.Timeout | undefined;
  #standaloneFailures = 0;
  #standaloneStopped = false;
  /** The upstream's id of the last event on its standalone stream, sent back as `Last-Event-ID` on reconnect. */
  #standaloneLastEventId: string | undefined;

  constructor(
    readonly connector: HttpUpstreamConnector,
    readonly sessionId: string,
    /** The upstream's own session id; undefined for a sessionless upstream. */
    readonly upstreamSessionId: string | undefined,
    applied: AppliedState,
    /** The session's negotiated protocol version. */
    readonly protocolVersion: string,
    clientHeaders: IncomingHttpHeaders,
  ) {
    this.applied = applied;
    this.#clientHeaders = clientHeaders;
    this.#log = connector.logger.child({ session: sessionFingerprint(sessionId) });
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

  /** Headers of a request the proxy makes itself on this session (reply POST, standalone GET). */
  #ownHeaders(extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const h = this.#headers({ ...forwardableRequestHeaders(this.#clientHeaders, RUNTIME_DROP), [PROTOCOL_VERSION_HEADER]: this.protocolVersion, ...extra });
    if (h.authorization === undefined && this.connector.basicAuth !== undefined) h.authorization = this.connector.basicAuth;
    return h;
  }

  post(post: ClientPost): Promise<ForwardResult> {
    const c = this.connector;
    this.#clientHeaders = post.req.headers;
    const headers = postHeaders(post.req.headers, c.hostHeader, c.basicAuth, this.upstreamSessionId, post.raw.length);
    let expected = 0;
    for (const m of post.messages) if (isRequest(m)) expected++;
    return this.#exchange(headers, post.raw, post.res, expected);
  }

  /** The bookkeeping when an upstream POST ends, however it ends: no longer in flight, and the session was active now. */
  #requestEnded(req: ClientRequest): void {
    this.#streams.delete(req);
    this.#inflight--;
    this.#lastActivity = Date.now();
  }

  /**
   * One client POST: sends it upstream and relays the answer. Resolves `done` once the client's
   * response is over (or the client went away), `lost` if the upstream no longer knows the session
   * (nothing written to the client then). Rejects with {@link UpstreamError} if the upstream could not
   * be reached. JSON and other non-SSE answers are relayed byte for byte; SSE answers go through
   * {@link ClientSseWriter} (see {@link #relaySse}). Callback-based rather than `await`-based: this
   * is the per-request hot path.
   */
  #exchange(headers: string[], body: Buffer, out: ServerResponse, expected: number): Promise<ForwardResult> {
    this.#inflight++;
    this.#lastActivity = Date.now();
    return new Promise<ForwardResult>((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = this.connector.send('POST', headers, body);
      } catch (err) {
        this.#inflight--;
        reject(err);
        return;
      }
      this.#streams.add(req);
      let settled = false;
      let responded = false;
      let writer: ClientSseWriter | undefined;
      let grace: NodeJS.Timeout | undefined;
      const settle = (result: ForwardResult | UpstreamError) => {
        if (settled) return;
        settled = true;
        if (grace) clearTimeout(grace);
        out.off('close', onClientClose);
        this.#requestEnded(req);
        if (result instanceof UpstreamError) reject(result);
        else resolve(result);
      };
      // The client went away before its answer was complete: abort the upstream request too, unless
      // the answer is a stored stream the client can resume (then read on, for a bounded time).
      const onClientClose = () => {
        if (out.writableFinished) return settle('done');
        if (writer?.stored) {
          grace = setTimeout(() => {
            req.destroy();
            settle('done');
          }, STORED_STREAM_GRACE_MS);
          grace.unref();
          return;
        }
        req.destroy();
        settle('done');
      };
      out.once('close', onClientClose);
      req.once('error', (err) => {
        // Once the answer has started, a failure surfaces on the response and ends the client's too.
        if (!responded) settle(new UpstreamError(`upstream POST failed: ${err.message}`, 502, { cause: err }));
      });
      req.once('response', (res) => {
        responded = true;
        if (out.destroyed) {
          req.destroy();
          settle('done');
          return;
        }
        const status = res.statusCode ?? 502;
        if (status === 404 || status === 400) {
          // Buffer the (small) error to tell "upstream lost the session" from a genuine 400.
          readAll(req, res, MAX_ERROR_BODY, this.connector.handshakeTimeoutMs).then((errBody) => {
            if (this.upstreamSessionId !== undefined && isLostSession(status, errBody)) {
              this.#closed = true;
              settle('lost');
              return;
            }
            out.writeHead(status, responseHeaders(res.rawHeaders, RESPONSE_DROP, errBody.length));
            out.end(errBody);
          }, settle);
          return;
        }
        const contentType = rawHeader(res.rawHeaders, 'content-type');
        if (status === 200 && contentType !== undefined && contentType.startsWith('text/event-stream')) {
          writer = new ClientSseWriter({
            res: out,
            head: (contentLength) => out.writeHead(status, responseHeaders(res.rawHeaders, RESPONSE_DROP, contentLength)),
            context: this.connector.context,
            sessionId: this.sessionId,
            expected,
            headDeferMs: HEAD_DEFER_MS,
          });
          const w = writer;
          this.#readSse(res, w, () => {
            void w.finish().then(() => settle('done'));
          }, () => {
            out.destroy();
            settle('done');
          });
          return;
        }
        relayResponse(res, out, { drop: RESPONSE_DROP, flushHead: false });
      });
    });
  }

  /**
   * Reads an upstream SSE answer: the JSON-RPC messages of its events go to `target` (server messages as
   * the client must see them: `toClientMessage`), upstream event ids and priming events are dropped.
   * `onEnd` runs when the answer is complete, `onError` if it broke off.
   */
  #readSse(res: IncomingMessage, target: MessageTarget, onEnd: () => void, onError: () => void, onEvent?: (ev: SseEvent) => void): void {
    readSse(res, (ev) => this.#dispatch(ev, target, onEvent), onEnd, onError);
  }

  #dispatch(ev: SseEvent, target: MessageTarget, onEvent?: (ev: SseEvent) => void): void {
    onEvent?.(ev);
    if (!isMessageEvent(ev)) return;
    // Fast path of a POST answer: one JSON object without "method" is a response; it is passed on
    // as it is (no parse) unless the stream is stored.
    if (target instanceof ClientSseWriter && ev.data.charCodeAt(0) === 123 /* { */ && !ev.data.includes('"method"')) {
      target.responseText(ev.data);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(ev.data);
    } catch {
      this.#log.warn({ data: ev.data.slice(0, 200) }, 'upstream sent an SSE event that is not JSON; ignored');
      return;
    }
    if (Array.isArray(value)) for (const v of value) this.#dispatchOne(v, undefined, target);
    else this.#dispatchOne(value, ev.data, target);
  }

  #dispatchOne(value: unknown, text: string | undefined, target: MessageTarget): void {
    const kind = classifyMessage(value);
    if (kind === undefined) return void this.#log.warn('upstream sent an SSE event that is not a JSON-RPC message; ignored');
    if (kind === 'response') return target.response(value as JsonRpcResponse, text);
    target.message(toClientMessage(this.connector.context.router, this.sessionId, value as JsonRpcMessage, (r) => this.#reply(r)));
  }

  /** Sends the client's answer to a server-initiated request (original id restored) to the upstream session. */
  #reply(response: JsonRpcResponse): void {
    if (this.#closed) return;
    const body = JSON.stringify(response);
    const headers = this.#ownHeaders({ accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    this.connector.request('POST', headers, body).then(
      async ({ req, res }) => {
        const answer = await readAll(req, res, MAX_ERROR_BODY, this.connector.handshakeTimeoutMs).catch(() => Buffer.alloc(0));
        const status = res.statusCode ?? 502;
        if (this.upstreamSessionId !== undefined && isLostSession(status, answer)) this.#closed = true;
        if (status < 200 || status >= 300) this.#log.warn({ status }, 'upstream refused the answer to its request');
      },
      (err: Error) => this.#log.warn({ err: err.message }, 'could not pass the answer to a server-initiated request upstream'),
    );
  }

  async exchange(
    messages: JsonRpcMessage[],
    protocolVersion: string,
    headers: IncomingHttpHeaders,
    sink: ExchangeSink,
    signal?: AbortSignal,
  ): Promise<ForwardResult> {
    if (this.#closed) return 'lost';
    this.#clientHeaders = headers;
    let delivered = false;
    const target: MessageTarget = {
      message: (m) => {
        delivered = true;
        sink.message(m);
      },
      response: (m) => {
        delivered = true;
        sink.response(m);
      },
    };
    const results = await Promise.all(messages.map((m) => this.#exchangeOne(m, protocolVersion, headers, target, signal)));
    if (!results.includes('lost')) return 'done';
    if (delivered) throw new UpstreamLostSessionError('upstream lost the session during an exchange');
    return 'lost';
  }

  /** One message of {@link exchange}: a POST of its own, its answer (202, JSON or SSE) read into `target`. */
  #exchangeOne(message: JsonRpcMessage, protocolVersion: string, clientHeaders: IncomingHttpHeaders, target: MessageTarget, signal?: AbortSignal): Promise<ForwardResult> {
    const body = JSON.stringify(message);
    const headers = this.#headers({
      ...forwardableRequestHeaders(clientHeaders, RUNTIME_DROP),
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      [PROTOCOL_VERSION_HEADER]: protocolVersion,
    });
    if (headers.authorization === undefined && this.connector.basicAuth !== undefined) headers.authorization = this.connector.basicAuth;
    this.#inflight++;
    this.#lastActivity = Date.now();
    return new Promise<ForwardResult>((resolve, reject) => {
      if (signal?.aborted) {
        this.#inflight--;
        resolve('done');
        return;
      }
      const req = this.connector.send('POST', headers, body);
      this.#streams.add(req);
      let settled = false;
      const settle = (result: ForwardResult | UpstreamError) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        this.#requestEnded(req);
        if (result instanceof UpstreamError) reject(result);
        else resolve(result);
      };
      const onAbort = () => {
        req.destroy();
        settle('done');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('error', (err) => settle(new UpstreamError(`upstream POST failed: ${err.message}`, 502, { cause: err })));
      req.once('response', (res) => {
        const status = res.statusCode ?? 502;
        const contentType = rawHeader(res.rawHeaders, 'content-type') ?? '';
        if (status >= 200 && status < 300 && contentType.startsWith('text/event-stream')) {
          this.#readSse(res, target, () => settle('done'), () => settle(new UpstreamError('upstream SSE answer broke off')));
          return;
        }
        readAll(req, res, MAX_BUFFERED_REPLY, this.connector.handshakeTimeoutMs).then((answer) => {
          if (this.upstreamSessionId !== undefined && (status === 404 || status === 400) && isLostSession(status, answer)) {
            this.#closed = true;
            settle('lost');
            return;
          }
          let found = false;
          if (answer.length > 0 && contentType.includes('json')) {
            try {
              const parsed: unknown = JSON.parse(answer.toString('utf8'));
              for (const v of Array.isArray(parsed) ? parsed : [parsed]) {
                if (classifyMessage(v) === 'response') {
                  found = true;
                  target.response(v as JsonRpcResponse);
                }
              }
            } catch {
              /* not JSON after all */
            }
          }
          if ((status < 200 || status >= 300) && !found) settle(new UpstreamError(`upstream answered HTTP ${status}`));
          else settle('done');
        }, settle);
      });
    });
  }

  /**
   * Opens the upstream session's standalone stream (a background `GET`, spec §Listening for Messages
   * from the Server) and resolves once its answer head arrived, or it failed, or after the handshake
   * timeout. Its messages are appended to the session's standalone stream, where the client's GET
   * follows them on any replica; server-initiated requests get client-facing ids. A `405` means the
   * upstream offers none. When it ends or fails, it reconnects with backoff (`Last-Event-ID` of its
   * last upstream event), giving up after {@link STANDALONE_MAX_FAILURES} failures in a row.
   */
  startStandalone(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.connector.handshakeTimeoutMs);
      timer.unref();
      this.#openStandalone(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #openStandalone(onHead?: () => void): void {
    let head = onHead;
    const headArrived = () => {
      head?.();
      head = undefined;
    };
    if (this.#closed || this.#standaloneStopped) return headArrived();
    const headers = this.#ownHeaders({
      accept: 'text/event-stream',
      ...(this.#standaloneLastEventId !== undefined ? { [LAST_EVENT_ID_HEADER]: this.#standaloneLastEventId } : {}),
    });
    let req: ClientRequest;
    try {
      req = this.connector.send('GET', headers);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not open the upstream standalone stream');
      headArrived();
      return;
    }
    this.#standalone = req;
    const opened = Date.now();
    req.once('error', () => {
      headArrived();
      this.#standaloneEnded(req, opened, false);
    });
    req.once('response', (res) => {
      headArrived();
      const status = res.statusCode ?? 502;
      const contentType = res.headers['content-type'] ?? '';
      if (status === 405) {
        res.resume();
        this.#standaloneStopped = true;
        this.#log.debug('upstream offers no standalone stream (405)');
        return;
      }
      if (status === 200 && contentType.startsWith('text/event-stream')) {
        const ctx = this.connector.context;
        const target: MessageTarget = {
          message: (m) => {
            ctx.onStandaloneMessage?.();
            appendStandalone(ctx.streams, this.sessionId, m).catch((err: Error) => {
              this.#log.warn({ err: err.message }, 'could not store a message of the upstream standalone stream; lost');
            });
          },
          // A standalone stream carries no responses (except when resuming, and ours are not).
          response: () => undefined,
        };
        this.#readSse(
          res,
          target,
          () => this.#standaloneEnded(req, opened, true),
          () => this.#standaloneEnded(req, opened, true),
          (ev) => {
            if (ev.id !== undefined) this.#standaloneLastEventId = ev.id;
          },
        );
        return;
      }
      readAll(req, res, MAX_ERROR_BODY, this.connector.handshakeTimeoutMs).then(
        (body) => {
          if (this.upstreamSessionId !== undefined && (status === 404 || status === 400) && isLostSession(status, body)) {
            this.#closed = true;
            this.#standaloneStopped = true;
            this.#log.info({ status }, 'upstream lost the session (standalone stream refused)');
            return;
          }
          this.#log.debug({ status }, 'upstream refused the standalone stream');
          this.#standaloneEnded(req, opened, false);
        },
        () => this.#standaloneEnded(req, opened, false),
      );
    });
  }

  #standaloneEnded(req: ClientRequest, opened: number, wasOpen: boolean): void {
    if (this.#standalone !== req) return;
    this.#standalone = undefined;
    if (this.#closed || this.#standaloneStopped) return;
    if (wasOpen && Date.now() - opened >= STANDALONE_MIN_LIFETIME_MS) this.#standaloneFailures = 0;
    else this.#standaloneFailures++;
    if (this.#standaloneFailures >= STANDALONE_MAX_FAILURES) {
      this.#standaloneStopped = true;
      this.#log.warn({ failures: this.#standaloneFailures }, 'giving up the upstream standalone stream');
      return;
    }
    const delay = this.#standaloneFailures === 0 ? 0 : Math.min(250 * 2 ** (this.#standaloneFailures - 1), 4_000);
    this.#standaloneTimer = setTimeout(() => {
      this.#standaloneTimer = undefined;
      this.#openStandalone();
    }, delay);
    this.#standaloneTimer.unref();
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
        const { req, res } = await this.connector.request('POST', headers, body, this.connector.handshakeTimeoutMs);
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

  /** The upstream's own session id and `InitializeResult`: all another replica needs to go on with it (`HttpUpstreamConnector.adopt`). */
  handover(): string | undefined {
    if (this.#closed) return undefined;
    return JSON.stringify({
      upstreamSessionId: this.upstreamSessionId ?? null,
      initializeResult: this.initializeResult ?? null,
      standaloneLastEventId: this.#standaloneLastEventId ?? null,
    });
  }

  /** Before {@link startStandalone}: resume the upstream's standalone stream after this event id (a session handed over). */
  resumeStandaloneAfter(eventId: string): void {
    this.#standaloneLastEventId = eventId;
  }

  async close(reason: CloseReason): Promise<void> {
    const wasClosed = this.#closed;
    this.#closed = true;
    this.#standaloneStopped = true;
    if (this.#standaloneTimer) clearTimeout(this.#standaloneTimer);
    this.#standalone?.destroy();
    this.#standalone = undefined;
    this.connector.context.router.forget(this.sessionId);
    for (const req of this.#streams) req.destroy();
    this.#streams.clear();
    if ((wasClosed && reason !== 'deleted') || reason === 'handover') return;
    if (this.upstreamSessionId === undefined) return;
    // Tell the upstream to free the session (spec §Session Management 5). Best effort, bounded.
    try {
      const { req, res } = await this.connector.request('DELETE', { [SESSION_ID_HEADER]: this.upstreamSessionId }, undefined, 2_000);
      await readAll(req, res, MAX_ERROR_BODY, 2_000).catch(() => undefined);
    } catch (err) {
      this.connector.logger.debug({ err: (err as Error).message, reason }, 'upstream DELETE failed');
    }
  }
}

