/**
 * What issue 5 must show for the legacy HTTP+SSE transport (2024-11-05): clients using the official
 * SDK's `SSEClientTransport` work through the same three replicas behind plain round-robin nginx as
 * Streamable HTTP clients, side by side. The SSE stream (`GET /sse`) is held by one replica while
 * the POSTs to the endpoint it announced land on all three; with default flags (owner routing) the
 * session's owner serves them all (the others forward them to it), and every server message reaches
 * the stream holder through the shared session stream in Redis. (`--affinity replay`, where each
 * replica serves them from its own upstream session, is tested in process: test/proxy/legacy-sse.test.ts.) A server-initiated request (`sampling/createMessage` from
 * server-everything's `trigger-sampling-request`) is answered by a POST that any replica may receive.
 *
 * Real redis-server, real nginx, three real proxy processes (the built CLI), server-everything as
 * upstream over Streamable HTTP (one sidecar per replica) and over stdio. The control: three
 * server-everything processes in their own `sse` mode behind the same nginx break every session.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVERYTHING_ENTRY,
  formatReport,
  getFreePort,
  REPO_ROOT,
  runScenarios,
  spawnManaged,
  startNginx,
  startProxyCluster,
  startRedis,
  stopAllProcesses,
  type NginxInstance,
  type ProxyCluster,
  type ProxyReplica,
  type RedisInstance,
  type ScenarioReport,
} from '../helpers/index.js';

const REPLICAS = 3;
const REPLICA_HEADER = 'x-mcp-migrate-replica';

interface Exchange {
  method: string;
  path: string;
  status: number;
  replica: string | null;
}

interface LegacyResult {
  index: number;
  ok: boolean;
  step: string;
  error?: string;
  sessionId?: string;
  exchanges: Exchange[];
  /** Status of a POST to the session's endpoint after the client closed its stream. */
  afterClose?: number;
}

/**
 * One full legacy session with the SDK client: connect (GET /sse, initialize, initialized), tools/list,
 * tools/call echo and get-sum, resources/list + read, prompts/get, logging/setLevel, ping, a tool call
 * during which the server asks the client for sampling, close; then a POST to the old endpoint, which
 * must get 404 once the session has ended everywhere. Records which replica answered each HTTP exchange.
 */
