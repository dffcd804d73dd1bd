/**
 * The background standalone GET every HTTP upstream session keeps, against a scripted upstream:
 * its messages reach the client's GET (served by the proxy from the session's standalone stream),
 * server-initiated requests on it get client-facing ids and the client's answer reaches the upstream
 * with the original id, and when the upstream ends the stream the proxy reconnects with the
 * upstream's own `Last-Event-ID`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, httpConnector, rawInitialize, rawPost, startTestProxy, pollUntil } from '../helpers/in-process-proxy.js';

interface SeenGet {
  lastEventId: string | undefined;
  sessionId: string | undefined;
}
const gets: SeenGet[] = [];
const posted: unknown[] = [];
let upstream: http.Server;
let upstreamUrl: string;
const sse = (id: string, m: unknown) => `id: ${id}\nevent: message\ndata: ${JSON.stringify(m)}\n\n`;
const note = (data: string) => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data } });

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    if (req.method === 'GET') {
      const n = gets.push({ lastEventId: req.headers['last-event-id'] as string | undefined, sessionId: req.headers['mcp-session-id'] as string | undefined });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).flushHeaders();
      if (n === 1) {
        // A priming event, a notification, a server-initiated request; then the upstream ends the stream.
        res.write('id: u0\ndata: \n\n');
        res.write(sse('u1', note('first')));
        res.write(sse('u2', { jsonrpc: '2.0', id: 0, method: 'roots/list' }));
        setTimeout(() => res.end(), 1_200);
      } else {
        res.write(sse('u3', note('after-reconnect')));
      }
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { id?: unknown; method?: string };
      if (msg.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'up-1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'scripted', version: '1' } } }));
        return;
      }
      if (msg.method === undefined) posted.push(msg); // a client's answer
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
});
afterEach(closeAll);
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

describe('background standalone GET of an HTTP upstream session', () => {
  it('relays its messages to the client GET, routes the answer to its request, and reconnects with the upstream Last-Event-ID', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstreamUrl) });
    const sid = await rawInitialize(p.url);
    // Opened during initialize, before the client had its answer.
    expect(gets).toHaveLength(1);
    expect(gets[0]).toEqual({ lastEventId: undefined, sessionId: 'up-1' });
    const ac = new AbortController();
    const res = await fetch(p.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, signal: ac.signal });
    const reader = res.body!.getReader();
    let text = '';
    const pump = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      } catch {
        /* aborted */
      }
    })();
    const messages = () =>
      text
        .split('\n\n')
        .map((b) => /^data: (.+)$/m.exec(b)?.[1])
        .filter((d): d is string => d !== undefined)
        .map((d) => JSON.parse(d) as { id?: string; method?: string; params?: { data?: string } });
    // Messages sent before the client's GET was open are kept for it.
    expect(await pollUntil(() => messages().length >= 2)).toBe(true);
    const [first, request] = messages();
    expect(first).toEqual(note('first'));
    expect(request!.method).toBe('roots/list');
    expect(request!.id).toMatch(new RegExp(`^mcp-migrate:s:${p.proxy.replicaId}:[0-9a-z]+$`));
    // Upstream event ids never reach the client: ours do.
    expect(text).not.toMatch(/^id: u\d$/m);
    expect(text).toMatch(/^id: g_\d+$/m);
    // The client's answer goes to the upstream session with the upstream's id, and the POST gets 202.
    const answer = await rawPost(p.url, { jsonrpc: '2.0', id: request!.id, result: { roots: [] } }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    expect(answer.status).toBe(202);
    expect(await pollUntil(() => posted.length === 1)).toBe(true);
    expect(posted[0]).toEqual({ jsonrpc: '2.0', id: 0, result: { roots: [] } });
    // The upstream ended its stream: the proxy reconnected with the upstream's last event id.
    expect(await pollUntil(() => messages().length >= 3, 5_000)).toBe(true);
    expect(messages()[2]).toEqual(note('after-reconnect'));
    expect(gets[1]).toEqual({ lastEventId: 'u2', sessionId: 'up-1' });
    ac.abort();
    await pump;
  });
});
