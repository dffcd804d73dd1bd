/**
 * `SessionTransportRegistry({ kind: 'web' })` with the SDK's `WebStandardStreamableHTTPServerTransport`
 * in hono apps, in one process: three "replicas" (each its own hono app, registry and
 * `ServerRequestRouter`) share one in-memory session store, session streams and message bus, as
 * processes share Redis. Each app is the code the `web-transport-registry` transform generates
 * (`prepareRequest` first in the handler, the registry's `entry` set to `app.fetch`), behind an
 * authentication middleware. The official SDK client reaches them through a fetch that sends each
 * request to the next replica in turn (round robin), in process (`app.fetch`), so the test knows
 * where every request lands.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CreateMessageRequestSchema, CreateMessageResultSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  BusServerRequestRouter,
  MemoryKeyValueStore,
  MemoryMessageBus,
  MemorySessionStore,
  MemorySessionStreams,
  SessionTransportRegistry,
  type RuntimeStores,
} from '@mcp-migrate/runtime';

const TOKEN = 'Bearer web-registry-test';

interface Shared {
  sessions: MemorySessionStore;
  kv: MemoryKeyValueStore;
  streams: MemorySessionStreams;
  bus: MemoryMessageBus;
}

interface Replica {
  name: string;
  app: Hono;
  registry: SessionTransportRegistry<WebStandardStreamableHTTPServerTransport>;
  /** Sessions whose MCP server this replica created (new or restored). */
  opened: number;
  /** The `Authorization` header of every request the MCP route saw. */
  authorizations: (string | undefined)[];
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

/**
 * A transport whose `handleRequest` takes the framework's context rather than a `Request`, as @hono/mcp's
 * `StreamableHTTPTransport` does (`transport.handleRequest(c)`): the registry cannot call it with a
 * `Request` of its own, so a restored session's handshake must reach it through the app's route.
 */
class ContextTransport extends WebStandardStreamableHTTPServerTransport {
  override handleRequest(c: any): Promise<Response> {
    if (c instanceof Request || typeof c?.req?.raw !== 'object') throw new TypeError('handleRequest takes the hono Context');
    return super.handleRequest(c.req.raw as Request);
  }
}

async function replica(name: string, sh: Shared, opts: { contextTransport?: boolean } = {}): Promise<Replica> {
  const router = new BusServerRequestRouter({ bus: sh.bus, replicaId: `w${name}` });
  await router.ready;
  const stores: RuntimeStores = { kind: 'memory', sessions: sh.sessions, kv: sh.kv, keyPrefix: 'mcpm:', ttlMs: 3_600_000, bus: sh.bus, streams: sh.streams, router, ready: async () => {}, close: async () => {} };
  const transports = new SessionTransportRegistry<WebStandardStreamableHTTPServerTransport>({ kind: 'web', stores, log: () => undefined });
  const r: Replica = { name, app: new Hono(), registry: transports, opened: 0, authorizations: [] };
  const app = r.app;
  app.use('*', async (c, next) => {
    if (c.req.header('authorization') !== TOKEN) return c.json({ error: 'unauthorized' }, 401);
    await next();
    return undefined;
  });
  // The server's handler as the transform leaves it: prepareRequest first, the rest unchanged.
  app.all('/mcp', async (c) => {
    const sessionResponse = await transports.prepareRequest(c.req.raw);
    if (sessionResponse) return sessionResponse;
    r.authorizations.push(c.req.header('authorization'));
    const sessionId = c.req.header('mcp-session-id');
    const existing = sessionId ? transports.get(sessionId) : undefined;
    if (existing) return opts.contextTransport ? existing.handleRequest(c as never) : existing.handleRequest(c.req.raw);
    if (sessionId) return c.json({ error: 'unknown session' }, 404);
    r.opened++;
    const server = new McpServer({ name: `web-${name}`, version: '1.0.0' }, { capabilities: { logging: {} } });
    server.registerTool('whoami', { inputSchema: {} }, async (_args, extra) => ({ content: [{ type: 'text', text: `${name}:${extra.sessionId}` }] }));
    server.registerTool('ask-sampling', { inputSchema: {} }, async (_args, extra) => {
      const result = await extra.sendRequest(
        { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 } },
        CreateMessageResultSchema,
      );
      return { content: [{ type: 'text', text: `${name}:${(result.content as { text: string }).text}` }] };
    });
    server.registerTool('notify', { inputSchema: {} }, async (_args, extra) => {
      await server.sendLoggingMessage({ level: 'info', data: `from ${name}` }, extra.sessionId);
      return { content: [{ type: 'text', text: 'sent' }] };
    });
    const Transport = opts.contextTransport ? ContextTransport : WebStandardStreamableHTTPServerTransport;
    const transport: WebStandardStreamableHTTPServerTransport = new Transport({
      sessionIdGenerator: transports.sessionIdGenerator(() => crypto.randomUUID()),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    await server.connect(transport);
    return opts.contextTransport ? transport.handleRequest(c as never) : transport.handleRequest(c.req.raw);
  });
  transports.entry((request) => app.fetch(request));
  cleanups.push(async () => {
    for (const t of transports.values()) await t.close().catch(() => undefined);
    await router.close();
  });
  return r;
}

/** Round robin over the replicas, in process; records which replica got each request. */
function roundRobin(replicas: Replica[]) {
  const log: { method: string; replica: string; status: number }[] = [];
  let next = 0;
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const r = replicas[next++ % replicas.length]!;
    const response = await r.app.fetch(new Request(input, init));
    log.push({ method: init?.method ?? 'GET', replica: r.name, status: response.status });
    return response;
  }) as typeof fetch;
  return { fetch: fetchFn, log };
}

