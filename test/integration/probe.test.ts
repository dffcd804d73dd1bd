/**
 * Issue 15: `mcp-migrate probe <url>` against real deployments on loopback, run as the built CLI.
 *   (a) 3 bare server-everything replicas behind round-robin nginx → exit 1, sessions lost on other
 *       replicas (and the 400-instead-of-404 of unknown ids);
 *   (b) 3 `mcp-migrate proxy` replicas (Redis) behind the same kind of nginx → exit 0, also for the
 *       legacy HTTP+SSE endpoint, with the requests spread over the three replicas;
 *   (c) proxy replicas in front of a server whose tools write per-process state, `--write`/`--read`:
 *       replay mode (`--affinity replay`) → the lost state is reported; owner mode → exit 0;
 *   (d) the same proxy endpoint serves 2026-07-28 requests: era `dual`, and the 2026-07-28 checks pass.
 * Real redis-server, nginx, proxies and MCP servers; 10 sessions per run.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../cli/helpers.js';
import {
  getFreePort,
  PROCESS_STATE_TOOLS,
  startEverythingHttp,
  startNginx,
  startProcessStateServer,
  startProxyCluster,
  startProxyReplica,
  startRedis,
  stopAllProcesses,
  type NginxInstance,
  type RedisInstance,
} from '../helpers/index.js';
import type { ProbeReport } from '../../src/probe/types.js';

const REPLICAS = 3;
const cwd = process.cwd();

interface ProbeJson extends Omit<ProbeReport, 'options'> {
  checks: { transport: string; sessions: number; checks: { id: string; pass: number; fail: number; skip: number; warn: number }[] }[];
}

async function probe(args: string[]): Promise<{ run: CliRun; report: ProbeJson }> {
  const run = await runCli(['probe', ...args, '--format', 'json', '--timeout', '100'], { cwd });
  let report: ProbeJson;
  try {
    report = JSON.parse(run.stdout) as ProbeJson;
  } catch {
    throw new Error(`probe printed no JSON (exit ${run.code}):\n${run.stdout.slice(0, 2000)}\n${run.stderr.slice(0, 2000)}`);
  }
  return { run, report };
}

const causeIds = (r: ProbeJson): string[] => r.verdict.causes.map((c) => c.id);
const failures = (r: ProbeJson): string => JSON.stringify(r.verdict.causes.map((c) => ({ id: c.id, evidence: c.evidence })), null, 2);
/** Passed checks with this id, over the sessions of one transport. */
const passed = (r: ProbeJson, transport: string, id: string): number => r.checks.find((t) => t.transport === transport)?.checks.find((c) => c.id === id)?.pass ?? 0;

afterAll(async () => {
  await stopAllProcesses();
});

describe('(a) 3 bare server-everything replicas behind round-robin nginx', () => {
  let nginx: NginxInstance;
  beforeAll(async () => {
    const replicas = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => startEverythingHttp({ name: `probe-bare-${i}` })));
    nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
  });
  afterAll(async () => nginx?.stop());

  it('exits 1 and names the cause: sessions are lost on other replicas', async () => {
    const { run, report } = await probe([nginx.url, '--sessions', '10']);
    expect(run.code, run.stderr).toBe(1);
    expect(report.verdict.survives).toBe(false);
    expect(report.era.era).toBe('legacy');
    expect(causeIds(report)).toContain('needs-sticky-routing');
    const sticky = report.verdict.causes.find((c) => c.id === 'needs-sticky-routing')!;
    // Most sessions die at their second or third request (round-robin moves each request on).
    expect(sticky.sessions, failures(report)).toBeGreaterThanOrEqual(7);
    expect(sticky.evidence.join('\n')).toMatch(/No valid session ID provided/);
    expect(sticky.fix.join('\n')).toMatch(/mcp-migrate proxy/);
    // server-everything answers 400 for ids it does not know, where the spec says 404.
    expect(causeIds(report)).toContain('unknown-session-400');
    // No replica header: the spread is reported as unnamed, not guessed.
    expect(report.spread.replicas).toEqual({});
  });
});

