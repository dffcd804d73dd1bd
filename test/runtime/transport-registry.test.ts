/**
 * `SessionTransportRegistry` across replicas, in one process: two "replicas" (each its own registry,
 * HTTP server, SDK `McpServer`s and `ServerRequestRouter`) sharing one in-memory session store,
 * session streams and message bus, as two processes share Redis. The handler code is what
 * `mcp-migrate apply` generates (see docs/apply.md). The official SDK client talks to them through a
 * "load balancer" fetch that sends each kind of request to a chosen replica, so the test knows where
 * every answer and every GET lands.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ResourceUpdatedNotificationSchema,
  SubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  BusServerRequestRouter,
  MemoryKeyValueStore,
  MemoryMessageBus,
  MemorySessionStore,
  MemorySessionStreams,
  SessionTransportRegistry,
  STANDALONE_STREAM,
  type RuntimeStores,
} from '@mcp-migrate/runtime';
import { answeringClient, CLIENT_ANSWERS, pollUntil, readSseResponse } from '../helpers/index.js';

interface Shared {
  sessions: MemorySessionStore;
  kv: MemoryKeyValueStore;
  streams: MemorySessionStreams;
  bus: MemoryMessageBus;
}

interface Replica {
  name: string;
  url: string;
  registry: SessionTransportRegistry<StreamableHTTPServerTransport>;
  router: BusServerRequestRouter;
  /** Sessions whose server this replica created (new or restored). */
  opened: number;
  /** Resource subscriptions this replica's servers hold (in-process, as server-everything keeps them), by session. */
  subscriptions: Map<string, Set<string>>;
  /** How many times a server of this replica ran its oninitialized work. */
  initializedRuns: number;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function shared(): Shared {
  const s: Shared = { sessions: new MemorySessionStore(), kv: new MemoryKeyValueStore(), streams: new MemorySessionStreams(), bus: new MemoryMessageBus() };
  cleanups.push(async () => {
    await s.streams.close();
    await s.sessions.close();
  });
  return s;
}

