#!/usr/bin/env node
// Notification latency across replicas: how long does a server-to-client notification take from the
// MCP server to the client's standalone GET stream, through `mcp-migrate proxy`, when the GET stream is
// held by ANOTHER replica than the one whose upstream session produced it? Baseline: the same
// notification on a direct connection to the server, measured in the same run.
//
//   node bench/proxy/notify.mjs            # full run
//   node bench/proxy/notify.mjs --quick    # smaller counts, for a smoke check
//   node bench/proxy/notify.mjs --json out.json
//
// Needs: `npm run build` (dist/src/cli/index.js), redis-server on PATH. Loopback only.
//
// The MCP server is a small SDK server (`@modelcontextprotocol/sdk` Server + StreamableHTTPServerTransport,
// this script run with `--serve PORT`) with one tool, `emit {count, intervalMs}`, which sends `count`
// `notifications/message` on the session's standalone stream, one every `intervalMs`, each carrying
// its send time (performance.timeOrigin + performance.now(), sub-millisecond, comparable between
// processes on one machine). Latency = receive time in this process − send time in the server.
// Paths (each: its own session, a GET stream, then `emit`):
//   direct             client GET on the server itself
//   proxy-same         proxy replica A's upstream session → Redis stream + pub/sub → GET on replica A
//   proxy-other        proxy replica A's upstream session → Redis stream + pub/sub → GET on replica B
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { freePort, openHttpSession, percentile, post, sleep, start, startRedis, stopAll, waitForPort } from './lib.mjs';

const now = () => performance.timeOrigin + performance.now();

if (process.argv[2] === '--serve') {
  await serve(Number(process.argv[3]));
} else {
  await main();
}

// ------------------------------------------------------------------ the MCP server (--serve PORT)

async function serve(port) {
  const { Server } = await import('@modelcontextprotocol/sdk/server/index.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { CallToolRequestSchema, ListToolsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const transports = new Map();
  const newServer = () => {
    const server = new Server({ name: 'notify-bench', version: '1.0.0' }, { capabilities: { tools: {}, logging: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [{ name: 'emit', description: 'Send notifications on the standalone stream', inputSchema: { type: 'object', properties: {} } }],
    }));
    server.setRequestHandler(CallToolRequestSchema, async (req) => {
      const { count = 1, intervalMs = 5 } = req.params.arguments ?? {};
      let seq = 0;
      const tick = () => {
        if (seq >= count) return;
        // No relatedRequestId: the notification goes on the standalone (GET) stream.
        void server.notification({ method: 'notifications/message', params: { level: 'info', data: { seq: seq++, t: now() } } });
        setTimeout(tick, intervalMs);
      };
      setTimeout(tick, intervalMs);
      return { content: [{ type: 'text', text: `emitting ${count}` }] };
    });
    return server;
  };
  http
    .createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
      const sid = req.headers['mcp-session-id'];
      if (sid && transports.has(sid)) return void transports.get(sid).handleRequest(req, res, body);
      if (!sid && body?.method === 'initialize') {
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => transports.set(id, transport) });
        transport.onclose = () => transports.delete(transport.sessionId);
        await newServer().connect(transport);
        return void transport.handleRequest(req, res, body);
      }
      res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
    })
    .listen(port, '127.0.0.1', () => console.error(`notify-bench server on ${port}`));
}

// ------------------------------------------------------------------ the benchmark