async function runLegacySession(base: string, index: number, timeoutMs = 20_000): Promise<LegacyResult> {
  const exchanges: Exchange[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    exchanges.push({ method: init?.method ?? 'GET', path: url.pathname, status: res.status, replica: res.headers.get(REPLICA_HEADER) });
    return res;
  };
  const client = new Client({ name: `legacy-${index}`, version: '1.0.0' }, { capabilities: { sampling: {} } });
  let sampled = 0;
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    sampled++;
    return { role: 'assistant', content: { type: 'text', text: `sample-${index}` }, model: 'test-model' };
  });
  const errors: string[] = [];
  client.onerror = (e) => errors.push(e.message);
  const transport = new SSEClientTransport(new URL(`${base}/sse`), { fetch: recordingFetch });
  const result: LegacyResult = { index, ok: false, step: 'connect', exchanges };
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    result.step = name;
    return await fn();
  };
  const check = (cond: unknown, what: string) => {
    if (!cond) throw new Error(`unexpected result: ${what}`);
  };
  const text = (content: unknown) => (Array.isArray(content) ? content.map((c: { text?: string }) => c.text ?? '').join('') : '');
  const opts = { timeout: timeoutMs };
  try {
    await step('connect', () => client.connect(transport, opts));
    const endpoint = (transport as unknown as { _endpoint?: URL })._endpoint;
    result.sessionId = endpoint?.searchParams.get('sessionId') ?? undefined;
    await step('tools/list', async () => {
      const names = new Set((await client.listTools(undefined, opts)).tools.map((t) => t.name));
      check(names.has('echo') && names.has('get-sum') && names.has('trigger-sampling-request'), `tools: ${[...names].join(', ')}`);
    });
    await step('tools/call echo', async () => {
      const r = await client.callTool({ name: 'echo', arguments: { message: `legacy-${index}` } }, undefined, opts);
      check(text(r.content) === `Echo: legacy-${index}`, JSON.stringify(r.content));
    });
    await step('tools/call get-sum', async () => {
      const r = await client.callTool({ name: 'get-sum', arguments: { a: index, b: 2000 } }, undefined, opts);
      check(text(r.content).includes(`is ${index + 2000}`), JSON.stringify(r.content));
    });
    const uri = await step('resources/list', async () => {
      const { resources } = await client.listResources(undefined, opts);
      check(resources.length > 0, 'no resources');
      return resources[index % resources.length]!.uri;
    });
    await step('resources/read', async () => {
      const { contents } = await client.readResource({ uri }, opts);
      check(contents[0]?.uri === uri, JSON.stringify(contents).slice(0, 200));
    });
    await step('prompts/get', async () => {
      const r = await client.getPrompt({ name: 'args-prompt', arguments: { city: `Legacy${index}` } }, opts);
      const c = r.messages[0]?.content;
      check(c?.type === 'text' && c.text === `What's weather in Legacy${index}?`, JSON.stringify(r.messages));
    });
    await step('logging/setLevel', () => client.setLoggingLevel('debug', opts));
    await step('ping', () => client.ping(opts));
    await step('sampling', async () => {
      const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `p${index}`, maxTokens: 5 } }, undefined, opts);
      check(sampled === 1 && text(r.content).includes(`sample-${index}`), JSON.stringify(r.content).slice(0, 300));
    });
    await step('close', () => client.close());
    check(errors.length === 0, `transport errors: ${errors.join('; ')}`);
    // The session ended with its stream: every replica answers 404 (allow the holder a moment to notice).
    result.step = 'after-close-404';
    const deadline = Date.now() + 10_000;
    do {
      const res = await fetch(`${base}${endpoint!.pathname}${endpoint!.search}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'after-close', method: 'ping' }),
      });
      await res.text();
      result.afterClose = res.status;
      if (res.status === 404) break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < deadline);
    check(result.afterClose === 404, `POST after close got ${result.afterClose}`);
    result.ok = true;
  } catch (err) {
    result.error = (err as Error).message;
    await client.close().catch(() => undefined);
  }
  return result;
}

/**
 * Bounds a whole session: the SDK's request timeout does not cover a POST whose answer never comes
 * (server-everything in `sse` mode may leave a POST for a session it does not hold unanswered), so a
 * session that outlives 6 request timeouts (default 20 s) is reported failed at step `deadline`.
 */
async function withDeadline(run: Promise<LegacyResult>, index: number, timeoutMs = 20_000): Promise<LegacyResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<LegacyResult>((resolve) => {
    timer = setTimeout(() => resolve({ index, ok: false, step: 'deadline', exchanges: [], error: `session not over after ${6 * timeoutMs} ms` }), 6 * timeoutMs);
  });
  try {
    return await Promise.race([run, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function runLegacySessions(base: string, sessions: number, concurrency: number, timeoutMs?: number): Promise<LegacyResult[]> {
  const results: LegacyResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < sessions) {
        const i = next++;
        results.push(await withDeadline(runLegacySession(base, i, timeoutMs), i, timeoutMs));
      }
    }),
  );
  return results.sort((a, b) => a.index - b.index);
}

const failures = (results: LegacyResult[]) =>
  results
    .filter((r) => !r.ok)
    .map((r) => `#${r.index} at ${r.step}: ${r.error}`)
    .join('\n');

describe.each([
  { kind: 'http' as const, legacySessions: 12, streamableSessions: 12 },
  { kind: 'stdio' as const, legacySessions: 4, streamableSessions: 4 },
])('legacy HTTP+SSE clients through mcp-migrate proxy × 3 behind round-robin nginx ($kind upstream)', ({ kind, legacySessions, streamableSessions }) => {
  let redis: RedisInstance;
  let cluster: ProxyCluster;
  let proxies: readonly ProxyReplica[] = [];
  let nginx: NginxInstance;
  let base: string;
  let legacy: LegacyResult[];
  let streamable: ScenarioReport;

  beforeAll(async () => {
    redis = await startRedis();
    // Every path goes through the balancer: /mcp, /sse and /message.
    cluster = await startProxyCluster({ store: redis.url, upstream: kind, name: `legacy-${kind}`, replicas: REPLICAS, path: '/' });
    ({ replicas: proxies, nginx } = cluster);
    base = `http://127.0.0.1:${nginx.port}`;
    [legacy, streamable] = await Promise.all([
      runLegacySessions(base, legacySessions, 4),
      runScenarios(`${base}/mcp`, { sessions: streamableSessions, concurrency: 4, requestTimeoutMs: cluster.requestTimeoutMs }),
    ]);
    const posts = legacy.flatMap((r) => {
      const holder = r.exchanges.find((e) => e.method === 'GET')?.replica;
      return r.exchanges.filter((e) => e.method === 'POST' && e.path === '/message').map((e) => e.replica !== holder);
    });
    console.log(
      `legacy SSE (${kind} upstream): ${legacy.filter((r) => r.ok).length}/${legacySessions} sessions ok, ` +
        `${posts.length} POSTs, ${posts.filter(Boolean).length} on a replica other than the SSE holder; ` +
        `Streamable HTTP side by side: ${formatReport(streamable)}`,
    );
  });

  afterAll(async () => {
    await cluster?.stop();
    await stopAllProcesses();
    await redis?.stop();
  });

  const logs = (): string => cluster.warnings();

  it('runs every legacy session and every Streamable HTTP session side by side without a failure', () => {
    expect(failures(legacy), `${failures(legacy)}\n${logs()}`).toBe('');
    expect(legacy).toHaveLength(legacySessions);
    expect(new Set(legacy.map((r) => r.sessionId)).size).toBe(legacySessions);
    expect(streamable.failed, `${formatReport(streamable)}\n${logs()}`).toBe(0);
    expect(streamable.passed).toBe(streamableSessions);
  });

  it("spread each legacy session's messages over the replicas, and one replica (the session's owner) served them all", () => {
    const allPostReplicas = new Set<string>();
    for (const r of legacy) {
      const get = r.exchanges.find((e) => e.method === 'GET' && e.path === '/sse');
      const posts = r.exchanges.filter((e) => e.method === 'POST' && e.path === '/message' && e.status === 202);
      expect(get?.replica, `session #${r.index}: no replica header on GET /sse`).toBeTruthy();
      expect(posts.length).toBeGreaterThanOrEqual(10);
      for (const p of posts) {
        expect(p.replica, `session #${r.index}: no replica header on a POST`).toBeTruthy();
        allPostReplicas.add(p.replica!);
      }
      // Owner routing (the default): whichever replica nginx chose, the owner served the POST (its header).
      expect(new Set(posts.map((p) => p.replica)).size, `session #${r.index}`).toBe(1);
    }
    // Round robin sent the POSTs to every replica, and the sessions' owners are spread over them too.
    const landed = new Set(nginx.accessLog().filter((e) => e.method === 'POST' && e.uri.startsWith('/message')).map((e) => e.upstream));
    expect(landed.size).toBe(REPLICAS);
    expect(allPostReplicas.size).toBeGreaterThan(1);
  });

  it("routed each legacy client's answer to a server-initiated request to the replica whose upstream session asked", async () => {
    const answers = { local: 0, remote: 0, unknown: 0 };
    for (const p of proxies) {
      const text = await (await fetch(p.url.replace(/\/mcp$/, '/metrics'))).text();
      for (const m of text.matchAll(/^mcp_migrate_server_request_answers_total\{outcome="(local|remote|unknown)"\} (\d+)$/gm)) {
        answers[m[1] as keyof typeof answers] += Number(m[2]);
      }
    }
    // One sampling answer per legacy session (the Streamable HTTP scenario answers none).
    expect(answers.local + answers.remote).toBe(legacySessions);
    expect(answers.unknown).toBe(0);
    // Owner routing: an answer POST that lands on another replica is forwarded to the owner, whose
    // upstream session asked, so the owner routes it locally.
    expect(answers.local).toBe(legacySessions);
  });

  it('leaves no upstream session open once every session ended', async () => {
    const open = async () => {
      let n = 0;
      for (const p of proxies) {
        const health = (await (await fetch(p.url.replace(/\/mcp$/, '/healthz'))).json()) as { upstreamSessions: number };
        n += health.upstreamSessions;
      }
      return n;
    };
    const deadline = Date.now() + 15_000;
    let n = await open();
    while (n > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      n = await open();
    }
    expect(n).toBe(0);
  });
});

describe('control: server-everything in sse mode × 3 behind round-robin nginx, no proxy', () => {
  let nginx: NginxInstance;
  let results: LegacyResult[];
  const SESSIONS = 4;

  beforeAll(async () => {
    const servers = await Promise.all(
      Array.from({ length: REPLICAS }, async (_, i) => {
        const port = await getFreePort();
        const proc = spawnManaged(process.execPath, [EVERYTHING_ENTRY, 'sse'], { name: `everything-sse-${i}`, cwd: REPO_ROOT, env: { PORT: String(port) } });
        await proc.waitForOutput(/Server is running on port \d+/, 15_000);
        await proc.waitForPort(port, 5_000);
        return `127.0.0.1:${port}`;
      }),
    );
    nginx = await startNginx({ upstreams: servers, path: '/' });
    // server-everything never answers a POST for a session it does not hold: short timeouts.
    results = await runLegacySessions(`http://127.0.0.1:${nginx.port}`, SESSIONS, SESSIONS, 3_000);
  });

  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
  });

  it('fails every legacy session: POSTs land on servers that do not hold the SSE stream', () => {
    expect(results.filter((r) => r.ok)).toEqual([]);
    expect(results.every((r) => r.error !== undefined)).toBe(true);
  });
});
