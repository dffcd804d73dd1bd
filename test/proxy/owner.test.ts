/**
 * Owner affinity (`affinity: 'owner'`), with in-process replicas sharing a real redis-server (store,
 * bus and replica registry) in front of one real server-everything (Streamable HTTP): forwarding to
 * the owner (hidden per-session state holds, SSE streams through), forged and misdirected forwarding
 * headers, takeovers when the owner is killed, cut off, shut down or replaced at the same address.
 * The 3-process nginx version with kill -9 and rolling restarts is test/integration/owner-failover.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createRedisClient,
  RedisMessageBus,
  RedisReplicaRegistry,
  RedisSessionStore,
  RedisSessionStreams,
  waitForRedis,
} from '@mcp-migrate/runtime';
import { createProxy, ForwardingMac, FORWARDED_HEADER, type McpProxy } from '../../src/proxy/index.js';
import { unansweredErrors } from '../../src/proxy/owner/routing.js';
import { startEverythingHttp, startRedis, stopAllProcesses, type EverythingHttp, type RedisInstance } from '../helpers/index.js';
import { httpConnector, logger, rawInitialize, rawPost, responsesIn, SECRET, pollUntil } from '../helpers/in-process-proxy.js';

let redis: RedisInstance;
let everything: EverythingHttp;

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-owner-test' });
  everything = await startEverythingHttp({ name: 'everything-owner-test' });
});
afterAll(async () => {
  await everything?.stop();
  await redis?.stop();
  await stopAllProcesses();
});

interface Replica {
  proxy: McpProxy;
  url: string;
  port: number;
  id: string;
  registry: RedisReplicaRegistry;
}

/** Heartbeat interval of the test replicas: short, yet long enough that a busy machine does not miss 3 in a row. */
const HEARTBEAT_MS = 250;
const open = new Set<Replica>();
afterEach(async () => {
  await Promise.all([...open].map((r) => r.proxy.close()));
  open.clear();
});

/** One replica with its own Redis connections, as a separate process would have. */
async function replica(opts: { port?: number; affinity?: 'owner' | 'replay'; onOwnerLoss?: 'end' | 'replay'; heartbeatIntervalMs?: number } = {}): Promise<Replica> {
  const client = createRedisClient(redis.url);
  await waitForRedis(client, 5_000);
  const registry = new RedisReplicaRegistry({ client, heartbeatIntervalMs: opts.heartbeatIntervalMs ?? HEARTBEAT_MS });
  const bus = new RedisMessageBus(client);
  const proxy = createProxy({
    store: new RedisSessionStore({ client }),
    bus,
    streams: new RedisSessionStreams({ client, bus }),
    registry,
    ...(opts.affinity ? { affinity: opts.affinity } : {}),
    ...(opts.onOwnerLoss ? { onOwnerLoss: opts.onOwnerLoss } : {}),
    upstream: httpConnector(everything.url),
    sessionSecrets: [SECRET],
    logger,
  });
  const { url, port } = await proxy.listen(opts.port ?? 0, '127.0.0.1');
  const r = { proxy, url, port, id: proxy.sessions.replicaId, registry };
  open.add(r);
  return r;
}

/**
 * A replica that stops answering as kill -9 would make it (heartbeats stop, its port refuses
 * connections) but whose process lives on, as one cut off from the others would: it still hears the bus.
 */
async function crash(r: Replica): Promise<void> {
  await r.registry.close();
  r.proxy.server.close();
  r.proxy.server.closeAllConnections();
}

const call = (id: number | string, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});
const headersFor = (sid: string) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });

async function echo(url: string, sid: string, id: number, message: string): Promise<void> {
  const r = await rawPost(url, call(id, 'echo', { message }), headersFor(sid));
  expect(r.status, r.text).toBe(200);
  expect(JSON.stringify(responsesIn(r.json()))).toContain(`Echo: ${message}`);
}

