import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionIdCodec } from '@mcp-migrate/runtime';
import { stopAllProcesses } from '../helpers/index.js';
import { closeAll, INIT_PARAMS, rawInitialize, rawPost, responsesIn, SECRET, startTestProxy, type TestProxy } from '../helpers/in-process-proxy.js';

let p: TestProxy;
let sid: string;
const ALICE = { authorization: 'Bearer alice' };

beforeAll(async () => {
  p = await startTestProxy({ maxBodyBytes: 64 * 1024, allowedOrigins: ['https://app.example'] });
  sid = await rawInitialize(p.url, ALICE);
});
afterAll(async () => {
  await closeAll();
  await stopAllProcesses();
});

const ping = (id: number | string = 1) => ({ jsonrpc: '2.0', id, method: 'ping' });

describe('proxy input validation', () => {
  it('works for the owner (baseline for the cases below)', async () => {
    const r = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': sid });
    expect(r.status).toBe(200);
    expect(responsesIn(r.json())).toEqual([{ jsonrpc: '2.0', id: 1, result: {} }]);
  });

  it('400 for a non-initialize request without a session id', async () => {
    const r = await rawPost(p.url, ping(), ALICE);
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.stringContaining('Mcp-Session-Id') } });
  });

  it('400 with a -32700 parse error for malformed JSON', async () => {
    const r = await rawPost(p.url, '{"jsonrpc":"2.0","id":1,"method":', { ...ALICE, 'mcp-session-id': sid });
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: expect.stringContaining('Parse error') } });
  });

  it('400 with -32600 for JSON that is not JSON-RPC, and for an empty batch', async () => {
    for (const body of [{ hello: 'world' }, { jsonrpc: '1.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: {}, method: 'ping' }, []]) {
      const r = await rawPost(p.url, body, { ...ALICE, 'mcp-session-id': sid });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json()).toMatchObject({ error: { code: -32600 } });
    }
  });

  it('400 for request ids in the reserved mcp-migrate: namespace', async () => {
    const r = await rawPost(p.url, ping('mcp-migrate:replay:1'), { ...ALICE, 'mcp-session-id': sid });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32600 } });
  });

  it('400 for initialize sent with a session id or inside a batch', async () => {
    const init = { jsonrpc: '2.0', id: 7, method: 'initialize', params: INIT_PARAMS };
    const a = await rawPost(p.url, init, { ...ALICE, 'mcp-session-id': sid });
    expect(a.status).toBe(400);
    const b = await rawPost(p.url, [init], ALICE);
    expect(b.status).toBe(400);
  });

  it('404 for an unknown id and for a forged id, without touching the store', async () => {
    const loads: string[] = [];
    const store = p.store;
    const origLoad = store.load.bind(store);
    const origTouch = store.touch.bind(store);
    store.load = async (id) => (loads.push(id), origLoad(id));
    store.touch = async (id) => (loads.push(id), origTouch(id));
    try {
      for (const bad of ['not-a-session', crypto.randomUUID(), sid.slice(0, -1) + (sid.endsWith('A') ? 'B' : 'A')]) {
        const r = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': bad });
        expect(r.status, bad).toBe(404);
        expect(r.json()).toMatchObject({ error: { code: -32001, message: 'Session not found' } });
      }
      expect(loads).toEqual([]);
      // A well-formed id signed with our secret but never stored: verified, looked up, not found.
      const minted = new SessionIdCodec(SECRET).mint('Bearer alice').id;
      const r = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': minted });
      expect(r.status).toBe(404);
      expect(loads).toEqual([minted]);
    } finally {
      store.load = origLoad;
      store.touch = origTouch;
    }
  });

  it('404 when another principal presents the session id (POST, GET and DELETE)', async () => {
    const bob = { authorization: 'Bearer bob', 'mcp-session-id': sid };
    expect((await rawPost(p.url, ping(), bob)).status).toBe(404);
    expect((await rawPost(p.url, ping(), { 'mcp-session-id': sid })).status).toBe(404); // anonymous
    expect((await fetch(p.url, { headers: { ...bob, accept: 'text/event-stream' } })).status).toBe(404);
    expect((await fetch(p.url, { method: 'DELETE', headers: bob })).status).toBe(404);
    // and the session is intact for its owner
    expect((await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': sid })).status).toBe(200);
  });

  it('binds sessions to the header named by principalHeader (--principal-header)', async () => {
    const q = await startTestProxy({ principalHeader: 'x-api-key' });
    const own = await rawInitialize(q.url, { 'x-api-key': 'key-1' });
    const mine = await rawPost(q.url, ping(), { 'x-api-key': 'key-1', 'mcp-session-id': own, authorization: 'Bearer whoever' });
    expect(mine.status).toBe(200);
    expect((await rawPost(q.url, ping(), { 'x-api-key': 'key-2', 'mcp-session-id': own })).status).toBe(404);
    expect((await rawPost(q.url, ping(), { 'mcp-session-id': own })).status).toBe(404);
    await q.close();
  });

  it('413 for a body over --max-body-bytes, with or without Content-Length', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(100 * 1024) } });
    const r = await rawPost(p.url, big, { ...ALICE, 'mcp-session-id': sid });
    expect(r.status).toBe(413);
    // chunked upload: the limit is enforced while streaming
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new TextEncoder().encode('x'.repeat(32 * 1024)));
        c.close();
      },
    });
    const res = await fetch(p.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...ALICE, 'mcp-session-id': sid },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('415 for a POST that is not JSON', async () => {
    const res = await fetch(p.url, { method: 'POST', headers: { 'content-type': 'text/plain', ...ALICE, 'mcp-session-id': sid }, body: 'ping' });
    expect(res.status).toBe(415);
  });

  it('400 for an unsupported MCP-Protocol-Version', async () => {
    const r = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32000, message: expect.stringContaining('Unsupported protocol version') } });
    const ok = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    expect(ok.status).toBe(200);
  });

  it('403 for an Origin outside the allow-list; listed or absent Origin passes', async () => {
    const bad = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': sid, origin: 'https://evil.example' });
    expect(bad.status).toBe(403);
    const good = await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': sid, origin: 'https://app.example' });
    expect(good.status).toBe(200);
  });

  it('405 for other methods, 404 for other paths, health on /healthz', async () => {
    const put = await fetch(p.url, { method: 'PUT', body: '{}' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST, DELETE');
    expect((await fetch(new URL('/other', p.url))).status).toBe(404);
    const h = await fetch(new URL('/healthz', p.url));
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', store: 'ok', upstream: 'stdio' });
  });

  it('405 for GET and DELETE without a session id (2026-07-28 §Backward Compatibility; 400 with --no-modern)', async () => {
    const get = await fetch(p.url, { headers: { accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await fetch(p.url, { method: 'DELETE' })).status).toBe(405);
    const legacyOnly = await startTestProxy({ modern: false });
    expect((await fetch(legacyOnly.url, { headers: { accept: 'text/event-stream' } })).status).toBe(400);
    expect((await fetch(legacyOnly.url, { method: 'DELETE' })).status).toBe(400);
    await legacyOnly.close();
  });

  it('DELETE ends the session; every later request with its id gets 404', async () => {
    const own = await rawInitialize(p.url, ALICE);
    const del = await fetch(p.url, { method: 'DELETE', headers: { ...ALICE, 'mcp-session-id': own } });
    expect(del.status).toBe(200);
    expect((await rawPost(p.url, ping(), { ...ALICE, 'mcp-session-id': own })).status).toBe(404);
    expect((await fetch(p.url, { headers: { ...ALICE, 'mcp-session-id': own, accept: 'text/event-stream' } })).status).toBe(404);
    expect((await fetch(p.url, { method: 'DELETE', headers: { ...ALICE, 'mcp-session-id': own } })).status).toBe(404);
  });
});