async function main() {
  const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'index.js');
  const SECRET = 'bench-secret-0123456789abcdef-not-for-production';
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const N = { warmup: quick ? 50 : 200, measured: quick ? 300 : 2000, intervalMs: 2 };
  const log = (...a) => console.error('[notify]', ...a);
  if (!fs.existsSync(CLI)) throw new Error('dist/src/cli/index.js is missing: run `npm run build` first');

  const cleanup = async () => {
    await stopAll();
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const redis = await startRedis();
    const serverPort = await freePort();
    const srv = start('notify-server', process.execPath, [fileURLToPath(import.meta.url), '--serve', String(serverPort)], { cwd: ROOT });
    await waitForPort(serverPort, 20_000, srv);
    const serverUrl = `http://127.0.0.1:${serverPort}/mcp`;
    const replicas = [];
    for (const name of ['A', 'B']) {
      const port = await freePort();
      const p = start(`proxy-${name}`, process.execPath, [
        CLI, 'proxy', '--listen', `127.0.0.1:${port}`, '--path', '/mcp', '--store', redis.url, '--session-secret', SECRET, '--upstream', serverUrl, '--log-level', 'warn',
      ]);
      await waitForPort(port, 20_000, p);
      replicas.push({ name, url: `http://127.0.0.1:${port}/mcp`, proc: p });
    }
    const [A, B] = replicas;
    const agent = new http.Agent({ keepAlive: true });

    /** One path: a session on `sessionUrl`, a GET stream on `getUrl`, `emit` on `sessionUrl`; latencies in ms. */
    const measure = async (label, sessionUrl, getUrl, count) => {
      const sid = await openHttpSession(sessionUrl, agent);
      const latencies = [];
      const seen = new Set();
      let duplicates = 0;
      const get = await openGet(getUrl, sid, (m) => {
        if (m.method !== 'notifications/message' || typeof m.params?.data?.t !== 'number') return;
        if (seen.has(m.params.data.seq)) duplicates++;
        seen.add(m.params.data.seq);
        latencies.push(now() - m.params.data.t);
      });
      await sleep(300); // the GET is followed; the replica holding it opened its own upstream session
      const r = await post(sessionUrl, agent, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'emit', arguments: { count, intervalMs: N.intervalMs } } }, sid);
      if (r.status !== 200) throw new Error(`${label}: emit failed: ${r.status} ${r.text.slice(0, 200)}`);
      const deadline = Date.now() + 30_000 + count * N.intervalMs * 4;
      while (seen.size < count && Date.now() < deadline) await sleep(20);
      get.close();
      await fetch(sessionUrl, { method: 'DELETE', headers: { 'mcp-session-id': sid } }).catch(() => undefined);
      if (seen.size < count) throw new Error(`${label}: received ${seen.size} of ${count} notifications`);
      return { latencies, duplicates, getReplica: get.replica, sessionReplica: r.headers['x-mcp-migrate-replica'] };
    };

    const paths = [
      { label: 'direct', sessionUrl: serverUrl, getUrl: serverUrl },
      { label: 'proxy-same', sessionUrl: A.url, getUrl: A.url },
      { label: 'proxy-other', sessionUrl: A.url, getUrl: B.url },
    ];
    const results = [];
    for (const p of paths) {
      log(`${p.label}: warm-up ${N.warmup}`);
      await measure(p.label, p.sessionUrl, p.getUrl, N.warmup);
      const before = await redis.commandStats();
      log(`${p.label}: ${N.measured} notifications, one every ${N.intervalMs} ms`);
      const m = await measure(p.label, p.sessionUrl, p.getUrl, N.measured);
      const after = await redis.commandStats();
      const evals = (after.get('evalsha') ?? 0) - (before.get('evalsha') ?? 0);
      if (p.label === 'proxy-other' && m.getReplica === m.sessionReplica) throw new Error('proxy-other: GET and session on the same replica');
      const sorted = [...m.latencies].sort((a, b) => a - b);
      results.push({
        path: p.label,
        notifications: sorted.length,
        duplicates: m.duplicates,
        p50: percentile(sorted, 50),
        p90: percentile(sorted, 90),
        p99: percentile(sorted, 99),
        max: sorted.at(-1),
        redisScriptsPerNotification: p.label === 'direct' ? 0 : evals / N.measured,
      });
    }
    const base = results[0].p50;
    const fmt = (x) => x.toFixed(2);
    console.log(`\nNotification latency, server → client GET stream (${N.measured} notifications per path, one every ${N.intervalMs} ms; node ${process.version})\n`);
    console.log('| path | notifications | duplicates | p50 ms | p90 ms | p99 ms | max ms | p50 vs direct | Redis scripts / notification |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      console.log(`| ${r.path} | ${r.notifications} | ${r.duplicates} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${(r.p50 / base).toFixed(2)}× | ${r.redisScriptsPerNotification.toFixed(2)} |`);
    }
    if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ node: process.version, N, results }, null, 2));
  } finally {
    await cleanup();
  }
}

/** A GET SSE stream; calls `onMessage` with each JSON-RPC message. */
function openGet(url, sid, onMessage) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: u.hostname, port: u.port, path: u.pathname, agent: false, headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: ${res.statusCode}`));
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (c) => {
          buf += c;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            if (data) onMessage(JSON.parse(data));
          }
        });
        res.on('error', () => undefined);
        resolve({ replica: res.headers['x-mcp-migrate-replica'], close: () => req.destroy() });
      },
    );
    req.on('error', reject);
  });
}
