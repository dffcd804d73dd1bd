/**
 * The HTTP upstream's forwarding path against a scripted upstream, where timing and bytes are under
 * the test's control: headers forwarded each way, bodies byte for byte, SSE streamed as it arrives,
 * response heads not held back, client aborts passed upstream. Plus the verified-session-id cache.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SessionIdCodec } from '@mcp-migrate/runtime';
import { VerifiedIdCache } from '../../src/proxy/server.js';
import { closeAll, httpConnector, INIT_PARAMS, rawPost, startTestProxy, pollUntil } from '../helpers/in-process-proxy.js';

interface Seen {
  method: string | undefined;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

const seen: Seen[] = [];
const upstreamClosed: string[] = [];
let upstream: http.Server;
let upstreamUrl: string;
const BIG = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 'big', result: { blob: 'x'.repeat(1_000_000) + 'é' } }));

const sse = (m: unknown) => `event: message\ndata: ${JSON.stringify(m)}\n\n`;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    // No standalone stream: the proxy's background GET gets 405 and stops.
    if (req.method === 'GET') return void res.writeHead(405, { allow: 'POST, DELETE' }).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as { id?: unknown; method?: string }) : {};
      seen.push({ method: msg.method, headers: req.headers, rawHeaders: req.rawHeaders });
      const sseHead = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'mcp-session-id': 'upstream-sid-1', 'x-upstream': 'yes' };
      switch (msg.method) {
        case 'initialize':
          res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-sid-1' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'scripted', version: '1' } } }));
          return;
        case 'notifications/initialized':
          res.writeHead(202).end();
          return;
        case 'test/json':
          res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes', 'mcp-session-id': 'upstream-sid-1' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { ok: true } }));
          return;
        case 'test/big': {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': BIG.length });
          // In pieces, across event-loop turns.
          let off = 0;
          const next = () => {
            if (off >= BIG.length) return void res.end();
            res.write(BIG.subarray(off, off + 65_536));
            off += 65_536;
            setImmediate(next);
          };
          next();
          return;
        }
        case 'test/progress':
          res.writeHead(200, sseHead).flushHeaders();
          res.write(sse({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }));
          setTimeout(() => res.end(sse({ jsonrpc: '2.0', id: msg.id, result: {} })), 400);
          return;
        case 'test/late':
          res.writeHead(200, sseHead).flushHeaders();
          setTimeout(() => res.end(sse({ jsonrpc: '2.0', id: msg.id, result: {} })), 600);
          return;
        case 'test/hang':
          res.writeHead(200, sseHead).flushHeaders();
          res.on('close', () => upstreamClosed.push('test/hang'));
          return;
        case 'test/stored':
          // A server message first (the answer becomes a stored, resumable stream), the response later.
          res.writeHead(200, sseHead).flushHeaders();
          res.write('id: upstream-1\ndata: \n\n');
          res.write(sse({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'started' } }));
          res.on('close', () => upstreamClosed.push('test/stored'));
          setTimeout(() => {
            res.write(sse({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } }));
            res.end(sse({ jsonrpc: '2.0', id: msg.id, result: { done: true } }));
          }, 800);
          return;
        default:
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} }));
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
});
afterEach(async () => {
  await closeAll();
  seen.length = 0;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

async function session(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await rawPost(url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT_PARAMS }, headers);
  expect(r.status).toBe(200);
  return r.headers.get('mcp-session-id')!;
}

/** A raw POST that reports when the head and each body chunk arrived (ms after sending). */
function timedPost(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  onResponse?: (req: http.ClientRequest) => void,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; headAt: number; chunks: { at: number; text: string }[] }> {
  const u = new URL(url);
  const data = JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(data), ...headers },
      },
      (res) => {
        const headAt = performance.now() - t0;
        const chunks: { at: number; text: string }[] = [];
        res.on('data', (c: Buffer) => chunks.push({ at: performance.now() - t0, text: c.toString() }));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, headAt, chunks }));
        res.on('error', reject);
        onResponse?.(req);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

