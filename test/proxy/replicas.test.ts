/**
 * Two in-process replicas sharing a real redis-server: what makes the proxy distributed. (The
 * 3-replica nginx round-robin suite lives in test/integration/.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createRedisClient, RedisMessageBus, RedisSessionStore, waitForRedis } from '@mcp-migrate/runtime';
import type { StdioUpstreamSession } from '../../src/proxy/upstreams/stdio.js';
import { startEverythingHttp, startRedis, stopAllProcesses, type RedisInstance } from '../helpers/index.js';
import {
  closeAll,
  httpConnector,
  INIT_PARAMS,
  isAlive,
  rawInitialize,
  rawPost,
  responsesIn,
  startTestProxy,
  type TestProxy,
  pollUntil,
} from '../helpers/in-process-proxy.js';
import type { UpstreamConnector } from '../../src/proxy/index.js';

let redis: RedisInstance;

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-replicas-test' });
});
afterEach(closeAll);
afterAll(async () => {
  await redis?.stop();
  await stopAllProcesses();
});

/** One replica: its own ioredis connections, as a separate process would have. */
async function replica(upstream?: UpstreamConnector): Promise<TestProxy> {
  const client = createRedisClient(redis.url);
  await waitForRedis(client, 5_000);
  const store = new RedisSessionStore({ client });
  const bus = new RedisMessageBus(client);
  return await startTestProxy({ affinity: 'replay', store, bus, ...(upstream ? { upstream } : {}) });
}

function pidOf(p: TestProxy, sid: string): number | undefined {
  return (p.proxy.sessions.peek(sid)?.upstream as StdioUpstreamSession | undefined)?.pid;
}

/** A fetch that sends each request to the next replica in turn, like a round-robin load balancer. */
function roundRobin(replicas: TestProxy[]): { fetch: typeof fetch; hits: number[] } {
  let i = 0;
  const hits = replicas.map(() => 0);
  return {
    hits,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const k = i++ % replicas.length;
      hits[k]!++;
      return await fetch(replicas[k]!.url, init);
    }) as typeof fetch,
  };
}

const call = (id: number, message: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });

describe('two replicas sharing Redis (stdio upstream)', () => {
  it('runs an SDK session round-robin across both replicas', async () => {
    const a = await replica();
    const b = await replica();
    const lb = roundRobin([a, b]);
    const client = new Client({ name: 'rr', version: '1' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(a.url), { fetch: lb.fetch });
    await client.connect(transport);
    const sid = transport.sessionId!;
    for (let i = 0; i < 6; i++) {
      const r = await client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
      expect(r.content).toEqual([{ type: 'text', text: `Echo: m${i}` }]);
    }
    await client.setLoggingLevel('notice');
    expect(lb.hits[0]).toBeGreaterThan(2);
    expect(lb.hits[1]).toBeGreaterThan(2);
    // Each replica has its own child for the session.
    const pa = pidOf(a, sid);
    const pb = pidOf(b, sid);
    expect(pa).toBeDefined();
    expect(pb).toBeDefined();
    expect(pa).not.toBe(pb);
    await transport.terminateSession();
    await client.close();
    expect(await pollUntil(() => !isAlive(pa!) && !isAlive(pb!))).toBe(true);
  });

  it('propagates logging level and subscriptions to the other replica before its next request', async () => {
    const a = await replica();
    const b = await replica();
    const sid = await rawInitialize(a.url);
    expect((await rawPost(b.url, call(1, 'warm b'), { 'mcp-session-id': sid })).status).toBe(200);
    const uri = 'demo://resource/static/document/architecture.md';
    expect((await rawPost(a.url, { jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'critical' } }, { 'mcp-session-id': sid })).status).toBe(200);
    expect((await rawPost(a.url, { jsonrpc: '2.0', id: 3, method: 'resources/subscribe', params: { uri } }, { 'mcp-session-id': sid })).status).toBe(200);
    expect(await pollUntil(() => b.proxy.sessions.peek(sid)?.stale === true)).toBe(true);
    expect((await rawPost(b.url, call(4, 'synced'), { 'mcp-session-id': sid })).status).toBe(200);
    expect(b.proxy.sessions.peek(sid)!.upstream!.applied).toMatchObject({ loggingLevel: 'critical', subscriptions: [uri], revision: 2 });
    expect((await rawPost(b.url, { jsonrpc: '2.0', id: 5, method: 'resources/unsubscribe', params: { uri } }, { 'mcp-session-id': sid })).status).toBe(200);
    expect(await pollUntil(() => a.proxy.sessions.peek(sid)?.stale === true)).toBe(true);
    expect((await rawPost(a.url, call(6, 'synced again'), { 'mcp-session-id': sid })).status).toBe(200);
    expect(a.proxy.sessions.peek(sid)!.upstream!.applied).toMatchObject({ subscriptions: [], revision: 3 });
  });

  it('DELETE on one replica ends the session on the other: its child stops and it answers 404', async () => {
    const a = await replica();
    const b = await replica();
    const sid = await rawInitialize(a.url);
    expect((await rawPost(b.url, call(1, 'x'), { 'mcp-session-id': sid })).status).toBe(200);
    const pa = pidOf(a, sid)!;
    const pb = pidOf(b, sid)!;
    expect((await fetch(b.url, { method: 'DELETE', headers: { 'mcp-session-id': sid } })).status).toBe(200);
    expect(await pollUntil(() => !isAlive(pa) && !isAlive(pb))).toBe(true);
    expect((await rawPost(a.url, call(2, 'x'), { 'mcp-session-id': sid })).status).toBe(404);
    expect((await rawPost(b.url, call(3, 'x'), { 'mcp-session-id': sid })).status).toBe(404);
  });

  it('a DELETE heard while another replica was loading the record ends that request too: no upstream session is opened for the deleted session', async () => {
    const a = await replica();
    // b's store hands out a record read before the DELETE only after b has heard of the DELETE.
    let gate: Promise<void> | undefined;
    let open!: () => void;
    class SlowLoad extends RedisSessionStore {
      override async load(id: string) {
        const record = await super.load(id);
        if (gate) await gate;
        return record;
      }
    }
    const client = createRedisClient(redis.url);
    await waitForRedis(client, 5_000);
    const b = await startTestProxy({ affinity: 'replay', store: new SlowLoad({ client }), bus: new RedisMessageBus(client) });
    const sid = await rawInitialize(a.url);
    gate = new Promise<void>((r) => (open = r));
    const pending = rawPost(b.url, call(1, 'x'), { 'mcp-session-id': sid });
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(a.url, { method: 'DELETE', headers: { 'mcp-session-id': sid } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500)); // the terminated event reaches b over Redis pub/sub
    open();
    expect((await pending).status).toBe(404);
    expect(b.proxy.sessions.peek(sid)).toBeUndefined();
    expect(b.proxy.sessions.openUpstreams).toBe(0);
  });

  it('costs exactly one Redis command (PEXPIRE) per steady-state request', async () => {
    const a = await replica();
    const b = await replica();
    const sid = await rawInitialize(a.url);
    await rawPost(b.url, call(1, 'warm'), { 'mcp-session-id': sid });
    await rawPost(a.url, call(2, 'warm'), { 'mcp-session-id': sid });
    await redis.resetStats();
    const N = 20;
    for (let i = 0; i < N; i++) {
      const r = await rawPost(i % 2 ? a.url : b.url, call(10 + i, `s${i}`), { 'mcp-session-id': sid });
      expect(r.status).toBe(200);
      expect(JSON.stringify(responsesIn(r.json()))).toContain(`Echo: s${i}`);
    }
    const stats = await redis.commandStats();
    const calls = Object.fromEntries([...stats].filter(([c]) => c !== 'info' && c !== 'config|resetstat').map(([c, s]) => [c, s.calls]));
    expect(calls).toEqual({ pexpire: N });
  });

  it('answers 503 while Redis is down, starts no children, and recovers when Redis is back', async () => {
    const own = await startRedis({ name: 'redis-outage-test' });
    try {
      const client = createRedisClient(own.url);
      await waitForRedis(client, 5_000);
      const p = await startTestProxy({ affinity: 'replay', store: new RedisSessionStore({ client }), bus: new RedisMessageBus(client) });
      const sid = await rawInitialize(p.url);
      await own.kill();
      const r = await rawPost(p.url, call(1, 'down'), { 'mcp-session-id': sid });
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringContaining('session store unavailable') } });
      const init = await rawPost(p.url, { jsonrpc: '2.0', id: 2, method: 'initialize', params: INIT_PARAMS });
      expect(init.status).toBe(503);
      expect(init.headers.get('mcp-session-id')).toBeNull();
      expect(p.proxy.sessions.openUpstreams).toBe(1); // only the first session's child; the failed initialize's child was stopped
      const health = await fetch(new URL('/healthz', p.url));
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'unavailable', store: 'unavailable' });

      await own.restart(); // same port; the data is gone (persistence off)
      expect(await waitForRedis(client, 10_000)).toBe(true);
      expect((await fetch(new URL('/healthz', p.url))).status).toBe(200);
      expect((await rawPost(p.url, call(3, 'lost'), { 'mcp-session-id': sid })).status).toBe(404);
      const fresh = await rawInitialize(p.url);
      const ok = await rawPost(p.url, call(4, 'back'), { 'mcp-session-id': fresh });
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('Echo: back');
    } finally {
      await own.stop();
    }
  });
});

describe('two replicas sharing Redis (HTTP upstream)', () => {
  it('opens a second upstream session by replay on the other replica', async () => {
    const up = await startEverythingHttp({ name: 'everything-replicas-test' });
    try {
      const a = await replica(httpConnector(up.url));
      const b = await replica(httpConnector(up.url));
      const lb = roundRobin([a, b]);
      const client = new Client({ name: 'rr-http', version: '1' }, { capabilities: {} });
      const transport = new StreamableHTTPClientTransport(new URL(a.url), { fetch: lb.fetch });
      await client.connect(transport);
      for (let i = 0; i < 4; i++) {
        const r = await client.callTool({ name: 'get-sum', arguments: { a: i, b: 1 } });
        expect(JSON.stringify(r.content)).toContain(String(i + 1));
      }
      const created = [...up.process.output().matchAll(/Session initialized with ID: ([0-9a-f-]{36})/g)];
      expect(created).toHaveLength(2); // one upstream session per replica
      await transport.terminateSession();
      await client.close();
      for (const m of created) await up.process.waitForOutput(new RegExp(`termination request for session ${m[1]}`), 5_000);
    } finally {
      await up.stop();
    }
  });
});
