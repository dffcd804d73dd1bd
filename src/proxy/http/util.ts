import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

import { HOP_BY_HOP_HEADERS } from '@mcp-migrate/runtime';

export { HOP_BY_HOP_HEADERS };
const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);

/**
 * Request headers to forward upstream: the client's end-to-end headers minus hop-by-hop ones,
 * `host`, `content-length` (recomputed), `accept-encoding` (the proxy reads some bodies, so it asks
 * for identity) and `mcp-session-id` (replaced by the upstream's own id).
 */
export function forwardableRequestHeaders(headers: IncomingHttpHeaders, drop: readonly string[] = []): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name === 'host' || name === 'content-length' || name === 'accept-encoding' || name === 'mcp-session-id') continue;
    if (drop.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Response headers to pass back to the client: upstream's minus hop-by-hop ones and `mcp-session-id`. */
export function forwardableResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name === 'mcp-session-id') continue;
    out[name] = value;
  }
  return out;
}

/** One header value as a string (repeated headers joined with `, `), or undefined. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

/** What the client's `Accept` header allows. A missing header accepts anything. */
export function acceptsOf(req: IncomingMessage): { json: boolean; sse: boolean } {
  const accept = req.headers.accept;
  if (!accept) return { json: true, sse: true };
  const a = accept.toLowerCase();
  const any = a.includes('*/*');
  return { json: any || a.includes('application/json'), sse: any || a.includes('text/event-stream') };
}

/** The body did not fit in `maxBytes`. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/**
 * Reads a request body into a Buffer, rejecting with {@link BodyTooLargeError} as soon as more than
 * `maxBytes` arrived (or `Content-Length` announces more). The rest of an oversized body is drained,
 * up to another `maxBytes`, so the client can read the 413; past that the socket is destroyed.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      drain(req, maxBytes);
      reject(new BodyTooLargeError(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        drain(req, maxBytes);
        reject(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function drain(req: IncomingMessage, limit: number): void {
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > limit) req.socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

/**
 * A signal that aborts when `res` closes before its answer was sent in full: the client went away
 * (its own request timeout, a closed connection, a load balancer's cut). `dispose()` stops watching.
 */
export function clientGoneSignal(res: ServerResponse): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) ctl.abort();
  };
  if (res.destroyed) onClose();
  else res.once('close', onClose);
  return { signal: ctl.signal, dispose: () => res.off('close', onClose) };
}
