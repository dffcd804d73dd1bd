import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { StdioUpstreamSession } from '../../src/proxy/upstreams/stdio.js';
import { stopAllProcesses } from '../helpers/index.js';
import {
  closeAll,
  connectClient,
  isAlive,
  rawInitialize,
  rawPost,
  startTestProxy,
  stdioConnector,
  pollUntil,
} from '../helpers/in-process-proxy.js';

afterEach(closeAll);
afterAll(() => stopAllProcesses());

function childPid(proxy: Awaited<ReturnType<typeof startTestProxy>>, sid: string): number {
  const up = proxy.proxy.sessions.peek(sid)?.upstream as StdioUpstreamSession | undefined;
  if (!up?.pid) throw new Error('no child for session');
  return up.pid;
}

describe('proxy with a stdio upstream (server-everything)', () => {
  it('serves a full SDK session: tools, progress on the POST stream, logging level, DELETE', async () => {
    const p = await startTestProxy();
    const { client, transport } = await connectClient(p.url);
    const sid = transport.sessionId!;
    expect(sid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('echo');
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'Echo: hello' }]);

    const progress: number[] = [];
    const long = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (pr) => progress.push(pr.progress) },
    );
    expect(JSON.stringify(long.content)).toContain('Long running operation completed');
    expect(progress).toEqual([1, 2, 3]);

    await client.setLoggingLevel('warning');
    expect((await p.store.load(sid))?.loggingLevel).toBe('warning');

    const pid = childPid(p, sid);
    await transport.terminateSession();
    expect(await p.store.load(sid)).toBeUndefined();
    expect(await pollUntil(() => !isAlive(pid))).toBe(true);
    await client.close();
    const after = await rawPost(p.url, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, { 'mcp-session-id': sid });
    expect(after.status).toBe(404);
    expect(after.json()).toMatchObject({ error: { code: -32001 } });
  });

  it('replays the handshake in a new child after the child crashes', async () => {
    const p = await startTestProxy({ onOwnerLoss: 'replay' });
    const { client, transport } = await connectClient(p.url);
    const sid = transport.sessionId!;
    await client.setLoggingLevel('error');
    await client.subscribeResource({ uri: 'demo://resource/static/document/architecture.md' });
    const first = childPid(p, sid);
    process.kill(first, 'SIGKILL');
    expect(await pollUntil(() => p.proxy.sessions.peek(sid)?.upstream?.closed === true)).toBe(true);

    // The next request spawns a new child, replays initialize + setLevel + subscribe, then forwards.
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'after crash' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'Echo: after crash' }]);
    const second = childPid(p, sid);
    expect(second).not.toBe(first);
    const up = p.proxy.sessions.peek(sid)!.upstream!;
    expect(up.applied).toMatchObject({ loggingLevel: 'error', subscriptions: ['demo://resource/static/document/architecture.md'] });
    expect(transport.sessionId).toBe(sid); // the client never noticed
    await client.close();
  });

  it('by default (owner routing, --on-owner-loss end) a crashed child ends its session: the next request gets 404, and the SDK client starts a new session', async () => {
    const p = await startTestProxy();
    const { client, transport } = await connectClient(p.url);
    const sid = transport.sessionId!;
    process.kill(childPid(p, sid), 'SIGKILL');
    expect(await pollUntil(() => p.proxy.sessions.peek(sid)?.upstream?.closed === true)).toBe(true);
    // What the child held is gone: no replay on a new child pretends otherwise.
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 5, method: 'tools/list' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    expect(r.status).toBe(404);
    expect(await p.proxy.options.store.load(sid)).toBeUndefined();
    await expect(client.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/404|Session not found/);
    await client.close();
    const again = await connectClient(p.url);
    expect(again.transport.sessionId).not.toBe(sid);
    expect((await again.client.callTool({ name: 'echo', arguments: { message: 'new' } })).content).toEqual([{ type: 'text', text: 'Echo: new' }]);
    await again.client.close();
  });

  it('answers requests in flight with an error when the child dies', async () => {
    const p = await startTestProxy();
    const { client, transport } = await connectClient(p.url);
    const sid = transport.sessionId!;
    const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 5, steps: 5 } });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(childPid(p, sid), 'SIGKILL');
    await expect(call).rejects.toThrow(/MCP server process exited/);
    await client.close();
  });

  it('serves the standalone GET stream and delivers server-initiated requests', async () => {
    const p = await startTestProxy();
    // server-everything sends roots/list ~350 ms after notifications/initialized to clients with `roots`.
    const { client, transport } = await connectClient(p.url, { capabilities: { roots: { listChanged: true } } });
    let rootsAsked = 0;
    const { ListRootsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      rootsAsked++;
      return { roots: [{ uri: 'file:///srv/example/project', name: 'project' }] };
    });
    expect(await pollUntil(() => rootsAsked > 0, 5_000)).toBe(true);
    const r = await client.callTool({ name: 'get-roots-list', arguments: {} });
    expect(JSON.stringify(r.content)).toContain('file:///srv/example/project');
    expect(transport.sessionId).toBeDefined();
    await client.close();
  });

  it('a second GET stream for the same session supersedes the first, which ends; 406 without text/event-stream', async () => {
    const p = await startTestProxy();
    const sid = await rawInitialize(p.url);
    const headers = { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const first = await fetch(p.url, { headers });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/event-stream');
    const firstText = first.text();
    const ac = new AbortController();
    const second = await fetch(p.url, { headers, signal: ac.signal });
    expect(second.status).toBe(200);
    // The first stream ends (the client would reconnect, and only one stream carries each message).
    expect(typeof (await firstText)).toBe('string');
    const note = { jsonrpc: '2.0' as const, method: 'notifications/message', params: { level: 'info', data: 'only-once' } };
    await p.proxy.streams.append(sid, 'g', note);
    const reader = second.body!.getReader();
    let text = '';
    while (!text.includes('only-once')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toMatch(/^id: g_\d+$/m);
    expect(await firstText).not.toContain('only-once');
    ac.abort();
    const noAccept = await fetch(p.url, { headers: { 'mcp-session-id': sid, accept: 'application/json' } });
    expect(noAccept.status).toBe(406);
  });

  it('answers with SSE when the client accepts only text/event-stream', async () => {
    const p = await startTestProxy();
    const sid = await rawInitialize(p.url);
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 'x1', method: 'ping' }, { accept: 'text/event-stream', 'mcp-session-id': sid });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    // Server notifications (server-everything sends tools/list_changed after initialized) may precede it.
    const events = r.json() as { id?: unknown }[];
    expect(events.filter((m) => 'id' in m)).toEqual([{ jsonrpc: '2.0', id: 'x1', result: {} }]);
    expect(events.at(-1)).toEqual({ jsonrpc: '2.0', id: 'x1', result: {} });
    const j = await rawPost(p.url, { jsonrpc: '2.0', id: 'x2', method: 'ping' }, { 'mcp-session-id': sid });
    expect(j.headers.get('content-type')).toBe('application/json');
    expect(j.json()).toEqual({ jsonrpc: '2.0', id: 'x2', result: {} });
  });

  it('accepts batches from 2025-03-26 sessions and refuses them from 2025-06-18 sessions', async () => {
    const p = await startTestProxy();
    const old = await rawInitialize(p.url, {}, '2025-03-26');
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'b' } } },
    ];
    const r = await rawPost(p.url, batch, { 'mcp-session-id': old, 'mcp-protocol-version': '2025-03-26' });
    expect(r.status).toBe(200);
    const body = r.json() as { id?: number }[];
    expect(Array.isArray(body)).toBe(true);
    expect(body.filter((m) => 'id' in m).map((m) => m.id).sort()).toEqual([1, 2]);
    expect(JSON.stringify(body)).toContain('Echo: b');

    const modern = await rawInitialize(p.url, {}, '2025-06-18');
    const refused = await rawPost(p.url, batch, { 'mcp-session-id': modern, 'mcp-protocol-version': '2025-06-18' });
    expect(refused.status).toBe(400);
    expect(refused.json()).toMatchObject({ error: { code: -32600 } });
  });

  it('does not forward a duplicate notifications/initialized after a replay', async () => {
    const p = await startTestProxy({ onOwnerLoss: 'replay' });
    const init = await rawPost(p.url, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    const sid = init.headers.get('mcp-session-id')!;
    // Simulate "initialize was served by another replica": this replica has the record but no child.
    await p.proxy.sessions.drop(sid, 'evicted');
    const n = await rawPost(p.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid });
    expect(n.status).toBe(202);
    const up = p.proxy.sessions.peek(sid)!.upstream!;
    expect(up.initialized).toBe(true);
    const list = await rawPost(p.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': sid });
    expect(list.status).toBe(200);
  });

  it('limits child processes with --max-sessions, evicting the least recently used idle one', async () => {
    const p = await startTestProxy({ onOwnerLoss: 'replay', maxSessions: 2 });
    const a = await rawInitialize(p.url);
    const b = await rawInitialize(p.url);
    const pidA = childPid(p, a);
    await rawPost(p.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': b });
    const c = await rawInitialize(p.url);
    expect(p.proxy.sessions.openUpstreams).toBe(2);
    expect(await pollUntil(() => !isAlive(pidA))).toBe(true); // a was least recently used
    // a still works: it gets a new child by replay (evicting b, now the LRU).
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'a' } } }, { 'mcp-session-id': a });
    expect(r.status).toBe(200);
    expect(r.text).toContain('Echo: a');
    expect(p.proxy.sessions.openUpstreams).toBe(2);
    expect(c).not.toBe(a);
  });

  it('answers 503 when every upstream session is busy', async () => {
    const p = await startTestProxy({ maxSessions: 1 });
    const a = await rawInitialize(p.url);
    const ac = new AbortController();
    const stream = await fetch(p.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': a }, signal: ac.signal });
    expect(stream.status).toBe(200); // an open GET stream makes session a busy
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    ac.abort();
  });

  it('reaps idle children but keeps the session', async () => {
    const p = await startTestProxy({ onOwnerLoss: 'replay', idleTimeoutMs: 300 });
    const sid = await rawInitialize(p.url);
    const pid = childPid(p, sid);
    expect(await pollUntil(() => !isAlive(pid), 5_000)).toBe(true);
    expect(p.proxy.sessions.peek(sid)).toBeUndefined();
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'back' } } }, { 'mcp-session-id': sid });
    expect(r.status).toBe(200);
    expect(r.text).toContain('Echo: back');
  });

  it('starts children without the MCP_MIGRATE_* settings of the proxy in their environment', async () => {
    process.env.MCP_MIGRATE_SESSION_SECRET_FOR_TEST = 'must-not-leak-0123456789';
    try {
      const p = await startTestProxy();
      const { client } = await connectClient(p.url);
      const r = await client.callTool({ name: 'get-env', arguments: {} });
      const text = JSON.stringify(r.content);
      expect(text).toContain('PATH');
      expect(text).not.toContain('MCP_MIGRATE_');
      expect(text).not.toContain('must-not-leak');
      await client.close();
    } finally {
      delete process.env.MCP_MIGRATE_SESSION_SECRET_FOR_TEST;
    }
  });

  it('answers 502 when the server command cannot be started', async () => {
    const p = await startTestProxy({ upstream: stdioConnector(['/nonexistent/mcp-server-binary']) });
    const r = await rawPost(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    expect(r.status).toBe(502);
    expect(r.json()).toMatchObject({ id: 1, error: { code: -32603 } });
    expect(p.proxy.sessions.openUpstreams).toBe(0);
  });
});
