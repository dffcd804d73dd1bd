/**
 * Issue 5: every server-to-client path of the 2025-era protocols works across replicas.
 * Real redis-server, real nginx (plain round-robin, no affinity), three real `mcp-migrate proxy`
 * processes over ONE server-everything in `streamableHttp` mode (HTTP upstream), the official SDK
 * client with sampling, elicitation and roots handlers. Plus a smaller stdio-upstream run. Each in both
 * session modes: owner routing (the default; answers reach the asking owner by forwarding) and
 * `--affinity replay` (answers reach the replica that asked over the bus).
 *
 * What crossed replicas is read from the proxies themselves: the `x-mcp-migrate-replica` header of
 * every answer, the replica id inside rewritten server-request ids (`mcp-migrate:s:<replica>:<n>`),
 * and each replica's /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  startEverythingHttp,
  startProxyCluster,
  startRedis,
  stopAllProcesses,
  type EverythingHttp,
  type NginxInstance,
  type ProxyReplica,
  type RedisInstance,
} from '../helpers/index.js';

const REPLICAS = 3;
const ROOT = { uri: 'file:///srv/example/project', name: 'project' };

interface Served {
  method: string;
  /** What the POST carried: a request's method, `answer`, or a notification's method. */
  kind: string;
  /** For an answer: the replica named in its (rewritten) id, i.e. the one whose upstream session asked. */
  askedBy?: string;
  replica: string;
  status: number;
}

/** A fetch that records, for every request through the load balancer, which replica answered it. */
function recordingFetch(served: Served[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await fetch(input, init);
    let kind = init?.method ?? 'GET';
    let askedBy: string | undefined;
    if (typeof init?.body === 'string') {
      const m = JSON.parse(init.body) as { method?: string; id?: unknown };
      if (m.method) kind = m.method;
      else {
        kind = 'answer';
        askedBy = /^mcp-migrate:s:([^:]+):/.exec(String(m.id))?.[1];
      }
    }
    served.push({ method: init?.method ?? 'GET', kind, ...(askedBy ? { askedBy } : {}), replica: res.headers.get('x-mcp-migrate-replica') ?? '?', status: res.status });
    return res;
  }) as typeof fetch;
}

async function sdkClient(url: string, served: Served[]) {
  const client = new Client({ name: 'cross-replica-it', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  const asked = { sampling: 0, elicitation: 0, roots: 0 };
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    asked.sampling++;
    const text = JSON.stringify(req.params.messages);
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: `sampled:${text.length}` } };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => {
    asked.elicitation++;
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    asked.roots++;
    return { roots: [ROOT] };
  });
  const errors: Error[] = [];
  client.onerror = (e) => errors.push(e);
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch(served) });
  await client.connect(transport);
  return { client, transport, asked, errors };
}

const textOf = (r: unknown) => JSON.stringify((r as { content: unknown }).content);

/** Reads one Prometheus sample (summing label sets that contain `labels`) from a replica's /metrics. */
async function metric(replica: ProxyReplica, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://${replica.hostPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries((m[2] ?? '').split(',').filter(Boolean).map((kv) => kv.split('=').map((x) => x.replace(/"/g, '')) as [string, string]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return await check();
}

/** The proxy's two session modes: owner routing (the default) and `--affinity replay`. */
const MODES = [
  ['owner routing (default)', [] as string[]],
  ['--affinity replay', ['--affinity', 'replay']],
] as const;

