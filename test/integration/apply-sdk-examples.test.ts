/**
 * Issue 13 on the example servers of `@modelcontextprotocol/sdk` 1.32.2 that open sessions over
 * Streamable HTTP (`dist/esm/examples/server/`, see `test/helpers/sdk-examples.ts`). For each:
 *
 * - the original passes 10 of 10 sessions with the official SDK client on one instance, and none of
 *   10 behind a real round-robin nginx over 3 instances;
 * - `mcp-migrate apply --store redis` (the built CLI, on a copy of the SDK package) exits 0 and says the
 *   server is ready for any number of replicas only when its analysis of the rewritten code finds
 *   nothing that breaks round-robin; otherwise it exits 1 and lists what remains (file:line, why);
 * - three replicas of the migrated copy behind the same nginx, with a real redis-server as the store,
 *   pass 10 of 10 sessions, including the server's own per-session state read back on other replicas:
 *   elicitation answers, a logging level set on one replica and applied where the tool runs, tasks
 *   created on one replica and read with `tasks/get` / `tasks/result` on others, a POST stream the
 *   server closes (`closeSSEStream`) resumed with `Last-Event-ID` on another replica;
 * - where what stays in process is per-session state (a per-session timer, a task's in-process
 *   execution and waiters), apply gives the registry owner affinity and lists that state apart
 *   ("Resolved by owner affinity"): the replica that opened a session serves it, the others forward its
 *   requests, so that state is read back from requests that land on other replicas.
 *
 * `elicitationUrlExample` is checked here for its apply outcome only (it requires OAuth from the demo
 * authorization server each process runs): apply, given the example and its demo auth module, moves
 * that provider's maps to the store (`shared-map`), keeps the elicitation state on each session's owner
 * and routes the browser confirmation routes there, and exits 0. Its end-to-end run (OAuth, then
 * `payment-confirm` confirmed across replicas) is `elicitation-url-example.test.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallToolResultSchema, CreateTaskResultSchema, ElicitRequestSchema, GetTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  copySdk,
  exampleEntry,
  SDK_ROOT,
  SDK_SESSION_EXAMPLES,
  migrateSdkExample,
  pollUntil,
  runClientSessions,
  startNginx,
  startRedis,
  startSdkExample,
  stopAllProcesses,
  type ClientSessionsOptions,
  type ClientSessionsReport,
  type ManagedProcess,
  type NginxInstance,
  type RedisInstance,
  type ServerCopy,
  type SessionContext,
} from '../helpers/index.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';

type Session = Omit<ClientSessionsOptions, 'sessions' | 'concurrency'>;

const SESSIONS = 10;
const REPLICAS = 3;

const text = (r: unknown): string => JSON.stringify((r as { content?: unknown }).content ?? r);
const fail = (what: string): never => {
  throw new Error(what);
};

interface ExampleCase {
  name: string;
  /** Rule ids apply must list as remaining (exit 1); empty: ready (exit 0). */
  remaining: string[];
  /** What apply's list of what remains must say (the exact reason a finding is left to the user). */
  remainingWhy?: RegExp[];
  /** What apply's list of rewritten findings must say (findings that then no longer remain). */
  rewritten?: RegExp[];
  /** Rule ids apply must list as resolved by owner affinity (the registry then says `affinity: 'owner'`). */
  owned?: string[];
  /** Routes of the migrated file that must go through the registry's `ownerRoute` (browser routes acting for one session). */
  ownerRoutes?: RegExp[];
  session?: Session;
  /** What the migrated run must show in the nginx access log, beyond every session using several replicas. */
  acrossReplicas?: (report: ClientSessionsReport, upstreamOf: (tag: string) => string | undefined) => void;
  /** What the direct run on one original must show, beyond every session passing. */
  direct?: (report: ClientSessionsReport) => void;
}

const answerElicitation = (content: Record<string, unknown>) => (client: import('@modelcontextprotocol/sdk/client/index.js').Client) =>
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content }));
const base = { timeoutMs: 60_000, expectGone: true } as const;

/** One read of something a replica made (a resource its timer added, a task): the request's tag, the tag of the request that showed or made it. */
interface ReplicaRead {
  tag: string;
  listedBy: string;
  ok: boolean;
  result: string;
}
const timerReads = new Map<number, ReplicaRead[]>();
const taskReads = new Map<number, ReplicaRead[]>();

