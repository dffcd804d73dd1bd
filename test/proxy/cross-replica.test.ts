/**
 * Server-to-client traffic across replicas (replay mode): two in-process replicas sharing a real
 * redis-server (Redis session streams, the router over Redis pub/sub), in front of ONE
 * server-everything (streamableHttp), and a stdio variant. (The 3-replica nginx suite is
 * test/integration/cross-replica.test.ts.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BusServerRequestRouter,
  createRedisClient,
  newReplicaId,
  RedisMessageBus,
  RedisSessionStore,
  RedisSessionStreams,
  waitForRedis,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '@mcp-migrate/runtime';
import type { UpstreamConnector } from '../../src/proxy/index.js';
import { answeringClient, openGetStream, readSseResponse, roundRobinFetch, startEverythingHttp, startRedis, stopAllProcesses, type EverythingHttp, type RedisInstance } from '../helpers/index.js';
import { closeAll, httpConnector, rawInitialize, rawPost, startTestProxy, stdioConnector, type TestProxy, pollUntil } from '../helpers/in-process-proxy.js';

let redis: RedisInstance;
let everything: EverythingHttp;

beforeAll(async () => {
  [redis, everything] = await Promise.all([startRedis({ name: 'redis-cross-replica' }), startEverythingHttp({ name: 'everything-cross-replica' })]);
});
afterEach(closeAll);
afterAll(async () => {
  await everything?.stop();
  await redis?.stop();
  await stopAllProcesses();
});

/** One replica as a separate process would have it: its own Redis connections, streams, router and id. */
async function replica(upstream: UpstreamConnector): Promise<TestProxy> {
  const client = createRedisClient(redis.url);
  await waitForRedis(client, 5_000);
  const keyPrefix = 'xr:';
  const store = new RedisSessionStore({ client, keyPrefix });
  const bus = new RedisMessageBus(client);
  const streams = new RedisSessionStreams({ client, bus, keyPrefix });
  const replicaId = newReplicaId();
  const router = new BusServerRequestRouter({ bus, replicaId, channelPrefix: keyPrefix });
  return await startTestProxy({ affinity: 'replay', store, bus, busChannel: `${keyPrefix}session-events`, streams, router, replicaId, upstream });
}

async function pair(kind: 'http' | 'stdio' = 'http'): Promise<[TestProxy, TestProxy]> {
  const make = () => (kind === 'http' ? httpConnector(everything.url) : stdioConnector());
  return [await replica(make()), await replica(make())];
}

/** A round-robin load balancer over the replicas. */
const roundRobin = (replicas: TestProxy[]) => roundRobinFetch(replicas.map((r) => r.url));

/** Sum of a metric's values (a histogram's `_count` series with `series`) whose labels include `labels`, over several proxies. */
async function counter(proxies: TestProxy[], name: string, labels: Record<string, string> = {}, series?: string): Promise<number> {
  let sum = 0;
  for (const p of proxies) {
    const metric = await p.proxy.metrics.registry.getSingleMetric(name)?.get();
    for (const v of metric?.values ?? []) {
      if (series !== undefined && (v as { metricName?: string }).metricName !== series) continue;
      if (Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val)) sum += v.value;
    }
  }
  return sum;
}

const readSse = (res: Response) => readSseResponse<JsonRpcMessage>(res);

function openGet(url: string, sid: string, opts: { lastEventId?: string; protocolVersion?: string } = {}) {
  return openGetStream(url, sid, opts.lastEventId ? { 'last-event-id': opts.lastEventId } : {}, opts.protocolVersion);
}

