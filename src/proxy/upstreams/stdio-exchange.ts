import type { ServerResponse } from 'node:http';
import { errorResponse, idKey, type JsonRpcId, type JsonRpcMessage, type JsonRpcResponse } from '@mcp-migrate/runtime';
import { SSE_HEADERS, sseMessage } from '../http/sse.js';
import { ClientSseWriter, type MessageTarget } from '../http/sse-writer.js';
import { type ExchangeSink, type UpstreamContext } from './upstream.js';

/** The exchanges of a stdio upstream session: what waits for the child's responses, and where they go (a client's HTTP response, or a message-level sink). */

/**
 * One exchange in flight (a client POST, or a message-level {@link StdioUpstreamSession.exchange}):
 * collects the responses to its requests and takes the server messages routed to it.
 */
export class PostExchange {
  readonly ids: JsonRpcId[];
  readonly #answered = new Set<string>();
  #done = false;
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor(
    readonly target: ExchangeTarget,
    ids: JsonRpcId[],
  ) {
    this.ids = ids;
    this.done = new Promise((r) => (this.#resolve = r));
  }

  get finished(): boolean {
    return this.#done;
  }

  /** Whether server messages can go on this exchange. */
  get canStream(): boolean {
    return !this.#done && this.target.canStream;
  }

  deliverResponse(message: JsonRpcResponse): void {
    if (this.#done) return;
    if (message.id !== null) this.#answered.add(idKey(message.id));
    this.target.response(message);
    if (this.#answered.size >= this.ids.length) this.#finish();
  }

  deliverOther(message: JsonRpcMessage): void {
    if (this.canStream) this.target.message(message);
  }

  /** Answers every request still unanswered with `error` (the child exited). */
  fail(code: number, message: string): void {
    for (const id of this.ids) if (!this.#answered.has(idKey(id))) this.deliverResponse(errorResponse(id, code, message));
  }

  /** The client went away: stop without writing (unless the answer is stored for a resume). */
  abandon(): void {
    if (this.target.stored) return;
    this.#done = true;
    this.#resolve();
  }

  #finish(): void {
    this.#done = true;
    void this.target.finish().then(() => this.#resolve());
  }
}

/** Where an exchange's messages go: the client's HTTP response, or an {@link ExchangeSink}. */
export interface ExchangeTarget extends MessageTarget {
  readonly canStream: boolean;
  /** The answer is a stored session stream: the exchange continues when the client goes away. */
  readonly stored: boolean;
  finish(): Promise<void>;
}

/**
 * The client's HTTP response to a POST: `application/json` when the responses are all there is,
 * `text/event-stream` as soon as a server message must go out first (spec §Sending Messages to the
 * Server: either is allowed), through {@link ClientSseWriter} (stored, resumable).
 */
export class HttpTarget implements ExchangeTarget {
  readonly #responses: JsonRpcResponse[] = [];
  #writer: ClientSseWriter | undefined;

  constructor(
    readonly res: ServerResponse,
    readonly accepts: { json: boolean; sse: boolean },
    readonly batch: boolean,
    readonly context: UpstreamContext,
    readonly sessionId: string,
    readonly expected: number,
  ) {}

  get canStream(): boolean {
    return this.accepts.sse && (this.#writer?.stored === true || !this.res.destroyed);
  }

  get stored(): boolean {
    return this.#writer?.stored === true;
  }

  message(message: JsonRpcMessage): void {
    if (!this.#writer) {
      const res = this.res;
      this.#writer = new ClientSseWriter({
        res,
        head: (contentLength) => res.writeHead(200, contentLength === undefined ? SSE_HEADERS : { ...SSE_HEADERS, 'content-length': contentLength }),
        context: this.context,
        sessionId: this.sessionId,
        expected: this.expected,
      });
      for (const r of this.#responses) this.#writer.response(r);
    }
    this.#writer.message(message);
  }

  response(message: JsonRpcResponse): void {
    if (this.#writer) this.#writer.response(message);
    else this.#responses.push(message);
  }

  async finish(): Promise<void> {
    if (this.#writer) return await this.#writer.finish();
    const res = this.res;
    if (res.destroyed) return;
    if (this.accepts.json || !this.accepts.sse) {
      const body = JSON.stringify(this.batch ? this.#responses : this.#responses[0]);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else {
      res.writeHead(200, SSE_HEADERS);
      res.end(this.#responses.map((r) => sseMessage(r)).join(''));
    }
  }
}

/** A message-level exchange's {@link ExchangeSink}. */
export class SinkTarget implements ExchangeTarget {
  readonly stored = false;
  #open = true;
  constructor(readonly sink: ExchangeSink) {}
  get canStream(): boolean {
    return this.#open;
  }
  message(message: JsonRpcMessage): void {
    if (this.#open) this.sink.message(message);
  }
  response(message: JsonRpcResponse): void {
    if (this.#open) this.sink.response(message);
  }
  async finish(): Promise<void> {
    this.#open = false;
  }
  close(): void {
    this.#open = false;
  }
}

