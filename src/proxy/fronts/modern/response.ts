import type { ServerResponse } from 'node:http';
import type { JsonRpcErrorObject, JsonRpcId, JsonRpcMessage } from '@mcp-migrate/runtime';
import { SSE_KEEPALIVE } from '../../http/sse.js';

/** Headers of every SSE response the modern front writes (spec `streamable-http.mdx` §Receiving Messages). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
} as const;

/** One SSE event with one JSON-RPC message; 2026-07-28 streams carry no event ids (not resumable). */
export function sseEvent(message: JsonRpcMessage): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/**
 * The answer to one modern request: a single `application/json` body if the response is the first
 * message, or a `text/event-stream` that starts with the first related notification and ends after the
 * response (spec `streamable-http.mdx` §Sending Messages 6, §Receiving Messages). Notifications are
 * dropped when the client did not accept SSE.
 */
export class ModernResponse {
  #streaming = false;

  constructor(
    readonly res: ServerResponse,
    readonly acceptsSse: boolean,
  ) {}

  /** True once the response is complete or the client went away. */
  get done(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** True once SSE framing started (a later error goes in-band). */
  get streaming(): boolean {
    return this.#streaming;
  }

  /** A notification related to the request, before its response. */
  notify(message: JsonRpcMessage): void {
    if (this.done || !this.acceptsSse) return;
    if (!this.#streaming) {
      this.#streaming = true;
      this.res.writeHead(200, SSE_HEADERS);
      this.res.flushHeaders();
    }
    this.res.write(sseEvent(message));
  }

  /** The response; ends the HTTP response. `status` applies only if nothing was streamed yet. */
  final(message: JsonRpcMessage, status = 200): void {
    if (this.done) return;
    if (this.#streaming) {
      this.res.end(sseEvent(message));
      return;
    }
    const body = JSON.stringify(message);
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    this.res.end(body);
  }

  /** An error response for request `id`. */
  error(status: number, id: JsonRpcId | null, error: JsonRpcErrorObject): void {
    this.final({ jsonrpc: '2.0', id, error } as JsonRpcMessage, status);
  }
}

/** Writes an SSE comment every `everyMs` until the response ends (long-lived streams behind proxies). */
export function keepAlive(res: ServerResponse, everyMs: number): () => void {
  const timer = setInterval(() => {
    if (!res.writableEnded && !res.destroyed) res.write(SSE_KEEPALIVE);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
