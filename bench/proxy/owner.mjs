#!/usr/bin/env node
// Owner routing benchmark (the default mode): what does forwarding a request to the session's owner add?
//
//   node bench/proxy/owner.mjs            # full run (about a minute)
//   node bench/proxy/owner.mjs --quick    # smaller counts, for a smoke check
//   node bench/proxy/owner.mjs --json out.json
//   node bench/proxy/owner.mjs --baseline ../old/dist/src/cli/index.js   # A/B: owner-base and forwarded-base from another build
//   node bench/proxy/owner.mjs --floor    # also the floor of a hop: bare relays (bench/proxy/bare-relay.mjs) in front of A
//
// Needs: `npm run build` (dist/src/cli/index.js), redis-server on PATH. Loopback only.
// Two `mcp-migrate proxy --affinity owner` replicas A and B share one Redis and one server-everything
// (streamableHttp). Sessions are opened on A, so A owns them. Targets, all `tools/call echo` on such a
// session, raw HTTP POSTs through a keep-alive http.Agent, every answer checked:
//   owner        the request reaches A (the owner): served locally
//   forwarded    the request reaches B: B forwards it to A over HTTP and streams the answer back
//   floor-http, floor-undici, floor-tcp   (--floor) the request reaches a bare relay with no proxy logic in
//                front of A (node:http client, undici dispatch, or an L4 byte pipe): what one hop costs at least
//   replay       for reference, `--affinity replay`: two replay-mode replicas C and D (their own key
//                prefix), session opened on C, requests to D, which serves them on its own upstream session
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, EVERYTHING, freePort, httpEcho, openHttpSession, percentile, ROOT, runLoad, runMain, SECRET, start, startRedis, statsDelta, stopAll, waitForPort } from './lib.mjs';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'index.js');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const floor = args.includes('--floor');
const baselineCli = args.includes('--baseline') ? path.resolve(args[args.indexOf('--baseline') + 1]) : undefined;
const scale = quick ? 0.1 : 1;
const ROUNDS = 5;
const N = { warmup: Math.round(300 * scale), latency: Math.round(1000 * scale), throughput: Math.round(1000 * scale) };
const CONCURRENCY = 16;

const log = (...a) => console.error('[bench]', ...a);

async function proxy(name, redisUrl, upstreamUrl, extra, cli = CLI) {
  const port = await freePort();
  const argv = [cli, 'proxy', '--listen', `127.0.0.1:${port}`, '--path', '/mcp', '--store', redisUrl, '--session-secret', SECRET, '--log-level', 'warn', ...extra, '--upstream', upstreamUrl];
  const p = start(name, process.execPath, argv);
  await waitForPort(port, 20_000, p);
  return { url: `http://127.0.0.1:${port}/mcp`, proc: p };
}

