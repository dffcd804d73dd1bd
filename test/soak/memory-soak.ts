/**
 * Bounded memory and soak (issue 7). Two modes:
 *
 *   npx tsx test/soak/memory-soak.ts --mode expiry [--sessions 10000] [--ttl 30] [--idle 10] [--store single|cluster]
 *     One replica (HTTP upstream: a server-everything sidecar), N sessions opened (initialize +
 *     initialized) and left idle. They expire by TTL in Redis and are reaped from the replica's cache
 *     (`--idle-timeout`); the replica's RSS is sampled before, at the peak, and after, until it settles.
 *
 *   npx tsx test/soak/memory-soak.ts --mode soak [--duration 120] [--concurrency 8] [--replicas 3] [--store single|cluster]
 *     N replicas (default 3; stdio upstream: one server-everything child per session per replica)
 *     behind round-robin nginx on one real Redis (`--store cluster`: a 3-master Redis Cluster), a bounded mixed load for --duration seconds: short
 *     sessions doing tools/list, tools/call echo and get-sum, resources/read, prompts/get,
 *     logging/setLevel, ping and a briefly opened GET stream; 90 % end with DELETE, 10 % are abandoned
 *     (they expire: --session-ttl 20, --idle-timeout 10). Every 10 s: RSS, V8 heap used (the replica's
 *     own `nodejs_heap_size_used_bytes` on /metrics), open fds (/proc/<pid>/fd) and child processes of
 *     each replica. After the load: everything must drain back (children 0, fds near the start).
 *     The 10-minute run is `--duration 600`.
 *
 * Prints a table; exit code 1 if a bound is broken (see `verdict` below).
 */
import { parseArgs } from 'node:util';
import {
  EVERYTHING_STDIO_COMMAND,
  startEverythingHttp,
  startNginx,
  startProxyReplica,
  startRedisStore,
  stopAllProcesses,
  type ProxyReplica,
} from '../helpers/index.js';
import {
  childPids,
  fdCount,
  health,
  INIT_PARAMS,
  KeepAliveClient,
  mapPool,
  mcpHeaders,
  pollUntil,
  rssBytes,
  SESSION_KEY_PATTERN,
  sleep,
} from '../reliability/support.js';

const { values: flags } = parseArgs({
  options: {
    mode: { type: 'string', default: 'expiry' },
    sessions: { type: 'string', default: '10000' },
    ttl: { type: 'string', default: '30' },
    idle: { type: 'string', default: '10' },
    duration: { type: 'string', default: '120' },
    concurrency: { type: 'string', default: '8' },
    replicas: { type: 'string', default: '3' },
    store: { type: 'string', default: 'single' },
  },
});
if (flags.store !== 'single' && flags.store !== 'cluster') throw new Error('--store is single (one redis-server) or cluster (3 masters)');
const STORE = flags.store;
/** --session-ttl of the soak's replicas, seconds: abandoned sessions must expire within the run. */
const SOAK_TTL_S = 20;
const MB = (b: number | undefined): string => (b === undefined ? '—' : `${(b / 1024 / 1024).toFixed(1)} MB`);

async function openRaw(client: KeepAliveClient, principal: string): Promise<string> {
  const { 'mcp-protocol-version': _v, ...h } = mcpHeaders(undefined, { authorization: principal });
  const init = await client.request({ headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT_PARAMS }), timeoutMs: 60_000 });
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sid !== 'string') throw new Error(`initialize: HTTP ${init.status} ${init.body.slice(0, 200)}`);
  const n = await client.request({ headers: mcpHeaders(sid, { authorization: principal }), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), timeoutMs: 60_000 });
  if (n.status !== 202) throw new Error(`initialized: HTTP ${n.status}`);
  return sid;
}