/** Every read succeeded, and at least 3 of them reached (through nginx) another replica than the one whose request made the thing read. */
function expectReadEverywhere(report: ClientSessionsReport, reads: Map<number, ReplicaRead[]>, upstreamOf: (tag: string) => string | undefined): void {
  let elsewhere = 0;
  for (const [i, o] of report.outcomes.entries()) {
    const mine = reads.get(i) ?? [];
    expect(mine.length, `session ${o.sessionId} read`).toBeGreaterThanOrEqual(1);
    for (const r of mine) {
      expect(r.ok, `session ${o.sessionId}: read ${r.tag} landed on ${upstreamOf(r.tag)}, made on ${upstreamOf(r.listedBy)}: ${r.result}`).toBe(true);
      if (upstreamOf(r.tag) !== upstreamOf(r.listedBy)) elsewhere++;
    }
  }
  expect(elsewhere).toBeGreaterThanOrEqual(3);
}

/**
 * Calls `confirm_delete` as a task, reads it with `tasks/get` 3 times (working or waiting for input),
 * then `tasks/result`: the task's execution, waiting in the process that created it, sends its queued
 * elicitation through that request, the client accepts, and the result says the file was deleted;
 * a last `tasks/get` finds it completed. A read that fails or answers wrong fails the session.
 */
async function runOwnTask(client: Client, s: SessionContext): Promise<ReplicaRead[]> {
  const created = await client.request({ method: 'tools/call', params: { name: 'confirm_delete', arguments: { filename: 'a.txt' }, task: { ttl: 60_000 } } }, CreateTaskResultSchema);
  const listedBy = lastTag(s, 'tools/call:confirm_delete');
  const { taskId } = created.task;
  const reads = await readThrice(s, 'tasks/get', listedBy, async () => {
    const got = await client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResultSchema);
    return { result: JSON.stringify(got), right: got.taskId === taskId && ['working', 'input_required'].includes(got.status) };
  });
  s.step('tasks/result: the queued elicitation answered, the task completes');
  const result = await client.request({ method: 'tasks/result', params: { taskId } }, CallToolResultSchema, { timeout: 30_000 });
  reads.push({ tag: lastTag(s, 'tasks/result'), listedBy, ok: text(result).includes("Deleted 'a.txt'"), result: text(result) });
  const done = await client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResultSchema);
  reads.push({ tag: lastTag(s, 'tasks/get'), listedBy, ok: done.status === 'completed', result: JSON.stringify(done) });
  return reads;
}
const lastTag = (s: SessionContext, rpc: string): string => [...s.requests].reverse().find((r) => r.rpc === rpc)?.tag ?? fail(`no ${rpc} sent`);

/**
 * Lists resources (each list is a request of its own, so round-robin moves between replicas) until one
 * added by the per-session timer shows (bounded: 30 s), then reads it 3 times. A read either returns the
 * content the timer gave it or fails with "not found"; any other content fails the session.
 */
async function readTimerResource(client: Client, s: SessionContext): Promise<ReplicaRead[]> {
  let added: { uri: string; name: string } | undefined;
  let listedBy = '';
  const deadline = Date.now() + 30_000;
  while (!added && Date.now() < deadline) {
    const list = await client.listResources();
    listedBy = lastTag(s, 'resources/list');
    added = list.resources.find((r) => r.name !== 'example-resource');
    if (!added) await new Promise((r) => setTimeout(r, 500));
  }
  if (!added) fail('no resource added by the timer within 30 s');
  return await readThrice(s, 'resources/read', listedBy, async () => {
    const result = JSON.stringify(await client.readResource({ uri: added!.uri }));
    return { result, right: result.includes(`Content for ${added!.name}`) };
  });
}

/**
 * Sends a read 3 times (round-robin moves each to another replica). A read that answers must answer
 * right (`right`), else the session fails; one that fails must fail with "not found".
 */