describe('(b, d) 3 mcp-migrate proxy replicas (Redis) behind round-robin nginx', () => {
  let redis: RedisInstance;
  let nginx: NginxInstance;
  let mcpUrl: string;
  beforeAll(async () => {
    redis = await startRedis();
    // Every path, so the legacy HTTP+SSE endpoints (/sse, /message) are balanced too.
    ({ nginx, url: mcpUrl } = await startProxyCluster({ store: redis.url, upstream: 'http', name: 'probe-proxy', replicas: REPLICAS, path: '/' }));
  });
  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
    await redis?.stop();
  });

  it('exits 0: every check passes, for Streamable HTTP, legacy HTTP+SSE and 2026-07-28, spread over the 3 replicas', async () => {
    const { run, report } = await probe([mcpUrl, '--sessions', '10', '--legacy-sse']);
    expect(run.code, failures(report)).toBe(0);
    expect(report.verdict.survives).toBe(true);
    expect(report.verdict.causes).toEqual([]);
    expect(report.sessions.every((s) => s.checks.every((c) => c.status !== 'fail'))).toBe(true);
    for (const t of ['streamable-http', 'legacy-sse', 'modern']) expect(report.sessions.filter((s) => s.transport === t)).toHaveLength(10);
    // The checks that matter ran and passed in every session, not skipped.
    for (const id of ['initialized', 'tools/list', 'get-stream', 'notification', 'delete', 'after-delete', 'forged-session']) {
      expect(passed(report, 'streamable-http', id), id).toBe(10);
    }
    // server-everything asks for roots 350 ms after each handshake; the probe keeps each session open
    // for it (--ask-wait), so every session answered, and every answer reached the replica that asked.
    expect(passed(report, 'streamable-http', 'answer')).toBe(10);
    for (const id of ['initialize', 'tools/list', 'stream', 'after-close', 'forged-session']) expect(passed(report, 'legacy-sse', id), id).toBe(10);
    // The proxy names its replica: all three answered, and sessions crossed replicas.
    expect(Object.keys(report.spread.replicas)).toHaveLength(REPLICAS);
    expect(report.spread.sessionsCrossing).toBeGreaterThanOrEqual(20);
  });

  it('(d) reports the era as dual and passes the 2026-07-28 checks (discover, exact errors)', async () => {
    const { run, report } = await probe([mcpUrl, '--sessions', '4', '--era', 'modern']);
    expect(run.code, failures(report)).toBe(0);
    expect(report.era.era).toBe('dual');
    expect(report.era.modern.supportedVersions).toContain('2026-07-28');
    expect(report.sessions.map((s) => s.transport)).toEqual(['modern', 'modern', 'modern', 'modern']);
    for (const id of ['discover', 'connect', 'tools/list', 'missing-meta', 'header-mismatch', 'unsupported-version', 'unknown-method', 'get-405']) {
      expect(passed(report, 'modern', id), id).toBe(4);
    }
  });

  it('names a balancer body limit: a 2 MB ping gets 413 from nginx (client_max_body_size 1m)', async () => {
    const { run, report } = await probe([mcpUrl, '--sessions', '2', '--era', 'legacy', '--body-bytes', '2000000']);
    expect(run.code).toBe(1);
    expect(causeIds(report)).toEqual(['balancer-limits']);
    expect(report.verdict.causes[0]!.evidence.join('\n')).toMatch(/large-body: 413/);
  });
});

