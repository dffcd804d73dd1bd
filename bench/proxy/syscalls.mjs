#!/usr/bin/env node
// System calls per request of the proxy, counted with `strace -c` on a running replica: the floor that no
// JavaScript change lowers. Two owner-routing replicas A (owner) and B share one Redis and one
// server-everything (streamableHttp); a session opened on A; N sequential `tools/call echo` POSTs:
//   owner      requests to A, strace on A (client → A → upstream)
//   forwarder  requests to B, strace on B (client → B → A: B's hop alone)
//
//   node bench/proxy/syscalls.mjs                 # 1000 requests per target
//   node bench/proxy/syscalls.mjs --count 3000
//   node bench/proxy/syscalls.mjs --cli other/dist/src/cli/index.js   # another build
//
// Needs: `npm run build`, redis-server and strace on PATH (ptrace allowed). Loopback only.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { EVERYTHING, freePort, httpEcho, openHttpSession, ROOT, runMain, SECRET, start, startRedis, stopAll, waitForPort } from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const cli = path.resolve(opt('--cli', path.join(ROOT, 'dist', 'src', 'cli', 'index.js')));
const count = Number(opt('--count', '1000'));
const log = (...a) => console.error('[syscalls]', ...a);

/** Runs `count` echoes to `url` while strace counts the system calls of `pid`; per-syscall totals. */
async function counted(pid, url, agent, sid, dir, name) {
  const out = path.join(dir, `${name}.txt`);
  const st = spawn('strace', ['-f', '-c', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000)); // attached (no request runs meanwhile)
  for (let i = 0; i < count; i += 1) await httpEcho(url, agent, sid);
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  const calls = new Map();
  for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m && m[2] !== 'total') calls.set(m[2], Number(m[1]));
  }
  return calls;
}

async function main() {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-syscalls-'));
  const redis = await startRedis();
  const upPort = await freePort();
  const everything = start('everything', process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PORT: String(upPort) } });
  await waitForPort(upPort, 20_000, everything);
  const replica = async (name) => {
    const port = await freePort();
    const argv = [cli, 'proxy', '--listen', `127.0.0.1:${port}`, '--store', redis.url, '--session-secret', SECRET, '--log-level', 'warn', '--upstream', `http://127.0.0.1:${upPort}/mcp`];
    const p = start(name, process.execPath, argv);
    await waitForPort(port, 20_000, p);
    return { pid: p.pid, url: `http://127.0.0.1:${port}/mcp` };
  };
  const a = await replica('owner-a');
  const b = await replica('forwarder-b');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sid = await openHttpSession(a.url, agent);
  for (const url of [a.url, b.url]) for (let i = 0; i < 300; i += 1) await httpEcho(url, agent, sid);
  log(`counting: ${count} calls to the owner, then ${count} to the forwarder`);
  const owner = await counted(a.pid, a.url, agent, sid, dir, 'owner');
  const forwarder = await counted(b.pid, b.url, agent, sid, dir, 'forwarder');
  agent.destroy();
  await stopAll();
  await redis.stop().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });

  // futex and friends are thread wake-ups (libuv's pool, V8's GC helpers), not per-request I/O.
  const shown = ['read', 'writev', 'write', 'epoll_pwait', 'epoll_wait', 'epoll_ctl', 'setsockopt', 'accept4', 'connect', 'socket', 'close'];
  const per = (calls, k) => ((calls.get(k) ?? 0) / count).toFixed(2);
  const lines = [];
  lines.push(`System calls per request, ${cli === path.join(ROOT, 'dist', 'src', 'cli', 'index.js') ? 'this build' : cli}; Node ${process.version}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}; ${count} sequential tools/call echo per target.`);
  lines.push('');
  lines.push('| syscall | owner (A: client → A → upstream) | forwarder (B: client → B → A) |');
  lines.push('|---|---:|---:|');
  for (const k of shown) if (owner.has(k) || forwarder.has(k)) lines.push(`| ${k} | ${per(owner, k)} | ${per(forwarder, k)} |`);
  const total = (calls) => [...calls].filter(([k]) => k !== 'futex').reduce((s, [, v]) => s + v, 0) / count;
  lines.push(`| all but futex | ${total(owner).toFixed(2)} | ${total(forwarder).toFixed(2)} |`);
  console.log(lines.join('\n'));
}

runMain(main);
