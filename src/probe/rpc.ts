/**
 * Raw JSON-RPC over HTTP, for what the SDK clients will not send: a made-up `Mcp-Session-Id`, a
 * request after `DELETE`, `server/discover` and malformed 2026-07-28 requests whose exact error the
 * checks compare. Goes through the recording fetch, so every exchange is recorded like the SDK's.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { ExchangeLog } from './exchange-log.js';
import type { Exchange } from './types.js';

export interface RawAnswer {
  /** The recorded exchange (status, replica, JSON-RPC error of a ≥ 400 answer, or the network failure). */
  ex: Exchange;
  /** The JSON-RPC message answering the request (a JSON body, or the response on an SSE body), if any. */
  message?: { id?: unknown; result?: Record<string, unknown>; error?: { code?: unknown; message?: unknown; data?: unknown } };
}

/** `Accept` of every POST (spec §Sending Messages to the Server: both media types). */
const ACCEPT = 'application/json, text/event-stream';

/**
 * POSTs `body` (a JSON-RPC message) to `url` with `headers`, and reads the answer: a JSON body, or the
 * first response on an SSE body (the stream is then cancelled). Never throws.
 */
export async function postRaw(log: ExchangeLog, url: URL, body: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const before = log.exchanges.length;
  let res: Response;
  try {
    res = await log.fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers }, body: JSON.stringify(body) });
  } catch {
    return { ex: log.exchanges[before]! };
  }
  const ex = log.exchanges[before]!;
  try {
    const message = await readMessage(res);
    return message ? { ex, message } : { ex };
  } catch {
    return { ex };
  }
}

/** Sends a request without a body (`GET`, `DELETE`) and discards the answer's body. Never throws. */
export async function sendBare(log: ExchangeLog, url: URL, method: 'GET' | 'DELETE', headers: Record<string, string> = {}): Promise<Exchange> {
  const before = log.exchanges.length;
  try {
    const res = await log.fetch(url, { method, headers: { accept: method === 'GET' ? 'text/event-stream' : ACCEPT, ...headers } });
    await res.body?.cancel().catch(() => undefined);
  } catch {
    // recorded as a network failure
  }
  return log.exchanges[before]!;
}

async function readMessage(res: Response): Promise<RawAnswer['message']> {
  const type = res.headers.get('content-type') ?? '';
  if (!res.body) return undefined;
  if (/text\/event-stream/i.test(type)) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return undefined;
        const msg = parse(value.data);
        if (msg && ('result' in msg || 'error' in msg)) return msg;
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }
  return parse(await res.text());
}

function parse(text: string): RawAnswer['message'] {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as RawAnswer['message']) : undefined;
  } catch {
    return undefined;
  }
}