async function main() {
  if (!fs.existsSync(CLI)) throw new Error('dist/src/cli/index.js is missing: run `npm run build` first');
  const redis = await startRedis();
  const upPort = await freePort();
  const everything = start('everything', process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PORT: String(upPort) } });
  await waitForPort(upPort, 20_000, everything);
  const upstream = `http://127.0.0.1:${upPort}/mcp`;
  const a = await proxy('owner-a', redis.url, upstream, ['--affinity', 'owner']);
  const b = await proxy('owner-b', redis.url, upstream, ['--affinity', 'owner']);
  const c = await proxy('replay-c', redis.url, upstream, ['--affinity', 'replay', '--store-prefix', 'bench-replay:']);
  const d = await proxy('replay-d', redis.url, upstream, ['--affinity', 'replay', '--store-prefix', 'bench-replay:']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const ownedSid = await openHttpSession(a.url, agent);
  const replaySid = await openHttpSession(c.url, agent);
  const targets = [
    { name: 'owner', desc: 'request to the owner (A)', url: a.url, sid: ownedSid, procs: [a, b] },
    { name: 'forwarded', desc: 'request to B, forwarded to the owner A', url: b.url, sid: ownedSid, procs: [a, b] },
    { name: 'replay', desc: '--affinity replay: request to D, served on its own upstream session', url: d.url, sid: replaySid, procs: [c, d] },
  ];
  if (baselineCli) {
    const e = await proxy('base-owner-e', redis.url, upstream, ['--affinity', 'owner', '--store-prefix', 'bench-base:'], baselineCli);
    const f = await proxy('base-owner-f', redis.url, upstream, ['--affinity', 'owner', '--store-prefix', 'bench-base:'], baselineCli);
    const baseSid = await openHttpSession(e.url, agent);
    targets.push(
      { name: 'owner-base', desc: 'request to the owner, other build', url: e.url, sid: baseSid, procs: [e, f] },
      { name: 'forwarded-base', desc: 'request forwarded to the owner, other build', url: f.url, sid: baseSid, procs: [e, f] },
    );
  }
  if (floor) {
    for (const kind of ['http', 'undici', 'tcp']) {
      const port = await freePort();
      const relay = start(`bare-${kind}`, process.execPath, [path.join(ROOT, 'bench', 'proxy', 'bare-relay.mjs'), kind, String(port), new URL(a.url).origin]);
      await waitForPort(port, 20_000, relay);
      targets.push({ name: `floor-${kind}`, desc: `bare ${kind} relay in front of the owner A`, url: `http://127.0.0.1:${port}/mcp`, sid: ownedSid, procs: [a, { proc: relay }] });
    }
  }
  for (const t of targets) {
    t.lat = [];
    t.rps = [];
    t.cpu = 0;
    t.entryCpu = 0;
    t.requests = 0;
    t.redis = new Map();
    log(`warm-up ${t.name}`);
    for (let i = 0; i < N.warmup; i += 1) await httpEcho(t.url, agent, t.sid);
  }

  // The replica the client's request reaches (the forwarder, for `forwarded`; a bare relay, for `floor-*`).
  const entry = (t) => t.procs.find((p) => p.url === t.url) ?? t.procs[1];
  const measured = async (t, fn, count) => {
    const cpu0 = t.procs.reduce((s, p) => s + (cpuMs(p.proc.pid) ?? 0), 0);
    const e0 = cpuMs(entry(t).proc.pid) ?? 0;
    const st0 = await redis.commandStats();
    const r = await fn();
    const st1 = await redis.commandStats();
    const cpu1 = t.procs.reduce((s, p) => s + (cpuMs(p.proc.pid) ?? 0), 0);
    t.cpu += cpu1 - cpu0;
    t.entryCpu += (cpuMs(entry(t).proc.pid) ?? 0) - e0;
    t.requests += count;
    for (const [k, v] of statsDelta(st0, st1)) t.redis.set(k, (t.redis.get(k) ?? 0) + v);
    return r;
  };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const t of targets) {
      log(`round ${round + 1}/${ROUNDS}: ${t.name} latency`);
      const r = await measured(t, () => runLoad(() => httpEcho(t.url, agent, t.sid), { count: N.latency, concurrency: 1 }), N.latency);
      t.lat.push(...r.times);
    }
    for (const t of targets) {
      log(`round ${round + 1}/${ROUNDS}: ${t.name} throughput`);
      const r = await measured(t, () => runLoad(() => httpEcho(t.url, agent, t.sid), { count: N.throughput, concurrency: CONCURRENCY }), N.throughput);
      t.rps.push(r.rps);
    }
  }
  agent.destroy();

  const median = (xs) => percentile([...xs].sort((x, y) => x - y), 50);
  for (const t of targets) {
    t.lat.sort((x, y) => x - y);
    t.p50 = percentile(t.lat, 50);
    t.p99 = percentile(t.lat, 99);
    t.throughput = median(t.rps);
    t.cpuPerReq = (t.cpu * 1000) / t.requests;
    t.entryCpuPerReq = (t.entryCpu * 1000) / t.requests;
    // Heartbeats (`SET … PX`, `ZADD` and `ZREMRANGEBYSCORE` of the accepting set, once per owner-mode
    // replica per interval) depend on time, not on requests.
    const HEARTBEAT = new Set(['info', 'set', 'zadd', 'zremrangebyscore', 'zrem']);
    const perRequest = [...t.redis].filter(([k]) => !HEARTBEAT.has(k));
    t.redisPerReq = perRequest.reduce((s, [, v]) => s + v, 0) / t.requests;
    t.redisDetail = perRequest.map(([k, v]) => `${k} ${(v / t.requests).toFixed(2)}`).join(', ');
  }
  const by = Object.fromEntries(targets.map((t) => [t.name, t]));
  const f = (x, d = 2) => x.toFixed(d);
  const signed = (x) => `${x >= 0 ? '+' : '−'}${f(Math.abs(x))}`;
  const cols = targets.map((t) => t.name);
  const row = (label, fn) => `| ${label} | ${targets.map(fn).join(' | ')} |`;
  const ownerOf = (t) => (t.name.startsWith('forwarded') ? by[t.name.replace('forwarded', 'owner')] : t.name.startsWith('floor-') ? by.owner : undefined);
  const lines = [];
  lines.push(`Owner routing, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end.`);
  lines.push(`${ROUNDS} rounds × ${N.latency} sequential calls (latency) and ${N.throughput} calls at concurrency ${CONCURRENCY} (throughput) per target, interleaved.`);
  lines.push('');
  lines.push(`| | ${cols.map((c) => `\`${c}\``).join(' | ')} |`);
  lines.push(`|---|${cols.map(() => '---:').join('|')}|`);
  lines.push(row('tools/call echo p50 (ms)', (t) => f(t.p50)));
  lines.push(row('tools/call echo p99 (ms)', (t) => f(t.p99)));
  lines.push(row('added by the forward, p50 / p99 (ms)', (t) => (ownerOf(t) ? `${signed(t.p50 - ownerOf(t).p50)} / ${signed(t.p99 - ownerOf(t).p99)}` : '–')));
  lines.push(row(`throughput, concurrency ${CONCURRENCY} (req/s, median of rounds)`, (t) => String(Math.round(t.throughput))));
  lines.push(row('proxy CPU per request, both replicas (µs)', (t) => String(Math.round(t.cpuPerReq))));
  lines.push(row('CPU of the replica or relay the request reaches, per request (µs)', (t) => String(Math.round(t.entryCpuPerReq))));
  lines.push(row('CPU per request / the owner-served request', (t) => (ownerOf(t) ? `${f(t.cpuPerReq / ownerOf(t).cpuPerReq)}×` : '–')));
  lines.push(row('Redis commands per request (heartbeats excluded)', (t) => `${f(t.redisPerReq)} (${t.redisDetail})`));
  lines.push('');
  lines.push('| ratio | p50 | p99 | req/s | CPU per request |');
  lines.push('|---|---:|---:|---:|---:|');
  const ratio = (x, y) => {
    if (!by[x] || !by[y]) return;
    const [a1, b1] = [by[x], by[y]];
    lines.push(`| \`${x}\` / \`${y}\` | ${f(a1.p50 / b1.p50)}× | ${f(a1.p99 / b1.p99)}× | ${f(a1.throughput / b1.throughput)}× | ${f(a1.cpuPerReq / b1.cpuPerReq)}× |`);
  };
  ratio('forwarded', 'owner');
  ratio('forwarded', 'replay');
  ratio('owner', 'replay');
  ratio('forwarded-base', 'owner-base');
  ratio('forwarded', 'forwarded-base');
  if (by['forwarded-base']) lines.push(`| forwarder alone: \`forwarded\` / \`forwarded-base\` | | | | ${f(by.forwarded.entryCpuPerReq / by['forwarded-base'].entryCpuPerReq)}× |`);
  for (const kind of ['http', 'undici', 'tcp']) ratio(`floor-${kind}`, 'owner');
  for (const kind of ['http', 'undici', 'tcp']) ratio('forwarded', `floor-${kind}`);
  // Issue 14's goals for a forwarded request, against the request its owner serves.
  const fw = by.forwarded;
  const ow = by.owner;
  const goal = (what, value, limit, unit) => `| ${what} | ${value.toFixed(2)}${unit} | ≤ ${limit}${unit} | ${value <= limit ? 'met' : '**not met**'} |`;
  lines.push('');
  lines.push('| goal (forwarded request) | measured | goal | |');
  lines.push('|---|---:|---:|---|');
  lines.push(goal('added p50 (ms)', fw.p50 - ow.p50, 0.3, ''));
  lines.push(goal('proxy CPU / owner-served request', fw.cpuPerReq / ow.cpuPerReq, 1.3, '×'));
  lines.push(goal('Redis commands per request, both replicas', fw.redisPerReq, 1, ''));
  console.log(lines.join('\n'));
  if (jsonOut) {
    fs.writeFileSync(
      jsonOut,
      JSON.stringify(
        targets.map(({ name, p50, p99, throughput, cpuPerReq, entryCpuPerReq, redisPerReq }) => ({ name, p50, p99, throughput, cpuPerReq, entryCpuPerReq, redisPerReq })),
        null,
        2,
      ),
    );
  }
  await stopAll();
  await redis.stop().catch(() => undefined);
}

runMain(main);
