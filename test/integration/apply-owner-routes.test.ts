/**
 * A server's own HTTP route that acts for a session, run on the session's owner (issue 13: the last SDK
 * example pattern, a URL-mode elicitation completed from a browser). The server
 * (test/helpers/servers/url-elicitation.mjs, an original Express server) has a tool that throws
 * `UrlElicitationRequiredError` with `/approve?session=<session id>&elicitation=<id>`, a page on that URL
 * posting the ids back, and `POST /approve` completing the elicitation from an in-process Map (a closure
 * that sends `notifications/elicitation/complete` on the session), answering "Approved" even for an id
 * it does not know.
 *
 * `mcp-migrate apply --store redis` (the built CLI) finds by data flow that `POST /approve` acts for the
 * session of the form's `session` field, gives the registry owner affinity and puts
 * `transports.ownerRoute({ body: 'session' })` before the route's body parser, and exits 0. Three
 * replicas of the migrated copy behind a real nginx round-robin with a real Redis, driven by the official
 * SDK client (a browser's GET and form POST made with fetch):
 *   - 10/10 sessions get `notifications/elicitation/complete` for their elicitation, with at least 3
 *     completion POSTs landing (nginx's access log) on another replica than the session's owner;
 *   - a completion for an unknown session, or for a session the client ended, gets 404 (HTML for a
 *     browser), not "Approved".
 * On main's apply before this (the finding stays, no route middleware), apply exits 1 and the same
 * cluster gets "Approved" from non-owner replicas with no notification: both tests fail.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitationCompleteNotificationSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import {
  REPO_ROOT,
  copyServer,
  getFreePort,
  pollUntil,
  runApply,
  startNginx,
  startRedis,
  startServerReplicas,
  stopAllProcesses,
  type ApplyRun,
  type ManagedProcess,
  type NginxInstance,
  type RedisInstance,
  type ServerCopy,
} from '../helpers/index.js';

const SERVERS = path.join(REPO_ROOT, 'test', 'helpers', 'servers');
const FILE = 'url-elicitation.mjs';
const REPLICAS = 3;
const SESSIONS = 10;
const TIMEOUT = 30_000;

let redis: RedisInstance;
let copy: ServerCopy;
let applied: ApplyRun;
let nginx: NginxInstance;
let replicas: { process: ManagedProcess; hostPort: string }[] = [];

beforeAll(async () => {
  redis = await startRedis();
  copy = copyServer('owner-routes', SERVERS, [FILE]);
  applied = await runApply(copy.dir, [FILE]);
  const port = await getFreePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  replicas = await startServerReplicas(copy.dir, REPLICAS, 'owner-routes', {
    args: [FILE],
    storeUrl: redis.url,
    env: (p) => ({ PORT: String(p), REPLICA: `127.0.0.1:${p}`, PUBLIC_URL: publicUrl, MCP_MIGRATE_KEY_PREFIX: 'owner-routes:' }),
  });
  nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), port });
}, 120_000);

afterAll(async () => {
  await nginx?.stop();
  await stopAllProcesses();
  await redis?.stop();
  copy?.remove();
});

/** The hidden fields of the page's form. */
function formOf(html: string): URLSearchParams {
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) form.set(m[1]!, m[2]!);
  return form;
}

const postForm = (form: URLSearchParams, accept = 'text/html') =>
  fetch(`http://127.0.0.1:${nginx.port}/approve`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept }, body: form.toString() });

interface Completion {
  owner: string;
  notified: boolean;
  status: number;
  page: string;
}

/** One session: the tool's URL elicitation, the page, the form posted back, and the completion notification. */
async function completeOne(i: number): Promise<Completion> {
  const client = new Client({ name: 'owner-routes-test', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
  const completed = new Set<string>();
  client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => void completed.add(n.params.elicitationId));
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${nginx.port}/mcp`));
  await client.connect(transport, { timeout: TIMEOUT });
  try {
    const err = await client.callTool({ name: 'purchase', arguments: { item: `item-${i}` } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof McpError) || err.code !== ErrorCode.UrlElicitationRequired) throw new Error(`expected a URL elicitation, got ${String(err)}`);
    const elicitation = (err.data as { elicitations: { url: string; elicitationId: string; message: string }[] }).elicitations[0]!;
    const owner = /asked by ([^)]+)\)/.exec(elicitation.message)![1]!;
    const page = await (await fetch(elicitation.url, { headers: { accept: 'text/html' } })).text();
    const answer = await postForm(formOf(page));
    const notified = await pollUntil(() => completed.has(elicitation.elicitationId), 5_000);
    return { owner, notified, status: answer.status, page: await answer.text() };
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
}

describe('a URL elicitation completed from a browser route, on 3 migrated replicas behind round-robin', () => {
  it('apply finds the route by data flow, routes it to the session owner and says ready (exit 0)', () => {
    expect(applied.output).toMatch(/Resolved by owner affinity/);
    expect(applied.output).toMatch(/no-session-keyed-state `waiting`/);
    expect(applied.code, applied.output).toBe(0);
  });

  it('10/10 sessions get notifications/elicitation/complete, ≥ 3 of the completions posted to a non-owner replica', async () => {
    const results: Completion[] = [];
    for (let i = 0; i < SESSIONS; i++) results.push(await completeOne(i));
    const posts = nginx.accessLog().filter((e) => e.method === 'POST' && e.uri === '/approve');
    expect(posts).toHaveLength(SESSIONS);
    const elsewhere = results.filter((r, i) => posts[i]!.upstream !== r.owner).length;
    console.log(`url elicitation: ${results.filter((r) => r.notified).length}/${SESSIONS} notified, ${elsewhere}/${SESSIONS} completions posted to a non-owner replica`);
    for (const r of results) {
      expect(r.status, r.page).toBe(200);
      expect(r.page).toContain('Approved');
    }
    expect(results.filter((r) => r.notified), JSON.stringify(results.map((r, i) => [r.owner, posts[i]!.upstream, r.notified]))).toHaveLength(SESSIONS);
    expect(elsewhere).toBeGreaterThanOrEqual(3);
  }, 180_000);

  it('a completion for an unknown or ended session gets 404 on every replica, never "Approved"', async () => {
    for (let i = 0; i < REPLICAS; i++) {
      const html = await postForm(new URLSearchParams({ session: randomUUID(), elicitation: randomUUID() }));
      expect(html.status).toBe(404);
      const page = await html.text();
      expect(page).toMatch(/<h1>Session not found<\/h1>/);
      const json = await postForm(new URLSearchParams({ session: randomUUID(), elicitation: randomUUID() }), 'application/json');
      expect(json.status).toBe(404);
      expect(((await json.json()) as { error: { code: number } }).error.code).toBe(-32001);
    }
    // A session the client ended (DELETE): its id is known to the client, not to any replica any more.
    const client = new Client({ name: 'owner-routes-ended', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${nginx.port}/mcp`));
    await client.connect(transport, { timeout: TIMEOUT });
    const sessionId = transport.sessionId!;
    // One request first: a DELETE (and the client's GET) sent on a non-owner replica right after the
    // handshake was seen to get 404 there (a race in owner affinity itself, not in these routes; see the report).
    await client.listTools();
    await transport.terminateSession();
    await client.close();
    for (let i = 0; i < REPLICAS; i++) {
      const answer = await postForm(new URLSearchParams({ session: sessionId, elicitation: randomUUID() }));
      expect(answer.status).toBe(404);
    }
  }, 60_000);
});