async function readThrice(s: SessionContext, rpc: string, listedBy: string, read: () => Promise<{ result: string; right: boolean }>): Promise<ReplicaRead[]> {
  const reads: ReplicaRead[] = [];
  for (let k = 0; k < 3; k++) {
    let answer: { result: string; right: boolean };
    try {
      answer = await read();
    } catch (e) {
      const result = e instanceof Error ? e.message : String(e);
      if (!/not found/i.test(result)) throw e;
      reads.push({ tag: lastTag(s, rpc), listedBy, ok: false, result });
      continue;
    }
    if (!answer.right) fail(`${rpc} answered wrong: ${answer.result}`);
    reads.push({ tag: lastTag(s, rpc), listedBy, ok: true, result: answer.result });
  }
  return reads;
}

const CASES: ExampleCase[] = [
  {
    name: 'elicitationFormExample',
    remaining: [],
    session: {
      ...base,
      capabilities: { elicitation: { form: {} } },
      setup: answerElicitation({ username: 'ada', email: 'ada@example.com', password: 'correct-horse', newsletter: true }),
      steps: async (client, _i, s) => {
        s.step('register_user (form elicitation answered on any replica)');
        const r = await client.callTool({ name: 'register_user', arguments: {} }, undefined, { timeout: 20_000 });
        if (!text(r).includes('Username: ada') || !text(r).includes('Newsletter: Yes')) fail(`unexpected result ${text(r)}`);
      },
    },
  },
  {
    name: 'jsonResponseStreamableHttp',
    remaining: [],
    session: {
      ...base,
      // It serves no DELETE (nor GET): its sessions end when they idle out.
      terminate: false,
      steps: async (client, _i, s) => {
        s.step('greet');
        const r = await client.callTool({ name: 'greet', arguments: { name: 'Grace' } });
        if (!text(r).includes('Hello, Grace!')) fail(`unexpected result ${text(r)}`);
        s.step('multi-greet');
        const m = await client.callTool({ name: 'multi-greet', arguments: { name: 'Grace' } }, undefined, { timeout: 20_000 });
        if (!text(m).includes('Good morning, Grace!')) fail(`unexpected result ${text(m)}`);
      },
    },
  },
  {
    name: 'simpleStreamableHttp',
    remaining: [],
    session: {
      ...base,
      capabilities: { elicitation: { form: {} } },
      setup: answerElicitation({ name: 'Ada Lovelace', email: 'ada@example.com' }),
      steps: async (client, _i, s) => {
        s.step('logging/setLevel info, then multi-greet on another replica logs info but not debug');
        await client.setLoggingLevel('info');
        const m = await client.callTool({ name: 'multi-greet', arguments: { name: 'Ada' } }, undefined, { timeout: 20_000 });
        if (!text(m).includes('Good morning, Ada!')) fail(`unexpected result ${text(m)}`);
        if (!(await pollUntil(() => s.logs.some((l) => l.includes('Sending second greeting to Ada')), 10_000))) fail(`logs: ${s.logs.join(' | ')}`);
        if (s.logs.some((l) => l.includes('Starting multi-greet'))) fail(`a debug message passed the level set with logging/setLevel: ${s.logs.join(' | ')}`);
        s.step('collect-user-info (elicitation answered on any replica)');
        const c = await client.callTool({ name: 'collect-user-info', arguments: { infoType: 'contact' } }, undefined, { timeout: 20_000 });
        if (!text(c).includes('Ada Lovelace')) fail(`unexpected result ${text(c)}`);
        s.step('delay as a task: created on one replica, tasks/get and tasks/result on others');
        let taskId: string | undefined;
        let result = '';
        for await (const msg of client.experimental.tasks.callToolStream({ name: 'delay', arguments: { duration: 300 } }, CallToolResultSchema, { task: { ttl: 60_000 } })) {
          if (msg.type === 'taskCreated') taskId = msg.task.taskId;
          else if (msg.type === 'result') result = text(msg.result);
          else if (msg.type === 'error') throw msg.error;
        }
        if (!taskId || !result.includes('Completed 300ms delay')) fail(`task ${taskId}: ${result}`);
        const got = await client.experimental.tasks.getTask(taskId!);
        if (got.status !== 'completed') fail(`tasks/get: ${JSON.stringify(got)}`);
        const listed = await client.experimental.tasks.listTasks();
        if (!listed.tasks.some((t) => t.taskId === taskId)) fail('tasks/list does not list the task');
      },
    },
  },
  {
    name: 'ssePollingExample',
    remaining: [],
    session: {
      ...base,
      steps: async (client, _i, s) => {
        s.step('long-task: the server closes the POST stream, the client resumes it with Last-Event-ID (on another replica)');
        const r = await client.request({ method: 'tools/call', params: { name: 'long-task', arguments: {} } }, CallToolResultSchema, { timeout: 30_000 });
        if (!text(r).includes('Long task completed successfully!')) fail(`unexpected result ${text(r)}`);
        if (!(await pollUntil(() => s.logs.some((l) => l.includes('Progress: 100%')), 10_000))) fail(`logs: ${s.logs.join(' | ')}`);
      },
    },
    acrossReplicas: (report, upstreamOf) => {
      // The resumed stream (a GET with the POST stream's Last-Event-ID) was served by another replica than the one running the tool.
      let elsewhere = 0;
      for (const o of report.outcomes) {
        const call = o.requests.find((r) => r.rpc === 'tools/call:long-task');
        const resumes = o.requests.filter((r) => r.method === 'GET' && r.lastEventId && /^t[0-9a-z]+_/.test(r.lastEventId));
        expect(resumes.length, `session ${o.sessionId} resumed its POST stream`).toBeGreaterThanOrEqual(1);
        if (call && resumes.some((r) => upstreamOf(r.tag) !== upstreamOf(call.tag))) elsewhere++;
      }
      expect(elsewhere).toBeGreaterThanOrEqual(3);
    },
  },
  {
    name: 'sseAndStreamableHttpCompatibleServer',
    remaining: ['no-sse-server-transport'],
    session: {
      ...base,
      steps: async (client, _i, s) => {
        s.step('start-notification-stream: notifications reach the GET stream wherever it is');
        const r = await client.callTool({ name: 'start-notification-stream', arguments: { interval: 50, count: 3 } }, undefined, { timeout: 20_000 });
        if (!text(r).includes('Started sending periodic notifications')) fail(`unexpected result ${text(r)}`);
        if (!(await pollUntil(() => s.logs.filter((l) => l.includes('Periodic notification')).length >= 3, 10_000))) fail(`logs: ${s.logs.join(' | ')}`);
      },
    },
  },
  {
    name: 'standaloneSseWithGetStreamableHttp',
    remaining: [],
    owned: ['no-per-session-timer'],
    session: {
      ...base,
      // It serves no DELETE.
      terminate: false,
      steps: async (client, i, s) => {
        s.step('resources/list and read');
        const list = await client.listResources();
        if (!list.resources.some((r) => r.name === 'example-resource')) fail(`resources: ${JSON.stringify(list.resources.map((r) => r.name))}`);
        const read = await client.readResource({ uri: 'https://mcp-example.com/dynamic/example-resource' });
        if (!JSON.stringify(read).includes('Initial content for example-resource')) fail(JSON.stringify(read));
        s.step('a resource the per-session timer added (every 5 s), then read 3 times: its content, wherever the read lands');
        timerReads.set(i, await readTimerResource(client, s));
      },
    },
    // Direct, one process holds the session's server: every read of what its timer added succeeds.
    direct: (report) => {
      for (const o of report.outcomes.keys()) expect(timerReads.get(o)?.every((r) => r.ok), JSON.stringify(timerReads.get(o))).toBe(true);
    },
    // Migrated with owner affinity: the session's timer runs on the replica that opened it, and every read,
    // wherever nginx sends it, is served there (forwarded), so it finds what the timer added.
    acrossReplicas: (report, upstreamOf) => expectReadEverywhere(report, timerReads, upstreamOf),
  },
  {
    name: 'simpleTaskInteractive',
    // Its module-level task store, queue and result handler are shared by every session of a process, and read
    // by client-supplied task ids without the session: owner affinity does not prove them per-session, so they
    // stay listed (exit 1), although each session's own tasks are served by the process that runs them.
    remaining: ['no-in-memory-task-store', 'no-global-connection-state'],
    owned: ['no-session-keyed-state'],
    // Its task store and queue add methods the SDK interfaces (and so the runtime's Redis store and queue) lack,
    // and keep promise resolve functions as in-process waiters: the list says so.
    remainingWhy: [
      /`taskStore` is a `TaskStoreWithNotifications`.*the program calls `waitForUpdate`, which the SDK's `TaskStore` interface .* does not have; and `waitForUpdate` keeps the resolve function of a promise in this process/,
      /`messageQueue` is a `TaskMessageQueueWithResolvers`.*the program calls (`waitForMessage`, `enqueueWithResolver`|`enqueueWithResolver`, `waitForMessage`), which the SDK's `TaskMessageQueue` interface .* does not have; and `waitForMessage` keeps the resolve function/,
    ],
    session: {
      ...base,
      capabilities: { elicitation: { form: {} } },
      setup: answerElicitation({ confirm: true }),
      steps: async (client, i, s) => {
        s.step('tools/list');
        const tools = await client.listTools();
        if (!tools.tools.some((t) => t.name === 'confirm_delete')) fail(JSON.stringify(tools.tools.map((t) => t.name)));
        s.step('confirm_delete as a task, then tasks/get 3 times');
        taskReads.set(i, await runOwnTask(client, s));
      },
    },
    // Direct, one process holds the task store: every tasks/get finds the task.
    direct: (report) => {
      for (const o of report.outcomes.keys()) expect(taskReads.get(o)?.every((r) => r.ok), JSON.stringify(taskReads.get(o))).toBe(true);
    },
    // Migrated with owner affinity: the task, its execution and its resolvers stay in the process that created
    // it, and every tasks/get and tasks/result, wherever nginx sends it, is served there.
    acrossReplicas: (report, upstreamOf) => expectReadEverywhere(report, taskReads, upstreamOf),
  },
  {
    name: 'elicitationUrlExample',
    // Not run here: it always starts a demo OAuth authorization server in its own process (on MCP_AUTH_PORT)
    // and verifies every bearer token by introspecting it. That server's provider keeps clients, codes and
    // tokens in Maps, which shared-map moves to the store (3 replicas of it behind nginx:
    // apply-oauth-provider.test.ts). The elicitation maps, their module-level sweep, element access on
    // `sessionsNeedingElicitation` and its SIGINT hook are per-session state owner affinity keeps on the
    // session's owner; the browser routes that complete an elicitation go to that owner (`ownerRoute`),
    // reached per request because they are registered above the registry's declaration.
    remaining: [],
    owned: ['no-session-keyed-state', 'no-per-session-timer'],
    ownerRoutes: [
      /app\.post\('\/confirm-payment', \(req, res, next\) => sessions\.ownerRoute\(\{ body: 'session' \}\)\(req, res, next\), express\.urlencoded\(\)/,
      /app\.post\('\/api-key-form', \(req, res, next\) => sessions\.ownerRoute\(\{ body: 'session' \}\)\(req, res, next\), express\.urlencoded\(\)/,
    ],
    rewritten: [/demoInMemoryOAuthProvider\.js:\d+ +\[shared-map\] `DemoInMemoryAuthProvider\.clientsStore\.clients`, `DemoInMemoryAuthProvider\.codes`, `DemoInMemoryAuthProvider\.tokens`/],
  },
];

it('covers every example of the installed SDK that opens sessions over Streamable HTTP (a transport built with a session id generator)', () => {
  const dir = path.join(SDK_ROOT, 'dist', 'esm', 'examples', 'server');
  const sessionful = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.js') && /StreamableHTTPServerTransport\(\{[^}]*sessionIdGenerator:\s*(?!\s|undefined)/s.test(fs.readFileSync(path.join(dir, f), 'utf8')))
    .map((f) => f.slice(0, -'.js'.length));
  expect(sessionful.length).toBeGreaterThanOrEqual(8);
  expect(CASES.map((c) => c.name).sort()).toEqual(sessionful.sort());
  expect(SDK_SESSION_EXAMPLES.map((e) => e.name).sort()).toEqual(sessionful.sort());
});

let redis: RedisInstance;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await stopAllProcesses();
  await redis?.stop();
});

