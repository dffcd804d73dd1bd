/**
 * Replica loss (issue 7): 3 `mcp-migrate proxy` replicas (each with its own server-everything
 * Streamable HTTP sidecar) behind round-robin nginx with passive health checks, N sessions of
 * R requests each; one replica is `kill -9`ed mid-run.
 *
 *   npx tsx test/soak/replica-kill.ts [--sessions 200] [--requests 10] [--concurrency 50] [--kill-at 0.3]
 *
 * Each session: initialize, notifications/initialized, R × tools/call echo (the echoed text is
 * checked), DELETE. A failed request is retried (up to 3 times, 100 ms apart) on the same session.
 * Claims checked (exit code 1 otherwise):
 *   - no session is lost: no request ever gets 404, and every session completes all R requests;
 *   - only requests in flight at the kill fail (started before it, answered after it);
 *   - every retry of a failed request succeeds.
 */
import { parseArgs } from 'node:util';
import {
  getFreePort,
  startEverythingHttp,
  startNginx,
  startProxyReplica,
  startRedis,
  stopAllProcesses,
  type ProxyReplica,
} from '../helpers/index.js';
import { INIT_PARAMS, KeepAliveClient, mcpHeaders, messagesIn, sleep, type RawResponse } from '../reliability/support.js';

const { values: flags } = parseArgs({
  options: {
    sessions: { type: 'string', default: '200' },
    requests: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '50' },
    'kill-at': { type: 'string', default: '0.3' },
  },
});
const SESSIONS = Number(flags.sessions);
const REQUESTS = Number(flags.requests);
const CONCURRENCY = Number(flags.concurrency);
const KILL_AT = Number(flags['kill-at']);
const RETRIES = 3;

interface Failure {
  session: number;
  step: string;
  status: number | string;
  startedAt: number;
  endedAt: number;
  retriedOk: boolean;
}

let killAt = Number.POSITIVE_INFINITY;
/** When the parent saw the victim exit (SIGKILL is asynchronous: until then it may still accept). */
let deadAt = Number.POSITIVE_INFINITY;
const failures: Failure[] = [];
const latencies: number[] = [];
let done = 0;
let notFound = 0;
let sessionsCompleted = 0;
let onProgress: () => void = () => undefined;

async function call(client: KeepAliveClient, session: number, step: string, fn: () => Promise<RawResponse>, ok: (r: RawResponse) => boolean): Promise<RawResponse | undefined> {
  let firstFailure: Failure | undefined;
  for (let attempt = 0; attempt <= RETRIES; attempt += 1) {
    const t0 = performance.now();
    let res: RawResponse | undefined;
    let status: number | string;
    try {
      res = await fn();
      status = res.status;
    } catch (err) {
      status = (err as NodeJS.ErrnoException).code ?? String(err);
    }
    const t1 = performance.now();
    if (res && res.status === 404) notFound += 1;
    if (res && ok(res)) {
      latencies.push(t1 - t0);
      if (firstFailure) firstFailure.retriedOk = true;
      done += 1;
      onProgress();
      return res;
    }
    if (!firstFailure) {
      firstFailure = { session, step, status, startedAt: t0, endedAt: t1, retriedOk: false };
      failures.push(firstFailure);
    }
    await sleep(100);
  }
  return undefined;
}

async function runSession(client: KeepAliveClient, i: number): Promise<void> {
  const principal = { authorization: `Bearer kill-test-${i}` };
  const { 'mcp-protocol-version': _v, ...initHeaders } = mcpHeaders(undefined, principal);
  const init = await call(
    client,
    i,
    'initialize',
    () => client.request({ headers: initHeaders, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT_PARAMS }), timeoutMs: 30_000 }),
    (r) => r.status === 200 && typeof r.headers['mcp-session-id'] === 'string',
  );
  if (!init) return;
  const sid = init.headers['mcp-session-id'] as string;
  const headers = mcpHeaders(sid, principal);
  if (!(await call(client, i, 'initialized', () => client.request({ headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) }), (r) => r.status === 202))) return;
  for (let j = 0; j < REQUESTS; j += 1) {
    const text = `s${i}-r${j}`;
    const ok = await call(
      client,
      i,
      `tools/call #${j}`,
      () => client.request({ headers, body: JSON.stringify({ jsonrpc: '2.0', id: j + 1, method: 'tools/call', params: { name: 'echo', arguments: { message: text } } }), timeoutMs: 30_000 }),
      (r) => {
        if (r.status !== 200) return false;
        const m = messagesIn(r).find((x) => (x as { id?: unknown }).id === j + 1) as { result?: { content?: { text?: string }[] } } | undefined;
        return m?.result?.content?.[0]?.text === `Echo: ${text}`;
      },
    );
    if (!ok) return;
  }
  if (!(await call(client, i, 'DELETE', () => client.request({ method: 'DELETE', headers }), (r) => r.status === 200))) return;
  sessionsCompleted += 1;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};

