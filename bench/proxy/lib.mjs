// Helpers for bench/proxy/run.mjs: free ports, process groups, redis-server, raw MCP over HTTP and stdio.
// Plain ESM so the benchmark runs with `node` alone (the test harness in test/helpers is TypeScript).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** server-everything's entry (argument `stdio` or `streamableHttp`), installed as a devDependency. */
export const EVERYTHING = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
/** The `--session-secret` every bench replica shares (loopback only). */
export const SECRET = 'bench-secret-0123456789abcdef-not-for-production';

/** Runs a bench's `main`: exit 0 when it resolves; on a rejection, print it, stop every started process, exit 1. */
export function runMain(main) {
  main().then(
    () => process.exit(0),
    async (err) => {
      console.error(err);
      await stopAll();
      process.exit(1);
    },
  );
}

const handedOut = new Set();

/** @returns {Promise<number>} a TCP port that was free on 127.0.0.1 a moment ago, never the same twice */
export async function freePort() {
  for (let i = 0; i < 50; i += 1) {
    const port = await ephemeralPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no fresh free port');
}

function ephemeralPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, timeoutMs = 20_000, proc) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${proc.name} exited early (code ${proc.exitCode})\n${proc.output().slice(-3000)}`);
    const ok = await new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      sock.once('connect', () => (sock.destroy(), resolve(true)));
      sock.once('error', () => (sock.destroy(), resolve(false)));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for 127.0.0.1:${port}${proc ? `\n${proc.output().slice(-3000)}` : ''}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {}
  }
});

/** Spawn in a new process group with captured output (tail kept). */
export function start(name, cmd, args, { env, cwd, stdin = 'ignore' } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (c) => {
    out += c.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const p = {
    name,
    child,
    pid: child.pid,
    exited: false,
    exitCode: undefined,
    output: () => out,
    async stop() {
      if (p.exited) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, 3000);
      await p.done;
      clearTimeout(t);
    },
  };
  p.done = new Promise((resolve) =>
    child.on('exit', (code) => {
      p.exited = true;
      p.exitCode = code;
      live.delete(p);
      try {
        process.kill(-child.pid, 'SIGKILL'); // leftovers in the group
      } catch {}
      resolve();
    }),
  );
  live.add(p);
  return p;
}

export async function stopAll() {
  await Promise.all([...live].map((p) => p.stop()));
}

// ---------------------------------------------------------------- nginx

/**
 * nginx in the foreground with plain round-robin over `upstreams` (`host:port` list) and upstream
 * keep-alive, everything under a fresh temp prefix (the same proxying settings as the tests' nginx).
 */
export async function startNginx(upstreams, location = '/mcp') {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-bench-nginx-'));
  fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const port = await freePort();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const conf = `${asRoot ? 'user root;\n' : ''}worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/client_body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  upstream replicas {
${upstreams.map((u) => `    server ${u} max_fails=0;`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location ${location} {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`;
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const binary = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((f) => fs.existsSync(f)) ?? 'nginx';
  const proc = start('nginx', binary, ['-e', `${prefix}/error.log`, '-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;']);
  await waitForPort(port, 10_000, proc);
  return { url: `http://127.0.0.1:${port}${location}`, proc };
}

// ---------------------------------------------------------------- redis

export async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-bench-redis-'));
  const port = await freePort();
  const proc = start('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', '']);
  await waitForPort(port, 10_000, proc);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    command: (...args) => redisCommand(port, args),
    async commandStats() {
      const text = String(await redisCommand(port, ['INFO', 'commandstats']));
      const m = new Map();
      for (const line of text.split(/\r?\n/)) {
        const r = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
        if (r) m.set(r[1].toLowerCase(), Number(r[2]));
      }
      return m;
    },
    async stop() {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Per-command call deltas, without `info`/`config`. */
export function statsDelta(before, after) {
  const d = new Map();
  for (const [k, v] of after) {
    if (k === 'info' || k.startsWith('config')) continue;
    const n = v - (before.get(k) ?? 0);
    if (n > 0) d.set(k, n);
  }
  return d;
}

export function redisCommand(port, args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    sock.once('error', reject);
    sock.on('data', (c) => {
      buf += c.toString();
      // Enough for PING/INFO: simple string, error, or one bulk string.
      if (buf.startsWith('+') || buf.startsWith('-') || buf.startsWith(':')) {
        if (buf.includes('\r\n')) {
          sock.destroy();
          if (buf.startsWith('-')) reject(new Error(buf.trim()));
          else resolve(buf.slice(1).trim());
        }
      } else if (buf.startsWith('$')) {
        const nl = buf.indexOf('\r\n');
        const len = Number(buf.slice(1, nl));
        if (Buffer.byteLength(buf) >= nl + 2 + len + 2) {
          sock.destroy();
          resolve(buf.slice(nl + 2, nl + 2 + len));
        }
      }
    });
    sock.once('connect', () => {
      let req = `*${args.length}\r\n`;
      for (const a of args.map(String)) req += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
      sock.write(req);
    });
  });
}

// ---------------------------------------------------------------- MCP over HTTP (raw)

export const PROTOCOL_VERSION = '2025-06-18';

/** POST one JSON-RPC message; resolves { status, headers, message } (message parsed from JSON or SSE). */
export function post(url, agent, body, sessionId) {
  const data = JSON.stringify(body);
  const u = new URL(url);
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': Buffer.byteLength(data),
  };
  if (sessionId) {
    headers['mcp-session-id'] = sessionId;
    headers['mcp-protocol-version'] = PROTOCOL_VERSION;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let message;
        const ct = String(res.headers['content-type'] ?? '');
        try {
          if (ct.includes('text/event-stream')) {
            for (const block of text.split(/\n\n/)) {
              const dataLines = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart());
              if (dataLines.length === 0 || dataLines.join('') === '') continue;
              const m = JSON.parse(dataLines.join('\n'));
              if (m.id !== undefined && m.id === body.id) message = m;
            }
          } else if (ct.includes('application/json') && text) {
            message = JSON.parse(text);
          }
        } catch (err) {
          reject(new Error(`bad response body (${res.statusCode}, ${ct}): ${text.slice(0, 300)}`));
          return;
        }
        resolve({ status: res.statusCode, headers: res.headers, message, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

export function initializeBody(id = 0) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'mcp-migrate-bench', version: '1.0.0' } },
  };
}