async function expiry(): Promise<boolean> {
  const N = Number(flags.sessions);
  const TTL = Number(flags.ttl);
  const IDLE = Number(flags.idle);
  const redis = await startRedisStore(STORE);
  try {
    const sidecar = await startEverythingHttp({ name: 'mem-sidecar' });
    const replica = await startProxyReplica({ store: redis.url, upstream: sidecar.url, name: 'mem-proxy', extraArgs: ['--affinity', 'replay', '--session-ttl', String(TTL), '--idle-timeout', String(IDLE)] });
    const pid = replica.process.pid;
    const client = new KeepAliveClient(replica.url, 32);
    // Warm-up: code paths JIT-compiled and pools allocated before the baseline.
    await mapPool(Array.from({ length: 200 }, (_, i) => i), 16, (i) => openRaw(client, `Bearer warm-${i}`));
    await pollUntil(async () => (await health(client)).body?.sessions === 0 && (await redis.keys(SESSION_KEY_PATTERN)).length === 0, (TTL + IDLE) * 1000 + 60_000, 1000);
    await sleep(5_000);
    const baseline = rssBytes(pid)!;
    const t0 = performance.now();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid) ?? 0)), 250);
    await mapPool(Array.from({ length: N }, (_, i) => i), 32, (i) => openRaw(client, `Bearer idle-${i}`));
    const openSeconds = (performance.now() - t0) / 1000;
    const keysAtPeak = (await redis.keys(SESSION_KEY_PATTERN)).length;
    const cachedAtPeak = (await health(client)).body?.sessions;
    clearInterval(sampler);
    peak = Math.max(peak, rssBytes(pid) ?? 0);
    const tIdle = performance.now();
    const drained = await pollUntil(
      async () => (await redis.keys(SESSION_KEY_PATTERN)).length === 0 && (await health(client)).body?.sessions === 0 && (await health(client)).body?.upstreamSessions === 0,
      (TTL + IDLE) * 1000 + 120_000,
      1000,
    );
    const drainSeconds = (performance.now() - tIdle) / 1000;
    const settled: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      await sleep(5_000);
      settled.push(rssBytes(pid)!);
    }
    const final = settled[settled.length - 1]!;
    client.close();
    const retained = final - baseline;
    const rows: [string, string][] = [
      ['sessions opened (idle afterwards)', `${N} in ${openSeconds.toFixed(1)} s (${Math.round(N / openSeconds)}/s); ${keysAtPeak} records in Redis, ${cachedAtPeak} cached on the replica`],
      ['--session-ttl / --idle-timeout', `${TTL} s / ${IDLE} s`],
      ['RSS baseline (after 200-session warm-up, drained)', MB(baseline)],
      ['RSS peak', `${MB(peak)} (+${MB(peak - baseline)})`],
      ['all expired and reaped (Redis 0 records, replica 0 cached, 0 upstream)', drained ? `yes, ${drainSeconds.toFixed(0)} s after the last request` : 'NO'],
      ['RSS 5…60 s after that', settled.map((b) => (b / 1024 / 1024).toFixed(0)).join(' ') + ' MB'],
      ['RSS retained vs baseline', `${MB(retained)} (${((retained / (peak - baseline || 1)) * 100).toFixed(0)} % of the peak's growth)`],
      ['replica still running', replica.process.exitInfo() ? 'NO' : 'yes'],
    ];
    print(rows);
    // Bound: everything drained, and at most a third of the peak growth (or 32 MB) still resident.
    return drained && !replica.process.exitInfo() && retained <= Math.max(32 * 1024 * 1024, (peak - baseline) / 3);
  } finally {
    await stopAllProcesses();
    await redis.stop();
  }
}

interface Sample {
  t: number;
  rss: (number | undefined)[];
  heap: (number | undefined)[];
  fds: (number | undefined)[];
  children: number[];
}

