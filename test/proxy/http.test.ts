import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, startEverythingHttp, stopAllProcesses, type EverythingHttp } from '../helpers/index.js';
import { closeAll, connectClient, httpConnector, rawInitialize, rawPost, responsesIn, startTestProxy } from '../helpers/in-process-proxy.js';

let upstream: EverythingHttp;

beforeAll(async () => {
  upstream = await startEverythingHttp({ name: 'everything-proxy-http-test' });
});
afterEach(closeAll);
afterAll(async () => {
  await upstream?.stop();
  await stopAllProcesses();
});

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Upstream session ids server-everything has logged as created so far. */
function upstreamSessions(u: EverythingHttp): string[] {
  return [...u.process.output().matchAll(/Session initialized with ID: ([0-9a-f-]{36})/g)].map((m) => m[1]!);
}

describe('proxy with a Streamable HTTP upstream (server-everything)', () => {
  it('serves a full SDK session and never shows the upstream session id', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstream.url) });
    const before = upstreamSessions(upstream).length;
    const { client, transport } = await connectClient(p.url);
    const sid = transport.sessionId!;
    expect(sid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const created = upstreamSessions(upstream).slice(before);
    expect(created).toHaveLength(1);
    expect(sid).not.toContain(created[0]);

    expect((await client.listTools()).tools.length).toBeGreaterThan(5);
    const progress: number[] = [];
    const r = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (pr) => progress.push(pr.progress) },
    );
    expect(JSON.stringify(r.content)).toContain('completed');
    expect(progress).toEqual([1, 2, 3]); // streamed on the POST's SSE stream, unbuffered
    await client.setLoggingLevel('info');

    // Raw responses carry no upstream id, in headers or body.
    const raw = await rawPost(p.url, { jsonrpc: '2.0', id: 5, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('mcp-session-id')).toBeNull();
    expect(raw.text).not.toContain(created[0]);

    await transport.terminateSession();
    await upstream.process.waitForOutput(new RegExp(`termination request for session ${created[0]}`), 5_000);
    await client.close();
    expect((await rawPost(p.url, { jsonrpc: '2.0', id: 6, method: 'ping' }, { 'mcp-session-id': sid })).status).toBe(404);
  });

  it('maps an upstream that lost the session (it answers 400) to a replay and retries once', async () => {
    const port = await getFreePort();
    let own = await startEverythingHttp({ name: 'everything-restart-test', port });
    try {
      const p = await startTestProxy({ onOwnerLoss: 'replay', upstream: httpConnector(own.url) });
      const { client, transport } = await connectClient(p.url);
      await client.setLoggingLevel('debug');
      await client.subscribeResource({ uri: 'demo://resource/static/document/architecture.md' });
      // The upstream restarts and forgets every session; server-everything then answers 400 to the old id.
      await own.stop();
      own = await startEverythingHttp({ name: 'everything-restart-test-2', port });
      const echo = await client.callTool({ name: 'echo', arguments: { message: 'after upstream restart' } });
      expect(echo.content).toEqual([{ type: 'text', text: 'Echo: after upstream restart' }]);
      expect(upstreamSessions(own)).toHaveLength(1); // exactly one replayed session
      // The replay included the recorded subscription and level (server-everything logs nothing for
      // them; check the proxy's view instead).
      const up = p.proxy.sessions.peek(transport.sessionId!)!.upstream!;
      expect(up.applied).toMatchObject({ loggingLevel: 'debug', subscriptions: ['demo://resource/static/document/architecture.md'] });
      await client.close();
    } finally {
      await own.stop();
    }
  });

  it('passes the standalone GET stream through and relays server-initiated requests on it', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstream.url) });
    const { client } = await connectClient(p.url, { capabilities: { roots: {} } });
    const { ListRootsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    let asked = 0;
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked++;
      return { roots: [{ uri: 'file:///srv/example/http-roots', name: 'r' }] };
    });
    // server-everything sends roots/list on the GET stream ~350 ms after notifications/initialized.
    const deadline = Date.now() + 5_000;
    while (asked === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(asked).toBeGreaterThan(0);
    const r = await client.callTool({ name: 'get-roots-list', arguments: {} });
    expect(JSON.stringify(r.content)).toContain('file:///srv/example/http-roots');
    await client.close();
  });

  it('passes upstream errors through: a JSON-RPC error for an unknown tool', async () => {
    const p = await startTestProxy({ upstream: httpConnector(upstream.url) });
    const sid = await rawInitialize(p.url);
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 3, method: 'no/such/method' }, { 'mcp-session-id': sid });
    expect(r.status).toBe(200);
    expect(responsesIn(r.json())).toMatchObject([{ id: 3, error: { code: -32601 } }]);
  });

  it('answers 502 when the upstream is unreachable', async () => {
    const dead = await getFreePort();
    const p = await startTestProxy({ upstream: httpConnector(`http://127.0.0.1:${dead}/mcp`) });
    const r = await rawPost(p.url, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    expect(r.status).toBe(502);
    expect(r.json()).toMatchObject({ id: 1, error: { code: -32603, message: expect.stringContaining('Bad Gateway') } });
    expect(r.text.match(UUID)).toBeNull();
  });
});
