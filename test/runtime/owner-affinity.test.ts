import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FORWARDED_HEADER,
  ForwardingMac,
  MISDIRECTED_HEADER,
  OwnerAffinity,
  forwardToOwner,
  forwardedBy,
  lossStep,
  ownerAffinityFromEnv,
  ownerStep,
  ownerVerdict,
  storesFromUrl,
  type NodeForwardResult,
  type RuntimeStores,
} from '@mcp-migrate/runtime';
import { socketUrl } from '../../packages/runtime/src/owner-affinity.js';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A loopback HTTP server; resolves to its base URL. */
async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('owner decisions (shared by the proxy and the runtime)', () => {
  it('serves its own sessions, claims ownerless ones, forwards the others', () => {
    expect(ownerStep('a', 'a')).toBe('serve');
    expect(ownerStep(undefined, 'a')).toBe('claim');
    expect(ownerStep('b', 'a')).toBe('forward');
  });

  it('a forward that found no connection is unsure only while the owner is still registered', async () => {
    expect(await ownerVerdict('done', async () => true)).toBe('done');
    expect(await ownerVerdict('misdirected', async () => true)).toBe('misdirected');
    expect(await ownerVerdict('down', async () => true)).toBe('lost');
    expect(await ownerVerdict('unreachable', async () => true)).toBe('unsure');
    expect(await ownerVerdict('unreachable', async () => false)).toBe('lost');
  });

  it('the owner-loss policy ends or claims', () => {
    expect(lossStep('end')).toBe('end');
    expect(lossStep('replay')).toBe('claim');
  });

  it('a forwarding header verifies only for its session and target replica', () => {
    const mac = new ForwardingMac(['s3cret']);
    const h = mac.header('sid', 'from', 'to');
    expect(forwardedBy(undefined, mac, 'sid', 'to')).toBeNull();
    expect(forwardedBy(h, mac, 'sid', 'to')).toBe('from');
    expect(forwardedBy(h, mac, 'other', 'to')).toBeUndefined();
    expect(forwardedBy(h, mac, 'sid', 'from')).toBeUndefined();
    expect(forwardedBy(h, new ForwardingMac(['another']), 'sid', 'to')).toBeUndefined();
    expect(forwardedBy('from;forged', mac, 'sid', 'to')).toBeUndefined();
  });
});

describe('affinity settings from the environment', () => {
  it('MCP_MIGRATE_AFFINITY overrides the option; policy, URL and secrets are read', () => {
    expect(ownerAffinityFromEnv(undefined, { MCP_MIGRATE_ON_OWNER_LOSS: 'ignored in replay mode' })).toEqual({ mode: 'replay', options: {} });
    expect(ownerAffinityFromEnv('owner', {}).mode).toBe('owner');
    expect(ownerAffinityFromEnv('owner', { MCP_MIGRATE_AFFINITY: 'replay' }).mode).toBe('replay');
    const { options } = ownerAffinityFromEnv('owner', { MCP_MIGRATE_ON_OWNER_LOSS: 'replay', MCP_MIGRATE_ADVERTISE_URL: 'http://10.0.0.7:3000', MCP_MIGRATE_SESSION_SECRET: 'a,b' });
    expect(options).toEqual({ onOwnerLoss: 'replay', advertiseUrl: 'http://10.0.0.7:3000', secrets: ['a', 'b'] });
    expect(ownerAffinityFromEnv('owner', {}).options.onOwnerLoss).toBe('end');
  });

  it('rejects values it does not know', () => {
    expect(() => ownerAffinityFromEnv(undefined, { MCP_MIGRATE_AFFINITY: 'sticky' })).toThrow(RangeError);
    expect(() => ownerAffinityFromEnv('owner', { MCP_MIGRATE_ON_OWNER_LOSS: 'keep' })).toThrow(RangeError);
  });

  it('the default advertised URL is the address and port the request arrived at', async () => {
    let seen = '';
    const url = await serve((req, res) => {
      seen = socketUrl(req);
      res.end();
    });
    await fetch(url);
    expect(seen).toBe(url);
  });
});

