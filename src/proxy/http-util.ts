import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { errorResponse, type JsonRpcId } from '@mcp-migrate/runtime';

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus those the proxy always rewrites. Lower-case. */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);

/** Client request headers never forwarded as they are on a forwarded exchange (see {@link upstreamRequestHeaders}). */
const FORWARD_DROP = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length', 'accept-encoding', 'mcp-session-id', 'content-type', 'authorization']);

/**
 * The headers of a forwarded client exchange (POST or GET), as a flat `[name, value, …]` list for
 * `http.request`: the same set {@link forwardableRequestHeaders} keeps, plus `host`, the upstream's own
 * session id and, for a body, `content-type: application/json` and its length. `basicAuth` (from
 * credentials in the upstream URL) is sent only when the client sent no `Authorization`.
 * Built in one pass without intermediate objects: this runs once per request.
 */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  host: string,
  basicAuth: string | undefined,
  upstreamSessionId: string | undefined,
  contentLength?: number,
): string[] {
  const out = ['host', host];
  for (const name in headers) {
    if (FORWARD_DROP.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  const auth = headers.authorization ?? basicAuth;
  if (auth !== undefined) out.push('authorization', auth);
  if (contentLength !== undefined) out.push('content-type', 'application/json', 'content-length', String(contentLength));
  else if (headers['content-type'] !== undefined) out.push('content-type', headers['content-type']);
  if (upstreamSessionId !== undefined) out.push('mcp-session-id', upstreamSessionId);
  return out;
}

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

/**
 * Sends a JSON-RPC error as the whole HTTP response (the shape SDK 1.x servers use for transport
 * errors: `{"jsonrpc":"2.0","error":{…},"id":null}`). No-op if headers were already sent.
 */
export function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  options: { id?: JsonRpcId | null; headers?: OutgoingHttpHeaders; data?: unknown } = {},
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = JSON.stringify(errorResponse(options.id ?? null, code, message, options.data));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...options.headers,
  });
  res.end(body);
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
