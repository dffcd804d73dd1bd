/**
 * The relay's keep-alive pool (`HttpTarget`): sequential requests reuse one connection, and a server
 * whose `Keep-Alive: timeout=N` hint leaves under a second gets a fresh connection every time (Node's
 * rule, which the relay applies reading the hint from `rawHeaders`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpTarget, rawHeader } from '../../src/proxy/http/relay.js';

const servers: http.Server[] = [];
const targets: HttpTarget[] = [];

afterEach(async () => {
  for (const t of targets.splice(0)) t.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server answering every request with `ok`, counting the TCP connections it accepted. */
async function server(keepAliveHint?: string): Promise<{ url: URL; connections: () => number }> {
  let connections = 0;
  const s = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', ...(keepAliveHint ? { 'keep-alive': keepAliveHint } : {}) }).end('ok'));
  });
  s.on('connection', () => connections++);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return { url: new URL(`http://127.0.0.1:${(s.address() as AddressInfo).port}/mcp`), connections: () => connections };
}

function get(target: HttpTarget): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = target.send('GET', '/mcp', ['host', target.host]);
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve(body));
    });
  });
}

async function sequential(url: URL, n: number): Promise<string[]> {
  const target = new HttpTarget(url);
  targets.push(target);
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    bodies.push(await get(target));
    // The socket goes back to the pool after the answer's end event: let that happen first.
    await new Promise((r) => setImmediate(r));
  }
  return bodies;
}

describe('HttpTarget keep-alive pool', () => {
  it('sends sequential requests over one connection', async () => {
    const s = await server();
    expect(await sequential(s.url, 5)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(s.connections()).toBe(1);
  });

  it('keeps a connection whose server announces a keep-alive timeout of several seconds', async () => {
    const s = await server('timeout=5');
    await sequential(s.url, 4);
    expect(s.connections()).toBe(1);
  });

  it('opens a fresh connection each time for a server announcing a keep-alive timeout of 1 s', async () => {
    const s = await server('timeout=1');
    expect(await sequential(s.url, 4)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(s.connections()).toBe(4);
  });
});

describe('rawHeader', () => {
  it('finds the first value of a header in any spelling, and nothing for an absent one', () => {
    const raw = ['Content-Type', 'text/event-stream', 'X-A', '1', 'x-a', '2'];
    expect(rawHeader(raw, 'content-type')).toBe('text/event-stream');
    expect(rawHeader(raw, 'x-a')).toBe('1');
    expect(rawHeader(raw, 'content-length')).toBeUndefined();
  });
});