async function connect(fetchFn: typeof fetch) {
  const client = new Client({ name: 'web-registry-test', version: '1.0.0' }, { capabilities: { sampling: {} } });
  const logs: string[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled' } }));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(String(n.params.data));
  });
  const transport = new StreamableHTTPClientTransport(new URL('http://replicas.invalid/mcp'), { fetch: fetchFn, requestInit: { headers: { authorization: TOKEN } } });
  await client.connect(transport);
  cleanups.push(async () => {
    await client.close();
  });
  return { client, transport, logs };
}

const text = (r: unknown) => (r as { content: { text: string }[] }).content[0]!.text;

describe('SessionTransportRegistry: web-standard transports restored through the server entry point', () => {
  it('serves every request of a session on whichever replica it reaches, with the same session id, and DELETE ends it everywhere', async () => {
    const sh = shared();
    const replicas = [await replica('a', sh), await replica('b', sh), await replica('c', sh)];
    const lb = roundRobin(replicas);
    const { client, transport } = await connect(lb.fetch);
    const sid = transport.sessionId!;
    expect(sid).toMatch(/^[0-9a-f-]{36}$/);
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const [who, id] = text(await client.callTool({ name: 'whoami', arguments: {} })).split(':');
      served.add(who!);
      expect(id).toBe(sid);
    }
    expect([...served].sort()).toEqual(['a', 'b', 'c']);
    // Each replica opened the session's server once: a for the client's initialize, b and c by replay.
    expect(replicas.map((r) => r.opened)).toEqual([1, 1, 1]);
    // The replay went through the authentication middleware with the client's header.
    for (const r of replicas) expect(r.authorizations.every((a) => a === TOKEN)).toBe(true);
    expect(lb.log.filter((l) => l.status >= 400)).toEqual([]);

    await transport.terminateSession();
    for (const r of replicas) {
      const after = await r.app.fetch(
        new Request('http://replicas.invalid/mcp', {
          method: 'POST',
          headers: { authorization: TOKEN, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
        }),
      );
      expect(after.status, r.name).toBe(404);
      expect(((await after.json()) as { error: { code: number } }).error.code).toBe(-32001);
    }
  });

  it('restores a transport whose handleRequest takes the framework context (as @hono/mcp\'s does) by replaying the whole handshake through the app, the logging level included', async () => {
    const sh = shared();
    const replicas = [await replica('a', sh, { contextTransport: true }), await replica('b', sh, { contextTransport: true }), await replica('c', sh, { contextTransport: true })];
    const lb = roundRobin(replicas);
    const { client, transport, logs } = await connect(lb.fetch);
    // Recorded with the handshake on the replica that gets it, replayed into the others' servers.
    await client.setLoggingLevel('error');
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const [who, id] = text(await client.callTool({ name: 'whoami', arguments: {} })).split(':');
      served.add(who!);
      expect(id).toBe(transport.sessionId);
    }
    expect([...served].sort()).toEqual(['a', 'b', 'c']);
    expect(replicas.map((r) => r.opened)).toEqual([1, 1, 1]);
    expect(lb.log.filter((l) => l.status >= 400)).toEqual([]);
    // An info message is below the session's level on every replica: none reaches the client, while
    // the same session at level info gets one (below).
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'notify', arguments: {} });
    await client.setLoggingLevel('info');
    await client.callTool({ name: 'notify', arguments: {} });
    const end = Date.now() + 5_000;
    while (logs.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(logs).toEqual([expect.stringMatching(/^from [abc]$/)]);
  });

  it('routes a server-initiated request and a standalone-stream notification across replicas', async () => {
    const sh = shared();
    const replicas = [await replica('a', sh), await replica('b', sh), await replica('c', sh)];
    const lb = roundRobin(replicas);
    const { client, logs } = await connect(lb.fetch);
    for (let i = 0; i < 3; i++) expect(text(await client.callTool({ name: 'ask-sampling', arguments: {} }))).toMatch(/^[abc]:sampled$/);
    await client.callTool({ name: 'notify', arguments: {} });
    const end = Date.now() + 5_000;
    while (logs.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(logs).toEqual([expect.stringMatching(/^from [abc]$/)]);
  });

  it('answers 404 for an id no replica issued, without running the server code', async () => {
    const sh = shared();
    const a = await replica('a', sh);
    const response = await a.app.fetch(
      new Request('http://replicas.invalid/mcp', {
        method: 'POST',
        headers: { authorization: TOKEN, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'never-issued' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      }),
    );
    expect(response.status).toBe(404);
    expect(a.opened).toBe(0);
  });
});
