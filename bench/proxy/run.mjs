#!/usr/bin/env node
// Proxy benchmark: what does `mcp-migrate proxy` add, on one machine, in one run?
//
//   node bench/proxy/run.mjs            # full run (a few minutes)
//   node bench/proxy/run.mjs --quick    # smaller counts, for a smoke check
//   node bench/proxy/run.mjs --json out.json
//
// Needs: `npm run build` (dist/src/cli/index.js), redis-server on PATH. Loopback only.
// Every target serves server-everything's `echo` tool; every request is a raw HTTP POST (or a raw
// stdio line) on a session opened beforehand, through a keep-alive http.Agent. Targets:
//   direct-stdio        server-everything stdio, JSON-RPC over its pipes (no HTTP at all)
//   supergateway-stdio  supergateway@4.0.0 --stateful --outputTransport streamableHttp → stdio
//   proxy-stdio         mcp-migrate proxy (Redis store) → stdio
//   direct-http         server-everything streamableHttp
//   proxy-http          mcp-migrate proxy (Redis store) → server-everything streamableHttp sidecar
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  httpEcho,
  openHttpSession,
  openStdioSession,
  percentile,
  post,
  runLoad,
  start,
  startRedis,
  statsDelta,
  stopAll,
  waitForPort,
} from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EVERYTHING = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const SUPERGATEWAY = path.join(ROOT, 'node_modules', 'supergateway', 'dist', 'index.js');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'index.js');
const SECRET = 'bench-secret-0123456789abcdef-not-for-production';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const onlyArg = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const scale = quick ? 0.1 : 1;
const N = {
  warmup: Math.round(500 * scale),
  latency: Math.round(5000 * scale),
  throughput: { 1: Math.round(1500 * scale), 16: Math.round(4000 * scale), 64: Math.round(4000 * scale) },
  sessions: quick ? 5 : 15, // session opens and cold replays measured per target
};

const log = (...a) => console.error('[bench]', ...a);
const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50);

// ------------------------------------------------------------------ targets

async function everythingHttp(name) {
  const port = await freePort();
  const p = start(name, process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PORT: String(port) } });
  await waitForPort(port, 20_000, p);
  return { url: `http://127.0.0.1:${port}/mcp`, proc: p };
}

async function proxyReplica(name, redisUrl, upstream) {
  const port = await freePort();
  const argv = [CLI, 'proxy', '--listen', `127.0.0.1:${port}`, '--path', '/mcp', '--store', redisUrl, '--session-secret', SECRET];
  argv.push(...(upstream.url ? ['--upstream', upstream.url] : ['--', process.execPath, EVERYTHING, 'stdio']));
  const p = start(name, process.execPath, argv);
  await waitForPort(port, 20_000, p);
  return { url: `http://127.0.0.1:${port}/mcp`, proc: p };
}

async function supergateway(name) {
  const port = await freePort();
  const p = start(name, process.execPath, [
    SUPERGATEWAY,
    '--stdio', `${JSON.stringify(process.execPath)} ${JSON.stringify(EVERYTHING)} stdio`,
    '--outputTransport', 'streamableHttp',
    '--stateful',
    '--port', String(port),
    '--logLevel', 'none',
  ]);
  await waitForPort(port, 20_000, p);
  return { url: `http://127.0.0.1:${port}/mcp`, proc: p };
}

/**
 * Each target: `up()` starts replica A and a second replica B (for the cold-replay row), sharing
 * whatever a deployment would share (Redis for the proxy; nothing for the others).
 */
const TARGETS = [
  {
    key: 'direct-stdio',
    label: 'server-everything stdio (pipes, no HTTP)',
    stdio: true,
  },
  {
    key: 'supergateway-stdio',
    label: 'supergateway 4.0.0 stateful → stdio',
    async up() {
      return { a: await supergateway('supergateway-a'), b: await supergateway('supergateway-b') };
    },
  },
  {
    key: 'proxy-stdio',
    label: 'mcp-migrate proxy → stdio',
    redis: true,
    async up(redis) {
      return { a: await proxyReplica('proxy-stdio-a', redis.url, {}), b: await proxyReplica('proxy-stdio-b', redis.url, {}) };
    },
  },
  {
    key: 'direct-http',
    label: 'server-everything streamableHttp (direct)',
    async up() {
      return { a: await everythingHttp('everything-a'), b: await everythingHttp('everything-b') };
    },
  },
  {
    key: 'proxy-http',
    label: 'mcp-migrate proxy → streamableHttp sidecar',
    redis: true,
    async up(redis) {
      const sa = await everythingHttp('sidecar-a');
      const sb = await everythingHttp('sidecar-b');
      return { a: await proxyReplica('proxy-http-a', redis.url, sa), b: await proxyReplica('proxy-http-b', redis.url, sb) };
    },
  },
].filter((t) => !onlyArg || onlyArg.split(',').includes(t.key));

