#!/usr/bin/env node
// Proxy benchmark: what does `mcp-migrate proxy` add, on one machine, in one run?
//
//   node bench/proxy/run.mjs            # full run (a few minutes)
//   node bench/proxy/run.mjs --quick    # smaller counts, for a smoke check
//   node bench/proxy/run.mjs --json out.json                   # also write the raw figures
//   node bench/proxy/run.mjs --only proxy-http,direct-http      # a subset of the targets
//   node bench/proxy/run.mjs --baseline ../old/dist/src/cli/index.js
//       # A/B: also proxy-stdio-base and proxy-http-base, the same targets run from another build
//
// Needs: `npm run build` (dist/src/cli/index.js), redis-server on PATH. Loopback only.
// Every target serves server-everything's `echo` tool; every request is a raw HTTP POST (or a raw
// stdio line) on a session opened beforehand, through a keep-alive http.Agent. Targets:
//   direct-stdio        server-everything stdio, JSON-RPC over its pipes (no HTTP at all)
//   supergateway-stdio  supergateway@4.0.0 --stateful --outputTransport streamableHttp → stdio
//   proxy-stdio         mcp-migrate proxy (Redis store) → stdio
//   direct-http         server-everything streamableHttp
//   proxy-http          mcp-migrate proxy (Redis store) → server-everything streamableHttp sidecar
//   proxy-3-nginx       3 mcp-migrate proxy replicas with default flags (owner routing) behind nginx
//                       round-robin → one server-everything streamableHttp; 2 of 3 requests are
//                       forwarded to the session's owner. Compare with direct-http (one direct server).
//                       Its CPU figure is the 3 replicas' (nginx excluded).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, EVERYTHING, freePort, httpEcho, openHttpSession, openStdioSession, percentile, post, ROOT, runLoad, SECRET, start, startNginx, startRedis, statsDelta, stopAll, waitForPort } from './lib.mjs';

const SUPERGATEWAY = path.join(ROOT, 'node_modules', 'supergateway', 'dist', 'index.js');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'index.js');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const onlyArg = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const baselineCli = args.includes('--baseline') ? path.resolve(args[args.indexOf('--baseline') + 1]) : undefined;
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

async function proxyReplica(name, redisUrl, upstream, cli = CLI) {
  const port = await freePort();
  const argv = [cli, 'proxy', '--listen', `127.0.0.1:${port}`, '--path', '/mcp', '--store', redisUrl, '--session-secret', SECRET];
  argv.push(...(upstream.extra ?? []), ...(upstream.url ? ['--upstream', upstream.url] : ['--', process.execPath, EVERYTHING, 'stdio']));
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
  {
    key: 'proxy-3-nginx',
    label: '3 × mcp-migrate proxy (default flags) behind nginx → one streamableHttp',
    redis: true,
    async up(redis) {
      const upstream = await everythingHttp('everything-shared');
      const replicas = [];
      for (const n of ['a', 'b', 'c']) replicas.push(await proxyReplica(`proxy-owner-${n}`, redis.url, upstream));
      const nginx = await startNginx(replicas.map((r) => new URL(r.url).host));
      // Sessions open through nginx too; the cold row's "other replica" is nginx again (a forward, 2 times in 3).
      return { a: nginx, b: nginx, pids: replicas.map((r) => r.proc.pid) };
    },
  },
  ...(baselineCli ? baselineTargets(baselineCli) : []),
].filter((t) => !onlyArg || onlyArg.split(',').some((k) => t.key === k || t.key === `${k}-base`));

