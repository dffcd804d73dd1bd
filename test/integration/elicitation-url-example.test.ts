/**
 * The SDK 1.32.2 example `elicitationUrlExample` end to end, migrated by `apply --store redis` (given the
 * example and its `demoInMemoryOAuthProvider.js`), 3 replicas behind real nginx round-robin with a real
 * redis-server. Each process runs the MCP server on `MCP_PORT` and its demo OAuth authorization server on
 * `MCP_AUTH_PORT`, and checks every bearer token by introspecting `localhost:MCP_AUTH_PORT`: one nginx
 * fronts the replicas' MCP ports and a second their auth ports, both variables name the nginx ports, and
 * `listen-port.mjs` maps each replica's listen on them to its own free ports.
 *
 * Per session, driven by the official SDK client: the OAuth flow of `test/helpers/oauth-flow.ts` through
 * the auth nginx (each step on another replica), a client connected with the bearer token and
 * elicitation capability `{ url: {} }` (the API-key URL elicitation the first GET stream may carry is
 * declined), `payment-confirm` → error -32042 whose URL carries the session and elicitation ids, the
 * confirmation form posted (with `/authorize`'s `demo_session` cookie, as a browser sends it) through
 * the MCP nginx → 200 "Payment Confirmed", and `notifications/elicitation/complete` for that id:
 * 10/10 sessions, with ≥ 3 confirmations landing (nginx's access log) on another replica than the one
 * that answered the session's initialize (its owner). The original example on the same cluster gives
 * no session a token: `/authorize` lands on a replica that never saw the client's registration.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitationCompleteNotificationSchema, ElicitRequestSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import {
  REPO_ROOT,
  copySdk,
  getFreePort,
  migrateSdkExample,
  exampleEntry,
  pollUntil,
  startNginx,
  startRedis,
  startServerReplicas,
  stopAllProcesses,
  type NginxInstance,
  type RedisInstance,
  type ServerCopy,
} from '../helpers/index.js';
import { runOAuthFlow } from '../helpers/oauth-flow.js';

const NAME = 'elicitationUrlExample';
const REPLICAS = 3;
const SESSIONS = 10;
const TIMEOUT = 30_000;
const LISTEN_PORT_PRELOAD = path.join(REPO_ROOT, 'test', 'helpers', 'listen-port.mjs');

let redis: RedisInstance;
let copy: ServerCopy & { applyOutput: string; applyExitCode: number };
let mcp: NginxInstance;
let auth: NginxInstance;
const cleanups: Array<() => void | Promise<void>> = [];

/** `count` replicas of the example in `dir` behind one nginx for the MCP port and one for the auth port (a store when `storeUrl`). */
async function cluster(dir: string, name: string, storeUrl?: string, count = REPLICAS): Promise<{ mcp: NginxInstance; auth: NginxInstance }> {
  const [mcpPort, authPort] = [await getFreePort(), await getFreePort()];
  const ownAuthPorts: number[] = [];
  for (let i = 0; i < count; i++) ownAuthPorts.push(await getFreePort());
  const authUpstreams = ownAuthPorts.map((p) => `127.0.0.1:${p}`);
  const replicas = await startServerReplicas(dir, count, name, {
    args: ['--import', LISTEN_PORT_PRELOAD, exampleEntry(NAME)],
    storeUrl,
    env: (own) => ({ MCP_PORT: String(mcpPort), MCP_AUTH_PORT: String(authPort), TEST_LISTEN_PORTS: `${mcpPort}=${own},${authPort}=${ownAuthPorts.pop()!}` }),
  });
  for (const r of replicas) await r.process.waitForOutput(/OAuth Authorization Server listening/, 20_000);
  const mcpNginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), port: mcpPort, name: `nginx-${name}-mcp` });
  cleanups.push(() => mcpNginx.stop());
  const authNginx = await startNginx({ upstreams: authUpstreams, port: authPort, name: `nginx-${name}-auth` });
  cleanups.push(() => authNginx.stop());
  return { mcp: mcpNginx, auth: authNginx };
}

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-elicitation-url' });
  copy = await migrateSdkExample(NAME);
  cleanups.push(copy.remove);
  ({ mcp, auth } = await cluster(copy.dir, `${NAME}-migrated`, redis.url));
}, 180_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await stopAllProcesses();
  await redis?.stop();
});

interface Confirmation {
  owner: string;
  elicitationId: string;
  status: number;
  page: string;
  notified: boolean;
}

/** The migrated cluster of this file. */
function current(): { mcp: NginxInstance; auth: NginxInstance } {
  return { mcp, auth };
}

