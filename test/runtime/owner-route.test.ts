/**
 * A server's own HTTP routes on the session's owner (`owner-route.ts`, `SessionTransportRegistry.ownerRoute`):
 * where the session id is found, the body given back to the stream for Express's body parsers, the body
 * forwarded byte for byte, and the errors (404 HTML or JSON, 413) — with a stand-in for the owner
 * decision (`OwnerAffinity.route`, tested in owner-affinity.test.ts and end to end in
 * test/integration/apply-owner-routes.test.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error -- express ships no types and this repository installs none (it is the SDK's dependency).
import expressUntyped from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_ROUTE_BODY_BYTES, SessionTransportRegistry, forwardToOwner, routeToOwner, type OwnerAffinity, type OwnerRouteHost, type SessionLocator } from '@mcp-migrate/runtime';

/** The few Express calls this test makes. */
type Req = http.IncomingMessage & { body?: unknown; query?: unknown };
type Res = http.ServerResponse & { json(value: unknown): void };
type Handler = (req: Req, res: Res, next: (err?: unknown) => void) => void;
interface App extends http.RequestListener {
  post(path: string, ...handlers: Handler[]): void;
  get(path: string, ...handlers: Handler[]): void;
}
const express = expressUntyped as { (): App; urlencoded(options?: object): Handler; json(options?: object): Handler };

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An owner decision that records the session id and answers `action` (forwarding to `ownerUrl` for `answered`). */
function fakeAffinity(seen: string[], action: 'serve' | 'answered', ownerUrl?: string): OwnerAffinity {
  const agent = new http.Agent();
  return {
    route: async (sessionId: string, _local: boolean, req: http.IncomingMessage, res: http.ServerResponse, body: () => unknown) => {
      seen.push(sessionId);
      if (action === 'answered') await forwardToOwner({ url: ownerUrl!, forwarded: 'x;y', req, res, body: body(), agent, connectTimeoutMs: 1_000 });
      return { action };
    },
  } as unknown as OwnerAffinity;
}

/** An Express app with the middleware before `express.urlencoded()`/`express.json()`; the route echoes what the parser read. */
async function app(host: OwnerRouteHost, locate: SessionLocator, path = '/done'): Promise<string> {
  const a = express();
  const mw: Handler = (req, res, next) => void routeToOwner(host, req, res, locate).then((go) => go && next());
  a.post(path, mw, express.urlencoded({ extended: false }), express.json(), (req, res) => void res.json({ body: req.body }));
  a.get(path, mw, (req, res) => void res.json({ query: req.query }));
  return await serve(a);
}

const form = (body: string) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

describe('ownerRoute: where the session id is', () => {
  it('finds it in a query parameter, a form or JSON field, a path parameter, a header, or by a function', async () => {
    const seen: string[] = [];
    const host: OwnerRouteHost = { affinity: fakeAffinity(seen, 'serve'), isLocal: () => true, failed: () => 'internal' };
    await fetch(`${await app(host, { query: 'session' })}/done?session=q1`);
    await fetch(`${await app(host, { body: 'session' })}/done`, form('a=1&session=f1'));
    await fetch(`${await app(host, { body: 'sid' })}/done`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sid: 'j1' }) });
    await fetch(`${await app(host, { param: 'id' }, '/done/:id')}/done/p1`, form(''));
    await fetch(`${await app(host, { header: 'X-Session' })}/done`, { headers: { 'x-session': 'h1' } });
    await fetch(`${await app(host, (req) => String(req.headers['x-fn']))}/done`, { headers: { 'x-fn': 'fn1' } });
    expect(seen).toEqual(['q1', 'f1', 'j1', 'p1', 'h1', 'fn1']);
  });

  it('lets a request without a session id through to the route (it answers its own 400)', async () => {
    const seen: string[] = [];
    const base = await app({ affinity: fakeAffinity(seen, 'serve'), isLocal: () => false, failed: () => 'internal' }, { body: 'session' });
    const r = await fetch(`${base}/done`, form('other=1'));
    expect(await r.json()).toEqual({ body: { other: '1' } });
    expect(seen).toEqual([]);
  });
});

describe('ownerRoute: the body', () => {
  it('is given back to the stream: Express parsers after it read the same form and JSON, in many chunks too', async () => {
    const host: OwnerRouteHost = { affinity: fakeAffinity([], 'serve'), isLocal: () => true, failed: () => 'internal' };
    const base = await app(host, { body: 'session' });
    expect(await (await fetch(`${base}/done`, form('session=s&note=%E2%9C%93+ok'))).json()).toEqual({ body: { session: 's', note: '✓ ok' } });
    const big = { session: 's', pad: 'x'.repeat(90_000) };
    const r = await fetch(`${base}/done`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(big) });
    expect(await r.json()).toEqual({ body: big });
  });

  it('is forwarded to the owner byte for byte', async () => {
    let received: Buffer | undefined;
    const owner = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received = Buffer.concat(chunks);
        res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>owner</h1>');
      });
    });
    const seen: string[] = [];
    const base = await app({ affinity: fakeAffinity(seen, 'answered', owner), isLocal: () => false, failed: () => 'internal' }, { body: 'session' });
    const sent = 'b=%7E&session=abc&c=a+b&c=%2B&d';
    const r = await fetch(`${base}/done`, form(sent));
    expect(await r.text()).toBe('<h1>owner</h1>');
    expect(received?.toString('latin1')).toBe(sent);
    expect(seen).toEqual(['abc']);
  });

  it('over the limit gets 413', async () => {
    const base = await app({ affinity: fakeAffinity([], 'serve'), isLocal: () => true, failed: () => 'internal' }, { body: 'session' });
    const r = await fetch(`${base}/done`, form(`session=s&pad=${'x'.repeat(MAX_ROUTE_BODY_BYTES)}`));
    expect(r.status).toBe(413);
  });
});

describe('ownerRoute: a session no replica holds', () => {
  it('gets 404 Session not found: an HTML page for a browser, else the JSON-RPC error', async () => {
    const base = await app({ affinity: fakeAffinity([], 'serve'), isLocal: () => false, failed: () => 'internal' }, { body: 'session' });
    const html = await fetch(`${base}/done`, { ...form('session=gone'), headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' } });
    expect(html.status).toBe(404);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(await html.text()).toContain('<h1>Session not found</h1>');
    const json = await fetch(`${base}/done`, form('session=gone'));
    expect(json.status).toBe(404);
    expect(((await json.json()) as { error: { code: number } }).error.code).toBe(-32001);
  });

  it('a registry without owner affinity lets the route run where it lands (the middleware only calls next)', async () => {
    const registry = new SessionTransportRegistry({ affinity: 'replay', log: () => undefined });
    const a = express();
    a.post('/done', registry.ownerRoute({ body: 'session' }), express.urlencoded({ extended: false }), (req, res) => void res.json({ body: req.body }));
    const base = await serve(a);
    expect(await (await fetch(`${base}/done`, form('session=x'))).json()).toEqual({ body: { session: 'x' } });
  });
});
