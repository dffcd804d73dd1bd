/**
 * The whole-request deadline (`--request-timeout`, src/proxy/deadline.ts), replay mode: a request whose
 * session must be opened by handshake replay chains one bounded wait per replayed message
 * (`initialize`, `logging/setLevel`, each `resources/subscribe`), each under `--handshake-timeout`. The
 * request as a whole ends by its deadline with 504 from the error table, and the replay goes on for the
 * next request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpUpstreamConnector } from '../../src/proxy/index.js';
import { closeAll, logger, startTestProxy } from '../helpers/in-process-proxy.js';

/** Each upstream answer to a request waits this long, ms (0 while the session is set up). */
let delayMs = 0;
let upstream: http.Server;
let upstreamUrl: string;
const initializes: number[] = [];

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    if (req.method === 'GET') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { id?: unknown; method?: string; params?: { protocolVersion?: string } };
      if (msg.id === undefined || msg.method === undefined) return void res.writeHead(202).end();
      const result =
        msg.method === 'initialize'
          ? { protocolVersion: msg.params?.protocolVersion, capabilities: { logging: {}, resources: { subscribe: true } }, serverInfo: { name: 'slow', version: '1' } }
          : {};
      if (msg.method === 'initialize') initializes.push(Date.now());
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `up-${initializes.length}` });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      }, delayMs);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
});
afterEach(async () => {
  delayMs = 0;
  await closeAll();
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

async function post(url: string, body: unknown, sessionId?: string): Promise<{ status: number; sessionId: string | null; json: { error?: { code: number; message: string } } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
      ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, sessionId: res.headers.get('mcp-session-id'), json: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : {} };
}

describe('whole-request deadline (--affinity replay)', () => {
  it('answers 504 by the deadline when the replays it chains, each under the handshake timeout, take longer', async () => {
    const p = await startTestProxy({
      upstream: new HttpUpstreamConnector({ url: upstreamUrl, handshakeTimeoutMs: 10_000, logger }),
      affinity: 'replay',
      requestTimeoutMs: 1_500,
    });
    const init = await post(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    expect(init.status).toBe(200);
    const sid = init.sessionId!;
    expect((await post(p.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid)).status).toBe(202);
    // Replayable state: the replay sends these again, one bounded wait each.
    expect((await post(p.url, { jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'debug' } }, sid)).status).toBe(200);
    for (const [i, uri] of ['a://1', 'a://2', 'a://3'].entries()) {
      expect((await post(p.url, { jsonrpc: '2.0', id: 3 + i, method: 'resources/subscribe', params: { uri } }, sid)).status).toBe(200);
    }
    // The replica forgets its upstream session (idle reaping, eviction): the next request replays the handshake.
    await p.proxy.sessions.drop(sid, 'idle');
    delayMs = 1_000; // 5 replayed requests × 1 s: each under the 10 s handshake timeout, together over the 1.5 s deadline
    const ping = await post(p.url, { jsonrpc: '2.0', id: 9, method: 'ping' }, sid);
    expect(ping.status).toBe(504);
    expect(ping.json.error?.message).toMatch(/^Gateway Timeout: .*request deadline of 1500 ms \(--request-timeout\)/);
    expect(initializes.length).toBe(2); // the replay had begun, and goes on for the next request
  }, 30_000);

  it('answers a new session\'s initialize 504 by the deadline and closes the upstream session that comes too late', async () => {
    const p = await startTestProxy({
      upstream: new HttpUpstreamConnector({ url: upstreamUrl, handshakeTimeoutMs: 10_000, logger }),
      affinity: 'replay',
      requestTimeoutMs: 500,
    });
    delayMs = 1_500;
    const init = await post(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    expect(init.status).toBe(504);
    expect(init.sessionId).toBeNull();
    expect(init.json.error?.message).toMatch(/upstream initialize did not finish within the request deadline/);
    // Once the upstream answers, the replica keeps nothing of it: no session, no upstream session, no room reserved.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(p.proxy.sessions.size).toBe(0);
    expect(p.proxy.sessions.openUpstreams).toBe(0);
  }, 30_000);
});