/** One session: OAuth, connect, `payment-confirm`, the form posted back, the completion notification. */
async function confirmOne(i: number, { mcp, auth }: { mcp: NginxInstance; auth: NginxInstance } = current()): Promise<Confirmation> {
  const mcpUrl = new URL(`http://localhost:${mcp.port}/mcp`);
  const flow = await runOAuthFlow(new URL(`http://localhost:${auth.port}`), { resource: mcpUrl, scope: 'mcp:tools' });
  if (!flow.ok) throw new Error(`OAuth flow failed: ${JSON.stringify(flow.steps)}`);
  const client = new Client({ name: 'elicitation-url-test', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
  client.setRequestHandler(ElicitRequestSchema, () => ({ action: 'decline' }));
  const completed = new Set<string>();
  client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => void completed.add(n.params.elicitationId));
  const transport = new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: { authorization: `Bearer ${flow.accessToken!}` } } });
  const mark = mcp.accessLog().length;
  await client.connect(transport, { timeout: TIMEOUT });
  try {
    const owner = mcp.accessLog().slice(mark).find((e) => e.method === 'POST' && e.uri === '/mcp')!.upstream;
    const err = await client.callTool({ name: 'payment-confirm', arguments: { cartId: `cart-${i}` } }, undefined, { timeout: TIMEOUT }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof McpError) || err.code !== ErrorCode.UrlElicitationRequired) throw new Error(`expected a URL elicitation, got ${String(err)}`);
    const { url, elicitationId } = (err.data as { elicitations: { url: string; elicitationId: string }[] }).elicitations[0]!;
    const link = new URL(url);
    expect(link.searchParams.get('session')).toBe(transport.sessionId);
    expect(link.searchParams.get('elicitation')).toBe(elicitationId);
    const form = new URLSearchParams({ ...Object.fromEntries(link.searchParams), action: 'confirm' });
    const answer = await fetch(new URL('/confirm-payment', link), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie: flow.cookie! },
      body: form.toString(),
    });
    const page = await answer.text();
    const notified = await pollUntil(() => completed.has(elicitationId), 5_000);
    return { owner, elicitationId, status: answer.status, page, notified };
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
}

describe('elicitationUrlExample migrated by apply, 3 replicas behind nginx round-robin (MCP and auth ports)', () => {
  it('apply exits 0 on the example and its demo OAuth provider', () => {
    expect(copy.applyExitCode, copy.applyOutput).toBe(0);
  });

  it('10/10 sessions: OAuth, payment-confirm, form confirmed (≥ 3 on a non-owner replica), notifications/elicitation/complete', async () => {
    const results: Confirmation[] = [];
    for (let i = 0; i < SESSIONS; i++) results.push(await confirmOne(i));
    const posts = mcp.accessLog().filter((e) => e.method === 'POST' && e.uri === '/confirm-payment');
    expect(posts).toHaveLength(SESSIONS);
    const elsewhere = results.filter((r, i) => posts[i]!.upstream !== r.owner).length;
    console.log(`elicitationUrlExample: ${results.filter((r) => r.notified).length}/${SESSIONS} notified, ${elsewhere}/${SESSIONS} confirmations posted to a non-owner replica`);
    for (const r of results) {
      expect(r.status, r.page).toBe(200);
      expect(r.page).toContain('Payment Confirmed');
    }
    expect(results.filter((r) => r.notified), JSON.stringify(results.map((r, i) => [r.owner, posts[i]!.upstream, r.notified]))).toHaveLength(SESSIONS);
    expect(elsewhere).toBeGreaterThanOrEqual(3);
    // The tokens the replicas introspected are in Redis (the provider's maps are SharedMaps).
    const tokens = (await redis.command('KEYS', 'mcpm:shared:*DemoInMemoryAuthProvider.tokens:*')) as string[];
    expect(tokens.length).toBeGreaterThanOrEqual(SESSIONS);
  }, 240_000);

  it('original, one replica (direct): 10/10 sessions get their completion, so what fails behind round-robin is the replicas, not the flow', async () => {
    const original = copySdk(`${NAME}-direct`);
    cleanups.push(original.remove);
    const direct = await cluster(original.dir, `${NAME}-direct`, undefined, 1);
    const results: Confirmation[] = [];
    for (let i = 0; i < SESSIONS; i++) results.push(await confirmOne(i, direct));
    for (const r of results) expect(r.page).toContain('Payment Confirmed');
    expect(results.filter((r) => r.notified)).toHaveLength(SESSIONS);
  }, 240_000);

  it('original, the same cluster: no session gets a token (/authorize on a replica that never saw the registration)', async () => {
    const original = copySdk(`${NAME}-original`);
    cleanups.push(original.remove);
    const { mcp: mcpOriginal, auth: authOriginal } = await cluster(original.dir, `${NAME}-original`);
    const flow = await runOAuthFlow(new URL(`http://localhost:${authOriginal.port}`), { resource: new URL(`http://localhost:${mcpOriginal.port}/mcp`), scope: 'mcp:tools' });
    expect(flow.ok).toBe(false);
    expect(flow.steps.find((s) => !s.ok)).toMatchObject({ name: 'authorize', status: 400 });
  }, 120_000);
});