describe('forwardToOwner (node:http)', () => {
  /** Forwards each request to `owner` with `body` taken from what the handler read, if anything. */
  async function front(owner: string, readBody: boolean): Promise<{ url: string; results: NodeForwardResult[] }> {
    const results: NodeForwardResult[] = [];
    const agent = new http.Agent({ keepAlive: true });
    const url = await serve(async (req, res) => {
      let body: unknown;
      if (readBody) {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        body = JSON.parse(Buffer.concat(chunks).toString());
      }
      results.push(await forwardToOwner({ url: owner, forwarded: 'me;mac', req, res, body, agent, connectTimeoutMs: 2_000 }));
      if (!res.headersSent) res.writeHead(599).end();
    });
    return { url, results };
  }

  /** An owner that echoes method, body and the headers it got. */
  const echo: http.RequestListener = async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'x-owner': '1' }).end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString(), headers: req.headers }));
  };

  it.each([false, true])('sends the body (already parsed by the server: %s) with signed headers, minus hop-by-hop ones', async (readBody) => {
    const owner = await serve(echo);
    const f = await front(owner, readBody);
    const res = await fetch(f.url + '/mcp?x=1', { method: 'POST', headers: { 'content-type': 'application/json', [FORWARDED_HEADER]: 'forged', te: 'trailers' }, body: JSON.stringify({ a: 1 }) });
    const got = (await res.json()) as { method: string; body: string; headers: Record<string, string> };
    expect(res.headers.get('x-owner')).toBe('1');
    expect(got.method).toBe('POST');
    expect(JSON.parse(got.body)).toEqual({ a: 1 });
    expect(got.headers[FORWARDED_HEADER]).toBe('me;mac');
    expect(got.headers.te).toBeUndefined();
    expect(f.results).toEqual(['done']);
  });

  it('streams an SSE answer as it comes', async () => {
    let finish!: () => void;
    const owner = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      finish = () => res.end('data: last\n\n');
    });
    const f = await front(owner, false);
    const res = await fetch(f.url, { headers: { accept: 'text/event-stream' } });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe('data: first\n\n');
    finish();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: last\n\n');
  });

  it('retries once on a fresh connection when the owner reset a reused keep-alive one before answering', async () => {
    const served = new WeakMap<object, number>();
    const owner = await serve((req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      if (n > 1) return void req.socket.destroy(); // the owner closed its idle connection as the forward arrived
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const f = await front(owner, false);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(f.url, { method: 'POST', body: '{}' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
    }
    expect(f.results).toEqual(['done', 'done']);
  });

  it('does not relay the 421 of a replica that is not the owner; a refused connection is down', async () => {
    const owner = await serve((_req, res) => res.writeHead(421, { [MISDIRECTED_HEADER]: '1' }).end('no'));
    const f = await front(owner, false);
    expect((await fetch(f.url)).status).toBe(599);
    const gone = await serve(() => undefined);
    servers.pop()!.close();
    const g = await front(gone, false);
    expect((await fetch(g.url)).status).toBe(599);
    expect([...f.results, ...g.results]).toEqual(['misdirected', 'down']);
  });
});

describe('OwnerAffinity, a session whose owner is gone', () => {
  let stores: RuntimeStores;
  afterEach(async () => await stores?.close());

  async function routeOnce(policy: 'end' | 'replay'): Promise<{ status: number; body: string; owner: string | undefined; exists: boolean; self: string }> {
    stores = storesFromUrl('memory', { keyPrefix: 't:', ttlMs: 60_000 });
    const ended: string[] = [];
    const affinity = new OwnerAffinity({ stores: async () => stores, ended: async (id) => void ended.push(id), has: () => false, drop: async () => undefined, announce: async () => undefined }, { onOwnerLoss: policy, log: () => undefined });
    await stores.sessions.create({ id: 'sid-1', principal: '', protocolVersion: '2025-06-18', initializeParams: {}, owner: 'gone-replica' });
    const url = await serve(async (req, res) => {
      const r = await affinity.route('sid-1', false, req, res, () => undefined);
      res.writeHead(200).end(JSON.stringify(r));
    });
    const res = await fetch(url, { method: 'POST', headers: { 'mcp-session-id': 'sid-1' }, body: '{}' });
    const record = await stores.sessions.load('sid-1');
    await affinity.close();
    if (policy === 'end') expect(ended).toEqual(['sid-1']);
    return { status: res.status, body: await res.text(), owner: record?.owner, exists: record !== undefined, self: affinity.replicaId };
  }

  it('end: the record is deleted and the request answered 404', async () => {
    const r = await routeOnce('end');
    expect(JSON.parse(r.body)).toMatchObject({ action: 'error', kind: 'sessionNotFound' });
    expect(r.exists).toBe(false);
  });

  it('replay: this replica claims the session and serves it', async () => {
    const r = await routeOnce('replay');
    expect(JSON.parse(r.body)).toEqual({ action: 'serve' });
    expect(r.owner).toBe(r.self);
  });
});