/** Calls server-everything's toggle-simulated-logging: its on/off state is hidden per-session state. */
async function toggle(url: string, sid: string, id: number): Promise<'Started' | 'Stopped'> {
  const r = await rawPost(url, call(id, 'toggle-simulated-logging'), headersFor(sid));
  expect(r.status, r.text).toBe(200);
  const text = JSON.stringify(responsesIn(r.json()));
  if (text.includes('Started simulated')) return 'Started';
  if (text.includes('Stopped simulated')) return 'Stopped';
  throw new Error(`unexpected toggle answer: ${text}`);
}

async function metric(r: Replica, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = r.proxy.metrics.registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);
}

const ownerOf = async (sid: string) => await redis.command('HGET', `mcpm:{${sid}}:session`, 'owner');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('owner affinity: forwarding to the owner', () => {
  it('keeps hidden per-session state across replicas: every request is served by the owner, non-owners open no upstream session', async () => {
    const [a, b, c] = [await replica(), await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    expect(await ownerOf(sid)).toBe(a.id);
    // server-everything keeps the on/off state of simulated logging in its own memory, per upstream session.
    expect(await toggle(b.url, sid, 1)).toBe('Started');
    expect(await toggle(c.url, sid, 2)).toBe('Stopped');
    expect(await toggle(a.url, sid, 3)).toBe('Started');
    expect(await toggle(b.url, sid, 4)).toBe('Stopped');
    await echo(c.url, sid, 5, 'via c');
    await echo(b.url, sid, 6, 'via b');
    for (const r of [b, c]) {
      expect(r.proxy.sessions.peek(sid)?.upstream).toBeUndefined();
      expect(await metric(r, 'mcp_migrate_handshake_replays_total')).toBe(0);
    }
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'ok' })).toBe(3);
    expect(await metric(c, 'mcp_migrate_owner_forwards_total', { outcome: 'ok' })).toBe(2);
    expect(await metric(a, 'mcp_migrate_owner_forwarded_received_total', { outcome: 'served' })).toBe(5);
    expect(await metric(a, 'mcp_migrate_owner_takeovers_total')).toBe(0);
  });

  it('control: without owner affinity the same calls reach two upstream sessions, and the hidden state splits', async () => {
    const [a, b] = [await replica({ affinity: 'replay' }), await replica({ affinity: 'replay' })];
    const sid = await rawInitialize(a.url);
    expect(await ownerOf(sid)).toBeNull();
    expect(await toggle(a.url, sid, 1)).toBe('Started');
    expect(await toggle(b.url, sid, 2)).toBe('Started'); // b replayed the handshake on a fresh upstream session
    expect(await toggle(a.url, sid, 3)).toBe('Stopped');
    expect(await toggle(b.url, sid, 4)).toBe('Stopped');
  });

  it('streams the owner\'s SSE answer back as it is produced (progress before the result)', async () => {
    const [a, b] = [await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    const res = await fetch(b.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headersFor(sid) },
      body: JSON.stringify(call(7, 'trigger-long-running-operation', { duration: 1.2, steps: 4 }, { progressToken: 'p1' })),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let sawProgressBeforeResult = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      // The first progress notification arrives while the tool is still running: no result yet.
      if (!sawProgressBeforeResult && text.includes('notifications/progress') && !text.includes('"result"')) sawProgressBeforeResult = true;
    }
    expect(sawProgressBeforeResult).toBe(true);
    expect(text).toContain('Long running operation completed');
    expect((text.match(/notifications\/progress/g) ?? []).length).toBe(4);
    expect(b.proxy.sessions.peek(sid)?.upstream).toBeUndefined();
  });

  it('a standalone GET stream on another replica gets the owner\'s server messages (shared session streams, no upstream session there); a graceful shutdown of the owner hands its HTTP upstream session over with its state', async () => {
    const [a, b, c] = [await replica(), await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    const ac = new AbortController();
    const res = await fetch(b.url, { headers: { accept: 'text/event-stream', ...headersFor(sid) }, signal: ac.signal });
    try {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      // Turning simulated logging on sends one log message at once, on the standalone stream.
      expect(await toggle(c.url, sid, 1)).toBe('Started');
      const deadline = Date.now() + 10_000;
      const logLine = /^data: .*"notifications\/message".*\n/m; // a whole data line
      while (!logLine.test(text) && Date.now() < deadline) {
        const { value, done } = await Promise.race([reader.read(), sleep(10_000).then(() => ({ value: undefined, done: true }))]);
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(text).toMatch(logLine);
      expect(text.match(logLine)![0]).toMatch(/level[- ]message/); // server-everything's simulated log text
      expect(b.proxy.sessions.peek(sid)?.upstream).toBeUndefined();
      // The owner shuts down with the session idle: it hands its upstream session over (no DELETE
      // upstream), and the replica that serves the next request goes on with it: the hidden state holds.
      await a.proxy.shutdown({ timeoutMs: 5_000 });
      expect(await metric(a, 'mcp_migrate_owner_handovers_total', { outcome: 'handed_over' })).toBe(1);
      expect(await ownerOf(sid)).toBeNull();
      expect(await toggle(c.url, sid, 2)).toBe('Stopped');
      expect(await ownerOf(sid)).toBe(c.id);
      expect(await metric(c, 'mcp_migrate_handshake_replays_total')).toBe(0);
      // b's stream outlived the owner's shutdown; b's own shutdown ends it with a retry: line.
      const shutdown = b.proxy.shutdown({ timeoutMs: 2_000 });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(text).toContain('retry: 1000');
      await shutdown;
    } finally {
      ac.abort();
    }
  });

  it('forwards DELETE to the owner, which closes its upstream session at once', async () => {
    const [a, b] = [await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'cache the record on b');
    expect(a.proxy.sessions.peek(sid)?.upstream).toBeDefined();
    const del = await fetch(b.url, { method: 'DELETE', headers: headersFor(sid) });
    expect(del.status).toBe(200);
    expect(a.proxy.sessions.peek(sid)).toBeUndefined();
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'ok' })).toBe(2);
    expect((await rawPost(a.url, call(2, 'echo', { message: 'x' }), headersFor(sid))).status).toBe(404);
    expect((await rawPost(b.url, call(3, 'echo', { message: 'x' }), headersFor(sid))).status).toBe(404);
  });
});