const needed = [['server-everything', EVERYTHING]];
if (TARGETS.some((t) => t.key.startsWith('supergateway'))) needed.push(['supergateway (npm ci)', SUPERGATEWAY]);
if (TARGETS.some((t) => t.key.startsWith('proxy'))) needed.push(['the built CLI (run `npm run build`)', CLI]);
for (const [what, file] of needed) {
  if (!fs.existsSync(file)) {
    console.error(`missing ${what}: ${path.relative(ROOT, file)}`);
    process.exit(2);
  }
}

// ------------------------------------------------------------------ measurements

async function measureStdio(t) {
  const r = { key: t.key, label: t.label };
  const opens = [];
  for (let i = 0; i < N.sessions; i += 1) {
    const s0 = performance.now();
    const s = await openStdioSession(EVERYTHING);
    opens.push(performance.now() - s0);
    await s.stop();
  }
  r.openMs = median(opens);
  const s = await openStdioSession(EVERYTHING);
  try {
    await runLoad(() => s.echo(), { count: N.warmup, concurrency: 1 });
    const lat = await runLoad(() => s.echo(), { count: N.latency, concurrency: 1 });
    r.p50 = percentile(lat.times, 50);
    r.p99 = percentile(lat.times, 99);
    r.rps = {};
    for (const c of [1, 16, 64]) r.rps[c] = (await runLoad(() => s.echo(), { count: N.throughput[c], concurrency: c })).rps;
  } finally {
    await s.stop();
  }
  r.cold = { note: 'n/a (one process per session)' };
  return r;
}

async function measureHttp(t) {
  const r = { key: t.key, label: t.label };
  const redis = t.redis ? await startRedis() : undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  try {
    const { a, b } = await t.up(redis);
    // Session open: initialize + notifications/initialized on a fresh session, then DELETE it.
    const opens = [];
    for (let i = 0; i < N.sessions; i += 1) {
      const s0 = performance.now();
      const sid = await openHttpSession(a.url, agent);
      opens.push(performance.now() - s0);
      await deleteSession(a.url, agent, sid);
    }
    r.openMs = median(opens);

    const sid = await openHttpSession(a.url, agent);
    await runLoad(() => httpEcho(a.url, agent, sid), { count: N.warmup, concurrency: 1 });
    const before = redis ? await redis.commandStats() : undefined;
    const lat = await runLoad(() => httpEcho(a.url, agent, sid), { count: N.latency, concurrency: 1 });
    r.p50 = percentile(lat.times, 50);
    r.p99 = percentile(lat.times, 99);
    r.rps = {};
    let requests = N.latency;
    for (const c of [1, 16, 64]) {
      r.rps[c] = (await runLoad(() => httpEcho(a.url, agent, sid), { count: N.throughput[c], concurrency: c })).rps;
      requests += N.throughput[c];
    }
    if (redis) {
      const delta = statsDelta(before, await redis.commandStats());
      const total = [...delta.values()].reduce((x, y) => x + y, 0);
      r.redisPerRequest = total / requests;
      r.redisBreakdown = Object.fromEntries([...delta].map(([k, v]) => [k, +(v / requests).toFixed(3)]));
    }
    await deleteSession(a.url, agent, sid);

    // Cold replica: a session opened on A; its first request on B (which never saw it), then a warm one.
    const colds = [];
    const warms = [];
    let failure;
    for (let i = 0; i < N.sessions; i += 1) {
      const s = await openHttpSession(a.url, agent);
      const c0 = performance.now();
      const first = await post(b.url, agent, { jsonrpc: '2.0', id: `cold-${i}`, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bench' } } }, s);
      const coldMs = performance.now() - c0;
      if (first.status !== 200 || first.message?.result?.content?.[0]?.text !== 'Echo: bench') {
        failure = `fails: replica B answers ${first.status}`;
        await deleteSession(a.url, agent, s);
        break;
      }
      colds.push(coldMs);
      const w0 = performance.now();
      await httpEcho(b.url, agent, s);
      warms.push(performance.now() - w0);
      await deleteSession(b.url, agent, s);
    }
    r.cold = failure ? { note: `n/a (${failure})` } : { coldMs: median(colds), warmMs: median(warms) };
  } finally {
    agent.destroy();
    await stopAll();
    await redis?.stop();
  }
  return r;
}

async function deleteSession(url, agent, sid) {
  const u = new URL(url);
  await new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'DELETE', agent, headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

// ------------------------------------------------------------------ report

const fmt = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const fmtInt = (x) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));

function table(results) {
  const cols = results;
  const row = (name, f) => `| ${name} | ${cols.map(f).join(' | ')} |`;
  const byKey = Object.fromEntries(results.map((r) => [r.key, r]));
  const baselineOf = { 'proxy-stdio': 'direct-stdio', 'supergateway-stdio': 'direct-stdio', 'proxy-http': 'direct-http' };
  const added = (r, k) => {
    const base = byKey[baselineOf[r.key]];
    return base ? `+${fmt(r[k] - base[k])}` : '–';
  };
  const lines = [
    `| | ${cols.map((r) => `\`${r.key}\``).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    row('tools/call echo p50 (ms)', (r) => fmt(r.p50)),
    row('tools/call echo p99 (ms)', (r) => fmt(r.p99)),
    row('added p50 vs direct (ms)', (r) => added(r, 'p50')),
    row('added p99 vs direct (ms)', (r) => added(r, 'p99')),
    row('throughput, concurrency 1 (req/s)', (r) => fmtInt(r.rps?.[1])),
    row('throughput, concurrency 16 (req/s)', (r) => fmtInt(r.rps?.[16])),
    row('throughput, concurrency 64 (req/s)', (r) => fmtInt(r.rps?.[64])),
    row('Redis commands per steady-state request', (r) => (r.redisPerRequest === undefined ? '–' : fmt(r.redisPerRequest))),
    row('new session: initialize + initialized, median (ms)', (r) => fmt(r.openMs, 1)),
    row('first request on a cold replica, median (ms)', (r) => (r.cold.coldMs === undefined ? r.cold.note : fmt(r.cold.coldMs, 1))),
    row('next request on that replica, median (ms)', (r) => (r.cold.warmMs === undefined ? '–' : fmt(r.cold.warmMs))),
  ];
  return lines.join('\n');
}