describe.each(MODES)('server-to-client traffic across 3 replicas behind round-robin nginx (HTTP upstream: one server-everything), %s', (mode, modeArgs) => {
  let redis: RedisInstance;
  let everything: EverythingHttp;
  let proxies: readonly ProxyReplica[] = [];
  let nginx: NginxInstance;
  const replicaOf = new Map<string, ProxyReplica>();

  beforeAll(async () => {
    [redis, everything] = await Promise.all([startRedis(), startEverythingHttp({ name: 'everything-shared' })]);
    ({ replicas: proxies, nginx } = await startProxyCluster({ store: redis.url, upstream: { url: everything.url }, name: 'proxy-xr', replicas: REPLICAS, extraArgs: modeArgs }));
    for (const p of proxies) {
      const id = (await fetch(`http://${p.hostPort}/healthz`)).headers.get('x-mcp-migrate-replica');
      expect(id).toMatch(/^[0-9a-z]{10}$/);
      replicaOf.set(id!, p);
    }
    expect(replicaOf.size).toBe(REPLICAS);
  });

  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
    await redis?.stop();
  });

  it('sampling, elicitation and roots/list succeed in every session; answers cross replicas', async () => {
    const SESSIONS = 6;
    const served: Served[] = [];
    for (let s = 0; s < SESSIONS; s++) {
      const { client, asked, errors } = await sdkClient(nginx.url, served);
      const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `session ${s}`, maxTokens: 5 } });
      expect(textOf(sampled)).toContain('sampled:');
      const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      expect(textOf(elicited)).toContain('Ada Lovelace');
      const roots = await client.callTool({ name: 'get-roots-list', arguments: {} });
      expect(textOf(roots)).toContain(ROOT.uri);
      expect(asked.sampling).toBe(1);
      expect(asked.elicitation).toBe(1);
      expect(asked.roots).toBeGreaterThanOrEqual(1);
      await client.close();
      expect(errors.filter((e) => !/abort/i.test(e.message))).toEqual([]);
    }
    const answers = served.filter((x) => x.kind === 'answer');
    expect(answers.length).toBeGreaterThanOrEqual(SESSIONS * 2);
    for (const a of answers) {
      expect(a.status).toBe(202);
      expect(replicaOf.has(a.askedBy!)).toBe(true);
    }
    const crossed = answers.filter((a) => a.askedBy !== a.replica);
    // Owner routing: only the owner's upstream session asks, and an answer that reaches another replica is
    // forwarded to it (the answer's replica header is the owner's). Replay: round-robin put many answers on
    // another replica than the one whose upstream session asked, and the bus took them there.
    if (modeArgs.length === 0) expect(crossed).toEqual([]);
    else expect(crossed.length).toBeGreaterThan(0);
    // Counted by the replicas too (at least these: an answer still in flight when a client closed is
    // counted by the replica but not recorded here).
    let remote = 0;
    for (const p of proxies) remote += await metric(p, 'mcp_migrate_server_request_answers_total', { outcome: 'remote' });
    expect(remote).toBeGreaterThanOrEqual(crossed.length);
  });

  it('resource updates and log messages from one replica’s upstream session reach the GET stream another replica holds', async () => {
    const uri = 'demo://resource/dynamic/text/1';
    let checkedUpdates = false;
    let checkedLogs = false;
    for (let attempt = 0; attempt < 4 && !(checkedUpdates && checkedLogs); attempt++) {
      const served: Served[] = [];
      const { client } = await sdkClient(nginx.url, served);
      const updates: string[] = [];
      const logs: string[] = [];
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
      // The SDK opens its GET stream after `initialized`; wait until it is up.
      expect(await until(() => served.some((x) => x.method === 'GET' && x.status === 200), 10_000)).toBe(true);
      const getReplica = served.find((x) => x.method === 'GET' && x.status === 200)!.replica;
      await client.setLoggingLevel('debug');
      await client.subscribeResource({ uri });
      // Let every replica open its upstream session (replay) and the client answer their roots/list,
      // so that round-robin is all that decides where the next requests go.
      for (let i = 0; i < REPLICAS; i++) await client.ping();
      await new Promise((r) => setTimeout(r, 1_000));
      // Steer: nginx rotates strictly, so after a request served by the GET's replica the next two go elsewhere.
      for (let i = 0; i < REPLICAS * 2 && served.at(-1)!.replica !== getReplica; i++) await client.ping();
      const before = served.length;
      await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
      const updatesBy = served.slice(before).find((x) => x.kind === 'tools/call')!.replica;
      const beforeLogging = served.length;
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      const loggingBy = served.slice(beforeLogging).find((x) => x.kind === 'tools/call')!.replica;
      // Only the upstream sessions that ran the toggles produce these notifications.
      if (updatesBy !== getReplica) {
        expect(await until(() => updates.includes(uri), 15_000)).toBe(true);
        expect(await metric(replicaOf.get(updatesBy)!, 'mcp_migrate_standalone_messages_total')).toBeGreaterThan(0);
        checkedUpdates = true;
      }
      if (loggingBy !== getReplica) {
        expect(await until(() => logs.some((l) => l.includes('-level message')), 15_000)).toBe(true);
        checkedLogs = true;
      }
      if (checkedUpdates || checkedLogs) expect(await metric(replicaOf.get(getReplica)!, 'mcp_migrate_bus_lag_seconds_count')).toBeGreaterThan(0);
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
      await client.close();
    }
    expect(checkedUpdates).toBe(true);
    expect(checkedLogs).toBe(true);
  });

  it('a Last-Event-ID resume on a different replica receives the missed events exactly once', async () => {
    const h = (sid: string) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    const post = async (sid: string | undefined, body: unknown) => {
      const res = await fetch(nginx.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? h(sid) : {}) },
        body: JSON.stringify(body),
      });
      await res.text();
      return res;
    };
    const init = await post(undefined, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'resume-it', version: '1' } },
    });
    const sid = init.headers.get('mcp-session-id')!;
    expect((await post(sid, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    const uris = ['demo://resource/dynamic/text/1', 'demo://resource/dynamic/text/2', 'demo://resource/dynamic/text/3'];
    for (const [i, uri] of uris.entries()) expect((await post(sid, { jsonrpc: '2.0', id: 10 + i, method: 'resources/subscribe', params: { uri } })).status).toBe(200);

    /** A GET through nginx; collects `resources/updated` events (id, uri). */
    const openGet = async (lastEventId?: string) => {
      const ac = new AbortController();
      const res = await fetch(nginx.url, { headers: { accept: 'text/event-stream', ...h(sid), ...(lastEventId ? { 'last-event-id': lastEventId } : {}) }, signal: ac.signal });
      const events: { id: string; uri: string }[] = [];
      const ids: string[] = [];
      void (async () => {
        const reader = res.body!.getReader();
        const dec = new TextDecoder();
        let buf = '';
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            buf += dec.decode(value, { stream: true });
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              const id = /^id: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.+)$/m.exec(block)?.[1];
              if (id) ids.push(id);
              const m = data ? (JSON.parse(data) as { method?: string; params?: { uri?: string } }) : undefined;
              if (id && m?.method === 'notifications/resources/updated') events.push({ id, uri: m.params!.uri! });
            }
          }
        } catch {
          /* aborted */
        }
      })();
      return { replica: res.headers.get('x-mcp-migrate-replica')!, events, ids, abort: () => ac.abort() };
    };

    const first = await openGet();
    expect(await until(() => first.ids.length >= 1, 5_000)).toBe(true); // the priming event
    const toggled = await post(sid, { jsonrpc: '2.0', id: 20, method: 'tools/call', params: { name: 'toggle-subscriber-updates', arguments: {} } });
    expect(toggled.status).toBe(200);
    // The first batch (sent at once by the toggle) arrives live; then the client loses the stream.
    expect(await until(() => first.events.length >= uris.length, 10_000)).toBe(true);
    first.abort();
    const lastSeen = first.events.at(-1)!.id;
    const streamKey = `mcpm:{${sid}}:events:g`;
    /** The events of the standalone stream stored after `lastSeen` (id and method), from Redis itself. */
    const storedAfter = async () => {
      const entries = (await redis.command('XRANGE', streamKey, '-', '+')) as [string, string[]][];
      const all = entries.map(([id, fields]) => ({ id: `g_${id}`, method: (JSON.parse(fields[fields.indexOf('m') + 1]!) as { method?: string }).method }));
      return all.slice(all.findIndex((e) => e.id === lastSeen) + 1);
    };
    // The next batch (server-everything sends one every 5 s) is stored while no client stream is open.
    expect(
      await until(async () => (await storedAfter()).filter((e) => e.method === 'notifications/resources/updated').length >= uris.length, 15_000),
    ).toBe(true);

    // Resume through nginx until a replica other than the first answers.
    let resumed: Awaited<ReturnType<typeof openGet>> | undefined;
    for (let i = 0; i < REPLICAS * 2 && !resumed; i++) {
      const g = await openGet(lastSeen);
      if (g.replica !== first.replica) resumed = g;
      else g.abort();
    }
    expect(resumed).toBeDefined();
    const missed = (await storedAfter()).map((e) => e.id);
    // The resumed stream opens with a priming event whose id is the Last-Event-ID itself.
    expect(await until(() => resumed!.ids.length >= missed.length + 1, 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(resumed!.ids[0]).toBe(lastSeen);
    const got = resumed!.ids.slice(1);
    // Exactly the stored events after Last-Event-ID, in order, none twice, none from before it.
    expect(got.slice(0, missed.length)).toEqual(missed);
    expect(new Set(got).size).toBe(got.length);
    expect(got.some((id) => first.ids.includes(id))).toBe(false);
    resumed!.abort();
    await post(sid, { jsonrpc: '2.0', id: 21, method: 'tools/call', params: { name: 'toggle-subscriber-updates', arguments: {} } });
    expect((await fetch(nginx.url, { method: 'DELETE', headers: h(sid) })).status).toBe(200);
    expect(await redis.keys(`mcpm:{${sid}}:*`)).toEqual([]);
  });
});