/** A test notification, appended straight to a session stream (as an upstream session's standalone stream would). */
const note = (i: number): JsonRpcMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'test', data: `n${i}` } });
const dataOf = (m: JsonRpcMessage) => (m as { params?: { data?: unknown } }).params?.data;
/** The test notifications among what a stream delivered (the upstream sends its own too). */
const notes = (ms: JsonRpcMessage[]) => ms.filter((m) => (m as { params?: { logger?: string } }).params?.logger === 'test');
const headers = (sid: string, protocolVersion = '2025-06-18') => ({ 'mcp-session-id': sid, 'mcp-protocol-version': protocolVersion });
const toolCall = (id: number, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

const sdkClient = (fetchFn: typeof fetch, url: string) => answeringClient(fetchFn, url, 'cross-replica');
const askedCount = (asked: { method: string }[], method: string) => asked.filter((q) => q.method === method).length;

const textOf = (r: unknown) => JSON.stringify((r as { content: unknown }).content);

for (const kind of ['http', 'stdio'] as const) {
  describe(`two replicas sharing Redis (${kind} upstream): server-initiated requests`, () => {
    it('an SDK client answers sampling, elicitation and roots/list; answers that land on the other replica reach the upstream session that asked', async () => {
      const replicas = await pair(kind);
      const lb = roundRobin(replicas);
      const { client, asked } = await sdkClient(lb.fetch, replicas[0]!.url);
      for (let round = 0; round < 3; round++) {
        const s = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `hello ${round}`, maxTokens: 5 } });
        expect(textOf(s)).toContain('sampled-by-client');
        const e = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
        expect(textOf(e)).toContain('Ada Lovelace');
        const r = await client.callTool({ name: 'get-roots-list', arguments: {} });
        expect(textOf(r)).toContain('file:///srv/example/project');
      }
      expect(askedCount(asked, 'sampling/createMessage')).toBe(3);
      expect(askedCount(asked, 'elicitation/create')).toBe(3);
      expect(askedCount(asked, 'roots/list')).toBeGreaterThanOrEqual(1);
      // Both replicas served, and some answers were routed to the other replica over Redis.
      expect(new Set(lb.served.map((s) => s.replica))).toEqual(new Set(replicas.map((p) => p.proxy.replicaId)));
      expect(await counter(replicas, 'mcp_migrate_server_request_answers_total', { outcome: 'remote' })).toBeGreaterThan(0);
      expect(await counter(replicas, 'mcp_migrate_server_request_answers_total', { outcome: 'unknown' })).toBe(0);
      await client.close();
    });

    it('message-level exchange: a server request met on one replica is answered through the other', async () => {
      const [a, b] = await pair(kind);
      // server-everything registers trigger-sampling-request only for clients that declare sampling.
      const init = await rawPost(a.url, {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'x', version: '1' } },
      });
      const sid2 = init.headers.get('mcp-session-id')!;
      await rawPost(a.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers(sid2));
      const local = a.proxy.sessions.peek(sid2)!;
      const up = local.upstream!;
      const seen: JsonRpcMessage[] = [];
      const responses: JsonRpcResponse[] = [];
      const done = up.exchange([toolCall(7, 'trigger-sampling-request', { prompt: 'p', maxTokens: 5 }) as JsonRpcRequest], '2025-06-18', {}, {
        message: (m) => {
          seen.push(m);
          if ('method' in m && m.method === 'sampling/createMessage' && 'id' in m) {
            const answer: JsonRpcResponse = { jsonrpc: '2.0', id: m.id, result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'via-b' } } };
            void b.proxy.router.reply(sid2, answer).then((outcome) => expect(outcome).toBe('remote'));
          }
        },
        response: (r) => responses.push(r),
      });
      expect(await done).toBe('done');
      const request = seen.find((m) => 'method' in m && m.method === 'sampling/createMessage') as JsonRpcRequest;
      expect(String(request.id)).toMatch(new RegExp(`^mcp-migrate:s:${a.proxy.replicaId}:`));
      expect(responses).toHaveLength(1);
      expect(responses[0]!.id).toBe(7);
      expect(JSON.stringify(responses[0])).toContain('via-b');
    });
  });
}

