#!/usr/bin/env node
// Owner affinity of the runtime (SessionTransportRegistry({ affinity: 'owner' }), docs/runtime.md "Owner
// affinity"): what does forwarding a request to its session's owner replica add?
//
//   node bench/runtime/owner-affinity.mjs           # full run
//   node bench/runtime/owner-affinity.mjs --quick   # a tenth of the counts
//   node bench/runtime/owner-affinity.mjs --baseline DIR   # also `owner` and `forwarded` on another build
//
// --baseline DIR: DIR/node_modules resolves @mcp-migrate/runtime to a runtime built from another commit
// (and the other packages as this tree does); the server file is copied into DIR and run from there, so
// the two builds are measured in the same run, interleaved (targets `owner@base`, `forwarded@base`).
//
// Needs: `npm run build` (packages/runtime/dist), redis-server on PATH. Loopback only.
// The migrated server is test/helpers/servers/per-session-state.mjs (SDK StreamableHTTPServerTransport,
// per-session closure state). One Redis. Targets, all `tools/call recall` on one session, raw HTTP POSTs
// through a keep-alive http.Agent, every answer checked (the value the session remembered, and the replica
// that ran the tool):
//   direct      one replica (affinity replay, the same Redis): the session is local, no owner logic
//   owner       two replicas A and B with affinity owner; session opened on A; the request reaches A
//   forwarded   the same session; the request reaches B, which forwards it to A (node:http) and relays the answer
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, freePort, initializeBody, percentile, post, ROOT, runLoad, runMain, start, startRedis, stopAll, waitForPort } from '../proxy/lib.mjs';

const SERVER = path.join(ROOT, 'test', 'helpers', 'servers', 'per-session-state.mjs');
const quick = process.argv.includes('--quick');
const baselineAt = process.argv.indexOf('--baseline');
const baseline = baselineAt > 0 ? path.resolve(process.argv[baselineAt + 1] ?? '') : undefined;
const scale = quick ? 0.1 : 1;
const ROUNDS = 5;
const N = { warmup: Math.round(300 * scale), latency: Math.round(1000 * scale), throughput: Math.round(1000 * scale) };
const CONCURRENCY = 16;
const log = (...a) => console.error('[bench]', ...a);

async function replica(name, redisUrl, env, server = SERVER) {
  const port = await freePort();
  const proc = start(name, process.execPath, [server], { env: { PORT: String(port), REPLICA: name, MCP_MIGRATE_STORE: redisUrl, ...env } });
  await waitForPort(port, 20_000, proc);
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}

let nextId = 1;
const call = (name, args = {}) => ({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args } });