describe('owner affinity: forwarding header', () => {
  it('answers 421 to forged, foreign-secret, wrong-replica and wrong-session headers, on the owner and on others, and never forwards them', async () => {
    const [a, b] = [await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    const other = await rawInitialize(a.url);
    const real = new ForwardingMac([SECRET]);
    const foreign = new ForwardingMac(['another-secret-0123456789abcdef']);
    const forged = [
      'nonsense',
      `${encodeURIComponent(b.id)};AAAAAAAAAAAAAAAAAAAAAA`,
      foreign.header(sid, b.id, a.id), // another deployment's secret
      real.header(sid, b.id, 'a-replica-that-is-neither'), // meant for another replica
      real.header(other, b.id, a.id), // another session's header
    ];
    for (const value of forged) {
      for (const target of [a, b]) {
        const r = await rawPost(target.url, call(1, 'echo', { message: 'forged' }), { ...headersFor(sid), [FORWARDED_HEADER]: value });
        expect(r.status, `${value} → ${target === a ? 'owner' : 'non-owner'}`).toBe(421);
        expect(r.json()).toMatchObject({ error: { code: -32000, message: expect.stringContaining('Misdirected Request') } });
        expect(r.text).not.toContain('Echo: forged');
      }
      const g = await fetch(b.url, { headers: { accept: 'text/event-stream', ...headersFor(sid), [FORWARDED_HEADER]: value } });
      expect(g.status).toBe(421);
      await g.body?.cancel();
      const d = await fetch(b.url, { method: 'DELETE', headers: { ...headersFor(sid), [FORWARDED_HEADER]: value } });
      expect(d.status).toBe(421);
    }
    expect(await metric(a, 'mcp_migrate_owner_forwarded_received_total', { outcome: 'served' })).toBe(0);
    expect(await metric(b, 'mcp_migrate_owner_forwards_total')).toBe(0);
    expect(b.proxy.sessions.peek(sid)?.upstream).toBeUndefined();
    expect(await metric(b, 'mcp_migrate_handshake_replays_total')).toBe(0);
    // The session is intact, and a genuine header (what b itself would send) is served by the owner.
    const genuine = await rawPost(a.url, call(2, 'echo', { message: 'genuine' }), { ...headersFor(sid), [FORWARDED_HEADER]: real.header(sid, b.id, a.id) });
    expect(genuine.status).toBe(200);
    expect(genuine.text).toContain('Echo: genuine');
  });
});

describe('owner routing: a dead owner, by default', () => {
  it('ends the session: the next request, on any replica, gets 404 naming the loss; no replica replays the handshake', async () => {
    const [a, b, c] = [await replica(), await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'before');
    await crash(a);
    const r = await rawPost(b.url, call(2, 'echo', { message: 'after the crash' }), headersFor(sid));
    expect(r.status, r.text).toBe(404);
    expect(r.json()).toMatchObject({ error: { code: -32001, message: expect.stringContaining('gone') } });
    expect(await redis.command('EXISTS', `mcpm:{${sid}}:session`)).toBe(0);
    expect((await rawPost(c.url, call(3, 'echo', { message: 'x' }), headersFor(sid))).status).toBe(404);
    expect(await metric(b, 'mcp_migrate_owner_sessions_ended_total', { reason: 'owner_lost' })).toBe(1);
    for (const x of [b, c]) expect(await metric(x, 'mcp_migrate_handshake_replays_total')).toBe(0);
    // A new session works at once.
    await echo(c.url, await rawInitialize(c.url), 4, 'new session');
  });

  it('a graceful shutdown serves the request in flight to its end, then hands the session over: no request fails, nothing is taken over from a dead owner', async () => {
    const [a, b] = [await replica(), await replica()];
    const sid = await rawInitialize(a.url);
    expect(await toggle(b.url, sid, 1)).toBe('Started');
    const long = rawPost(b.url, call(2, 'trigger-long-running-operation', { duration: 1, steps: 2 }), headersFor(sid));
    await sleep(200);
    const shutdown = a.proxy.shutdown({ timeoutMs: 10_000 });
    const answer = await long;
    expect(answer.status, answer.text).toBe(200);
    expect(answer.text).toContain('Long running operation completed');
    expect(await shutdown).toBe(0);
    expect(await toggle(b.url, sid, 3)).toBe('Stopped'); // the upstream session went on at b, state and all
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'owner_down' })).toBe(0);
    expect(await metric(b, 'mcp_migrate_handshake_replays_total')).toBe(0);
    expect(await ownerOf(sid)).toBe(b.id);
  });
});

