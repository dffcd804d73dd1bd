/**
 * Issue 5 for `mcp-migrate apply`: every server-to-client path of the 2025-era protocols works across
 * replicas in a migrated server. server-everything's shipped JavaScript is rewritten by the built CLI
 * (`apply --store redis`, in a temporary directory), three replicas of it run with a real
 * redis-server behind a real plain round-robin nginx, and the official SDK client — with sampling,
 * elicitation and roots handlers — drives it:
 * - `trigger-sampling-request` / `trigger-elicitation-request` (requests on the tool call's POST
 *   stream) and the roots sync behind `get-roots-list` (a request on the standalone stream) succeed
 *   while the client's answers land on replicas other than the one that asked;
 * - `toggle-simulated-logging` / `toggle-subscriber-updates` notifications, sent by a timer on the
 *   replica that took the tool call, reach the client's GET stream held by another replica.
 * Every request carries a `?t=<tag>` query (express ignores it) so the nginx access log says which
 * replica served which request.
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
  migrateEverything,
  startMigratedReplicas,
  type MigratedEverything,
  startNginx,
  startRedis,
  stopAllProcesses,
  type ManagedProcess,
  type NginxInstance,
  type RedisInstance,
} from '../helpers/index.js';

const REPLICAS = 3;
const ROOT_URI = 'file:///srv/example/project';


let migrated: MigratedEverything | undefined;
let dir: string;
let redis: RedisInstance;
let replicas: { process: ManagedProcess; hostPort: string }[] = [];
let nginx: NginxInstance;

beforeAll(async () => {
  migrated = await migrateEverything('apply-xr');
  dir = migrated.dir;
  redis = await startRedis();
  replicas = await startMigratedReplicas(dir, redis.url, REPLICAS, 'migrated-everything-xr');
  nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
}, 120_000);

afterAll(async () => {
  await nginx?.stop();
  await stopAllProcesses();
  await redis?.stop();
  migrated?.remove();
});

type Sent = { tag: string; kind: string; ids: unknown[] };

/** An SDK client through nginx whose requests are tagged; records what the server asked and when. */
async function connect(name: string) {
  const sent: Sent[] = [];
  let seq = 0;
  /** The tag of the tool call in progress (server requests on its POST stream belong to it). */
  let currentCall: string | undefined;
  const asked: { method: string; id: string; during: string | undefined }[] = [];
  const logs: string[] = [];
  const updated: string[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    let kind = method.toLowerCase();
    let ids: unknown[] = [];
    if (method === 'POST' && typeof init?.body === 'string') {
      const body = JSON.parse(init.body) as unknown;
      const messages = (Array.isArray(body) ? body : [body]) as { method?: string; id?: unknown; params?: { name?: string } }[];
      if (messages.every((m) => m.method === undefined)) {
        kind = 'answer';
        ids = messages.map((m) => m.id);
      } else kind = messages[0]!.method === 'tools/call' ? `call:${messages[0]!.params?.name}` : messages[0]!.method!;
    }
    const tag = `${name}-${++seq}`;
    sent.push({ tag, kind, ids });
    if (kind.startsWith('call:')) currentCall = tag;
    const url = new URL(String(input instanceof Request ? input.url : input));
    url.searchParams.set('t', tag);
    return await fetch(url, init);
  }) as typeof fetch;
  const client = new Client({ name, version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  client.setRequestHandler(CreateMessageRequestSchema, async (_r, extra) => {
    asked.push({ method: 'sampling', id: String(extra.requestId), during: currentCall });
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled-by-client' } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (_r, extra) => {
    asked.push({ method: 'elicitation', id: String(extra.requestId), during: currentCall });
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async (_r, extra) => {
    asked.push({ method: 'roots', id: String(extra.requestId), during: undefined });
    return { roots: [{ uri: ROOT_URI, name: 'project' }] };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(String(n.params.data));
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updated.push(n.params.uri);
  });
  const transport = new StreamableHTTPClientTransport(new URL(nginx.url), { fetch: fetchFn });
  await client.connect(transport);
  /** The replica (`host:port`) nginx sent a tagged request to. */
  const upstreamOf = (tag: string) => nginx.accessLog().find((e) => new URLSearchParams(e.uri.split('?')[1] ?? '').get('t') === tag)?.upstream;
  const callTool = async (toolName: string, args: Record<string, unknown> = {}) => {
    const result = await client.callTool({ name: toolName, arguments: args }, undefined, { timeout: 20_000 });
    currentCall = undefined;
    return JSON.stringify(result.content);
  };
  return { client, transport, sent, asked, logs, updated, upstreamOf, callTool };
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

const replicaOf = (id: string) => /^mcp-migrate:s:([^:]+):/.exec(id)?.[1];

describe('apply --store redis on server-everything × 3 behind round-robin nginx: server-to-client traffic across replicas', () => {
  it('sampling, elicitation and roots succeed with the client\'s answers landing on other replicas', async () => {
    const c = await connect('sre');
    const rounds = 4;
    for (let i = 0; i < rounds; i++) {
      expect(await c.callTool('trigger-sampling-request', { prompt: `hello ${i}`, maxTokens: 5 })).toContain('sampled-by-client');
      expect(await c.callTool('trigger-elicitation-request')).toContain('Ada Lovelace');
    }
    // get-roots-list shows the roots the client gave: the roots/list request went out on the
    // standalone stream (the server's roots sync), the answer came back to the replica that asked.
    const roots = await c.callTool('get-roots-list');
    expect(roots).toContain(ROOT_URI);
    expect(c.asked.filter((q) => q.method === 'roots').length).toBeGreaterThanOrEqual(1);

    const log = nginx.accessLog();
    // Which replica (host:port) holds each rewritten id's pending request: the one that took the tool call it was asked during.
    const holder = new Map<string, string>();
    for (const q of c.asked) {
      expect(q.id).toMatch(/^mcp-migrate:s:[0-9a-z]+:[0-9a-z]+$/);
      if (q.during) holder.set(replicaOf(q.id)!, c.upstreamOf(q.during)!);
    }
    expect(c.asked.filter((q) => q.method === 'sampling')).toHaveLength(rounds);
    expect(c.asked.filter((q) => q.method === 'elicitation')).toHaveLength(rounds);
    // Every answer, and where it landed compared with the replica that asked.
    let crossed = 0;
    let same = 0;
    for (const s of c.sent.filter((x) => x.kind === 'answer')) {
      const landed = c.upstreamOf(s.tag);
      expect(landed, `answer ${s.tag} in the access log`).toBeDefined();
      for (const id of s.ids) {
        const asker = holder.get(replicaOf(String(id)) ?? '');
        if (asker === undefined) continue;
        if (asker !== landed) crossed++;
        else same++;
      }
    }
    console.log(`answers to server-initiated requests: ${crossed} landed on another replica, ${same} on the one that asked`);
    expect(crossed).toBeGreaterThanOrEqual(rounds);
    expect(new Set(log.map((e) => e.upstream))).toEqual(new Set(replicas.map((r) => r.hostPort)));
    await c.transport.terminateSession();
    await c.client.close();
  });

  it('simulated logging and subscriber updates, sent by a timer on the replica that took the tool call, reach a GET stream held by another replica', async () => {
    const sessions = 3;
    let elsewhere = 0;
    for (let i = 0; i < sessions; i++) {
      const c = await connect(`log${i}`);
      const sid = c.transport.sessionId!;
      await until(() => c.sent.some((s) => s.kind === 'get'), 5_000);
      await c.client.subscribeResource({ uri: 'demo://resource/static/document/architecture.md' });
      const logging = await c.callTool('toggle-simulated-logging');
      expect(logging).toContain('Started');
      const updates = await c.callTool('toggle-subscriber-updates');
      expect(updates).toContain('Started');
      const sentBy = (kind: string) => c.upstreamOf(c.sent.find((s) => s.kind === kind)!.tag);
      const loggingAt = sentBy('call:toggle-simulated-logging');
      const updatesAt = sentBy('call:toggle-subscriber-updates');
      // The first of each is sent at once, the next after 5 s.
      expect(await until(() => c.logs.filter((l) => l.includes(`SessionId ${sid}`)).length >= 2, 12_000), `logs: ${c.logs.join(' | ')}`).toBe(true);
      expect(await until(() => c.updated.length >= 2, 12_000), `updates: ${c.updated.join(' | ')}`).toBe(true);
      const gets = c.sent.filter((s) => s.kind === 'get').map((s) => c.upstreamOf(s.tag));
      expect(gets.length).toBeGreaterThanOrEqual(1);
      if (gets.every((g) => g !== loggingAt) && gets.every((g) => g !== updatesAt)) elsewhere++;
      // Stop the timers (each toggle may land on another replica, whose own timer map is empty: end the session instead).
      await c.transport.terminateSession();
      await c.client.close();
    }
    console.log(`sessions whose GET stream was on neither replica running the timers: ${elsewhere} of ${sessions}`);
    expect(elsewhere).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
