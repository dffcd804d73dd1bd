#!/usr/bin/env node
// What would another HTTP client save on the proxy's hops? Client-process CPU per request of one keep-alive
// POST (a tools/call-sized JSON body, the proxy's headers) to a plain node:http server in a child process,
// sequential, for: node:http with the relay's agent settings; undici Pool.request(); undici Pool.dispatch()
// with a raw handler (no stream objects). Rounds interleaved, so load affects all alike.
//
//   npm i --no-save undici@7 && node bench/proxy/clients.mjs [--count 3000] [--rounds 3]
//
// undici is not a dependency of the project: install it without saving to run this. Loopback only.
import http from 'node:http';
import os from 'node:os';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);

if (args[0] === '--serve') {
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sid' }).end(Buffer.concat(chunks)));
  });
  srv.listen(0, '127.0.0.1', () => process.send(srv.address().port));
} else {
  const { Pool } = await import('undici').catch(() => {
    console.error('undici is not installed: npm i --no-save undici@7');
    process.exit(1);
  });
  const count = opt('--count', 3000);
  const rounds = opt('--rounds', 3);
  const child = fork(fileURLToPath(import.meta.url), ['--serve']);
  const port = await new Promise((r) => child.once('message', r));
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bench' } } }));
  const headers = ['host', `127.0.0.1:${port}`, 'content-type', 'application/json', 'content-length', String(body.length), 'accept', 'application/json, text/event-stream', 'mcp-session-id', 'sid', 'mcp-protocol-version', '2025-06-18'];
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
  const pool = new Pool(`http://127.0.0.1:${port}`);
  const clients = {
    'node:http': () =>
      new Promise((resolve, reject) => {
        const req = http.request({ hostname: '127.0.0.1', port, method: 'POST', path: '/mcp', headers, agent });
        req.once('response', (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.once('end', () => resolve(Buffer.concat(chunks)));
        });
        req.once('error', reject);
        req.end(body);
      }),
    'undici request()': async () => {
      const res = await pool.request({ method: 'POST', path: '/mcp', headers, body });
      const chunks = [];
      for await (const c of res.body) chunks.push(c);
      return Buffer.concat(chunks);
    },
    'undici dispatch()': () =>
      new Promise((resolve, reject) => {
        const chunks = [];
        pool.dispatch(
          { method: 'POST', path: '/mcp', headers, body },
          { onConnect() {}, onHeaders: () => true, onData: (c) => (chunks.push(c), true), onComplete: () => resolve(Buffer.concat(chunks)), onError: reject },
        );
      }),
  };
  const cpu = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
  for (const fn of Object.values(clients)) for (let i = 0; i < 500; i += 1) await fn();
  for (let r = 0; r < rounds; r += 1) {
    for (const [name, fn] of Object.entries(clients)) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < count; i += 1) await fn();
      const c = process.cpuUsage(c0);
      cpu[name].push((c.user + c.system) / count);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(cpu['node:http']);
  console.log(`HTTP client CPU per keep-alive POST (client process only), Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}; ${rounds} rounds × ${count} sequential requests.`);
  console.log('');
  console.log('| client | CPU per request, median of rounds (µs) | rounds (µs) | vs node:http |');
  console.log('|---|---:|---|---:|');
  for (const [name, xs] of Object.entries(cpu)) console.log(`| ${name} | ${median(xs).toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${(median(xs) / base).toFixed(2)}× |`);
  child.kill();
  await pool.close();
  agent.destroy();
  process.exit(0);
}