/** `nodejs_heap_size_used_bytes` from a replica's Prometheus endpoint (prom-client's default metrics). */
async function heapUsed(client: KeepAliveClient): Promise<number | undefined> {
  try {
    const r = await client.request({ method: 'GET', path: '/metrics', timeoutMs: 5_000 });
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(r.body);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function soak(): Promise<boolean> {
  const DURATION = Number(flags.duration);
  const C = Number(flags.concurrency);
  const R = Number(flags.replicas);
  const redis = await startRedisStore(STORE);
  try {
    const replicas: ProxyReplica[] = await Promise.all(
      Array.from({ length: R }, (_, i) =>
        startProxyReplica({
          store: redis.url,
          command: EVERYTHING_STDIO_COMMAND,
          name: `soak-proxy-${i}`,
          extraArgs: ['--affinity', 'replay', '--session-ttl', String(SOAK_TTL_S), '--idle-timeout', '10', '--max-sessions', '40', '--handshake-timeout', '30'],
        }),
      ),
    );
    const nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
    const client = new KeepAliveClient(nginx.url, C * 2);
    // One connection per replica for /metrics, so sampling goes around nginx and adds no fd churn.
    const direct = replicas.map((r) => new KeepAliveClient(r.url, 1));
    const samples: Sample[] = [];
    const t0 = performance.now();
    const sample = async (): Promise<void> => {
      const t = (performance.now() - t0) / 1000;
      const rss = replicas.map((r) => rssBytes(r.process.pid));
      const fds = replicas.map((r) => fdCount(r.process.pid));
      const children = replicas.map((r) => childPids(r.process.pid).length);
      const heap = await Promise.all(direct.map(heapUsed));
      samples.push({ t, rss, heap, fds, children });
    };
    await sample();
    const start = samples[0]!;
    let sampling = Promise.resolve();
    const timer = setInterval(() => {
      sampling = sampling.then(sample);
    }, 10_000);
    const stats = { sessions: 0, requests: 0, errors: new Map<string, number>(), abandoned: 0, late: 0 };
    const latencies: number[] = [];
    const countError = (key: string): void => void stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
    const deadline = Date.now() + DURATION * 1000;
    let n = 0;
    const worker = async (): Promise<void> => {
      for (let k = 0; k < 1_000_000 && Date.now() < deadline; k += 1) {
        const i = n++;
        const auth = { authorization: `Bearer soak-${i}` };
        try {
          const sid = await openRaw(client, auth.authorization);
          const h = mcpHeaders(sid, auth);
          // Every request refreshes the session's sliding TTL; one sent later than that after the previous
          // one of its session (a slow answer on a starved machine) finds the session expired: 404 by design.
          let lastSent = performance.now();
          const send = async (req: Parameters<KeepAliveClient['request']>[0]) => {
            const t = performance.now();
            const late = t - lastSent > SOAK_TTL_S * 1000;
            if (late) stats.late += 1;
            lastSent = t;
            const r = await client.request(req);
            latencies.push(performance.now() - t);
            return { r, late };
          };
          const fail = (what: string, status: number, late: boolean) => countError(`${what} ${status}${status === 404 && late ? ' (sent > TTL after the previous request: expired)' : ''}`);
          const calls: unknown[] = [
            { method: 'tools/list' },
            { method: 'tools/call', params: { name: 'echo', arguments: { message: `m${i}` } } },
            { method: 'tools/call', params: { name: 'get-sum', arguments: { a: i, b: 1 } } },
            { method: 'resources/read', params: { uri: 'demo://resource/static/document/architecture.md' } },
            { method: 'prompts/get', params: { name: 'args-prompt', arguments: { city: 'Oslo', state: 'NO' } } },
            { method: 'logging/setLevel', params: { level: 'warning' } },
            { method: 'ping' },
          ];
          let id = 1;
          for (const c of calls) {
            const { r, late } = await send({ headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: id++, ...(c as object) }), timeoutMs: 60_000 });
            stats.requests += 1;
            if (r.status !== 200) fail((c as { method: string }).method, r.status, late);
          }
          // A GET stream opened and dropped after 200 ms.
          lastSent = performance.now();
          await client
            .request({ method: 'GET', headers: { ...auth, 'mcp-session-id': sid, accept: 'text/event-stream' }, timeoutMs: 200 })
            .catch(() => undefined);
          if (i % 10 === 9) stats.abandoned += 1;
          else {
            const { r: d, late } = await send({ method: 'DELETE', headers: { ...auth, 'mcp-session-id': sid } });
            if (d.status !== 200) fail('DELETE', d.status, late);
          }
          stats.sessions += 1;
        } catch (err) {
          countError(String(err).slice(0, 60));
        }
      }
    };
    await Promise.all(Array.from({ length: C }, worker));
    const loadSeconds = (performance.now() - t0) / 1000;
    await sampling;
    await sample();
    const underLoad = samples.slice();
    const perReplica = new Map<string, number>();
    for (const e of nginx.accessLog()) perReplica.set(e.upstream, (perReplica.get(e.upstream) ?? 0) + 1);
    // Drain: abandoned sessions expire (TTL 20 s) and idle upstreams are reaped (10 s).
    const drained = await pollUntil(
      async () => replicas.every((r) => childPids(r.process.pid).length === 0) && (await redis.keys(SESSION_KEY_PATTERN)).length === 0,
      90_000,
      1000,
    );
    await sleep(2_000);
    clearInterval(timer);
    await sampling;
    await sample();
    client.close();
    for (const d of direct) d.close();
    await nginx.stop();
    // With nginx's idle upstream keep-alive connections (up to 32) and the sampler's closed, a replica
    // must be back to the descriptors it started with: anything more is a leak.
    await sleep(1_000);
    const closedFds = replicas.map((r) => fdCount(r.process.pid));
    const end = samples[samples.length - 1]!;
    const q = Math.max(1, Math.floor(underLoad.length / 4));
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const early = underLoad.slice(q, 2 * q);
    const late = underLoad.slice(-q);
    // The sample taken closest to the middle of the load.
    const middle = underLoad.reduce((best, s) => (Math.abs(s.t - loadSeconds / 2) < Math.abs(best.t - loadSeconds / 2) ? s : best), start);
    const endOfLoad = underLoad[underLoad.length - 1]!;
    const rows: [string, string][] = [
      ['load', `${Math.round(loadSeconds)} s, ${C} concurrent clients, ${R} replicas (stdio upstream) behind nginx, ${STORE === 'cluster' ? 'a 3-master Redis Cluster' : 'one Redis'}`],
      ['sessions / requests', `${stats.sessions} sessions (${stats.abandoned} abandoned to expire), ${stats.requests} requests, ${Math.round(stats.requests / loadSeconds)} requests/s`],
      ['HTTP requests per replica (nginx access log)', replicas.map((r) => perReplica.get(r.hostPort) ?? 0).join(' / ')],
      ['errors', stats.errors.size ? [...stats.errors.entries()].map(([k, v]) => `${k}×${v}`).join(', ') : 'none'],
      [
        'request latency p50 / p99 / max (POST and DELETE)',
        (() => {
          const sorted = [...latencies].sort((a, b) => a - b);
          const at = (q: number): string => `${Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0)} ms`;
          return `${at(0.5)} / ${at(0.99)} / ${Math.round(sorted[sorted.length - 1] ?? 0)} ms`;
        })(),
      ],
      [`requests sent > ${SOAK_TTL_S} s (the session TTL) after the previous one of their session`, String(stats.late)],
      ['samples taken at (s)', `start ${start.t.toFixed(0)}, middle ${middle.t.toFixed(0)}, end of load ${endOfLoad.t.toFixed(0)}, drained ${end.t.toFixed(0)}`],
    ];
    const four = (f: (s: Sample) => string): string => [start, middle, endOfLoad, end].map(f).join(' / ');
    replicas.forEach((_, i) => {
      rows.push([`replica ${i} RSS start / middle / end of load / drained`, four((s) => MB(s.rss[i]))]);
      rows.push([`replica ${i} RSS 2nd-quarter median / last-quarter median`, `${MB(median(early.map((s) => s.rss[i] ?? 0)))} / ${MB(median(late.map((s) => s.rss[i] ?? 0)))}`]);
      rows.push([`replica ${i} heap used start / middle / end of load / drained`, four((s) => MB(s.heap[i]))]);
      rows.push([`replica ${i} heap 2nd-quarter median / last-quarter median`, `${MB(median(early.map((s) => s.heap[i] ?? 0)))} / ${MB(median(late.map((s) => s.heap[i] ?? 0)))}`]);
      rows.push([`replica ${i} fds start / middle / end of load / drained (max under load)`, `${four((s) => String(s.fds[i]))} (${Math.max(...underLoad.map((s) => s.fds[i] ?? 0))})`]);
      rows.push([`replica ${i} children start / middle / end of load / drained (max under load)`, `${four((s) => String(s.children[i]))} (${Math.max(...underLoad.map((s) => s.children[i]!))})`]);
    });
    rows.push(['drained (no child, no record left)', drained ? 'yes' : 'NO']);
    rows.push(['fds per replica once nginx and the sampler closed their connections (start)', `${closedFds.join(' / ')} (${start.fds.join(' / ')})`]);
    rows.push([
      'samples (t s: RSS MB | heap MB | fds | children, per replica)',
      samples
        .map((s) => `${s.t.toFixed(0)}: ${s.rss.map((b) => ((b ?? 0) / 1048576).toFixed(0)).join(',')} | ${s.heap.map((b) => ((b ?? 0) / 1048576).toFixed(0)).join(',')} | ${s.fds.join(',')} | ${s.children.join(',')}`)
        .join('; '),
    ]);
    print(rows);
    const fdOk = replicas.every((_, i) => (closedFds[i] ?? 1e9) <= (start.fds[i] ?? 0) + 2);
    const grows = (f: (s: Sample) => number | undefined, slackBytes: number): boolean =>
      median(late.map((s) => f(s) ?? 0)) > median(early.map((s) => f(s) ?? 0)) * 1.25 + slackBytes;
    const rssOk = replicas.every((_, i) => !grows((s) => s.rss[i], 16 * 1024 * 1024));
    const heapOk = replicas.every((_, i) => !grows((s) => s.heap[i], 8 * 1024 * 1024));
    const childrenOk = end.children.every((c) => c === 0);
    const alive = replicas.every((r) => !r.process.exitInfo());
    const unexpected = [...stats.errors.entries()].filter(([k]) => !k.includes('expired')).reduce((sum, [, v]) => sum + v, 0);
    console.log(
      `verdict: drained ${drained}, children 0 ${childrenOk}, fds back ${fdOk}, no RSS growth (last quarter ≤ 1.25 × second quarter + 16 MB) ${rssOk}, ` +
        `no heap growth (same, + 8 MB) ${heapOk}, replicas alive ${alive}, no error but expiries of late requests ${unexpected === 0}`,
    );
    return drained && childrenOk && fdOk && rssOk && heapOk && alive && unexpected === 0;
  } finally {
    await stopAllProcesses();
    await redis.stop();
  }
}

function print(rows: [string, string][]): void {
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n| ${'what'.padEnd(w)} | result |\n|${'-'.repeat(w + 2)}|--------|`);
  for (const [k, v] of rows) console.log(`| ${k.padEnd(w)} | ${v} |`);
}

(flags.mode === 'soak' ? soak() : expiry()).then(
  (ok) => {
    console.log(`result: ${ok ? 'PASS' : 'FAIL'}`);
    process.exit(ok ? 0 : 1);
  },
  async (err: unknown) => {
    console.error(err);
    await stopAllProcesses();
    process.exit(1);
  },
);