function ratios(results) {
  const by = Object.fromEntries(results.map((r) => [r.key, r]));
  const out = [];
  const pair = (a, b, title) => {
    if (!by[a] || !by[b]) return;
    const x = by[a];
    const y = by[b];
    out.push(
      `| ${title} | ${fmt(x.p50 / y.p50)}× | ${fmt(x.p99 / y.p99)}× | ${fmt(x.rps[1] / y.rps[1])}× | ${fmt(x.rps[16] / y.rps[16])}× | ${fmt(x.rps[64] / y.rps[64])}× | ${fmt(x.openMs / y.openMs)}× |`,
    );
  };
  pair('proxy-stdio', 'supergateway-stdio', '`proxy-stdio` / `supergateway-stdio`');
  pair('proxy-stdio', 'direct-stdio', '`proxy-stdio` / `direct-stdio`');
  pair('supergateway-stdio', 'direct-stdio', '`supergateway-stdio` / `direct-stdio`');
  pair('proxy-http', 'direct-http', '`proxy-http` / `direct-http`');
  if (out.length === 0) return '';
  return ['| ratio | p50 | p99 | req/s c=1 | req/s c=16 | req/s c=64 | new session |', '|---|---:|---:|---:|---:|---:|---:|', ...out].join('\n');
}

const results = [];
const started = Date.now();
for (const t of TARGETS) {
  log(`measuring ${t.key}…`);
  const t0 = Date.now();
  results.push(t.stdio ? await measureStdio(t) : await measureHttp(t));
  log(`${t.key} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const env = `Node ${process.version}, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, ${os.platform()} ${os.release()}; ` +
  `counts: warm-up ${N.warmup}, latency ${N.latency} sequential calls, throughput ${N.throughput[1]}/${N.throughput[16]}/${N.throughput[64]} calls at concurrency 1/16/64 on one session, ${N.sessions} session opens and cold replays; total ${((Date.now() - started) / 1000).toFixed(0)} s.`;
const redisBreakdown = results
  .filter((r) => r.redisBreakdown)
  .map((r) => `- \`${r.key}\`: ${Object.entries(r.redisBreakdown).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`)
  .join('\n');
console.log(`${table(results)}\n\n${ratios(results)}\n\n${redisBreakdown ? `Redis commands per request, by command:\n${redisBreakdown}\n\n` : ''}${env}`);
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ env, results }, null, 2));
await stopAll();
