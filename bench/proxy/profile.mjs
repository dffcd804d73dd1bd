#!/usr/bin/env node
// Where does the proxy's CPU go on a steady-state request? One proxy under `node --cpu-prof`, a session
// opened beforehand, N sequential `tools/call echo` POSTs; then its CPU per request and the functions and
// files that took the most self time during the measured phase only (start-up and shutdown excluded).
//
//   node bench/proxy/profile.mjs                          # HTTP upstream (server-everything streamableHttp)
//   node bench/proxy/profile.mjs --upstream stdio         # stdio upstream (server-everything stdio)
//   node bench/proxy/profile.mjs --count 5000 --top 40    # more requests, longer tables
//   node bench/proxy/profile.mjs --cli other/dist/src/cli/index.js   # profile another build (A/B)
//   node bench/proxy/profile.mjs --keep                   # keep the .cpuprofile (path printed)
//   node bench/proxy/profile.mjs --forwarder              # owner routing: profile a replica that forwards
//                                                         # every request to the session's owner (another replica)
//
// Needs: `npm run build`, redis-server on PATH. Loopback only; everything is stopped at the end.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, EVERYTHING, freePort, httpEcho, openHttpSession, ROOT, runMain, SECRET, start, startRedis, stopAll, waitForPort } from './lib.mjs';


const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const upstreamKind = opt('--upstream', 'http');
const cli = path.resolve(opt('--cli', path.join(ROOT, 'dist', 'src', 'cli', 'index.js')));
const count = Number(opt('--count', '3000'));
const warmup = Number(opt('--warmup', '500'));
const top = Number(opt('--top', '25'));
const keep = args.includes('--keep');
const forwarder = args.includes('--forwarder');
const log = (...a) => console.error('[profile]', ...a);

async function main() {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-cpuprof-'));
  const redis = await startRedis();
  let upstreamArgs;
  if (upstreamKind === 'http') {
    const upPort = await freePort();
    const everything = start('everything', process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PORT: String(upPort) } });
    await waitForPort(upPort, 20_000, everything);
    upstreamArgs = ['--upstream', `http://127.0.0.1:${upPort}/mcp`];
  } else {
    upstreamArgs = ['--', process.execPath, EVERYTHING, 'stdio'];
  }
  const proxyArgs = (port) => [cli, 'proxy', '--listen', `127.0.0.1:${port}`, '--store', redis.url, '--session-secret', SECRET, '--log-level', 'warn', ...upstreamArgs];
  const port = await freePort();
  const proxy = start('proxy', process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, ...proxyArgs(port)]);
  await waitForPort(port, 20_000, proxy);
  const url = `http://127.0.0.1:${port}/mcp`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let sid;
  if (forwarder) {
    // The session is opened on an unprofiled owner replica; the profiled one only forwards.
    const ownerPort = await freePort();
    const owner = start('owner', process.execPath, proxyArgs(ownerPort));
    await waitForPort(ownerPort, 20_000, owner);
    sid = await openHttpSession(`http://127.0.0.1:${ownerPort}/mcp`, agent);
  } else {
    sid = await openHttpSession(url, agent);
  }
  log(`warm-up: ${warmup} calls`);
  for (let i = 0; i < warmup; i += 1) await httpEcho(url, agent, sid);
  const cpu0 = cpuMs(proxy.pid);
  const t0 = performance.now();
  log(`measuring: ${count} sequential calls`);
  for (let i = 0; i < count; i += 1) await httpEcho(url, agent, sid);
  const measuredMs = performance.now() - t0;
  const cpu1 = cpuMs(proxy.pid);
  agent.destroy();
  const stopAt = performance.now();
  await proxy.stop();
  const tailMs = performance.now() - stopAt;
  await stopAll();
  await redis.stop().catch(() => undefined);

  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir} (did the proxy exit cleanly?)\n${proxy.output().slice(-2000)}`);
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const summary = summarize(profile, measuredMs, tailMs);
  const perRequest = ((cpu1 - cpu0) * 1000) / count;
  const lines = [];
  lines.push(`${forwarder ? 'Forwarding replica (owner routing; the owner is' : 'Proxy'} in front of ${upstreamKind}${forwarder ? ')' : ''}, ${cli === path.join(ROOT, 'dist', 'src', 'cli', 'index.js') ? 'this build' : cli}; Node ${process.version}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}.`);
  lines.push(`${count} sequential tools/call echo after ${warmup} warm-up calls: proxy CPU ${Math.round(perRequest)} µs per request (procfs, user + system); profiled JavaScript + native busy time in the measured window ${Math.round((summary.busyUs / count))} µs per request (GC ${Math.round(summary.gcUs / count)} µs).`);
  lines.push('');
  lines.push('| self µs/request | share | function | where |');
  lines.push('|---:|---:|---|---|');
  for (const f of summary.functions.slice(0, top)) lines.push(`| ${(f.us / count).toFixed(1)} | ${((100 * f.us) / summary.busyUs).toFixed(1)}% | ${f.name} | ${f.where} |`);
  lines.push('');
  lines.push('| self µs/request | share | file |');
  lines.push('|---:|---:|---|');
  for (const f of summary.files.slice(0, top)) lines.push(`| ${(f.us / count).toFixed(1)} | ${((100 * f.us) / summary.busyUs).toFixed(1)}% | ${f.file} |`);
  console.log(lines.join('\n'));
  if (keep) log(`profile kept: ${path.join(dir, file)}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}

/** Self time by function and by file over the samples of the measured window (the profile's last `measuredMs + tailMs`, minus the tail). */
function summarize(profile, measuredMs, tailMs) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const end = profile.endTime;
  const from = end - (measuredMs + tailMs) * 1000;
  const to = end - tailMs * 1000;
  const byFn = new Map();
  const byFile = new Map();
  let busyUs = 0;
  let gcUs = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i += 1) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) continue;
    const node = nodes.get(profile.samples[i]);
    const cf = node.callFrame;
    if (cf.functionName === '(idle)' || cf.functionName === '(program)') continue;
    const next = profile.timeDeltas[i + 1] ?? dt;
    busyUs += next;
    if (cf.functionName === '(garbage collector)') gcUs += next;
    const file = shortFile(cf.url) || `(${cf.functionName || 'native'})`;
    const key = `${cf.functionName || '(anonymous)'}\u0000${file}:${cf.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + next);
    byFile.set(file, (byFile.get(file) ?? 0) + next);
  }
  const functions = [...byFn].map(([k, us]) => ({ name: k.split('\u0000')[0], where: k.split('\u0000')[1], us })).sort((a, b) => b.us - a.us);
  const files = [...byFile].map(([file, us]) => ({ file, us })).sort((a, b) => b.us - a.us);
  return { busyUs, gcUs, functions, files };
}

function shortFile(url) {
  if (!url) return '';
  const p = url.replace(/^file:\/\//, '');
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) return p.slice(nm);
  const rel = path.relative(ROOT, p);
  return rel.startsWith('..') ? p.replace(/^.*\/(dist|src)\//, '$1/') : rel;
}

runMain(main);
