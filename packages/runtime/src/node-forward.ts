import http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { FORWARDED_HEADER, MISDIRECTED_HEADER } from './forwarding-mac.js';
import { FORWARD_DROP_HEADERS, HOP_BY_HOP_HEADERS } from './owner-policy.js';

/**
 * What one forward to a session's owner came to (the same outcomes as the proxy's undici forward):
 * `done`: the owner answered and its answer was relayed (or the client went away); `down`: refused,
 * reset before any answer, or an invalid URL; `unreachable`: no TCP connection within the connect
 * timeout; `misdirected`: the owner answered 421 with `MISDIRECTED_HEADER` (it is not the owner).
 */
export type NodeForwardResult = 'done' | 'down' | 'unreachable' | 'misdirected';

export interface NodeForward {
  /** The owner's base URL (`http://HOST:PORT`, from the replica registry). */
  url: string;
  /** The signed {@link FORWARDED_HEADER} value (`ForwardingMac.header`). */
  forwarded: string;
  req: IncomingMessage;
  res: ServerResponse;
  /**
   * The request body when the server's code already read it (`req.body` of express.json(), or a parsed
   * body it passes on): sent as is (`Buffer`, string) or as JSON. `undefined`: the request stream is
   * still unread and is read here.
   */
  body: unknown;
  /** Keep-alive connections to owners. */
  agent: http.Agent;
  /** Longest wait for the TCP connection, ms. */
  connectTimeoutMs: number;
}

const RESPONSE_DROP: ReadonlySet<string> = new Set(HOP_BY_HOP_HEADERS);

/** Errors of a reused keep-alive connection that the owner closed or reset before any answer (nothing reached it). */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Forwards the client's HTTP request to the session's owner over node:http and streams the owner's
 * answer back unbuffered (a GET SSE stream stays open as long as both sides do). Never rejects. An
 * unread request body is read first (MCP bodies are JSON-RPC messages), so that a reused keep-alive
 * connection the owner closed before answering is retried once on a fresh one, as the proxy does. A 421
 * carrying {@link MISDIRECTED_HEADER} is not relayed: the caller reloads the record and routes again.
 * Once the owner's status line was relayed, a broken answer ends the client's response (a GET stream
 * ends, the client reconnects; spec §Resumability and Redelivery).
 */
export async function forwardToOwner(f: NodeForward): Promise<NodeForwardResult> {
  let target: URL;
  try {
    target = new URL(f.url);
  } catch {
    return 'down';
  }
  let payload = encodeBody(f.body);
  if (payload === undefined && !f.req.readableEnded) {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of f.req) chunks.push(chunk as Buffer);
    } catch {
      return 'done'; // the client went away mid-body
    }
    payload = Buffer.concat(chunks);
  }
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(f.req.headers)) if (value !== undefined && !FORWARD_DROP_HEADERS.has(name)) headers[name] = value;
  headers[FORWARDED_HEADER] = f.forwarded;
  if (payload !== undefined && (payload.length > 0 || f.req.headers['content-length'] !== undefined || f.req.headers['transfer-encoding'] !== undefined)) headers['content-length'] = String(payload.length);
  const result = await attempt(f, target, headers, payload, f.agent);
  return result === 'retry' ? await attempt(f, target, headers, payload, false).then((r) => (r === 'retry' ? 'down' : r)) : result;
}

/** One request to the owner; `retry`: a reused keep-alive connection was reset before any answer. */
function attempt(f: NodeForward, target: URL, headers: OutgoingHttpHeaders, payload: Buffer | undefined, agent: http.Agent | false): Promise<NodeForwardResult | 'retry'> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: NodeForwardResult | 'retry'): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const out = http.request({ host: target.hostname.replace(/^\[|\]$/g, ''), port: target.port || 80, method: f.req.method, path: f.req.url ?? '/', headers, agent });
    const timer = setTimeout(() => {
      out.destroy(Object.assign(new Error('connect timeout'), { code: 'ECONNECTTIMEOUT' }));
    }, f.connectTimeoutMs);
    out.once('socket', (socket) => {
      if (!socket.connecting) clearTimeout(timer);
      else socket.once('connect', () => clearTimeout(timer));
    });
    const onClientGone = (): void => {
      if (!f.res.writableFinished) out.destroy();
      settle('done');
    };
    f.res.once('close', onClientGone);
    out.once('response', (answer) => {
      clearTimeout(timer);
      if (answer.statusCode === 421 && answer.headers[MISDIRECTED_HEADER] !== undefined) {
        answer.resume();
        f.res.off('close', onClientGone);
        return settle('misdirected');
      }
      settle('done');
      relay(answer, f.res);
    });
    out.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      f.res.off('close', onClientGone);
      if (settled) {
        if (!f.res.writableEnded) f.res.destroy();
        return;
      }
      if (out.reusedSocket && RESET_CODES.has(err.code ?? '') && !f.res.destroyed) return settle('retry');
      settle(err.code === 'ECONNECTTIMEOUT' ? 'unreachable' : 'down');
    });
    out.end(payload);
  });
}

/** Streams the owner's answer to the client: status, end-to-end headers, then the body as it comes. */
function relay(answer: IncomingMessage, res: ServerResponse): void {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !RESPONSE_DROP.has(name)) headers[name] = value;
  res.writeHead(answer.statusCode ?? 502, headers);
  if (String(answer.headers['content-type'] ?? '').includes('text/event-stream')) res.flushHeaders();
  answer.pipe(res);
  answer.once('error', () => res.destroy());
  answer.once('aborted', () => res.destroy());
  res.once('close', () => {
    if (!answer.complete) answer.destroy();
  });
}

/** The bytes of a body the server's code already read: a Buffer or string as is, anything else as JSON. */
function encodeBody(body: unknown): Buffer | undefined {
  if (body === undefined) return undefined;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}