/** Owner loss handled by handshake replay (`--on-owner-loss replay`), for servers declared replay-safe. */
const REPLAY = { onOwnerLoss: 'replay' } as const;

describe('owner affinity: takeover (--on-owner-loss replay)', () => {
  it('takes the session over when the owner stops answering: same session id, served by replay; the cut-off old owner drops its upstream session', async () => {
    const [a, b, c] = [await replica(REPLAY), await replica(REPLAY), await replica(REPLAY)];
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'before');
    await echo(c.url, sid, 2, 'before');
    expect(a.proxy.sessions.peek(sid)?.upstream).toBeDefined();
    await crash(a);
    await echo(b.url, sid, 3, 'after the crash');
    expect(await ownerOf(sid)).toBe(b.id);
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'owner_down' })).toBe(1);
    expect(await metric(b, 'mcp_migrate_owner_takeovers_total')).toBe(1);
    expect(await metric(b, 'mcp_migrate_handshake_replays_total')).toBe(1);
    // c learns the new owner (bus event, or a failed claim and a reload) and forwards there.
    await echo(c.url, sid, 4, 'via c');
    await echo(c.url, sid, 5, 'via c again');
    expect(c.proxy.sessions.peek(sid)?.upstream).toBeUndefined();
    expect(await metric(c, 'mcp_migrate_owner_takeovers_total')).toBe(0);
    expect(await metric(b, 'mcp_migrate_owner_forwarded_received_total', { outcome: 'served' })).toBe(2);
    // a was only cut off: it heard of the takeover and closes its upstream session (no two owners).
    expect(await pollUntil(() => a.proxy.sessions.peek(sid) === undefined, 5_000)).toBe(true);
    // The hidden state lived in a's upstream session; the session itself survives, in a fresh one.
    expect(await toggle(c.url, sid, 6)).toBe('Started');
    expect(await toggle(b.url, sid, 7)).toBe('Stopped');
  });

  it('when the owner dies while its SSE answer is being relayed, the client gets a JSON-RPC error at once, and its retry is served after a takeover', async () => {
    const [a, b] = [await replica(REPLAY), await replica(REPLAY)];
    const sid = await rawInitialize(a.url);
    const res = await fetch(b.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headersFor(sid) },
      body: JSON.stringify(call(41, 'trigger-long-running-operation', { duration: 2, steps: 2 }, { progressToken: 'p' })),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    // The head came through; now the owner dies with the call running.
    await crash(a);
    const text = await res.text();
    const messages = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)) as { id?: unknown; error?: { code: number } });
    expect(messages.find((m) => m.id === 41)).toMatchObject({ error: { code: -32603 } });
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'broken' })).toBe(1);
    await echo(b.url, sid, 42, 'retried after the loss');
    expect(await ownerOf(sid)).toBe(b.id);
  });

  it('unansweredErrors: an error event for each request of the body without a response in the relayed stream', () => {
    const body = Buffer.from(JSON.stringify([call(1, 'echo'), call('two', 'echo'), { jsonrpc: '2.0', method: 'notifications/x' }, call(3, 'echo')]));
    const relayed = 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\ndata: {"jsonrpc":"2.0","id":3,"res';
    const out = unansweredErrors(body, relayed)!;
    expect(out.startsWith('\n\n')).toBe(true); // ends the half-written event first
    const ids = out.split('\n').filter((l) => l.startsWith('data:')).map((l) => (JSON.parse(l.slice(5)) as { id: unknown }).id);
    expect(ids).toEqual(['two', 3]);
    expect(unansweredErrors(Buffer.from('not json'), '')).toBeUndefined();
    expect(unansweredErrors(Buffer.from(JSON.stringify(call(5, 'echo'))), '')).toContain('"id":5');
  });

  it('when the owner missed its heartbeats (hung: port open, no answer), a waiting forward gives up and takes over', async () => {
    const [a, b] = [await replica(REPLAY), await replica(REPLAY)];
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'before');
    // a hangs: it accepts connections but never answers, and its heartbeats stop.
    await a.registry.close();
    a.proxy.server.removeAllListeners('request');
    a.proxy.server.on('request', () => undefined);
    await echo(b.url, sid, 2, 'after the hang');
    expect(await ownerOf(sid)).toBe(b.id);
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'owner_down' })).toBe(1);
    a.proxy.server.closeAllConnections();
  });

  it('a replica that shuts down with the session idle hands it over at once: the others claim it without trying to reach it', async () => {
    const [a, b] = [await replica(REPLAY), await replica(REPLAY)];
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'before');
    await a.proxy.shutdown({ timeoutMs: 2_000 });
    await echo(b.url, sid, 2, 'after the shutdown');
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'owner_down' })).toBe(0);
    expect(await metric(b, 'mcp_migrate_owner_takeovers_total')).toBe(1);
    expect(await metric(b, 'mcp_migrate_handshake_replays_total')).toBe(0); // went on with a's upstream session
    expect(await ownerOf(sid)).toBe(b.id);
  });

  it('a request forwarded to a new replica at the dead owner\'s address gets 421 there and is served by the sender after a takeover', async () => {
    // Long heartbeats: the dead owner's registration outlives the restart.
    const a = await replica({ heartbeatIntervalMs: 2_000, onOwnerLoss: 'replay' });
    const b = await replica({ heartbeatIntervalMs: 2_000, onOwnerLoss: 'replay' });
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'before');
    await crash(a); // its port is free; a itself is closed after the test (close() would hand its sessions over)
    const a2 = await replica({ port: a.port, heartbeatIntervalMs: 2_000, onOwnerLoss: 'replay' });
    expect(a2.id).not.toBe(a.id);
    expect(await b.registry.lookup(a.id, { fresh: true })).toBe(`http://127.0.0.1:${a.port}`);
    await echo(b.url, sid, 2, 'after the restart');
    expect(await metric(b, 'mcp_migrate_owner_forwards_total', { outcome: 'misdirected' })).toBe(1);
    expect(await metric(a2, 'mcp_migrate_owner_forwarded_received_total', { outcome: 'refused' })).toBe(1);
    expect(await metric(b, 'mcp_migrate_owner_takeovers_total')).toBe(1);
    expect(await ownerOf(sid)).toBe(b.id);
    // And the new replica now forwards to b like any other.
    await echo(a2.url, sid, 3, 'via the new replica');
    expect(a2.proxy.sessions.peek(sid)?.upstream).toBeUndefined();
  });

  it('many replicas noticing a dead owner at once: exactly one claims the session, the others forward to it', async () => {
    const rs = [await replica(REPLAY), await replica(REPLAY), await replica(REPLAY), await replica(REPLAY)];
    const [a, ...others] = rs as [Replica, ...Replica[]];
    const sid = await rawInitialize(a.url);
    for (const [i, r] of others.entries()) await echo(r.url, sid, 10 + i, 'warm');
    await crash(a);
    await Promise.all(others.map((r, i) => echo(r.url, sid, 20 + i, `concurrent ${i}`)));
    let takeovers = 0;
    for (const r of others) takeovers += await metric(r, 'mcp_migrate_owner_takeovers_total');
    expect(takeovers).toBe(1);
    const newOwner = await ownerOf(sid);
    expect(others.map((r) => r.id)).toContain(newOwner);
    expect(others.filter((r) => r.proxy.sessions.peek(sid)?.upstream).map((r) => r.id)).toEqual([newOwner]);
  });
});

