/**
 * The 2026-07-28 front on two in-process replicas sharing a store, session streams and routers, in
 * front of in-process SDK servers (see test/helpers/in-process-upstream.ts). What crosses replicas here crosses them the
 * same way in production: the record (store), the continuation and standalone streams (SessionStreams),
 * the answers to server-to-client requests (ServerRequestRouter).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusServerRequestRouter, MemoryMessageBus, MemorySessionStore, MemorySessionStreams } from '@mcp-migrate/runtime';
import { createProxy, type McpProxy } from '../../src/proxy/index.js';
import { InProcessConnector } from '../helpers/in-process-upstream.js';
import { logger, SECRET } from '../helpers/in-process-proxy.js';

const V = '2026-07-28';
const ALICE = { authorization: 'Bearer alice' };

interface Replica {
  proxy: McpProxy;
  url: string;
  connector: InProcessConnector;
  router: BusServerRequestRouter;
}

// What replicas share in production: the store, the session streams, the bus (router inboxes).
const store = new MemorySessionStore();
const bus = new MemoryMessageBus();
const streams = new MemorySessionStreams();
const replicas: Replica[] = [];

/** `x` for one replica: closing the replica leaves the shared object open (closed in afterAll). */
function shared<T extends object>(x: T): T {
  return new Proxy(x, {
    get(target, prop) {
      if (prop === 'close') return async () => undefined;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function replica(name: string): Promise<Replica> {
  const router = new BusServerRequestRouter({ bus, replicaId: name });
  await router.ready;
  const connector = new InProcessConnector(streams, router);
  const proxy = createProxy({
    sessionSecrets: [SECRET],
    logger,
    store: shared(store),
    bus: shared(bus),
    streams: shared(streams),
    router,
    upstream: connector,
    modern: { heartbeatMs: 100, inputWindowMs: 10, keepAliveMs: 60_000 },
  });
  const { url } = await proxy.listen(0, '127.0.0.1');
  const r = { proxy, url, connector, router };
  replicas.push(r);
  return r;
}

let A: Replica;
let B: Replica;
beforeAll(async () => {
  A = await replica('repa');
  B = await replica('repb');
});
afterAll(async () => {
  for (const r of replicas) {
    await r.proxy.close().catch(() => undefined);
    await r.router.close();
  }
  await streams.close();
  await bus.close();
  await store.close();
});

function meta(caps: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    'io.modelcontextprotocol/protocolVersion': V,
    'io.modelcontextprotocol/clientCapabilities': caps,
    'io.modelcontextprotocol/clientInfo': { name: 'unit', version: '1' },
    ...extra,
  };
}

interface Answer {
  status: number;
  contentType: string;
  /** Every JSON-RPC message received (one for JSON, all events for SSE). */
  messages: Record<string, any>[];
  /** The response (last message with an id). */
  body: Record<string, any>;
}

let nextId = 1;
async function call(
  url: string,
  method: string,
  params: Record<string, unknown> = {},
  opts: { caps?: Record<string, unknown>; id?: number | string; headers?: Record<string, string>; meta?: Record<string, unknown> } = {},
): Promise<Answer> {
  const id = opts.id ?? nextId++;
  const name = method === 'resources/read' ? params.uri : params.name;
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V,
      'mcp-method': method,
      ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
      ...ALICE,
      ...opts.headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: { ...meta(opts.caps), ...opts.meta } } }),
  });
  const contentType = res.headers.get('content-type') ?? '';
  const text = await res.text();
  const messages = contentType.includes('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)))
    : text
      ? [JSON.parse(text)]
      : [];
  return { status: res.status, contentType, messages, body: messages.filter((m) => 'id' in m).at(-1) ?? {} };
}

