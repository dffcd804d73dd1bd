import type { ServerResponse } from 'node:http';
import { newStreamId, sseMessage, type JsonRpcMessage, type JsonRpcResponse } from '@mcp-migrate/runtime';
import type { UpstreamContext } from '../upstreams/upstream.js';
import { sseMessageText } from './sse.js';

/** Receives the messages of one exchange in order: server messages first, then the responses. */
export interface MessageTarget {
  /** A server message before the responses (progress, logging, a server-initiated request with its client-facing id). */
  message(message: JsonRpcMessage): void;
  /** A response to one of the exchange's requests; `text` is its JSON text when the proxy has it unchanged. */
  response(message: JsonRpcResponse, text?: string): void;
}

export interface ClientSseWriterOptions {
  res: ServerResponse;
  /** Writes the response head; `contentLength` is given when the whole body is written at once. */
  head(contentLength?: number): void;
  context: UpstreamContext;
  sessionId: string;
  /** Responses that complete the exchange (the requests of the POST). */
  expected: number;
  /**
   * Send the head on its own if nothing was written after this long, ms, so a client waiting for a
   * slow first event sees the answer start. Default: no timer (the head goes with the first write).
   */
  headDeferMs?: number;
}

/**
 * Writes the SSE answer to one client POST (spec §Sending Messages to the Server: "the server MAY send
 * JSON-RPC requests and notifications before sending the JSON-RPC response").
 *
 * - While only responses come, they are written as plain `message` events without ids, one write per
 *   event-loop turn; an answer that is complete before its first write goes out in one write with a
 *   `Content-Length` (the common case: one response).
 * - From the first server message on, the POST stream is a *stored* session stream (a fresh stream
 *   id): each later event is appended (`SessionStreams.append`, in order) and written with its event
 *   id, the last response marked as the stream's end. The client can resume it with `Last-Event-ID`
 *   on any replica (spec §Resumability and Redelivery); if it goes away meanwhile, events are still
 *   stored. When the store cannot be reached the event is written without an id.
 */
export class ClientSseWriter implements MessageTarget {
  readonly #o: ClientSseWriterOptions;
  #pending: string[] = [];
  #scheduled = false;
  #headSent = false;
  #streamId: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  #remaining: number;
  #finished = false;
  #headTimer: NodeJS.Timeout | undefined;

  constructor(options: ClientSseWriterOptions) {
    this.#o = options;
    this.#remaining = options.expected;
    const deferMs = options.headDeferMs;
    if (deferMs !== undefined) {
      // Armed only if the answer is not over by the next turn (the usual answer is): no timer per request.
      setImmediate(() => {
        if (this.#headSent || this.#finished) return;
        this.#headTimer = setTimeout(() => {
          this.#headTimer = undefined;
          const res = options.res;
          if (!this.#headSent && !res.destroyed) {
            this.#headSent = true;
            options.head();
            res.flushHeaders();
          }
        }, deferMs);
      });
    }
  }

  /** Whether the stream is stored (resumable): the client going away must not abort the exchange. */
  get stored(): boolean {
    return this.#streamId !== undefined;
  }

  /** The stored stream's id, once there is one. */
  get streamId(): string | undefined {
    return this.#streamId;
  }

  message(message: JsonRpcMessage): void {
    if (this.#finished) return;
    if (this.#streamId === undefined) {
      this.#streamId = newStreamId();
      this.#flush();
    }
    this.#store(message, false);
  }

  response(message: JsonRpcResponse, text?: string): void {
    if (this.#finished) return;
    this.#remaining--;
    if (this.#streamId !== undefined) {
      this.#store(message, this.#remaining <= 0);
      return;
    }
    this.#queue(text !== undefined ? sseMessageText(text) : sseMessage(message));
  }

  /**
   * A response as JSON text, not parsed yet (the relay's fast path: an upstream event without
   * `"method"` in it is a response). Parsed only if the stream is stored.
   */
  responseText(text: string): void {
    if (this.#finished) return;
    if (this.#streamId !== undefined) {
      let message: JsonRpcResponse;
      try {
        message = JSON.parse(text) as JsonRpcResponse;
      } catch {
        return;
      }
      this.response(message, text);
      return;
    }
    this.#remaining--;
    this.#queue(sseMessageText(text));
  }

  #queue(text: string): void {
    this.#pending.push(text);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (!this.#finished && this.#streamId === undefined) this.#flush();
      });
    }
  }

  /** Ends the client's response once everything before has been written. */
  finish(): Promise<void> {
    if (this.#finished) return this.#chain;
    this.#finished = true;
    if (this.#headTimer) clearTimeout(this.#headTimer);
    const res = this.#o.res;
    if (this.#streamId === undefined) {
      if (res.destroyed || res.writableEnded) return this.#chain;
      if (!this.#headSent) {
        this.#headSent = true;
        const body = this.#pending.join('');
        this.#pending = [];
        this.#o.head(Buffer.byteLength(body));
        res.end(body);
      } else {
        this.#flush();
        res.end();
      }
      return this.#chain;
    }
    this.#chain = this.#chain.then(() => {
      if (!this.#headSent && !res.destroyed) {
        this.#headSent = true;
        this.#o.head();
      }
      if (!res.destroyed && !res.writableEnded) res.end();
    });
    return this.#chain;
  }

  #store(message: JsonRpcMessage, end: boolean): void {
    const { context, sessionId } = this.#o;
    const appended = context.streams.append(sessionId, this.#streamId!, message, end ? { end: true } : undefined).then(
      (e) => e.eventId,
      (err: unknown) => {
        context.logger.warn({ err: (err as Error).message }, 'could not store an event of a POST stream; sent without an id');
        return undefined;
      },
    );
    this.#chain = this.#chain.then(async () => this.#write(sseMessage(message, await appended)));
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('');
    this.#pending = [];
    this.#write(text);
  }

  #write(text: string): void {
    const res = this.#o.res;
    if (res.destroyed || res.writableEnded) return;
    if (!this.#headSent) {
      this.#headSent = true;
      if (this.#headTimer) clearTimeout(this.#headTimer);
      this.#o.head();
    }
    res.write(text);
  }
}