describe('owner affinity: store cost', () => {
  it('the owner refreshes a session at most one PEXPIRE per second, whichever replica the requests reach (the forwarder caches the owner and sends no command); owner lookups are cached', async () => {
    const [a, b] = [await replica({ heartbeatIntervalMs: 5_000 }), await replica({ heartbeatIntervalMs: 5_000 })];
    const sid = await rawInitialize(a.url);
    await echo(b.url, sid, 1, 'warm');
    await redis.resetStats();
    const N = 10;
    const started = Date.now();
    for (let i = 0; i < N; i++) {
      await echo(a.url, sid, 10 + i, `direct ${i}`);
      await echo(b.url, sid, 100 + i, `forwarded ${i}`);
    }
    const seconds = Math.ceil((Date.now() - started) / 1000);
    const stats = await redis.commandStats();
    const calls = Object.fromEntries([...stats].filter(([c]) => c !== 'info' && c !== 'config|resetstat').map(([c, s]) => [c, s.calls]));
    const { set: heartbeats = 0, get: lookups = 0, pexpire = 0, ...rest } = calls;
    expect(rest).toEqual({});
    // At most one TTL refresh per started second of the loop (plus one at its start), however many requests.
    expect(pexpire).toBeLessThanOrEqual(Math.min(2 * N, seconds + 1));
    expect(lookups).toBeLessThanOrEqual(2); // b's cache of a's URL is refreshed at most once per heartbeat interval
    expect(heartbeats).toBeLessThanOrEqual(4);
  });
});

