/**
 * Operability of `mcp-migrate proxy`: `/readyz`, Prometheus `/metrics`, graceful shutdown (in process
 * and through the built CLI on SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryMessageBus, MemorySessionStore } from '@mcp-migrate/runtime';
import { assertCliBuilt, CLI_ENTRY, EVERYTHING_STDIO_COMMAND, getFreePort, REPO_ROOT } from '../helpers/index.js';
import { closeAll, connectClient, isAlive, rawInitialize, rawPost, responsesIn, startTestProxy, pollUntil } from '../helpers/in-process-proxy.js';

afterEach(() => closeAll());

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const base = (mcpUrl: string) => mcpUrl.replace(/\/mcp$/, '');

/** Parses the Prometheus text exposition format into `name{labels}` → value; throws on a malformed line. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a metric line: ${line}`);
    // Go's ParseFloat, as Prometheus uses it: NaN and Inf in any case (prom-client writes `Nan`).
    const raw = m[3]!.toLowerCase();
    const value = raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : Number(raw === 'nan' ? 'NaN' : raw);
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`bad value: ${line}`);
    out.set(`${m[1]}${m[2] ?? ''}`, value);
  }
  return out;
}

async function scrape(mcpUrl: string): Promise<Map<string, number>> {
  const res = await fetch(`${base(mcpUrl)}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

const slowCall = (id: number, duration: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'trigger-long-running-operation', arguments: { duration, steps: 2 } },
});

/** Opens a standalone GET SSE stream and collects its text until the server ends it. */
async function openGetStream(url: string, sid: string): Promise<{ status: number; text: Promise<string> }> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } });
  const text = (async () => {
    let all = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) all += decoder.decode(chunk, { stream: true });
    } catch {
      // a reset after the last bytes is fine: what arrived is checked
    }
    return all;
  })();
  return { status: res.status, text };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('/metrics', () => {
  it('serves parseable Prometheus text whose counters move with a session, per proxy', async () => {
    const store = new MemorySessionStore();
    const bus = new MemoryMessageBus();
    const a = await startTestProxy({ affinity: 'replay', store, bus });
    const b = await startTestProxy({ affinity: 'replay', store, bus });
    const before = await scrape(a.url);
    expect(before.get('mcp_migrate_sessions_created_total')).toBe(0);
    expect(before.get('mcp_migrate_sessions_open')).toBe(0);
    expect(before.has('process_cpu_user_seconds_total')).toBe(true);
    expect(before.has('nodejs_eventloop_lag_seconds')).toBe(true);

    const { client } = await connectClient(a.url);
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
    const after = await scrape(a.url);
    expect(after.get('mcp_migrate_sessions_created_total')).toBe(1);
    expect(after.get('mcp_migrate_sessions_open')).toBe(1);
    // initialize, notifications/initialized, 3 tool calls (and whatever else the SDK sends)
    expect(after.get('mcp_migrate_requests_total{method="POST",status="2xx"}')).toBeGreaterThanOrEqual(5);
    expect(after.get('mcp_migrate_requests_total{method="GET",status="2xx"}')).toBeGreaterThanOrEqual(1); // the first scrape
    expect(after.get('mcp_migrate_store_latency_seconds_count{op="create"}')).toBe(1);
    expect(after.get('mcp_migrate_store_latency_seconds_count{op="touch"}')).toBeGreaterThanOrEqual(3);
    expect(after.get('mcp_migrate_handshake_replays_total')).toBe(0);
    await client.close();

    // The same session through the other proxy: a handshake replay there, not here.
    const sid = await rawInitialize(a.url);
    const r = await rawPost(b.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    expect(r.status).toBe(200);
    const onB = await scrape(b.url);
    expect(onB.get('mcp_migrate_handshake_replays_total')).toBe(1);
    expect(onB.get('mcp_migrate_sessions_created_total')).toBe(0);
    expect(onB.get('mcp_migrate_sessions_open')).toBe(1);
    expect((await scrape(a.url)).get('mcp_migrate_sessions_created_total')).toBe(2);
  });
});

describe('/readyz and graceful shutdown (in process)', () => {
  it('is 200, then 503 while draining; in-flight requests finish, GET streams get retry:, new connections are refused', async () => {
    // Replay mode: a stdio session's owner would serve it until the drain time ends (owner.test.ts).
    const tp = await startTestProxy({ affinity: 'replay' });
    const root = base(tp.url);
    const ok = await fetch(`${root}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ready', store: 'ok', shuttingDown: false });

    const sid = await rawInitialize(tp.url);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const stream = await openGetStream(tp.url, sid);
    expect(stream.status).toBe(200);
    const slow = rawPost(tp.url, slowCall(7, 1.5), headers);
    await new Promise((r) => setTimeout(r, 300));

    const port = Number(new URL(tp.url).port);
    const done = tp.proxy.shutdown({ timeoutMs: 10_000, unreadyGraceMs: 400 });
    expect(tp.proxy.accepting).toBe(false);
    const draining = await fetch(`${root}/readyz`);
    expect(draining.status).toBe(503);
    expect(await draining.json()).toMatchObject({ status: 'unavailable', shuttingDown: true });
    expect(await pollUntil(() => refused(port), 3_000)).toBe(true);
    expect(await stream.text).toMatch(/(^|\n)retry: 1000\n\n$/);

    const r = await slow;
    expect(r.status).toBe(200);
    const [reply] = responsesIn(r.json()) as { id: number; result?: { content: { text: string }[] } }[];
    expect(reply!.id).toBe(7);
    expect(reply!.result?.content[0]?.text).toMatch(/completed/i);
    expect(await done).toBe(0);
  });

  it('/readyz is 503 when the store is down', async () => {
    const store = new MemorySessionStore();
    store.ping = () => Promise.reject(new Error('down'));
    const tp = await startTestProxy({ store });
    const res = await fetch(`${base(tp.url)}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'unavailable', store: 'unavailable', shuttingDown: false });
  });
});