async function main(): Promise<number> {
  const redis = await startRedis();
  try {
    const replicas: ProxyReplica[] = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const sidecar = await startEverythingHttp({ name: `kill-sidecar-${i}` });
        return startProxyReplica({ store: redis.url, upstream: sidecar.url, name: `kill-proxy-${i}`, port: await getFreePort(), extraArgs: ['--affinity', 'replay'] });
      }),
    );
    const nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp', failover: true });
    const client = new KeepAliveClient(nginx.url, CONCURRENCY);
    const total = SESSIONS * (REQUESTS + 3);
    const victim = replicas[1]!;
    let killed = false;
    onProgress = () => {
      if (!killed && done >= total * KILL_AT) {
        killed = true;
        killAt = performance.now();
        process.kill(victim.process.pid, 'SIGKILL');
        void victim.process.exited.then(() => (deadAt = performance.now()));
      }
    };

    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < SESSIONS) await runSession(client, next++);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    client.close();

    // In flight at the kill: started before the process was seen dead, answered after the signal.
    const atKill = (f: Failure): boolean => f.startedAt <= deadAt && f.endedAt >= killAt;
    const inFlight = failures.filter(atKill);
    const other = failures.filter((f) => !atKill(f));
    const retriedOk = failures.filter((f) => f.retriedOk).length;
    const log = nginx.accessLog();
    const perReplica = replicas.map((r) => log.filter((e) => e.upstream === r.hostPort).length);
    const rows: [string, string][] = [
      ['replicas / upstream', '3 / server-everything streamableHttp sidecar each'],
      ['sessions × requests', `${SESSIONS} × ${REQUESTS} tools/call (+ initialize, initialized, DELETE)`],
      ['client concurrency', String(CONCURRENCY)],
      ['kill -9', `replica 2 (${victim.hostPort}) after ${Math.round(KILL_AT * 100)} % of requests, ${((killAt - t0) / 1000).toFixed(2)} s into the run; exit seen ${(deadAt - killAt).toFixed(1)} ms after the signal`],
      ['requests completed', `${done} / ${total}`],
      ['sessions completed (all requests + DELETE)', `${sessionsCompleted} / ${SESSIONS}`],
      ['requests answered 404 (session lost)', String(notFound)],
      ['failed requests, in flight at the kill', `${inFlight.length} (${inFlight.filter((f) => f.startedAt > killAt).length} of them sent between the signal and the exit)`],
      ['failed requests, other', String(other.length)],
      ['failed requests whose retry succeeded', `${retriedOk} / ${failures.length}`],
      ['failure statuses', [...new Set(failures.map((f) => String(f.status)))].join(', ') || '—'],
      ['requests per replica (nginx log)', perReplica.join(' / ')],
      ['throughput', `${Math.round(done / seconds)} requests/s over ${seconds.toFixed(1)} s`],
      ['latency p50 / p99 / max', `${pct(latencies, 50).toFixed(1)} / ${pct(latencies, 99).toFixed(1)} / ${pct(latencies, 100).toFixed(1)} ms`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`\n| ${'what'.padEnd(w)} | result |\n|${'-'.repeat(w + 2)}|--------|`);
    for (const [k, v] of rows) console.log(`| ${k.padEnd(w)} | ${v} |`);
    console.log(
      '\nfailed requests (start and end relative to the kill signal):\n' +
        failures.slice(0, 30).map((f) => `  ${atKill(f) ? 'in flight' : 'OTHER    '} session ${f.session} ${f.step}: ${f.status}, ${((f.startedAt - killAt) / 1000).toFixed(3)} s → ${((f.endedAt - killAt) / 1000).toFixed(3)} s, retry ${f.retriedOk ? 'ok' : 'FAILED'}`).join('\n'),
    );
    const ok = killed && notFound === 0 && sessionsCompleted === SESSIONS && other.length === 0 && retriedOk === failures.length;
    console.log(`\nresult: ${ok ? 'PASS' : 'FAIL'}`);
    await nginx.stop();
    return ok ? 0 : 1;
  } finally {
    await stopAllProcesses();
    await redis.stop();
  }
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error(err);
    await stopAllProcesses();
    process.exit(1);
  },
);
