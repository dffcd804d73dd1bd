#!/usr/bin/env node
// A burst of `initialize` on one stdio replica: when does each answer arrive, with `--max-starting K`
// against no bound (a K larger than the burst)? Back to back in one run, alternating, so load drifts
// hit both alike.
//
//   node bench/proxy/start-burst.mjs                 # 16 initializes, K = 4 vs unbounded, 2 rounds
//   node bench/proxy/start-burst.mjs --burst 12 --k 2 --rounds 3
//
// Needs: `npm run build` (dist/src/cli/index.js). Loopback only. One `mcp-migrate proxy --store memory`
// in front of server-everything `stdio`; each initialize is a raw POST, its answer checked (200 with a
// session id); the sessions are DELETEd after each burst and the proxy stopped.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { EVERYTHING, freePort, percentile, ROOT, waitForPort } from './lib.mjs';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'index.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt);
const BURST = opt('burst', 16);
const K = opt('k', 4);
const ROUNDS = opt('rounds', 2);
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } };

async function burst(maxStarting) {
  const port = await freePort();
  const proxy = spawn(process.execPath, [CLI, 'proxy', '--listen', `127.0.0.1:${port}`, '--store', 'memory', '--log-level', 'error', '--max-starting', String(maxStarting), '--', process.execPath, EVERYTHING, 'stdio'], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(port);
    const url = `http://127.0.0.1:${port}/mcp`;
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: BURST }, async () => {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(INIT) });
        await res.text();
        const id = res.headers.get('mcp-session-id');
        if (res.status !== 200 || !id) throw new Error(`initialize answered ${res.status}`);
        return { ms: performance.now() - t0, id };
      }),
    );
    await Promise.all(answers.map((a) => fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': a.id } })));
    return answers.map((a) => a.ms).sort((a, b) => a - b);
  } finally {
    proxy.kill('SIGTERM');
    await new Promise((r) => proxy.once('exit', r));
  }
}

const rows = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const k of [K, BURST * 10]) {
    const load = os.loadavg()[0].toFixed(1);
    const ms = await burst(k);
    rows.push({ k: k >= BURST ? 'unbounded' : String(k), load, first: ms[0], p50: percentile(ms, 50), last: ms[ms.length - 1] });
  }
}
console.log(`| --max-starting | load (1 min) | first answer s | median s | last s |  (${BURST} initializes at once, one replica)`);
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.k} | ${r.load} | ${(r.first / 1000).toFixed(1)} | ${(r.p50 / 1000).toFixed(1)} | ${(r.last / 1000).toFixed(1)} |`);
