/**
 * Shared pieces of the reliability tests (fuzz, hijack, store faults) and the soak scripts:
 * a keep-alive HTTP client with bounded concurrency, raw MCP helpers, and process statistics read
 * from /proc (RSS, open file descriptors, child processes).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

import { INIT_PARAMS, PROTOCOL_VERSION } from '../helpers/protocol.js';

export { INIT_PARAMS, PROTOCOL_VERSION, pollUntil, sleep } from '../helpers/protocol.js';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  method?: string;
  /** Path (and query) on the target; default the URL's own path. */
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
}

/** A keep-alive HTTP/1.1 client for one origin, at most `maxSockets` requests in flight. */
export class KeepAliveClient {
  readonly agent: http.Agent;
  readonly target: URL;

  constructor(url: string, maxSockets = 16) {
    this.target = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(r: RawRequest = {}): Promise<RawResponse> {
    // An explicit Content-Length: Node's client sends a body of OPTIONS/DELETE/GET without one (nor chunked),
    // which the server would read as the next request on the connection.
    const headers = r.body === undefined ? r.headers : { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) };
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.target.hostname,
          port: this.target.port,
          method: r.method ?? 'POST',
          path: r.path ?? this.target.pathname,
          headers,
          timeout: r.timeoutMs ?? 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request timed out after ${r.timeoutMs ?? 15_000} ms`)));
      req.on('error', reject);
      req.end(r.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Run `fn` over `items` with at most `concurrency` in flight; results in input order. */
export async function mapPool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** The JSON-RPC messages in a response body: plain JSON or the `data:` lines of an SSE stream. */
export function messagesIn(res: RawResponse): unknown[] {
  const type = String(res.headers['content-type'] ?? '');
  if (type.includes('text/event-stream')) {
    const out: unknown[] = [];
    for (const line of res.body.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data) out.push(JSON.parse(data));
    }
    return out;
  }
  if (!res.body) return [];
  const v: unknown = JSON.parse(res.body);
  return Array.isArray(v) ? v : [v];
}

export const mcpHeaders = (sid?: string, extra: Record<string, string> = {}): Record<string, string> => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': PROTOCOL_VERSION,
  ...(sid ? { 'mcp-session-id': sid } : {}),
  ...extra,
});

/** initialize + notifications/initialized; returns the session id. */
export async function openSession(client: KeepAliveClient, extra: Record<string, string> = {}): Promise<string> {
  const { 'mcp-protocol-version': _omit, ...initHeaders } = mcpHeaders(undefined, extra);
  const init = await client.request({
    headers: initHeaders,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT_PARAMS }),
  });
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sid !== 'string') throw new Error(`initialize: HTTP ${init.status} ${init.body.slice(0, 300)}`);
  const note = await client.request({ headers: mcpHeaders(sid, extra), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  if (note.status !== 202) throw new Error(`notifications/initialized: HTTP ${note.status} ${note.body.slice(0, 300)}`);
  return sid;
}

let pingId = 1;
/** POST a ping in session `sid`; returns the HTTP status. */
export async function ping(client: KeepAliveClient, sid: string, extra: Record<string, string> = {}): Promise<RawResponse> {
  return client.request({ headers: mcpHeaders(sid, extra), body: JSON.stringify({ jsonrpc: '2.0', id: pingId++, method: 'ping' }) });
}

/** Send raw bytes on a fresh socket, half-close, and collect whatever comes back (bounded by `timeoutMs`). */
export function rawExchange(port: number, bytes: Buffer | string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => {
      socket.end(bytes);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Process statistics (Linux /proc). Each returns undefined when the process is gone.

/** Resident set size in bytes. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Number of open file descriptors. */
export function fdCount(pid: number): number | undefined {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** Pids of the direct children of `pid` (all threads). */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return [...out];
}

export interface Health {
  status: string;
  store: string;
  sessions: number;
  upstreamSessions: number;
}

export async function health(client: KeepAliveClient): Promise<{ status: number; body: Health | undefined }> {
  const r = await client.request({ method: 'GET', path: '/healthz', timeoutMs: 5_000 });
  let body: Health | undefined;
  try {
    body = JSON.parse(r.body) as Health;
  } catch {
    body = undefined;
  }
  return { status: r.status, body };
}


/** Session records in Redis under the default prefix (`mcpm:{<sid>}:session`). */
export const SESSION_KEY_PATTERN = 'mcpm:*:session';