describe('requests and results', () => {
  it('server/discover: synthesized from the upstream InitializeResult', async () => {
    const r = await call(A.url, 'server/discover');
    expect(r.status).toBe(200);
    expect(r.body.result).toMatchObject({
      resultType: 'complete',
      supportedVersions: [V],
      capabilities: { tools: { listChanged: true }, resources: { subscribe: true } },
      instructions: 'Unit-test upstream.',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'modern-test-upstream', version: '1.2.3' } },
    });
  });

  it('tools/list and tools/call, on either replica; client ids never reach the upstream', async () => {
    const list = await call(A.url, 'tools/list', {}, { id: 'client-id-1' });
    expect(list.body).toMatchObject({ id: 'client-id-1', result: { resultType: 'complete', ttlMs: 0, cacheScope: 'private' } });
    expect(list.body.result.tools.map((t: { name: string }) => t.name)).toContain('echo');
    const echo = await call(B.url, 'tools/call', { name: 'echo', arguments: { message: 'hi' } }, { id: 'client-id-2' });
    expect(echo.body).toMatchObject({ id: 'client-id-2', result: { resultType: 'complete', content: [{ type: 'text', text: 'hi' }] } });
    const seen = [...A.connector.stats.requestIds, ...B.connector.stats.requestIds];
    expect(seen).not.toContain('client-id-1');
    expect(seen).not.toContain('client-id-2');
  });

  it('pools by capabilities: the upstream session sees exactly the declared capabilities', async () => {
    const plain = await call(A.url, 'tools/call', { name: 'whoami' });
    expect(JSON.parse(plain.body.result.content[0].text)).toEqual({});
    const rich = await call(A.url, 'tools/call', { name: 'whoami' }, { caps: { sampling: {}, extensions: { 'x.y/z': {} } } });
    expect(JSON.parse(rich.body.result.content[0].text)).toEqual({ sampling: {} });
  });

  it('resources/read of an unknown URI: -32602 with data.uri (not the legacy -32002)', async () => {
    const ok = await call(A.url, 'resources/read', { uri: 'test://static' });
    expect(ok.body.result).toMatchObject({ resultType: 'complete', contents: [{ text: 'static text' }], ttlMs: 0 });
    const missing = await call(A.url, 'resources/read', { uri: 'test://nope' });
    expect(missing.body.error).toMatchObject({ code: -32602, data: { uri: 'test://nope' } });
  });

  it('removed and unknown methods: HTTP 404, -32601, with the request id', async () => {
    for (const method of ['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe', 'unknown/method']) {
      const r = await call(A.url, method, {}, { id: 500 });
      expect(r.status, method).toBe(404);
      expect(r.body, method).toMatchObject({ id: 500, error: { code: -32601 } });
    }
    // The upstream offers no completions: completion/complete is not a method of this server.
    expect((await call(A.url, 'completion/complete', { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'a', value: 'b' } })).status).toBe(404);
  });

  it('validation errors come from the ladder with exact codes', async () => {
    const unsupported = await call(A.url, 'server/discover', {}, { id: 301, headers: { 'mcp-protocol-version': 'v999.0.0' }, meta: { 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' } });
    expect(unsupported).toMatchObject({ status: 400, body: { id: 301, error: { code: -32022, data: { supported: [V], requested: 'v999.0.0' } } } });
    const mismatch = await call(A.url, 'server/discover', {}, { id: 302, meta: { 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' } });
    expect(mismatch).toMatchObject({ status: 400, body: { id: 302, error: { code: -32020 } } });
    const noName = await call(A.url, 'tools/call', { name: 'echo' }, { headers: { 'mcp-name': 'other' } });
    expect(noName).toMatchObject({ status: 400, body: { error: { code: -32020 } } });
  });

  it('GET and DELETE without a session: 405 (no GET stream, no sessions in 2026-07-28)', async () => {
    const get = await fetch(A.url, { headers: { accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await fetch(A.url, { method: 'DELETE' })).status).toBe(405);
  });
});

describe('request-scoped notifications', () => {
  it('progress goes on the response stream with the client token; nothing without a token', async () => {
    const r = await call(A.url, 'tools/call', { name: 'progress' }, { meta: { progressToken: 'tok-7' } });
    expect(r.contentType).toContain('text/event-stream');
    const progress = r.messages.filter((m) => m.method === 'notifications/progress');
    expect(progress.map((m) => m.params)).toEqual([
      { progressToken: 'tok-7', progress: 1, total: 2 },
      { progressToken: 'tok-7', progress: 2, total: 2 },
    ]);
    expect(r.body.result.content[0].text).toBe('done');
    const quiet = await call(A.url, 'tools/call', { name: 'progress' });
    expect(quiet.contentType).toContain('application/json');
  });

  it('log messages only with io.modelcontextprotocol/logLevel, and at or above it', async () => {
    const none = await call(A.url, 'tools/call', { name: 'log' });
    expect(none.messages.filter((m) => m.method === 'notifications/message')).toEqual([]);
    const errors = await call(A.url, 'tools/call', { name: 'log' }, { meta: { 'io.modelcontextprotocol/logLevel': 'warning' } });
    expect(errors.messages.filter((m) => m.method === 'notifications/message').map((m) => m.params.level)).toEqual(['error']);
  });
});

describe('MRTR: server-to-client requests become input_required, resumed on any replica', () => {
  const elicit = { elicitation: {} };

  it('elicitation: input_required on A, retry with inputResponses on B completes', async () => {
    const r1 = await call(A.url, 'tools/call', { name: 'ask' }, { caps: elicit, id: 1001 });
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ id: 1001, result: { resultType: 'input_required' } });
    const { inputRequests, requestState } = r1.body.result;
    expect(Object.values(inputRequests)).toEqual([{ method: 'elicitation/create', params: expect.objectContaining({ message: 'Your name?' }) }]);
    expect(typeof requestState).toBe('string');
    const key = Object.keys(inputRequests)[0]!;
    const r2 = await call(B.url, 'tools/call', { name: 'ask', inputResponses: { [key]: { action: 'accept', content: { name: 'Alice' } } }, requestState }, { caps: elicit, id: 1002 });
    expect(r2.body).toEqual({ jsonrpc: '2.0', id: 1002, result: expect.objectContaining({ resultType: 'complete', content: [{ type: 'text', text: 'hello Alice' }] }) });
  });

  it('several rounds, alternating replicas', async () => {
    const r1 = await call(A.url, 'tools/call', { name: 'ask-twice' }, { caps: elicit });
    const k1 = Object.keys(r1.body.result.inputRequests)[0]!;
    const r2 = await call(B.url, 'tools/call', { name: 'ask-twice', inputResponses: { [k1]: { action: 'accept', content: { name: 'Ada' } } }, requestState: r1.body.result.requestState }, { caps: elicit });
    expect(r2.body.result.resultType).toBe('input_required');
    expect(Object.values(r2.body.result.inputRequests)).toEqual([expect.objectContaining({ params: expect.objectContaining({ message: 'Last name?' }) })]);
    const k2 = Object.keys(r2.body.result.inputRequests)[0]!;
    const r3 = await call(A.url, 'tools/call', { name: 'ask-twice', inputResponses: { [k2]: { action: 'accept', content: { name: 'Lovelace' } } }, requestState: r2.body.result.requestState }, { caps: elicit });
    expect(r3.body.result).toMatchObject({ resultType: 'complete', content: [{ text: 'hello Ada Lovelace' }] });
  });

  it('sampling and roots, and prompts/get', async () => {
    const caps = { sampling: {}, roots: {}, elicitation: {} };
    const s1 = await call(A.url, 'tools/call', { name: 'sample' }, { caps });
    const sk = Object.keys(s1.body.result.inputRequests)[0]!;
    expect(s1.body.result.inputRequests[sk].method).toBe('sampling/createMessage');
    const s2 = await call(B.url, 'tools/call', { name: 'sample', inputResponses: { [sk]: { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm' } }, requestState: s1.body.result.requestState }, { caps });
    expect(s2.body.result.content[0].text).toBe('model said Paris');
    const r1 = await call(B.url, 'tools/call', { name: 'roots' }, { caps });
    const rk = Object.keys(r1.body.result.inputRequests)[0]!;
    const r2 = await call(A.url, 'tools/call', { name: 'roots', inputResponses: { [rk]: { roots: [{ uri: 'file:///a' }] } }, requestState: r1.body.result.requestState }, { caps });
    expect(r2.body.result.content[0].text).toBe('file:///a');
    const p1 = await call(A.url, 'prompts/get', { name: 'greet' }, { caps });
    const pk = Object.keys(p1.body.result.inputRequests)[0]!;
    const p2 = await call(B.url, 'prompts/get', { name: 'greet', inputResponses: { [pk]: { action: 'accept', content: { name: 'Bo' } } }, requestState: p1.body.result.requestState }, { caps });
    expect(p2.body.result).toMatchObject({ resultType: 'complete', messages: [{ content: { text: 'greet Bo (greet)' } }] });
  });

  it('an unanswered input request is asked again; a tampered, foreign or mismatched requestState is refused', async () => {
    const r1 = await call(A.url, 'tools/call', { name: 'ask' }, { caps: elicit });
    const { requestState, inputRequests } = r1.body.result;
    const again = await call(B.url, 'tools/call', { name: 'ask', inputResponses: {}, requestState }, { caps: elicit });
    expect(again.body.result).toMatchObject({ resultType: 'input_required', inputRequests });
    const tampered = `${requestState.slice(0, -2)}${requestState.endsWith('A') ? 'BB' : 'AA'}`;
    const bad = await call(B.url, 'tools/call', { name: 'ask', inputResponses: {}, requestState: tampered }, { caps: elicit });
    expect(bad.body.error).toMatchObject({ code: -32602, message: expect.stringContaining('requestState') });
    const otherTool = await call(B.url, 'tools/call', { name: 'echo', arguments: { message: 'x' }, requestState: again.body.result.requestState }, { caps: elicit });
    expect(otherTool.body.error.code).toBe(-32602);
    const bob = await call(B.url, 'tools/call', { name: 'ask', inputResponses: {}, requestState: again.body.result.requestState }, { caps: elicit, headers: { authorization: 'Bearer bob' } });
    expect(bob.body.error).toMatchObject({ code: -32602, message: expect.stringContaining('principal') });
    const key = Object.keys(inputRequests)[0]!;
    const notObject = await call(B.url, 'tools/call', { name: 'ask', inputResponses: { [key]: 12345 }, requestState: again.body.result.requestState }, { caps: elicit });
    expect(notObject.body.error.code).toBe(-32602);
    // Extra keys are ignored.
    const done = await call(B.url, 'tools/call', { name: 'ask', inputResponses: { [key]: { action: 'accept', content: { name: 'Cy' } }, extra: { x: 1 } }, requestState: again.body.result.requestState }, { caps: elicit });
    expect(done.body.result.content[0].text).toBe('hello Cy');
  });

  it('a server request needing an undeclared capability: 400, -32021 with requiredCapabilities', async () => {
    // The elicitation-capable pool's upstream offers `ask`; this request declares no elicitation.
    const r = await call(A.url, 'tools/call', { name: 'ask' }, { caps: {} });
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({ code: -32021, message: expect.any(String), data: { requiredCapabilities: { elicitation: {} } } });
  });

  it('the replica holding the exchange is gone: the retry runs the request afresh and asks again', { timeout: 10_000 }, async () => {
    const C = await replica('repc');
    const r1 = await call(C.url, 'tools/call', { name: 'ask' }, { caps: elicit });
    expect(r1.body.result.resultType).toBe('input_required');
    await C.proxy.close();
    await C.router.close();
    const key = Object.keys(r1.body.result.inputRequests)[0]!;
    const r2 = await call(B.url, 'tools/call', { name: 'ask', inputResponses: { [key]: { action: 'accept', content: { name: 'Di' } } }, requestState: r1.body.result.requestState }, { caps: elicit });
    expect(r2.body.result.resultType).toBe('input_required');
    const k2 = Object.keys(r2.body.result.inputRequests)[0]!;
    const r3 = await call(A.url, 'tools/call', { name: 'ask', inputResponses: { [k2]: { action: 'accept', content: { name: 'Di' } } }, requestState: r2.body.result.requestState }, { caps: elicit });
    expect(r3.body.result.content[0].text).toBe('hello Di');
  });
});

describe('subscriptions/listen', () => {
  async function listen(url: string, notifications: Record<string, unknown>, id: number) {
    const ctl = new AbortController();
    const res = await fetch(url, {
      method: 'POST',
      signal: ctl.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': V, 'mcp-method': 'subscriptions/listen', ...ALICE },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen', params: { notifications, _meta: meta() } }),
    });
    const frames: Record<string, any>[] = [];
    const reader = res.body!.getReader();
    let buf = '';
    const pump = (async () => {
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = ev.split('\n').find((l) => l.startsWith('data: '));
          if (data) frames.push(JSON.parse(data.slice(6)));
        }
      }
    })();
    const waitFor = async (pred: (f: Record<string, any>[]) => boolean, ms = 3000) => {
      const end = Date.now() + ms;
      while (!pred(frames) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return pred(frames);
    };
    return { res, frames, waitFor, close: () => (ctl.abort(), pump) };
  }

  it('acknowledges first, then delivers matching change notifications from another replica, tagged with the subscription id', async () => {
    const tools = await listen(B.url, { toolsListChanged: true, promptsListChanged: true }, 77);
    const prompts = await listen(A.url, { promptsListChanged: true }, 78);
    expect(tools.res.headers.get('content-type')).toContain('text/event-stream');
    expect(await tools.waitFor((f) => f.length >= 1)).toBe(true);
    // prompts.listChanged is not advertised: not acknowledged.
    expect(tools.frames[0]).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 77 }, notifications: { toolsListChanged: true } },
    });
    await prompts.waitFor((f) => f.length >= 1);
    await call(A.url, 'tools/call', { name: 'add-tool' });
    expect(await tools.waitFor((f) => f.length >= 2)).toBe(true);
    expect(tools.frames[1]).toEqual({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 77 } } });
    // The prompts-only stream got nothing but its acknowledgement.
    await new Promise((r) => setTimeout(r, 100));
    expect(prompts.frames.map((f) => f.method)).toEqual(['notifications/subscriptions/acknowledged']);
    await tools.close();
    await prompts.close();
  });

  it("resource subscriptions: recorded in the pooled session, so an update from another replica's upstream session arrives, once", async () => {
    const l = await listen(B.url, { resourceSubscriptions: ['test://static'] }, 79);
    expect(await l.waitFor((f) => f.length >= 1)).toBe(true);
    expect(l.frames[0]?.params.notifications).toEqual({ resourceSubscriptions: ['test://static'] });
    // Replica A's upstream session of the pool re-syncs from the record before serving this call.
    const touched = await call(A.url, 'tools/call', { name: 'touch' });
    expect(touched.body.result.content[0].text).toBe('test://static');
    expect(await l.waitFor((f) => f.length >= 2)).toBe(true);
    expect(l.frames[1]).toMatchObject({ method: 'notifications/resources/updated', params: { uri: 'test://static', _meta: { 'io.modelcontextprotocol/subscriptionId': 79 } } });
    // B's upstream session is subscribed too: both report the next change, the stream carries it once.
    await call(B.url, 'tools/call', { name: 'touch' });
    await call(A.url, 'tools/call', { name: 'touch' });
    await new Promise((r) => setTimeout(r, 100));
    expect(l.frames.filter((f) => f.method === 'notifications/resources/updated')).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 500));
    await call(B.url, 'tools/call', { name: 'touch' });
    expect(await l.waitFor((f) => f.length >= 3)).toBe(true);
    await l.close();
  });

  it('graceful end on shutdown: the listen result, tagged, then the stream closes', async () => {
    const D = await replica('repd');
    const l = await listen(D.url, { toolsListChanged: true }, 80);
    expect(await l.waitFor((f) => f.length >= 1)).toBe(true);
    await D.proxy.shutdown({ timeoutMs: 2000 });
    expect(await l.waitFor((f) => f.length >= 2)).toBe(true);
    expect(l.frames[1]).toEqual({ jsonrpc: '2.0', id: 80, result: { resultType: 'complete', _meta: { 'io.modelcontextprotocol/subscriptionId': 80 } } });
  });
});

describe('side by side with legacy clients', () => {
  it('a v1 SDK client (initialize, session) works on the same endpoint, across replicas', async () => {
    const client = new Client({ name: 'legacy', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(A.url), { requestInit: { headers: ALICE } }));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    const r = await client.callTool({ name: 'echo', arguments: { message: 'legacy' } });
    expect(r).toMatchObject({ content: [{ text: 'legacy' }] });
    await client.close();
  });
});