/** The proxy targets again, run from another build (`--baseline`), with their own key prefix in Redis. */
function baselineTargets(cli) {
  return [
    {
      key: 'proxy-stdio-base',
      label: `mcp-migrate proxy → stdio (${path.relative(ROOT, cli)})`,
      redis: true,
      async up(redis) {
        const extra = ['--store-prefix', 'base:'];
        return { a: await proxyReplica('base-stdio-a', redis.url, { extra }, cli), b: await proxyReplica('base-stdio-b', redis.url, { extra }, cli) };
      },
    },
    {
      key: 'proxy-http-base',
      label: `mcp-migrate proxy → streamableHttp sidecar (${path.relative(ROOT, cli)})`,
      redis: true,
      async up(redis) {
        const sa = await everythingHttp('base-sidecar-a');
        const sb = await everythingHttp('base-sidecar-b');
        const extra = ['--store-prefix', 'base:'];
        return { a: await proxyReplica('base-http-a', redis.url, { ...sa, extra }, cli), b: await proxyReplica('base-http-b', redis.url, { ...sb, extra }, cli) };
      },
    },
  ];
}

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
//
// All targets run side by side and every phase alternates between them in rounds, so a load spike
// on the machine (or a slow drift) hits every target alike instead of whichever was measured then.

/** A uniform handle over a target: session opens, a steady session, cold replays. */
async function prepare(t, redis, agent) {
  if (t.stdio) {
    return {
      async open() {
        const s0 = performance.now();
        const s = await openStdioSession(EVERYTHING);
        const ms = performance.now() - s0;
        await s.stop();
        return ms;
      },
      async steady() {
        const s = await openStdioSession(EVERYTHING);
        return { call: () => s.echo(), close: () => s.stop() };
      },
      async cold() {
        const sess = await openStdioSession(EVERYTHING);
        const f0 = performance.now();
        await sess.echo();
        const firstMs = performance.now() - f0;
        await sess.stop();
        return { firstMs, note: 'n/a (one process per session)' };
      },
    };
  }
  const { a, b, pids } = await t.up(redis);
  return {
    // The gateway's own processes (proxy replicas or supergateway), not the MCP server behind them.
    gatewayPids: t.key.startsWith('direct') ? [] : (pids ?? [a.proc.pid]),
    async open() {
      const s0 = performance.now();
      const sid = await openHttpSession(a.url, agent);
      const ms = performance.now() - s0;
      await deleteSession(a.url, agent, sid);
      return ms;
    },
    async steady() {
      const sid = await openHttpSession(a.url, agent);
      return { call: () => httpEcho(a.url, agent, sid), close: () => deleteSession(a.url, agent, sid) };
    },
    // A session opened on A and used once there (a new upstream session's first call is slow by itself),
    // then its first request on B (which never saw it), then a second one on B.
    async cold(i) {
      const s = await openHttpSession(a.url, agent);
      const f0 = performance.now();
      await httpEcho(a.url, agent, s);
      const firstMs = performance.now() - f0;
      const c0 = performance.now();
      const first = await post(b.url, agent, { jsonrpc: '2.0', id: `cold-${i}`, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bench' } } }, s);
      const coldMs = performance.now() - c0;
      if (first.status !== 200 || first.message?.result?.content?.[0]?.text !== 'Echo: bench') {
        await deleteSession(a.url, agent, s);
        return { firstMs, note: `n/a (fails: replica B answers ${first.status})` };
      }
      const w0 = performance.now();
      await httpEcho(b.url, agent, s);
      const warmMs = performance.now() - w0;
      await deleteSession(b.url, agent, s);
      return { firstMs, coldMs, warmMs };
    },
  };
}

async function measureAll(targets) {
  const redis = targets.some((t) => t.redis) ? await startRedis() : undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const results = targets.map((t) => ({ key: t.key, label: t.label, opens: [], times: [], rpsCalls: {}, rpsWall: {}, redisCalls: new Map(), redisRequests: 0, cpu: 0, cpuRequests: 0, firsts: [], colds: [], warms: [] }));
  try {
    const handles = [];
    for (const t of targets) {
      log(`starting ${t.key}…`);
      handles.push(await prepare(t, redis, agent));
    }
    /** Run `fn(i)` for each target, round by round; Redis deltas are attributed to the target measured. */
    const rounds = async (n, phase, fn) => {
      log(phase);
      for (let round = 0; round < n; round += 1) {
        for (let i = 0; i < targets.length; i += 1) await fn(i, round);
      }
    };
    /** Run a steady-state phase of target `i`, attributing Redis commands and gateway CPU time to it. */
    const counted = async (i, requests, fn) => {
      const pids = handles[i].gatewayPids ?? [];
      const cpuOf = () => {
        let sum = 0;
        for (const pid of pids) {
          const ms = cpuMs(pid);
          if (ms === undefined) return undefined;
          sum += ms;
        }
        return pids.length > 0 ? sum : undefined;
      };
      const cpu0 = cpuOf();
      const before = targets[i].redis ? await redis.commandStats() : undefined;
      const value = await fn();
      if (before) {
        for (const [cmd, n] of statsDelta(before, await redis.commandStats())) results[i].redisCalls.set(cmd, (results[i].redisCalls.get(cmd) ?? 0) + n);
        results[i].redisRequests += requests;
      }
      const cpu1 = cpuOf();
      if (cpu0 !== undefined && cpu1 !== undefined) {
        results[i].cpu += cpu1 - cpu0;
        results[i].cpuRequests += requests;
      }
      return value;
    };

    await rounds(N.sessions, 'session opens', async (i) => results[i].opens.push(await handles[i].open()));

    const steady = [];
    for (const h of handles) steady.push(await h.steady());
    await rounds(1, 'warm-up', async (i) => runLoad(steady[i].call, { count: N.warmup, concurrency: 1 }));

    const R = 5;
    await rounds(R, 'latency', async (i) => {
      const n = Math.round(N.latency / R);
      const r = await counted(i, n, () => runLoad(steady[i].call, { count: n, concurrency: 1 }));
      results[i].times.push(...r.times);
    });
    for (const c of [1, 16, 64]) {
      await rounds(R, `throughput at concurrency ${c}`, async (i) => {
        const n = Math.round(N.throughput[c] / R);
        const r = await counted(i, n, () => runLoad(steady[i].call, { count: n, concurrency: c }));
        results[i].rpsCalls[c] = (results[i].rpsCalls[c] ?? 0) + n;
        results[i].rpsWall[c] = (results[i].rpsWall[c] ?? 0) + r.wall;
      });
    }
    for (const s of steady) await s.close();

    await rounds(N.sessions, 'cold replays', async (i, round) => {
      const c = await handles[i].cold(round);
      results[i].firsts.push(c.firstMs);
      if (c.note) results[i].coldNote = c.note;
      else {
        results[i].colds.push(c.coldMs);
        results[i].warms.push(c.warmMs);
      }
    });
  } finally {
    agent.destroy();
    await stopAll();
    await redis?.stop();
  }
  return results.map((r) => {
    const sorted = [...r.times].sort((x, y) => x - y);
    const redisTotal = [...r.redisCalls.values()].reduce((x, y) => x + y, 0);
    return {
      key: r.key,
      label: r.label,
      openMs: median(r.opens),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      samples: sorted.length,
      rps: Object.fromEntries(Object.keys(r.rpsCalls).map((c) => [c, (r.rpsCalls[c] / r.rpsWall[c]) * 1000])),
      redisPerRequest: r.redisRequests ? redisTotal / r.redisRequests : undefined,
      gatewayCpuUs: r.cpuRequests ? (r.cpu / r.cpuRequests) * 1000 : undefined,
      redisBreakdown: r.redisRequests ? Object.fromEntries([...r.redisCalls].map(([k, v]) => [k, +(v / r.redisRequests).toFixed(3)])) : undefined,
      firstMs: median(r.firsts),
      cold: r.coldNote ? { note: r.coldNote } : { coldMs: median(r.colds), warmMs: median(r.warms) },
    };
  });
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
  const baselineOf = { 'proxy-stdio': 'direct-stdio', 'supergateway-stdio': 'direct-stdio', 'proxy-http': 'direct-http', 'proxy-3-nginx': 'direct-http', 'proxy-stdio-base': 'direct-stdio', 'proxy-http-base': 'direct-http' };
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
    row('gateway process CPU per request (µs)', (r) => (r.gatewayCpuUs === undefined ? '–' : fmtInt(r.gatewayCpuUs))),
    row('Redis commands per steady-state request', (r) => (r.redisPerRequest === undefined ? '–' : fmt(r.redisPerRequest))),
    row('new session: initialize + initialized, median (ms)', (r) => fmt(r.openMs, 1)),
    row('first call of a new session, same replica, median (ms)', (r) => fmt(r.firstMs)),
    row('first call on a cold replica, median (ms)', (r) => (r.cold.coldMs === undefined ? r.cold.note : fmt(r.cold.coldMs, 1))),
    row('next call on that replica, median (ms)', (r) => (r.cold.warmMs === undefined ? '–' : fmt(r.cold.warmMs))),
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
      `| ${title} | ${fmt(x.p50 / y.p50)}× | ${fmt(x.p99 / y.p99)}× | ${fmt(x.rps[1] / y.rps[1])}× | ${fmt(x.rps[16] / y.rps[16])}× | ${fmt(x.rps[64] / y.rps[64])}× | ${fmt(x.openMs / y.openMs)}× | ${x.gatewayCpuUs && y.gatewayCpuUs ? `${fmt(x.gatewayCpuUs / y.gatewayCpuUs)}×` : '–'} |`,
    );
  };
  pair('proxy-stdio', 'supergateway-stdio', '`proxy-stdio` / `supergateway-stdio`');
  pair('proxy-stdio', 'direct-stdio', '`proxy-stdio` / `direct-stdio`');
  pair('supergateway-stdio', 'direct-stdio', '`supergateway-stdio` / `direct-stdio`');
  pair('proxy-http', 'direct-http', '`proxy-http` / `direct-http`');
  pair('proxy-3-nginx', 'direct-http', '`proxy-3-nginx` / `direct-http`');
  pair('proxy-3-nginx', 'proxy-http', '`proxy-3-nginx` / `proxy-http`');
  pair('proxy-stdio-base', 'direct-stdio', '`proxy-stdio-base` / `direct-stdio`');
  pair('proxy-http-base', 'direct-http', '`proxy-http-base` / `direct-http`');
  pair('proxy-stdio', 'proxy-stdio-base', '`proxy-stdio` / `proxy-stdio-base`');
  pair('proxy-http', 'proxy-http-base', '`proxy-http` / `proxy-http-base`');
  if (out.length === 0) return '';
  return ['| ratio | p50 | p99 | req/s c=1 | req/s c=16 | req/s c=64 | new session | gateway CPU per request |', '|---|---:|---:|---:|---:|---:|---:|---:|', ...out].join('\n');
}

const started = Date.now();
const loadBefore = os.loadavg()[0];
const results = await measureAll(TARGETS);
const env = `Node ${process.version}, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, ${os.platform()} ${os.release()}; ` +
  `counts: warm-up ${N.warmup}, latency ${N.latency} sequential calls, throughput ${N.throughput[1]}/${N.throughput[16]}/${N.throughput[64]} calls at concurrency 1/16/64 on one session per target, ${N.sessions} session opens and cold replays per target; all phases interleaved across targets in rounds; total ${((Date.now() - started) / 1000).toFixed(0)} s; 1-min load average ${loadBefore.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end.`;
const redisBreakdown = results
  .filter((r) => r.redisBreakdown)
  .map((r) => `- \`${r.key}\`: ${Object.entries(r.redisBreakdown).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`)
  .join('\n');
console.log(`${table(results)}\n\n${ratios(results)}\n\n${redisBreakdown ? `Redis commands per request, by command:\n${redisBreakdown}\n\n` : ''}${env}`);
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ env, results }, null, 2));
await stopAll();