describe('HTTP upstream relay (scripted upstream)', () => {
  it('forwards end-to-end request headers, swaps the session id, and drops hop-by-hop ones', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const auth = { authorization: 'Bearer token-1' };
    const sid = await session(p.url, auth);
    const r = await rawPost(
      p.url,
      { jsonrpc: '2.0', id: 7, method: 'test/json' },
      { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', 'x-trace': 'abc', 'accept-encoding': 'gzip', 'content-type': 'application/json; charset=utf-8' },
    );
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ jsonrpc: '2.0', id: 7, result: { ok: true } });
    // Response: the upstream's own headers pass, its session id does not; framed with a Content-Length.
    expect(r.headers.get('x-upstream')).toBe('yes');
    expect(r.headers.get('mcp-session-id')).toBeNull();
    expect(r.headers.get('content-length')).toBe(String(Buffer.byteLength(r.text)));

    const h = seen.find((s) => s.method === 'test/json')!.headers;
    expect(h['mcp-session-id']).toBe('upstream-sid-1');
    expect(h.authorization).toBe('Bearer token-1');
    expect(h['x-trace']).toBe('abc');
    expect(h['mcp-protocol-version']).toBe('2025-06-18');
    expect(h['accept-encoding']).toBeUndefined();
    expect(h['content-type']).toBe('application/json');
    expect(h.host).toBe(new URL(upstreamUrl).host);
    expect(Number(h['content-length'])).toBe(Buffer.byteLength(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'test/json' })));
    // Every header once.
    const names = seen.find((s) => s.method === 'test/json')!.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
  });

  it('passes a notification’s 202 and a large body split across many chunks through byte for byte', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const sid = await session(p.url);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const n = await rawPost(p.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, h);
    expect(n.status).toBe(202);
    expect(n.text).toBe('');

    const res = await fetch(p.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...h },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'big', method: 'test/big' }),
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(BIG)).toBe(true);
  });

  it('streams SSE events as they arrive instead of waiting for the end of the answer', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const sid = await session(p.url);
    const r = await timedPost(p.url, { jsonrpc: '2.0', id: 9, method: 'test/progress' }, { 'mcp-session-id': sid });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/event-stream');
    const progressAt = r.chunks.find((c) => c.text.includes('notifications/progress'))!.at;
    const resultAt = r.chunks.find((c) => c.text.includes('"id":9'))!.at;
    expect(resultAt).toBeGreaterThanOrEqual(350);
    expect(progressAt).toBeLessThan(resultAt - 200);
  });

  it('does not hold a response head back while the upstream takes long for its first event', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const sid = await session(p.url);
    const r = await timedPost(p.url, { jsonrpc: '2.0', id: 10, method: 'test/late' }, { 'mcp-session-id': sid });
    expect(r.status).toBe(200);
    expect(r.chunks.map((c) => c.text).join('')).toContain('"id":10');
    expect(r.chunks.at(-1)!.at).toBeGreaterThanOrEqual(550);
    expect(r.headAt).toBeLessThan(400);
  });

  it('aborts the upstream request when the client goes away mid-stream (nothing stored yet)', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const sid = await session(p.url);
    upstreamClosed.length = 0;
    await timedPost(p.url, { jsonrpc: '2.0', id: 11, method: 'test/hang' }, { 'mcp-session-id': sid }, (req) => {
      setTimeout(() => req.destroy(), 100);
    }).catch(() => undefined);
    expect(await pollUntil(() => upstreamClosed.includes('test/hang'), 3_000)).toBe(true);
    // The upstream session is idle again (not counted as busy forever).
    expect(await pollUntil(() => p.proxy.sessions.peek(sid)?.upstream?.busy === false, 3_000)).toBe(true);
  });
});