describe('owner affinity: configuration', () => {
  it('maps the CLI flags (owner routing and --on-owner-loss end by default), derives the advertised URL on all interfaces or refuses to guess, and refuses an advertised URL with a path', async () => {
    const { proxyConfigFromArgs } = await import('../../src/cli/commands/proxy.js');
    const { startProxy, ProxyConfigError } = await import('../../src/proxy/index.js');
    const base = {
      listen: ':0',
      path: '/mcp',
      store: 'memory',
      upstream: 'http://127.0.0.1:9/mcp',
      'principal-header': 'authorization',
      'max-body-bytes': 1024,
      'idle-timeout': 300,
      'session-ttl': 3600,
      'handshake-timeout': 10,
      'store-prefix': 'mcpm:',
      'log-level': 'silent' as const,
      _: [],
    };
    const defaults = proxyConfigFromArgs(base);
    // Owner routing is the default, and a lost owner ends its sessions unless the operator says otherwise.
    expect(defaults).toMatchObject({ affinity: 'owner', onOwnerLoss: 'end', heartbeatIntervalMs: 1_000 });
    expect(defaults.advertiseUrl).toBeUndefined();
    expect(proxyConfigFromArgs({ ...base, 'on-owner-loss': 'replay' })).toMatchObject({ affinity: 'owner', onOwnerLoss: 'replay' });
    const replay = proxyConfigFromArgs({ ...base, 'idle-timeout': undefined, affinity: 'replay' });
    expect(replay).toMatchObject({ affinity: 'replay', idleTimeoutMs: 300_000 });
    expect(replay.onOwnerLoss).toBeUndefined();
    expect(() => proxyConfigFromArgs({ ...base, affinity: 'replay', 'on-owner-loss': 'replay' })).toThrow(/--on-owner-loss applies to owner routing only/);
    const owner = proxyConfigFromArgs({ ...base, 'idle-timeout': undefined, 'heartbeat-interval': 0.5, 'advertise-url': 'http://10.0.0.5:8080' });
    // The owner's upstream session holds the hidden state: by default it lives as long as the session.
    expect(owner).toMatchObject({ affinity: 'owner', heartbeatIntervalMs: 500, advertiseUrl: 'http://10.0.0.5:8080', idleTimeoutMs: 3_600_000 });
    expect(proxyConfigFromArgs({ ...base, 'idle-timeout': 60 }).idleTimeoutMs).toBe(60_000);
    expect(() => proxyConfigFromArgs({ ...base, 'heartbeat-interval': 0 })).toThrow(/--heartbeat-interval/);
    // A shared store on all interfaces: the address others forward to is the host's one external address, or must be given.
    const { soleExternalAddress } = await import('../../src/proxy/owner/advertise.js');
    const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({ address, family, internal, netmask: '', mac: '', cidr: null }) as never;
    expect(soleExternalAddress({ lo: [nic('127.0.0.1', 'IPv4', true)], eth0: [nic('10.1.2.3', 'IPv4'), nic('fe80::1', 'IPv6')] })).toBe('10.1.2.3');
    expect(() => soleExternalAddress({ eth0: [nic('10.1.2.3', 'IPv4')], eth1: [nic('192.168.0.2', 'IPv4')] })).toThrow(/--advertise-url/);
    expect(() => soleExternalAddress({ lo: [nic('127.0.0.1', 'IPv4', true)] })).toThrow(/no external address/);
    await expect(startProxy({ ...proxyConfigFromArgs({ ...base, store: redis.url }), sessionSecrets: [SECRET], logger })).rejects.toThrow(/give --advertise-url/);
    await expect(
      startProxy({ ...proxyConfigFromArgs({ ...base, 'advertise-url': 'http://10.0.0.5:8080/mcp' }), logger }),
    ).rejects.toThrow(/without path/);
    await expect(startProxy({ ...proxyConfigFromArgs({ ...base, 'advertise-url': 'http://10.0.0.5:8080/mcp' }), logger })).rejects.toThrow(ProxyConfigError);
    // On loopback the advertised URL is derived from the bound address.
    const running = await startProxy({ ...proxyConfigFromArgs({ ...base, listen: '127.0.0.1:0' }), logger });
    try {
      expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    } finally {
      await running.close();
    }
  });
});
