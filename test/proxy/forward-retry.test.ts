/**
 * The owner forward over the shared dispatch relay (`attemptForward` on a `DispatchTarget`): the
 * retry-once rule. A keep-alive connection to the owner that was already used and is reset before any
 * answer resolves `retry` (the owner closed an idle connection as the request went out: nothing reached
 * it); a fresh connection reset the same way resolves `down` (the owner is gone), and so does a reused one
 * on the second attempt. Real sockets on loopback; the "owner" is a plain node:http server.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { DispatchTarget } from '../../src/proxy/http/dispatch.js';
import { attemptForward, forwardHeaders, type ForwardOutcome } from '../../src/proxy/owner/forward.js';

const servers: http.Server[] = [];
const targets: DispatchTarget[] = [];

afterEach(async () => {
  for (const t of targets.splice(0)) t.close();
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});

async function listen(s: http.Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** An owner that answers `ok`, except that it resets the connection of the requests `reset(n, onSocket)` picks (n: 1-based request count, onSocket: on its connection). */
async function owner(reset: (n: number, onSocket: number) => boolean): Promise<{ url: URL; requests: () => number }> {
  let n = 0;
  const perSocket = new WeakMap<Socket, number>();
  const s = http.createServer((req, res) => {
    n += 1;
    const k = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, k);
    req.resume();
    req.on('end', () => {
      if (reset(n, k)) req.socket.resetAndDestroy();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  return { url: new URL(await listen(s)), requests: () => n };
}

/** A forwarding replica in front of `target`: answers `ok` as relayed, or 599 with the forward's outcome. */
async function forwarder(target: DispatchTarget, mayRetry: boolean): Promise<string> {
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const attempt = {
        target,
        req,
        res,
        body,
        headers: forwardHeaders(req.headers, target.host, 'test', body.length),
        watchOwner: () => () => undefined,
        onAnswer: () => undefined,
        onBroken: () => undefined,
      };
      void attemptForward(attempt, mayRetry).then((outcome: ForwardOutcome) => {
        if (outcome !== 'done') res.writeHead(599, { 'x-outcome': outcome }).end();
      });
    });
  });
  return await listen(s);
}

async function post(url: string): Promise<{ status: number; outcome: string | null; body: string }> {
  const r = await fetch(`${url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
  return { status: r.status, outcome: r.headers.get('x-outcome'), body: await r.text() };
}

it('a reused connection reset before any answer resolves retry; a fresh one resolves down', async () => {
  // Request 2 is the second on the first connection (reused): reset. Request 3 is the first on a new one: reset.
  const o = await owner((n) => n === 2 || n === 3);
  const target = new DispatchTarget(o.url, 2_000);
  targets.push(target);
  const url = await forwarder(target, true);
  expect(await post(url)).toMatchObject({ status: 200, body: '{"ok":true}' });
  expect(await post(url)).toMatchObject({ status: 599, outcome: 'retry' });
  expect(await post(url)).toMatchObject({ status: 599, outcome: 'down' });
  expect(await post(url)).toMatchObject({ status: 200, body: '{"ok":true}' });
  expect(o.requests()).toBe(4);
});

it('without mayRetry (the second attempt), a reused connection reset before any answer resolves down', async () => {
  const o = await owner((n) => n === 2);
  const target = new DispatchTarget(o.url, 2_000);
  targets.push(target);
  const url = await forwarder(target, false);
  expect(await post(url)).toMatchObject({ status: 200 });
  expect(await post(url)).toMatchObject({ status: 599, outcome: 'down' });
});

it('nothing listening: down, never retry', async () => {
  const s = http.createServer();
  const origin = await listen(s);
  servers.splice(servers.indexOf(s), 1);
  await new Promise((r) => s.close(r));
  const target = new DispatchTarget(new URL(origin), 2_000);
  targets.push(target);
  const url = await forwarder(target, true);
  expect(await post(url)).toMatchObject({ status: 599, outcome: 'down' });
});