describe.each(CASES)('SDK example $name', (c) => {
  let original: ServerCopy | undefined;
  let migrated: (ServerCopy & { applyOutput: string; applyExitCode: number }) | undefined;
  const started: Array<{ stop(): Promise<unknown> }> = [];

  beforeAll(async () => {
    original = copySdk(`original-${c.name}`);
    migrated = await migrateSdkExample(c.name);
  }, 120_000);

  afterAll(async () => {
    // This example's processes only: Redis serves the next one.
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    original?.remove();
    migrated?.remove();
  });

  async function behindNginx(replicas: Array<{ process: ManagedProcess; hostPort: string }>): Promise<NginxInstance> {
    const nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
    started.push(nginx, ...replicas.map((r) => r.process));
    return nginx;
  }

  it(`apply ${c.remaining.length ? `exits 1 and lists what remains (${c.remaining.join(', ')})` : 'exits 0: ready for any number of replicas'}`, () => {
    const out = migrated!.applyOutput;
    if (c.remaining.length === 0) {
      expect(migrated!.applyExitCode, out).toBe(0);
      expect(out).toMatch(/Ready for any number of replicas/);
    } else {
      expect(migrated!.applyExitCode, out).toBe(1);
      expect(out).toMatch(/Not ready for round-robin: \d+ finding/);
      for (const rule of c.remaining) expect(out).toMatch(new RegExp(`${c.name}\\.js:\\d+ +${rule} `));
      for (const why of c.remainingWhy ?? []) expect(out).toMatch(why);
    }
    for (const line of c.rewritten ?? []) expect(out).toMatch(line);
    if (c.rewritten) expect(out).not.toMatch(/no-global-connection-state/);
    if (c.owned?.length) {
      expect(out).toMatch(/Resolved by owner affinity: /);
      for (const rule of c.owned) expect(out).toMatch(new RegExp(`${c.name}\\.js:\\d+ +${rule} `));
      expect(fs.readFileSync(path.join(migrated!.dir, exampleEntry(c.name)), 'utf8')).toMatch(/new SessionEntryRegistry\(\(entry\) => entry\.transport, \{ affinity: 'owner' \}\)/);
    } else {
      expect(out).not.toMatch(/Resolved by owner affinity/);
    }
    for (const route of c.ownerRoutes ?? []) expect(fs.readFileSync(path.join(migrated!.dir, exampleEntry(c.name)), 'utf8')).toMatch(route);
    expect(out).toMatch(/\[transport-registry\]/);
  });

  it.runIf(!!c.session)('the original passes every session direct, and none behind round-robin nginx over 3 instances', async () => {
    const [direct] = await startSdkExample(original!.dir, c.name, 1);
    started.push(direct!.process);
    const alone = await runClientSessions(`http://${direct!.hostPort}/mcp`, { ...c.session!, sessions: SESSIONS, concurrency: 2 });
    expect(alone.errors).toEqual([]);
    c.direct?.(alone);
    const nginx = await behindNginx(await startSdkExample(original!.dir, c.name, REPLICAS));
    // One session at a time: each session's second request deterministically reaches another replica.
    const rr = await runClientSessions(nginx.url, { ...c.session!, sessions: SESSIONS, concurrency: 1 });
    expect(rr.ok, rr.errors.join('\n')).toBe(0);
  }, 300_000);

  it.runIf(!!c.session)(`the migrated copy, 3 replicas behind round-robin nginx with Redis, passes ${SESSIONS} of ${SESSIONS} sessions across replicas`, async () => {
    const replicas = await startSdkExample(migrated!.dir, c.name, REPLICAS, redis.url);
    const nginx = await behindNginx(replicas);
    const report = await runClientSessions(nginx.url, { ...c.session!, sessions: SESSIONS, concurrency: 2 });
    const logs = report.failed ? replicas.map((r) => `--- ${r.process.name}\n${r.process.output().slice(-3000)}`).join('\n') : '';
    expect(report.errors, logs).toEqual([]);
    // No affinity: every session was served by more than one replica.
    const perSession = new Map<string, Set<string>>();
    for (const e of nginx.accessLog()) if (e.sessionId) perSession.set(e.sessionId, (perSession.get(e.sessionId) ?? new Set()).add(e.upstream));
    for (const o of report.outcomes) expect(perSession.get(o.sessionId!)?.size ?? 0, `session ${o.sessionId}`).toBeGreaterThanOrEqual(2);
    const log = nginx.accessLog();
    c.acrossReplicas?.(report, (tag) => log.find((e) => new URLSearchParams(e.uri.split('?')[1] ?? '').get('t') === tag)?.upstream);
  }, 300_000);
});