/** A replica running the code `mcp-migrate apply` generates, with a few tools that talk back to the client. */
async function replica(name: string, sh: Shared, options: { keepAliveMs?: number } = {}): Promise<Replica> {
  const router = new BusServerRequestRouter({ bus: sh.bus, replicaId: `r${name}` });
  await router.ready;
  const stores: RuntimeStores = {
    kind: 'memory',
    sessions: sh.sessions,
    kv: sh.kv,
    keyPrefix: 'mcpm:',
    ttlMs: 3_600_000,
    bus: sh.bus,
    streams: sh.streams,
    router,
    ready: async () => {},
    close: async () => {},
  };
  const registry = new SessionTransportRegistry<StreamableHTTPServerTransport>({ stores, log: () => undefined, ...options });
  const r = { name, registry, router, opened: 0, subscriptions: new Map(), initializedRuns: 0 } as Replica;

  async function openSession(): Promise<StreamableHTTPServerTransport> {
    r.opened++;
    const server = new McpServer({ name: `replica-${name}`, version: '1.0.0' }, { capabilities: { logging: {}, resources: { subscribe: true } } });
    server.server.setRequestHandler(SubscribeRequestSchema, async (request, extra) => {
      const set = r.subscriptions.get(extra.sessionId!) ?? new Set<string>();
      set.add(request.params.uri);
      r.subscriptions.set(extra.sessionId!, set);
      return {};
    });
    // Registered once the client is initialized, as server-everything registers its conditional tools.
    server.server.oninitialized = () => {
      r.initializedRuns++;
      server.registerTool('conditional', { inputSchema: {} }, async () => ({ content: [{ type: 'text', text: `conditional on ${name}` }] }));
    };
    // Sends resources/updated for this replica's idea of the session's subscriptions, on the standalone stream.
    server.registerTool('updates', { inputSchema: {} }, async (_args, extra) => {
      for (const uri of r.subscriptions.get(extra.sessionId!) ?? []) await server.server.sendResourceUpdated({ uri });
      return { content: [{ type: 'text', text: 'sent' }] };
    });
    // On the POST stream of the tool call (relatedRequestId): the SDK's extra.sendRequest.
    server.registerTool('ask-sampling', { inputSchema: {} }, async (_args, extra) => {
      const result = await extra.sendRequest(
        { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 } },
        CreateMessageResultSchema,
      );
      return { content: [{ type: 'text', text: `${name}:${(result.content as { text: string }).text}` }] };
    });
    server.registerTool('ask-elicitation', { inputSchema: {} }, async (_args, extra) => {
      const result = await extra.sendRequest(
        { method: 'elicitation/create', params: { message: 'name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } } },
        ElicitResultSchema,
      );
      return { content: [{ type: 'text', text: `${name}:${result.action}:${String(result.content?.name)}` }] };
    });
    // On the standalone stream (no relatedRequestId), as server-everything's roots sync does.
    server.registerTool('ask-roots', { inputSchema: {} }, async () => {
      const result = await server.server.listRoots();
      return { content: [{ type: 'text', text: `${name}:${result.roots.map((x) => x.uri).join(',')}` }] };
    });
    server.registerTool('notify', { inputSchema: {} }, async (_args, extra) => {
      await server.sendLoggingMessage({ level: 'info', data: `from ${name}` }, extra.sessionId);
      return { content: [{ type: 'text', text: 'sent' }] };
    });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: registry.sessionIdGenerator(() => randomUUID()),
      onsessioninitialized: (sessionId) => {
        registry.set(sessionId, transport);
      },
    });
    await server.connect(transport);
    return transport;
  }
  registry.opener(openSession);

  const httpServer = http.createServer((req, res) => {
    void (async () => {
      if (!(await registry.prepareNode(req, res))) return;
      const sid = req.headers['mcp-session-id'] as string | undefined;
      const transport = sid ? registry.get(sid) : await openSession();
      if (!transport) return void res.writeHead(400).end();
      await transport.handleRequest(req, res);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/mcp`;
  r.close = async () => {
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    for (const t of registry.values()) await t.close().catch(() => undefined);
    await router.close();
  };
  cleanups.push(() => r.close());
  return r;
}

type Kind = 'initialize' | 'get' | 'answer' | 'other';

/** Classifies a client request: an initialize, a GET, a POST of answers (responses only), or anything else. */
function kindOf(init: RequestInit | undefined): Kind {
  const method = init?.method ?? 'GET';
  if (method === 'GET') return 'get';
  if (method !== 'POST' || typeof init?.body !== 'string') return 'other';
  const body = JSON.parse(init.body) as unknown;
  const messages = (Array.isArray(body) ? body : [body]) as { method?: string; id?: unknown }[];
  if (messages.some((m) => m.method === 'initialize')) return 'initialize';
  if (messages.every((m) => m.method === undefined && m.id !== undefined)) return 'answer';
  return 'other';
}

/** A load balancer that sends each kind of request to a chosen replica, and records who got what. */
function balancer(route: Record<Kind, Replica>) {
  const log: { kind: Kind; replica: string; body?: string }[] = [];
  const fetchFn = (async (_input: string | URL | Request, init?: RequestInit) => {
    const kind = kindOf(init);
    const r = route[kind];
    log.push({ kind, replica: r.name, ...(typeof init?.body === 'string' ? { body: init.body } : {}) });
    return await fetch(r.url, init);
  }) as typeof fetch;
  return { fetch: fetchFn, log };
}

async function sdkClient(fetchFn: typeof fetch, url: string) {
  const c = await answeringClient(fetchFn, url, 'registry-test');
  cleanups.push(async () => {
    await c.client.close();
  });
  return c;
}

const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0]!.text);

const until = (check: () => boolean, timeoutMs = 5_000) => pollUntil(check, timeoutMs, 20);

describe('SessionTransportRegistry: server-initiated requests across replicas', () => {
  it('answers to sampling and elicitation on the POST stream land on another replica and resolve the request on the replica that asked', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    // Tool calls on A; every answer, and the GET, on B.
    const lb = balancer({ initialize: a, other: a, get: b, answer: b });
    const { client, asked } = await sdkClient(lb.fetch, a.url);
    for (let i = 0; i < 3; i++) {
      expect(text(await client.callTool({ name: 'ask-sampling', arguments: {} }))).toBe(`A:${CLIENT_ANSWERS.sampled}`);
      expect(text(await client.callTool({ name: 'ask-elicitation', arguments: {} }))).toBe(`A:accept:${CLIENT_ANSWERS.name}`);
    }
    expect(asked).toHaveLength(6);
    // The client saw ids naming replica A, never the SDK's own counters (which restart at 0 in every server).
    for (const q of asked) expect(q.id).toMatch(/^mcp-migrate:s:rA:[0-9a-z]+$/);
    expect(new Set(asked.map((q) => q.id)).size).toBe(6);
    // Each answer went to B, which restored the session there and handed the answer on to A.
    const answers = lb.log.filter((e) => e.kind === 'answer');
    expect(answers.length).toBeGreaterThanOrEqual(6);
    expect(answers.every((e) => e.replica === 'B')).toBe(true);
    expect(b.opened).toBe(1);
    expect(a.router.pendingCount).toBe(0);
  });

  it('a request on the standalone stream (roots/list) reaches the client through the GET held by another replica, and its answer comes back', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    const lb = balancer({ initialize: a, other: a, get: b, answer: b });
    const { client, asked } = await sdkClient(lb.fetch, a.url);
    await until(() => lb.log.some((e) => e.kind === 'get'));
    expect(text(await client.callTool({ name: 'ask-roots', arguments: {} }))).toBe(`A:${CLIENT_ANSWERS.root}`);
    expect(asked.map((q) => q.method)).toEqual(['roots/list']);
    expect(asked[0]!.id).toMatch(/^mcp-migrate:s:rA:/);
  });

  it('a notification sent outside a request reaches the GET stream held by another replica', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    const lb = balancer({ initialize: a, other: a, get: b, answer: b });
    const { client, logs } = await sdkClient(lb.fetch, a.url);
    await until(() => lb.log.some((e) => e.kind === 'get'));
    await client.callTool({ name: 'notify', arguments: {} });
    expect(await until(() => logs.includes('from A'))).toBe(true);
    // B served the GET (A never saw one), and the message is in the session's standalone stream.
    expect(lb.log.filter((e) => e.kind === 'get').every((e) => e.replica === 'B')).toBe(true);
    expect(sh.streams.streamIds(client.transport!.sessionId!)).toContain(STANDALONE_STREAM);
  });
});

describe('SessionTransportRegistry: session state across replicas', () => {
  it('a subscription made on one replica is replayed into the transport another replica already restored, so its updates reach the client', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    const route = { initialize: a, other: a, get: a, answer: a } as Record<Kind, Replica>;
    const lb = balancer(route);
    const { client, transport } = await sdkClient(lb.fetch, a.url);
    const sid = transport.sessionId!;
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updated.push(n.params.uri);
    });
    // B restores the session now, before the subscription exists.
    route.other = b;
    await client.ping();
    expect(b.opened).toBe(1);
    route.other = a;
    await client.subscribeResource({ uri: 'test://one' });
    expect(a.subscriptions.get(sid)).toEqual(new Set(['test://one']));
    // The next request on B waits for the change to be replayed there.
    route.other = b;
    await client.callTool({ name: 'updates', arguments: {} });
    expect(b.subscriptions.get(sid)).toEqual(new Set(['test://one']));
    expect(await until(() => updated.includes('test://one'))).toBe(true);
    expect(b.opened).toBe(1);
  });

  it('the replica that created a session runs its oninitialized work even when notifications/initialized lands elsewhere, and no replica runs it twice', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    // initialize on A; notifications/initialized (a POST that is neither initialize nor an answer) on B.
    const route = { initialize: a, other: b, get: b, answer: b } as Record<Kind, Replica>;
    const { client } = await sdkClient(balancer(route).fetch, a.url);
    expect(b.initializedRuns).toBe(1);
    route.other = a;
    expect(text(await client.callTool({ name: 'conditional', arguments: {} }))).toBe('conditional on A');
    route.other = b;
    expect(text(await client.callTool({ name: 'conditional', arguments: {} }))).toBe('conditional on B');
    expect([a.initializedRuns, b.initializedRuns]).toEqual([1, 1]);
  });

  it('a DELETE on one replica closes the transport another replica holds at once', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    const route = { initialize: a, other: b, get: a, answer: a } as Record<Kind, Replica>;
    const { client, transport } = await sdkClient(balancer(route).fetch, a.url);
    const sid = transport.sessionId!;
    await client.ping();
    expect(b.registry.has(sid)).toBe(true);
    route.other = a;
    await transport.terminateSession();
    expect(await until(() => !b.registry.has(sid))).toBe(true);
  });
});

/** Reads an SSE response as it arrives, with the test notifications (`note(i)`) picked out. */
function readSse(res: Response) {
  const r = readSseResponse<{ method?: string; params?: { data?: unknown } }>(res);
  return Object.assign(r, {
    /** The test notifications among the messages (the server sends its own too, e.g. tools/list_changed). */
    data: () => r.messages().filter((m) => m.method === 'notifications/message' && /^n\d+$/.test(String(m.params?.data))),
    /** The event id of the last test notification. */
    lastNoteId: () => r.events.filter((e) => e.data && /"data":"n\d+"/.test(e.data)).at(-1)?.id,
  });
}

async function rawSession(url: string, protocolVersion: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
  await res.text();
  const sid = res.headers.get('mcp-session-id')!;
  await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  return sid;
}

function get(url: string, sid: string, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  cleanups.push(async () => ac.abort());
  return {
    abort: () => ac.abort(),
    response: fetch(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', ...headers }, signal: ac.signal }),
  };
}

const note = (i: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { level: 'info', data: `n${i}` } });

describe('SessionTransportRegistry: GET streams served from the shared session streams', () => {
  it('primes a 2025-11-25 stream, resumes with Last-Event-ID on another replica, and a newer GET supersedes the older one', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    const sid = await rawSession(a.url, '2025-11-25');
    const first = await get(b.url, sid).response;
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/event-stream');
    const s1 = readSse(first);
    await until(() => s1.events.length > 0);
    // Priming event: an id and retry:, no message.
    expect(s1.events[0]).toMatchObject({ retry: '1000', data: '' });
    expect(s1.events[0]!.id).toMatch(/^g_/);
    await sh.streams.append(sid, STANDALONE_STREAM, note(1));
    await until(() => s1.data().length === 1);
    const lastId = s1.lastNoteId()!;
    await sh.streams.append(sid, STANDALONE_STREAM, note(2));
    await until(() => s1.data().length === 2);
    // Reconnect on the other replica after n1: gets n2 again (it was after the id), then live ones; the old stream ends.
    const second = await get(a.url, sid, { 'last-event-id': lastId }).response;
    expect(second.status).toBe(200);
    const s2 = readSse(second);
    expect(await until(() => s1.ended)).toBe(true);
    await sh.streams.append(sid, STANDALONE_STREAM, note(3));
    await until(() => s2.data().length === 2);
    expect(s2.data().map((m) => m.params?.data)).toEqual(['n2', 'n3']);
    expect(s1.data().map((m) => m.params?.data)).toEqual(['n1', 'n2']);
  });

  it('delivers messages sent before any GET was open to the first GET, and no priming event before 2025-11-25', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    const sid = await rawSession(a.url, '2025-06-18');
    await sh.streams.append(sid, STANDALONE_STREAM, note(1));
    const s = readSse(await get(b.url, sid, { 'mcp-protocol-version': '2025-06-18' }).response);
    await until(() => s.events.length > 0);
    expect(s.events.every((e) => e.retry === undefined)).toBe(true);
    expect(s.data().map((m) => m.params?.data)).toEqual(['n1']);
  });

  it('sends keep-alive comments', async () => {
    const sh = shared();
    const a = await replica('A', sh, { keepAliveMs: 50 });
    const sid = await rawSession(a.url, '2025-06-18');
    const res = await get(a.url, sid, { 'mcp-protocol-version': '2025-06-18' }).response;
    const reader = res.body!.getReader();
    let seen = '';
    const end = Date.now() + 3_000;
    while (!seen.includes(': keep-alive') && Date.now() < end) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    expect(seen).toContain(': keep-alive\n\n');
  });

  it('answers 404 for an unknown session, 406 without text/event-stream, and a DELETE ends the GET on another replica and removes the streams', async () => {
    const sh = shared();
    const [a, b] = [await replica('A', sh), await replica('B', sh)];
    expect((await get(a.url, 'no-such-session').response).status).toBe(404);
    const sid = await rawSession(a.url, '2025-06-18');
    expect((await fetch(b.url, { headers: { accept: 'application/json', 'mcp-session-id': sid } })).status).toBe(406);
    const s = readSse(await get(b.url, sid).response);
    await sh.streams.append(sid, STANDALONE_STREAM, note(1));
    await until(() => s.data().length === 1);
    const del = await fetch(a.url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } });
    expect(del.status).toBe(200);
    expect(await until(() => s.ended)).toBe(true);
    expect(sh.streams.streamIds(sid)).toEqual([]);
    expect((await get(b.url, sid).response).status).toBe(404);
  });
});

describe('SessionTransportRegistry: what the generated code may hand it', () => {
  it('sessionIdGenerator keeps undefined (a transport a server makes stateless at run time) and wraps a function', () => {
    const registry = new SessionTransportRegistry({ log: () => undefined });
    expect(registry.sessionIdGenerator(undefined)).toBeUndefined();
    const wrapped = registry.sessionIdGenerator(() => 'fresh-id');
    expect(wrapped?.()).toBe('fresh-id');
  });

  it('a restore whose opener resolves undefined (it failed and answered the request itself) ends there: the server\'s answer stands, nothing is restored', async () => {
    const sh = shared();
    const a = await replica('a', sh);
    const b = await replica('b', sh);
    const { client } = await sdkClient(balancer({ initialize: a, get: a, answer: a, other: a }).fetch, a.url);
    const sessionId = (client as unknown as { transport: { sessionId: string } }).transport.sessionId;
    expect(sessionId).toBeTruthy();
    // Replica b's opener fails as a server's `catch` does: it answers 503 itself and resolves undefined.
    b.registry.opener(async (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(503).end('no upstream');
      return undefined;
    });
    const res = await fetch(b.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('no upstream');
    expect(b.registry.has(sessionId)).toBe(false);
  });
});