/** initialize + notifications/initialized; returns the session id. */
export async function openHttpSession(url, agent) {
  const init = await post(url, agent, initializeBody());
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || !sid || !init.message?.result) throw new Error(`initialize failed: ${init.status} ${init.text.slice(0, 300)}`);
  const note = await post(url, agent, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
  if (note.status !== 202) throw new Error(`notifications/initialized failed: ${note.status} ${note.text.slice(0, 300)}`);
  return String(sid);
}

let nextId = 1;
export function echoBody(msg = 'bench') {
  return { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'echo', arguments: { message: msg } } };
}

/** One tools/call echo; throws unless it is a 200 with the echoed text. */
export async function httpEcho(url, agent, sid) {
  const body = echoBody();
  const r = await post(url, agent, body, sid);
  const text = r.message?.result?.content?.[0]?.text;
  if (r.status !== 200 || text !== 'Echo: bench') throw new Error(`echo failed: ${r.status} ${r.text.slice(0, 300)}`);
}

// ---------------------------------------------------------------- MCP over stdio (raw)

/** A server-everything stdio process with request/response matching by id. */
export async function openStdioSession(entry) {
  const proc = start('everything-stdio', process.execPath, [entry, 'stdio'], { stdin: 'pipe' });
  const pending = new Map();
  let buf = '';
  proc.child.stdout.on('data', (c) => {
    buf += c.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const m = JSON.parse(line);
      if (m.id !== undefined && pending.has(m.id)) {
        pending.get(m.id)(m);
        pending.delete(m.id);
      }
    }
  });
  const request = (body) =>
    new Promise((resolve) => {
      pending.set(body.id, resolve);
      proc.child.stdin.write(`${JSON.stringify(body)}\n`);
    });
  const init = await request(initializeBody(`init`));
  if (!init.result) throw new Error(`stdio initialize failed: ${JSON.stringify(init)}`);
  proc.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  return {
    proc,
    async echo() {
      const r = await request(echoBody());
      if (r.result?.content?.[0]?.text !== 'Echo: bench') throw new Error(`stdio echo failed: ${JSON.stringify(r)}`);
    },
    stop: () => proc.stop(),
  };
}

// ---------------------------------------------------------------- statistics

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Run `fn` `count` times with at most `concurrency` in flight; returns per-call ms and wall ms. */
export async function runLoad(fn, { count, concurrency }) {
  const times = new Array(count);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const s = performance.now();
        await fn();
        times[i] = performance.now() - s;
      }
    }),
  );
  const wall = performance.now() - t0;
  times.sort((a, b) => a - b);
  return { times, wall, rps: (count / wall) * 1000 };
}

// ---------------------------------------------------------------- CPU time of another process

const CLK_TCK = 100; // USER_HZ on Linux
/** User + system CPU time of process `pid` in ms (Linux procfs), or undefined elsewhere. */
export function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}