describe('(c) proxy replicas in front of a server with per-process state (cd/pwd)', () => {
  let redis: RedisInstance;
  const nginx: Record<'replay' | 'owner', NginxInstance | undefined> = { replay: undefined, owner: undefined };
  const write = `${PROCESS_STATE_TOOLS.write} {"path": "/srv/{{session}}"}`;
  const read = PROCESS_STATE_TOOLS.read;
  // This server sends nothing on the GET stream: a short wait keeps ten sessions in a row quick.
  const common = ['--sessions', '10', '--concurrency', '1', '--era', 'legacy', '--notify-wait', '0.5', '--write', write, '--read', read];
  beforeAll(async () => {
    redis = await startRedis();
    // One server process per replica, as in a real deployment: each has its own working directory.
    const sidecars = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => startProcessStateServer({ name: `probe-state-${i}` })));
    for (const affinity of ['replay', 'owner'] as const) {
      const proxies = await Promise.all(
        sidecars.map((s, i) =>
          startProxyReplica({ store: redis.url, upstream: s.url, name: `probe-${affinity}-${i}`, extraArgs: ['--affinity', affinity, '--store-prefix', `${affinity}:`] }),
        ),
      );
      nginx[affinity] = await startNginx({ upstreams: proxies.map((p) => p.hostPort), path: '/mcp' });
    }
  });
  afterAll(async () => {
    await nginx.replay?.stop();
    await nginx.owner?.stop();
    await stopAllProcesses();
    await redis?.stop();
  });

  it('replay mode (--affinity replay): exit 1, the state a tool wrote is lost on other replicas', async () => {
    const { run, report } = await probe([nginx.replay!.url, ...common]);
    expect(run.code).toBe(1);
    expect(causeIds(report), failures(report)).toEqual(['state-lost-across-replicas']);
    const cause = report.verdict.causes[0]!;
    expect(cause.sessions).toBeGreaterThanOrEqual(8);
    expect(cause.fix[0]).toMatch(/owner routing, its default/);
    // Each lost read names the replica it was served on, and it is not the one that served the write.
    const lost = report.sessions.flatMap((s) => s.checks.filter((c) => c.symptom === 'state-mismatch'));
    expect(lost.length).toBeGreaterThan(0);
    for (const c of lost) expect(c.replica).not.toBe(c.state?.writeReplica);
    // The handshake itself survived: only the reads failed.
    expect(passed(report, 'streamable-http', 'tools/list')).toBe(10);
    expect(passed(report, 'streamable-http', 'write')).toBe(10);
  });

  it('owner mode (--affinity owner, the default): exit 0, every read returns the session\'s own value', async () => {
    const { run, report } = await probe([nginx.owner!.url, ...common]);
    expect(run.code, failures(report)).toBe(0);
    expect(passed(report, 'streamable-http', 'read')).toBe(30);
  });
});

describe('the command line', () => {
  it('exits 1 with the cause "unreachable" for a well-formed URL nobody listens on', async () => {
    const port = await getFreePort();
    const { run, report } = await probe([`http://127.0.0.1:${port}/mcp`]);
    expect(run.code).toBe(1);
    expect(causeIds(report)).toEqual(['unreachable']);
    expect(report.sessions).toEqual([]);
  });

  it('--help documents every option, the exit codes, and the top-level help lists probe', async () => {
    const help = (await runCli(['probe', '--help'], { cwd })).stdout;
    for (const option of ['--sessions', '--concurrency', '--header', '--timeout', '--request-timeout', '--era', '--legacy-sse', '--sse-url', '--write', '--read', '--reads', '--expect', '--notify', '--notify-wait', '--body-bytes', '--hold', '--replica-header', '--format', '--output', '--color']) {
      expect(help).toContain(option);
    }
    expect(help).toContain('[choices: "stylish", "json", "markdown"] [default: "stylish"]');
    expect(help.replace(/\s+/g, " ")).toMatch(/Exit codes: 0 .*; 1 .*; 2 usage or internal error/);
    expect((await runCli(['--help'], { cwd })).stdout).toMatch(/mcp-migrate probe <url>\s+Check a deployed MCP endpoint/);
  });

  it('--timeout bounds the run: an endpoint that accepts connections and never answers ends in exit 1, incomplete', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const run = await runCli(['probe', `http://127.0.0.1:${port}/mcp`, '--format', 'json', '--timeout', '3', '--request-timeout', '100'], { cwd });
      const report = JSON.parse(run.stdout) as ProbeJson;
      expect(run.code).toBe(1);
      expect(causeIds(report)).toEqual(['incomplete']);
      expect(report.verdict.survives).toBe(false);
      // Stopped by the 3 s run bound, not by the 100 s request timeout.
      expect(report.durationMs).toBeLessThan(30_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('exits 2 for usage errors, with a message that shows the expected form', async () => {
    const cases: [string[], RegExp][] = [
      [['probe', 'not a url'], /URL must be absolute/],
      [['probe', 'ftp://example.com/mcp'], /http: or https:/],
      [['probe', 'http://127.0.0.1:1/mcp', '--write', 'cd {"path": '], /not a JSON object/],
      [['probe', 'http://127.0.0.1:1/mcp', '--header', 'no-colon'], /--header must be 'Name: value'/],
      [['probe', 'http://127.0.0.1:1/mcp', '--sessions', '0'], /--sessions must be a whole number/],
      [['probe', 'http://127.0.0.1:1/mcp', '--expect', 'x'], /--expect needs --read/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args, { cwd })));
    for (const [i, [args, message]] of cases.entries()) {
      const run = runs[i]!;
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
    }
  });
});