describe.each(MODES)('server-initiated requests across 3 replicas behind round-robin nginx (stdio upstream), %s', (mode, modeArgs) => {
  let redis: RedisInstance;
  let nginx: NginxInstance;

  beforeAll(async () => {
    redis = await startRedis();
    ({ nginx } = await startProxyCluster({ store: redis.url, upstream: 'stdio', name: 'proxy-xr-stdio', replicas: REPLICAS, extraArgs: modeArgs }));
  });

  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
    await redis?.stop();
  });

  it('sampling, elicitation and roots/list succeed; answers cross replicas', async () => {
    const served: Served[] = [];
    for (let s = 0; s < 2; s++) {
      const { client, asked } = await sdkClient(nginx.url, served);
      for (let round = 0; round < 2; round++) {
        expect(textOf(await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `s${s}r${round}`, maxTokens: 5 } }))).toContain('sampled:');
        expect(textOf(await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }))).toContain('Ada Lovelace');
      }
      expect(textOf(await client.callTool({ name: 'get-roots-list', arguments: {} }))).toContain(ROOT.uri);
      expect(asked.sampling).toBe(2);
      await client.close();
    }
    const answers = served.filter((x) => x.kind === 'answer');
    expect(answers.every((a) => a.status === 202)).toBe(true);
    const crossed = answers.filter((a) => a.askedBy !== a.replica);
    if (modeArgs.length === 0) expect(crossed).toEqual([]);
    else expect(crossed.length).toBeGreaterThan(0);
  });
});
