import type { ServerResponse } from 'node:http';
import type { JsonRpcMessage, JsonRpcResponse } from '@mcp-migrate/runtime';
import { newStreamId } from '@mcp-migrate/runtime';
import { sseMessage } from '@mcp-migrate/runtime';

// The framing shared with the runtime's GET-stream serving code (one definition, in the runtime).
export { SSE_HEADERS, SSE_KEEPALIVE, sseMessage, ssePriming } from '@mcp-migrate/runtime';
import type { UpstreamContext } from './upstream.js';

/**
 * Server-Sent Events framing (WHATWG HTML §9.2 "Server-sent events"), as the Streamable HTTP
 * transport uses it: `event: message` + `data: <one JSON-RPC message>` per event.
 */

export interface SseEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  /** `id:` field, if any. */
  id?: string;
}

/** Incremental SSE parser: feed it text chunks, it returns the events completed so far. */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  #sawField = false;

  feed(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      let nl = -1;
      for (let i = start; i < this.#buffer.length; i++) {
        const c = this.#buffer.charCodeAt(i);
        if (c === 10 || c === 13) {
          nl = i;
          break;
        }
      }
      if (nl < 0) break;
      // A lone '\r' at the end of the buffer may be the first half of '\r\n': wait for more.
      if (this.#buffer.charCodeAt(nl) === 13 && nl + 1 === this.#buffer.length) break;
      const line = this.#buffer.slice(start, nl);
      start = nl + (this.#buffer.charCodeAt(nl) === 13 && this.#buffer.charCodeAt(nl + 1) === 10 ? 2 : 1);
      this.#line(line, out);
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#sawField && this.#data.length > 0) {
        const ev: SseEvent = { event: this.#event || 'message', data: this.#data.join('\n') };
        if (this.#id !== undefined) ev.id = this.#id;
        out.push(ev);
      }
      this.#data = [];
      this.#event = '';
      this.#id = undefined;
      this.#sawField = false;
      return;
    }
    if (line.startsWith(':')) return; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.#sawField = true;
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') this.#id = value;
  }
}



/** One SSE `message` event carrying JSON text as it is (multi-line text becomes several `data:` lines). */
export function sseMessageText(json: string, id?: string): string {
  const data = json.includes('\n') ? json.split(/\r\n|\r|\n/).join('\ndata: ') : json;
  return `${id !== undefined ? `id: ${id}\n` : ''}event: message\ndata: ${data}\n\n`;
}



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
    if (options.headDeferMs !== undefined) {
      this.#headTimer = setTimeout(() => {
        this.#headTimer = undefined;
        const res = options.res;
        if (!this.#headSent && !res.destroyed) {
          this.#headSent = true;
          options.head();
          res.flushHeaders();
        }
      }, options.headDeferMs);
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