describe('stored POST streams (scripted upstream)', () => {
  it('keeps reading an answer that carried a server message after the client left; Last-Event-ID resumes it exactly', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const sid = await session(p.url);
    upstreamClosed.length = 0;
    // The client reads the first event, then goes away.
    const first = await firstEventThenLeave(p.url, { jsonrpc: '2.0', id: 12, method: 'test/stored' }, { 'mcp-session-id': sid });
    expect(first.message).toEqual({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'started' } });
    expect(first.id).not.toBe('upstream-1'); // an event id of ours, not the upstream's
    expect(p.proxy.streams.streamOf(first.id)).toMatch(/^p[0-9a-z]+$/);
    // A plain GET is the standalone stream: the POST stream's events are not on it.
    expect((await collectGet(p.url, sid, undefined, 100)).events).toEqual([]);
    const stored = [first];
    // Resume after the first event: the rest of that stream, ending with the response, then the GET ends.
    const resumed = await collectGet(p.url, sid, stored[0]!.id, 5_000);
    expect(resumed.ended).toBe(true);
    expect(resumed.events.map((e) => e.message)).toEqual([
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } },
      { jsonrpc: '2.0', id: 12, result: { done: true } },
    ]);
    expect(upstreamClosed).toEqual(['test/stored']);
    // Resuming after the last event: the stream is over, the GET ends at once with nothing.
    const after = await collectGet(p.url, sid, resumed.events.at(-1)!.id, 5_000);
    expect(after).toEqual({ status: 200, ended: true, events: [] });
  });
});

/** POSTs `body`, reads the answer until its first SSE event with an id, then closes the connection. */
function firstEventThenLeave(url: string, body: unknown, headers: Record<string, string>): Promise<{ id: string; message: unknown }> {
  const u = new URL(url);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(data), ...headers },
      },
      (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          const m = /^id: (\S+)\nevent: message\ndata: (.+)\n\n/m.exec(buf);
          if (m) {
            resolve({ id: m[1]!, message: JSON.parse(m[2]!) });
            req.destroy();
          }
        });
        res.on('error', () => undefined);
        res.on('end', () => reject(new Error(`answer ended without an event with an id: ${buf}`)));
      },
    );
    req.on('error', () => undefined);
    req.end(data);
  });
}

/** A raw GET SSE stream for `ms` (0: just the head), with `Last-Event-ID` if given. */
async function collectGet(
  url: string,
  sid: string,
  lastEventId: string | undefined,
  ms: number,
): Promise<{ status: number; ended: boolean; events: { id: string; message: unknown }[] }> {
  const ac = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sid, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
    signal: ac.signal,
  });
  const events: { id: string; message: unknown }[] = [];
  let ended = false;
  const reader = res.body!.getReader();
  const timer = setTimeout(() => ac.abort(), ms);
  let buf = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buf += new TextDecoder().decode(value);
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (id !== undefined && data !== undefined) events.push({ id, message: JSON.parse(data) });
      }
    }
  } catch {
    /* aborted */
  } finally {
    clearTimeout(timer);
  }
  return { status: res.status, ended, events };
}

describe('VerifiedIdCache', () => {
  it('answers like SessionIdCodec.verify, for the same id and credential only', () => {
    const codec = new SessionIdCodec('cache-test-secret-0123456789');
    const cache = new VerifiedIdCache(codec, 2);
    const a = codec.mint('Bearer a');
    const anon = codec.mint(undefined);
    expect(cache.verify(a.id, 'Bearer a')).toEqual({ principal: a.principal });
    expect(cache.verify(a.id, 'Bearer a')).toEqual({ principal: a.principal }); // cached
    expect(cache.verify(a.id, 'Bearer b')).toBeUndefined();
    expect(cache.verify(a.id, undefined)).toBeUndefined();
    expect(cache.verify(a.id, 'Bearer a')).toEqual({ principal: a.principal });
    expect(cache.verify(anon.id, undefined)).toEqual({ principal: anon.principal });
    expect(cache.verify(anon.id, '')).toEqual({ principal: anon.principal }); // absent and empty are one principal
    // Forged ids are rejected and never cached.
    const forged = `${anon.id.slice(0, 20)}${anon.id[20] === 'A' ? 'B' : 'A'}${anon.id.slice(21)}`;
    expect(cache.verify(forged, undefined)).toBeUndefined();
    expect(cache.verify(`${a.id}x`, 'Bearer a')).toBeUndefined();
    // Bounded: a third id evicts the least recently used one, which still verifies afterwards.
    const c = codec.mint('Bearer c');
    expect(cache.verify(c.id, 'Bearer c')).toEqual({ principal: c.principal });
    expect(cache.verify(a.id, 'Bearer a')).toEqual({ principal: a.principal });
  });
});
