import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { classifyMessage, LAST_EVENT_ID_HEADER, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER, type JsonRpcId, type JsonRpcResponse } from '@mcp-migrate/runtime';
import { requestHeaders } from '../http/relay.js';
import { isMessageEvent, parseSse, sseMessageText } from '../http/sse.js';
import { headerValue, HOP_BY_HOP_HEADERS } from '../http/util.js';
import { UpstreamError } from './upstream.js';

/** The HTTP upstream's limits, request headers, and readings of buffered upstream answers. */

/** Largest upstream error body read to decide whether the upstream lost the session. */
export const MAX_ERROR_BODY = 64 * 1024;
/** Largest buffered reply (initialize, replayed handshake messages). */
export const MAX_BUFFERED_REPLY = 8 * 1024 * 1024;

/** Headers of the client that must not be reused on runtime-originated requests. */
export const RUNTIME_DROP = ['accept', 'content-type', PROTOCOL_VERSION_HEADER, LAST_EVENT_ID_HEADER, 'origin'];

/** Consecutive failures of an upstream standalone GET after which it is given up. */
export const STANDALONE_MAX_FAILURES = 5;
/** A standalone GET that ended sooner than this after opening counts as a failure (no busy reconnect loop). */
export const STANDALONE_MIN_LIFETIME_MS = 1_000;
/**
 * How long an upstream POST whose SSE answer is stored (resumable) is still read after the client
 * went away, ms: the client can resume it with `Last-Event-ID` meanwhile.
 */
export const STORED_STREAM_GRACE_MS = 10 * 60_000;

/** An SSE body without event ids and priming events: the JSON-RPC `message` events only. */
export function withoutEventIds(body: Buffer): Buffer {
  let out = '';
  for (const ev of parseSse(body.toString('utf8'))) if (isMessageEvent(ev)) out += sseMessageText(ev.data);
  return Buffer.from(out);
}

/** Whether an upstream 400/404 means "I do not know this session" (SDK 1.x and server-everything wording). */
export function isLostSession(status: number, body: Buffer): boolean {
  if (status === 404) return true;
  if (status !== 400) return false;
  const text = body.toString('utf8', 0, Math.min(body.length, 4096));
  return /session|not initialized/i.test(text);
}

/** Dropped from upstream answers: hop-by-hop headers and the upstream's own session id. */
export const RESPONSE_DROP: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, SESSION_ID_HEADER]);

/** Client request headers never forwarded as they are (see {@link postHeaders}). */
const POST_DROP: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length', 'accept-encoding', SESSION_ID_HEADER, 'content-type', 'authorization']);

/**
 * The headers of a relayed client POST: the client's end-to-end headers, plus `host`, the upstream's own
 * session id and `content-type: application/json` with the body's length. `basicAuth` (from credentials
 * in the upstream URL) is sent only when the client sent no `Authorization`.
 */
export function postHeaders(headers: IncomingHttpHeaders, host: string, basicAuth: string | undefined, upstreamSessionId: string | undefined, contentLength: number): string[] {
  const auth = headers.authorization ?? basicAuth;
  const extra = auth !== undefined ? ['authorization', auth] : [];
  extra.push('content-type', 'application/json', 'content-length', String(contentLength));
  if (upstreamSessionId !== undefined) extra.push(SESSION_ID_HEADER, upstreamSessionId);
  return requestHeaders(headers, host, POST_DROP, extra);
}

/** Reads a whole response body with a size and time limit. */
export function readAll(req: ClientRequest, res: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
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
      for (const ev of parseSse(body.toString('utf8'))) if (isMessageEvent(ev)) candidates.push(JSON.parse(ev.data));
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
