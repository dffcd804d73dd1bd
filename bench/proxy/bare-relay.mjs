#!/usr/bin/env node
// The floor of one HTTP hop between two Node processes: a relay with no proxy logic (no session, no
// routing, no store, no logging) in front of another server, for bench/proxy/owner.mjs --floor.
//
//   node bench/proxy/bare-relay.mjs http   <port> <target-origin>   # node:http server + keep-alive http.Agent client, answer piped
//   node bench/proxy/bare-relay.mjs undici <port> <target-origin>   # node:http server + undici Pool.dispatch() with a raw handler
//   node bench/proxy/bare-relay.mjs tcp    <port> <target-origin>   # L4: each client connection piped to one connection to the target
//
// Loopback only. The HTTP relays read the whole request, and send the whole answer once complete as head
// and body in one write with a Content-Length (no streaming: a lower bound for an answer of one event,
// which is what the bench sends; a real relay must stream SSE).
import http from 'node:http';
import net from 'node:net';

const [kind, portArg, target] = process.argv.slice(2);
const port = Number(portArg);
const origin = new URL(target);
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host', 'expect']);

/** The client's headers minus hop-by-hop ones, as a flat list with the target's host first. */
function headersOf(raw) {
  const out = ['host', origin.host];
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  return out;
}

/** The answer's headers minus hop-by-hop ones, as a flat list. */
function answerHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = typeof raw[i] === 'string' ? raw[i] : raw[i].toString('latin1');
    if (!HOP.has(name.toLowerCase())) out.push(name, typeof raw[i + 1] === 'string' ? raw[i + 1] : raw[i + 1].toString('latin1'));
  }
  return out;
}

/** The answer's headers minus hop-by-hop ones and its length, plus its full length. */
function completeHeaders(raw, length) {
  const out = answerHeaders(raw).filter((_, i, a) => (i % 2 === 0 ? a[i].toLowerCase() !== 'content-length' : a[i - 1].toLowerCase() !== 'content-length'));
  out.push('content-length', String(length));
  return out;
}

/** Reads the client's body (a POST's JSON-RPC message), then calls `send(body)`. */
function withBody(req, send) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => send(chunks.length === 0 ? undefined : Buffer.concat(chunks)));
}

if (kind === 'tcp') {
  net
    .createServer((client) => {
      client.setNoDelay(true);
      const up = net.connect({ host: origin.hostname, port: Number(origin.port) }, () => up.setNoDelay(true));
      client.pipe(up).pipe(client);
      client.on('error', () => up.destroy());
      up.on('error', () => client.destroy());
    })
    .listen(port, '127.0.0.1');
} else if (kind === 'http') {
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
  http
    .createServer((req, res) => {
      withBody(req, (body) => {
        const out = http.request({ hostname: origin.hostname, port: origin.port, method: req.method, path: req.url, headers: headersOf(req.rawHeaders), agent });
        out.on('response', (up) => {
          const chunks = [];
          up.on('data', (c) => chunks.push(c));
          up.on('end', () => {
            const b = Buffer.concat(chunks);
            res.writeHead(up.statusCode, completeHeaders(up.rawHeaders, b.length)).end(b);
          });
        });
        out.on('error', () => res.destroy());
        out.end(body);
      });
    })
    .listen(port, '127.0.0.1');
} else if (kind === 'undici') {
  const { Pool } = await import('undici');
  const pool = new Pool(origin.origin);
  http
    .createServer((req, res) => {
      withBody(req, (body) => {
        let status = 502;
        let head = [];
        const chunks = [];
        pool.dispatch(
          { method: req.method, path: req.url, headers: headersOf(req.rawHeaders), body: body ?? null },
          {
            onConnect() {},
            onHeaders(s, raw) {
              if (s >= 200) [status, head] = [s, raw];
              return true;
            },
            onData: (chunk) => chunks.push(chunk) > 0,
            onComplete: () => {
              const b = Buffer.concat(chunks);
              res.writeHead(status, completeHeaders(head, b.length)).end(b);
            },
            onError: () => res.destroy(),
          },
        );
      });
    })
    .listen(port, '127.0.0.1');
} else {
  console.error('usage: bare-relay.mjs http|undici|tcp <port> <target-origin>');
  process.exit(2);
}