describe('two replicas sharing Redis (http upstream): standalone and resumable streams', () => {
  it("notifications from one replica's upstream session reach a standalone GET held by the other replica", async () => {
    const [a, b] = await pair();
    const sid = await rawInitialize(a.url);
    const get = openGet(b.url, sid);
    const res = await get.response;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mcp-migrate-replica')).toBe(b.proxy.replicaId);
    const sse = readSse(res);
    const uri = 'demo://resource/dynamic/text/1';
    expect((await rawPost(a.url, { jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'debug' } }, headers(sid))).status).toBe(200);
    expect((await rawPost(a.url, { jsonrpc: '2.0', id: 3, method: 'resources/subscribe', params: { uri } }, headers(sid))).status).toBe(200);
    const t1 = await rawPost(a.url, toolCall(4, 'toggle-subscriber-updates'), headers(sid));
    expect(t1.headers.get('x-mcp-migrate-replica')).toBe(a.proxy.replicaId);
    const t2 = await rawPost(a.url, toolCall(5, 'toggle-simulated-logging'), headers(sid));
    expect(t2.status).toBe(200);
    const has = (method: string) => sse.messages().some((m) => 'method' in m && m.method === method);
    expect(await pollUntil(() => has('notifications/resources/updated') && has('notifications/message'), 15_000)).toBe(true);
    const updated = sse.messages().find((m) => 'method' in m && m.method === 'notifications/resources/updated')!;
    expect((updated as unknown as { params: { uri: string } }).params.uri).toBe(uri);
    for (const e of sse.events.filter((ev) => ev.data)) expect(e.id).toMatch(/^g_\d+-\d+$/);
    expect(await counter([a], 'mcp_migrate_standalone_messages_total')).toBeGreaterThan(0);
    expect(await counter([b], 'mcp_migrate_bus_lag_seconds', {}, 'mcp_migrate_bus_lag_seconds_count')).toBeGreaterThan(0);
    get.abort();
    await rawPost(a.url, toolCall(6, 'toggle-simulated-logging'), headers(sid));
    await rawPost(a.url, toolCall(7, 'toggle-subscriber-updates'), headers(sid));
  });

  it('Last-Event-ID on the other replica replays exactly the missed events of that stream, then live ones; 2025-11-25 gets a priming event', async () => {
    const [a, b] = await pair();
    const sid = await rawInitialize(a.url, {}, '2025-11-25');
    const first = openGet(a.url, sid, { protocolVersion: '2025-11-25' });
    const sseA = readSse(await first.response);
    expect(await pollUntil(() => sseA.events.length >= 1)).toBe(true);
    const priming = sseA.events[0]!;
    expect(priming).toMatchObject({ retry: '1000', data: '' });
    expect(priming.id).toMatch(/^g_\d+-\d+$/);
    for (let i = 1; i <= 3; i++) await a.proxy.streams.append(sid, 'g', note(i));
    expect(await pollUntil(() => notes(sseA.messages()).length === 3)).toBe(true);
    const lastSeen = sseA.events.find((e) => e.data?.includes('"n3"'))!.id!;
    first.abort();
    for (let i = 4; i <= 6; i++) await a.proxy.streams.append(sid, 'g', note(i));
    const second = openGet(b.url, sid, { protocolVersion: '2025-11-25', lastEventId: lastSeen });
    const resB = await second.response;
    expect(resB.headers.get('x-mcp-migrate-replica')).toBe(b.proxy.replicaId);
    const sseB = readSse(resB);
    await a.proxy.streams.append(sid, 'g', note(7));
    expect(await pollUntil(() => notes(sseB.messages()).length >= 4)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(notes(sseB.messages()).map(dataOf)).toEqual(['n4', 'n5', 'n6', 'n7']);
    // The priming event of the resumed stream is the Last-Event-ID itself.
    expect(sseB.events[0]).toMatchObject({ id: lastSeen, retry: '1000', data: '' });
    second.abort();
    // A Last-Event-ID of this session presented with another session replays nothing of this one.
    const other = await rawInitialize(b.url, {}, '2025-11-25');
    const hijack = openGet(a.url, other, { protocolVersion: '2025-11-25', lastEventId: priming.id });
    const sseH = readSse(await hijack.response);
    await new Promise((r) => setTimeout(r, 300));
    expect(notes(sseH.messages())).toEqual([]);
    hijack.abort();
  });

  it('a newer standalone GET on one replica ends the older one on the other; each message goes out once', async () => {
    const [a, b] = await pair();
    const sid = await rawInitialize(a.url);
    const older = readSse(await openGet(a.url, sid).response);
    await a.proxy.streams.append(sid, 'g', note(1));
    expect(await pollUntil(() => notes(older.messages()).length === 1)).toBe(true);
    const newerGet = openGet(b.url, sid);
    const newer = readSse(await newerGet.response);
    expect(await pollUntil(() => older.ended)).toBe(true);
    await b.proxy.streams.append(sid, 'g', note(2));
    expect(await pollUntil(() => notes(newer.messages()).length === 1)).toBe(true);
    expect(notes(older.messages()).map(dataOf)).toEqual(['n1']);
    expect(notes(newer.messages()).map(dataOf)).toEqual(['n2']);
    newerGet.abort();
  });

  it('a POST stream that carries progress is stored: the client resumes it on the other replica with Last-Event-ID', async () => {
    const [a, b] = await pair();
    const sid = await rawInitialize(a.url);
    const ac = new AbortController();
    const post = await fetch(a.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers(sid) },
      body: JSON.stringify(toolCall(9, 'trigger-long-running-operation', { duration: 2, steps: 4 }, { progressToken: 'tok-1' })),
      signal: ac.signal,
    });
    expect(post.headers.get('content-type')).toContain('text/event-stream');
    const sseP = readSse(post);
    expect(await pollUntil(() => sseP.messages().length >= 1, 10_000)).toBe(true);
    const firstEvent = sseP.events.find((e) => e.data)!;
    expect((JSON.parse(firstEvent.data!) as { params: { progress: number } }).params.progress).toBe(1);
    expect(firstEvent.id).toMatch(/^p[0-9a-z]+_\d+-\d+$/);
    ac.abort(); // the client loses the POST stream after the first progress notification
    const res = await openGet(b.url, sid, { lastEventId: firstEvent.id }).response;
    const sseR = readSse(res);
    await sseR.done; // ends after the response
    const messages = sseR.messages();
    expect(messages.slice(0, -1).map((m) => (m as unknown as { params: { progress: number } }).params.progress)).toEqual([2, 3, 4]);
    expect(messages.at(-1)).toMatchObject({ jsonrpc: '2.0', id: 9, result: { content: [{ type: 'text' }] } });
    for (const e of sseR.events) expect(e.id!.split('_')[0]).toBe(firstEvent.id!.split('_')[0]);
  });

  it('DELETE on one replica ends the standalone GET stream held by the other', async () => {
    const [a, b] = await pair();
    const sid = await rawInitialize(a.url);
    const sse = readSse(await openGet(b.url, sid).response);
    await new Promise((r) => setTimeout(r, 100));
    const del = await fetch(a.url, { method: 'DELETE', headers: headers(sid) });
    expect(del.status).toBe(200);
    expect(await pollUntil(() => sse.ended)).toBe(true);
    expect((await fetch(b.url, { headers: { accept: 'text/event-stream', ...headers(sid) } })).status).toBe(404);
  });

  it("an answer presented by another session is never delivered to the session that asked (hijack)", async () => {
    const [a, b] = await pair();
    const victim = await rawInitialize(a.url);
    const attacker = await rawInitialize(b.url);
    const delivered: JsonRpcResponse[] = [];
    const asked = a.proxy.router.outgoing(victim, { jsonrpc: '2.0', id: 0, method: 'roots/list' }, (r) => delivered.push(r));
    const answer = { jsonrpc: '2.0', id: asked.id, result: { roots: [{ uri: 'file:///evil', name: 'evil' }] } };
    for (const p of [a, b]) expect((await rawPost(p.url, answer, headers(attacker))).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect(delivered).toEqual([]);
    expect((await rawPost(b.url, { ...answer, result: { roots: [] } }, headers(victim))).status).toBe(202);
    expect(await pollUntil(() => delivered.length === 1)).toBe(true);
    expect(delivered[0]).toEqual({ jsonrpc: '2.0', id: 0, result: { roots: [] } });
  });
});