async function openSession(url, agent, value) {
  const init = await post(url, agent, initializeBody());
  const sid = String(init.headers['mcp-session-id'] ?? '');
  if (init.status !== 200 || !sid) throw new Error(`initialize failed: ${init.status} ${init.text.slice(0, 300)}`);
  await post(url, agent, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
  await post(url, agent, call('remember', { value }), sid);
  return sid;
}

/** One `recall`; throws unless the session's own value comes back from replica `by`. */
async function recall(url, agent, sid, value, by) {
  const r = await post(url, agent, call('recall'), sid);
  const got = JSON.parse(r.message?.result?.content?.[0]?.text ?? '{}');
  if (r.status !== 200 || got.value !== value || got.replica !== by) throw new Error(`recall failed: ${r.status} ${r.text.slice(0, 300)}`);
}

async function main() {
  const redis = await startRedis();
  const s = await replica('S', redis.url, { AFFINITY: 'replay', MCP_MIGRATE_KEY_PREFIX: 'bench-direct:' });
  const a = await replica('A', redis.url, { AFFINITY: 'owner', MCP_MIGRATE_KEY_PREFIX: 'bench-owner:' });
  const b = await replica('B', redis.url, { AFFINITY: 'owner', MCP_MIGRATE_KEY_PREFIX: 'bench-owner:' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const direct = await openSession(s.url, agent, 'direct');
  const owned = await openSession(a.url, agent, 'owned');
  const targets = [
    { name: 'direct', url: s.url, sid: direct, value: 'direct', by: 'S', procs: [s] },
    { name: 'owner', url: a.url, sid: owned, value: 'owned', by: 'A', procs: [a, b] },
    { name: 'forwarded', url: b.url, sid: owned, value: 'owned', by: 'A', procs: [a, b] },
  ];
  if (baseline) {
    const server = path.join(baseline, path.basename(SERVER));
    fs.copyFileSync(SERVER, server);
    const a0 = await replica('A0', redis.url, { AFFINITY: 'owner', MCP_MIGRATE_KEY_PREFIX: 'bench-base:' }, server);
    const b0 = await replica('B0', redis.url, { AFFINITY: 'owner', MCP_MIGRATE_KEY_PREFIX: 'bench-base:' }, server);
    const sid = await openSession(a0.url, agent, 'base');
    targets.push({ name: 'owner@base', url: a0.url, sid, value: 'base', by: 'A0', procs: [a0, b0] });
    targets.push({ name: 'forwarded@base', url: b0.url, sid, value: 'base', by: 'A0', procs: [a0, b0] });
  }
  for (const t of targets) {
    Object.assign(t, { lat: [], rps: [], cpu: 0, requests: 0 });
    log(`warm-up ${t.name}`);
    for (let i = 0; i < N.warmup; i += 1) await recall(t.url, agent, t.sid, t.value, t.by);
  }
  const measured = async (t, count, concurrency) => {
    const c0 = t.procs.reduce((x, p) => x + (cpuMs(p.proc.pid) ?? 0), 0);
    const r = await runLoad(() => recall(t.url, agent, t.sid, t.value, t.by), { count, concurrency });
    t.cpu += t.procs.reduce((x, p) => x + (cpuMs(p.proc.pid) ?? 0), 0) - c0;
    t.requests += count;
    return r;
  };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const t of targets) {
      log(`round ${round + 1}/${ROUNDS}: ${t.name}`);
      t.lat.push(...(await measured(t, N.latency, 1)).times);
      t.rps.push((await measured(t, N.throughput, CONCURRENCY)).rps);
    }
  }
  agent.destroy();
  const f = (x, d = 2) => x.toFixed(d);
  for (const t of targets) {
    t.lat.sort((x, y) => x - y);
    t.p50 = percentile(t.lat, 50);
    t.p99 = percentile(t.lat, 99);
    t.throughput = percentile([...t.rps].sort((x, y) => x - y), 50);
    t.cpuPerReq = (t.cpu * 1000) / t.requests;
  }
  const by = Object.fromEntries(targets.map((t) => [t.name, t]));
  const lines = [];
  lines.push(`Runtime owner affinity, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end.`);
  lines.push(`${ROUNDS} rounds × ${N.latency} sequential calls (latency) and ${N.throughput} calls at concurrency ${CONCURRENCY} (throughput) per target, interleaved.`);
  lines.push('');
  lines.push(`| | ${targets.map((t) => `\`${t.name}\``).join(' | ')} |`);
  lines.push(`|---|${targets.map(() => '---:').join('|')}|`);
  const row = (label, fn) => lines.push(`| ${label} | ${targets.map(fn).join(' | ')} |`);
  row('tools/call p50 (ms)', (t) => f(t.p50));
  row('tools/call p99 (ms)', (t) => f(t.p99));
  row(`throughput, concurrency ${CONCURRENCY} (req/s, median of rounds)`, (t) => String(Math.round(t.throughput)));
  row('server CPU per request, all replicas of the target (µs)', (t) => String(Math.round(t.cpuPerReq)));
  lines.push('');
  lines.push('| ratio | p50 | p99 | req/s | CPU per request |');
  lines.push('|---|---:|---:|---:|---:|');
  const ratio = (x, y) => {
    const [p, q] = [by[x], by[y]];
    lines.push(`| \`${x}\` / \`${y}\` | ${f(p.p50 / q.p50)}× | ${f(p.p99 / q.p99)}× | ${f(p.throughput / q.throughput)}× | ${f(p.cpuPerReq / q.cpuPerReq)}× |`);
  };
  ratio('forwarded', 'owner');
  ratio('forwarded', 'direct');
  ratio('owner', 'direct');
  if (baseline) {
    ratio('owner', 'owner@base');
    ratio('forwarded', 'forwarded@base');
  }
  lines.push('');
  lines.push(`Added by the forward, p50: ${f(by.forwarded.p50 - by.owner.p50)} ms vs the owner-served request, ${f(by.forwarded.p50 - by.direct.p50)} ms vs direct.`);
  console.log(lines.join('\n'));
  await stopAll();
  await redis.stop().catch(() => undefined);
}

runMain(main);
