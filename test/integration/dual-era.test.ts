/**
 * Issue #8: one endpoint, both eras. Three `mcp-migrate proxy` replicas (Redis store) behind plain
 * round-robin nginx, in front of one server-everything (Streamable HTTP, legacy only). Side by side and
 * at the same time:
 *   - clients of the v2 SDK (`@modelcontextprotocol/client` 2.x) negotiating the era (`mode: 'auto'`),
 *     which lands on 2026-07-28: stateless requests, MRTR elicitation and sampling (the retry lands on
 *     another replica than the request that got `input_required`), `subscriptions/listen`;
 *   - clients of the v1 SDK (`@modelcontextprotocol/sdk` 1.32.2): sessions, server-initiated requests.
 * Real redis-server, real nginx, real processes.
 */
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startEverythingHttp,
  startProxyCluster,
  startRedis,
  stopAllProcesses,
  type NginxInstance,
  type RedisInstance,
} from '../helpers/index.js';

const REPLICAS = 3;
const CLIENTS_PER_ERA = 6;
const V = '2026-07-28';

let redis: RedisInstance;
let nginx: NginxInstance;

beforeAll(async () => {
  redis = await startRedis();
  const everything = await startEverythingHttp({ name: 'dual-era-everything' });
  ({ nginx } = await startProxyCluster({ store: redis.url, upstream: { url: everything.url }, name: 'dual-era-proxy', replicas: REPLICAS }));
});

afterAll(async () => {
  await nginx?.stop();
  await stopAllProcesses();
  await redis?.stop();
});

/** A fetch that records which replica answered each request (`x-mcp-migrate-replica`) by JSON-RPC method. */
function tracingFetch(log: { method: string; replica: string | null; body: string }[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await fetch(input, init);
    const body = typeof init?.body === 'string' ? init.body : '';
    let method = '';
    try {
      method = (JSON.parse(body) as { method?: string }).method ?? '';
    } catch {
      // not JSON
    }
    log.push({ method, replica: res.headers.get('x-mcp-migrate-replica'), body });
    return res;
  }) as typeof fetch;
}

const ELICITED = { name: 'Ada Lovelace', check: true, email: 'ada@example.com', integer: 7 };

async function modernSession(i: number): Promise<{ replicasSeen: Set<string>; mrtrCrossed: boolean }> {
  const log: { method: string; replica: string | null; body: string }[] = [];
  const client = new ModernClient(
    { name: `modern-${i}`, version: '1.0.0' },
    { capabilities: { elicitation: {}, sampling: {} }, versionNegotiation: { mode: 'auto' } },
  );
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: ELICITED }));
  client.setRequestHandler('sampling/createMessage', async (req) => ({
    model: 'test-model',
    role: 'assistant',
    content: { type: 'text', text: `sampled: ${JSON.stringify(req.params.messages.at(-1)?.content)}` },
  }));
  await client.connect(new ModernTransport(new URL(nginx.url), { fetch: tracingFetch(log) }));
  expect(client.getProtocolEra()).toBe('modern');
  expect(client.getServerCapabilities()?.tools).toBeDefined();

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  expect(names).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-elicitation-request', 'trigger-sampling-request']));
  expect(await client.callTool({ name: 'echo', arguments: { message: `modern ${i}` } })).toMatchObject({ content: [{ type: 'text', text: `Echo: modern ${i}` }] });
  expect(await client.callTool({ name: 'get-sum', arguments: { a: i, b: 1 } })).toMatchObject({ content: [{ type: 'text', text: expect.stringContaining(String(i + 1)) }] });
  const { resources } = await client.listResources();
  expect(resources.length).toBeGreaterThan(0);
  const read = await client.readResource({ uri: resources[0]!.uri });
  expect(read.contents.length).toBeGreaterThan(0);
  const { prompts } = await client.listPrompts();
  expect(prompts.length).toBeGreaterThan(0);

  // MRTR: server-everything sends elicitation/create (a server-initiated request on its legacy session);
  // the front answers input_required, the v2 client fulfils it and retries — through nginx, so the
  // retry usually lands on another replica than the first call.
  const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
  expect(JSON.stringify(elicited)).toContain('Ada Lovelace');
  const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `hello ${i}`, maxTokens: 20 } });
  expect(JSON.stringify(sampled)).toContain(`sampled:`);
  await client.close();

  const calls = log.filter((l) => l.method === 'tools/call' && l.body.includes('trigger-'));
  let mrtrCrossed = false;
  for (let k = 0; k + 1 < calls.length; k++) {
    if (!calls[k]!.body.includes('requestState') && calls[k + 1]!.body.includes('requestState') && calls[k]!.replica !== calls[k + 1]!.replica) mrtrCrossed = true;
  }
  expect(calls.some((c) => c.body.includes('requestState'))).toBe(true);
  return { replicasSeen: new Set(log.map((l) => l.replica).filter((r): r is string => r !== null)), mrtrCrossed };
}