// ---- The built CLI (npm test builds first) ----

function runCli(args: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  assertCliBuilt();
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MCP_MIGRATE_')));
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, env: clean, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stderr: () => err, exited };
}

async function startCli(extra: string[]): Promise<{ run: ReturnType<typeof runCli>; url: string; port: number }> {
  const port = await getFreePort();
  const run = runCli(['proxy', '--listen', `127.0.0.1:${port}`, '--log-level', 'debug', ...extra, '--', ...EVERYTHING_STDIO_COMMAND]);
  expect(await pollUntil(() => run.stderr().includes('"msg":"listening"'), 20_000)).toBe(true);
  return { run, url: `http://127.0.0.1:${port}/mcp`, port };
}

function childPids(stderr: string): number[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes('started MCP server process'))
    .map((l) => (JSON.parse(l) as { pid: number }).pid);
}

describe('SIGTERM (built CLI)', () => {
  it('drains: the in-flight request completes, new connections are refused, the GET stream gets retry:, exit 0', async () => {
    const { run, url, port } = await startCli(['--affinity', 'replay', '--shutdown-timeout', '8']);
    const sid = await rawInitialize(url);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const stream = await openGetStream(url, sid);
    expect(stream.status).toBe(200);
    const slow = rawPost(url, slowCall(9, 2), headers);
    await new Promise((r) => setTimeout(r, 400));
    const pids = childPids(run.stderr());
    expect(pids.length).toBeGreaterThan(0);

    const t0 = Date.now();
    run.child.kill('SIGTERM');
    expect(await pollUntil(() => refused(port), 1_000)).toBe(true);
    expect(await stream.text).toMatch(/retry: 1000\n\n$/);
    const r = await slow;
    expect(r.status).toBe(200);
    const [reply] = responsesIn(r.json()) as { id: number; result?: { content: { text: string }[] } }[];
    expect(reply!.id).toBe(9);
    expect(reply!.result?.content[0]?.text).toMatch(/completed/i);
    expect(await run.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8_000);
    for (const pid of pids) expect(await pollUntil(() => !isAlive(pid), 5_000)).toBe(true);
  });

  it('ends requests still in flight after --shutdown-timeout and exits 0', async () => {
    const { run, url } = await startCli(['--affinity', 'replay', '--shutdown-timeout', '1']);
    const sid = await rawInitialize(url);
    const slow = rawPost(url, slowCall(3, 30), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5_000);
    expect(run.stderr()).toContain('shutdown timeout');
    await slow;
  });
});