async function legacySession(i: number): Promise<void> {
  const client = new LegacyClient({ name: `legacy-${i}`, version: '1.0.0' }, { capabilities: { elicitation: {}, sampling: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: ELICITED }));
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: 'legacy sampled' } }));
  const transport = new LegacyTransport(new URL(nginx.url));
  await client.connect(transport);
  expect(transport.sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect((await client.listTools()).tools.map((t) => t.name)).toContain('trigger-elicitation-request');
  expect(await client.callTool({ name: 'echo', arguments: { message: `legacy ${i}` } })).toMatchObject({ content: [{ type: 'text', text: `Echo: legacy ${i}` }] });
  const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
  expect(JSON.stringify(elicited)).toContain('Ada Lovelace');
  const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 20 } });
  expect(JSON.stringify(sampled)).toContain('legacy sampled');
  await transport.terminateSession();
  await client.close();
}

describe(`v2 client (2026-07-28) and v1 client (2025-11-25) side by side through ${REPLICAS} replicas behind nginx`, () => {
  it(`${CLIENTS_PER_ERA} modern and ${CLIENTS_PER_ERA} legacy clients at once, all succeed; MRTR retries cross replicas`, async () => {
    const modern = Array.from({ length: CLIENTS_PER_ERA }, (_, i) => modernSession(i));
    const legacy = Array.from({ length: CLIENTS_PER_ERA }, (_, i) => legacySession(i));
    const results = await Promise.all([...modern, ...legacy]);
    const modernResults = results.slice(0, CLIENTS_PER_ERA) as Awaited<ReturnType<typeof modernSession>>[];
    const seen = new Set(modernResults.flatMap((r) => [...r.replicasSeen]));
    expect(seen.size).toBe(REPLICAS);
    expect(modernResults.some((r) => r.mrtrCrossed)).toBe(true);
    const byReplica = new Map<string, number>();
    for (const e of nginx.accessLog()) byReplica.set(e.upstream, (byReplica.get(e.upstream) ?? 0) + 1);
    expect([...byReplica.keys()].filter((k) => k !== '-')).toHaveLength(REPLICAS);
  });

  it('subscriptions/listen: resource updates triggered through another replica reach the stream', async () => {
    const client = new ModernClient({ name: 'listener', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
    await client.connect(new ModernTransport(new URL(nginx.url)));
    const { resources } = await client.listResources();
    const uri = resources[0]!.uri;
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', async (n) => {
      updates.push(n.params.uri);
    });
    const sub = await client.listen({ resourceSubscriptions: [uri] });
    expect(sub.honoredFilter).toEqual({ resourceSubscriptions: [uri] });
    // server-everything then sends updates for the subscribed URIs of the calling upstream session,
    // at once and every 5 s; that session (on whichever replica nginx picks) subscribed from the pool's record.
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    const until = Date.now() + 12_000;
    while (updates.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(updates).toContain(uri);
    await sub.close();
    await client.close();
  });

  it('modern errors through nginx: 405 sessionless GET/DELETE, 404 removed methods, -32022, -32020', async () => {
    expect((await fetch(nginx.url, { headers: { accept: 'text/event-stream' } })).status).toBe(405);
    expect((await fetch(nginx.url, { method: 'DELETE' })).status).toBe(405);
    const post = (method: string, headers: Record<string, string>, meta: Record<string, unknown>) =>
      fetch(nginx.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-method': method, ...headers },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method, params: { _meta: { 'io.modelcontextprotocol/clientCapabilities': {}, ...meta } } }),
      });
    const ping = await post('ping', { 'mcp-protocol-version': V }, { 'io.modelcontextprotocol/protocolVersion': V });
    expect(ping.status).toBe(404);
    expect(await ping.json()).toMatchObject({ id: 9, error: { code: -32601 } });
    const old = await post('tools/list', { 'mcp-protocol-version': '2099-01-01' }, { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' });
    expect(old.status).toBe(400);
    expect(await old.json()).toMatchObject({ error: { code: -32022, data: { supported: [V], requested: '2099-01-01' } } });
    const mismatch = await post('tools/list', { 'mcp-protocol-version': V }, { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' });
    expect(await mismatch.json()).toMatchObject({ error: { code: -32020 } });
  });
});
