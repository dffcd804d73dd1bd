/**
 * The one error table (the runtime's `ERROR_ANSWERS`), walked on every front: each failure the fronts
 * meet gets the same HTTP status and JSON-RPC code on the Streamable HTTP endpoint, the legacy HTTP+SSE
 * message endpoint, the 2026-07-28 front and apply's `SessionTransportRegistry`. The failures are real:
 * a store that is down, `--max-sessions` 0, an upstream connector whose handshake replay fails the given
 * way, forged forwarding headers, an owner that keeps changing. In process, no Redis.
 */
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ERROR_ANSWERS,
  MemoryMessageBus,
  MemorySessionStore,
  MemorySessionStreams,
  SessionIdCodec,
  SessionStoreUnavailableError,
  SessionTransportRegistry,
  BusServerRequestRouter,
  MemoryKeyValueStore,
  MemoryReplicaDirectory,
  MemoryReplicaRegistry,
  type ErrorKind,
  type RuntimeStores,
  type SessionStore,
} from '@mcp-migrate/runtime';
import { SessionGoneError, UpstreamError, type ProxyOptions, type UpstreamConnector } from '../../src/proxy/index.js';
import { closeAll, connectClient, INIT_PARAMS, SECRET, startTestProxy, type TestProxy } from '../helpers/in-process-proxy.js';
import { startStuckListener } from '../helpers/stuck-listener.js';

afterAll(closeAll);

/** The table as docs/proxy.md documents it: status and JSON-RPC code of every error. */
const EXPECTED: Record<ErrorKind, [status: number, code: number]> = {
  parseError: [400, -32700],
  invalidRequest: [400, -32600],
  sessionRequired: [400, -32000],
  badRequest: [400, -32000],
  unsupportedVersion: [400, -32000],
  forbiddenOrigin: [403, -32000],
  notFound: [404, -32000],
  sessionNotFound: [404, -32001],
  methodNotAllowed: [405, -32000],
  notAcceptable: [406, -32000],
  payloadTooLarge: [413, -32000],
  unsupportedMediaType: [415, -32000],
  misdirected: [421, -32000],
  internal: [500, -32603],
  badGateway: [502, -32603],
  storeUnavailable: [503, -32000],
  capacity: [503, -32000],
  ownerChanging: [503, -32000],
  ownerUnreachable: [503, -32000],
  draining: [503, -32000],
  gatewayTimeout: [504, -32603],
};

/** Failures met while serving a request, and how to cause each for real. */
const FAILURES = ['storeUnavailable', 'capacity', 'sessionNotFound', 'badGateway', 'gatewayTimeout', 'internal'] as const;
type Failure = (typeof FAILURES)[number];

/** Kinds each test below checks, so that a new row of the table without a test fails. */
const covered = new Set<ErrorKind>();

interface Answer {
  status: number;
  code: number | undefined;
  retryAfter: string | null;
}

async function answerOf(res: Response): Promise<Answer> {
  const text = await res.text();
  let code: number | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: number } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, retryAfter: res.headers.get('retry-after') };
}

function expectRow(kind: ErrorKind, a: Answer, where: string): void {
  covered.add(kind);
  const [status, code] = EXPECTED[kind];
  expect({ where, kind, status: a.status, code: a.code }).toEqual({ where, kind, status, code });
  expect(ERROR_ANSWERS[kind].status).toBe(status);
  expect(ERROR_ANSWERS[kind].code).toBe(code);
  if (status === 503) expect(a.retryAfter, `${where}: ${kind} Retry-After`).toBe('1');
}

/** A connector whose handshake replay (opening an upstream session for an existing session) fails with `err`. */
function failingConnector(err: () => Error): UpstreamConnector {
  return {
    kind: 'stdio',
    attach: () => undefined,
    initialize: () => Promise.reject(err()),
    replay: () => Promise.reject(err()),
    close: async () => undefined,
  };
}

/** A memory store that, when `down`, rejects every call as Redis does while unreachable. */
function storeThatFails(down: () => boolean): SessionStore {
  const inner = new MemorySessionStore();
  const guard = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => (...a: A): Promise<R> =>
    down() ? Promise.reject(new SessionStoreUnavailableError('store down', new Error('ECONNREFUSED'))) : f(...a);
  return {
    get ttlMs() {
      return inner.ttlMs;
    },
    create: guard((r) => inner.create(r)),
    load: guard((id) => inner.load(id)),
    touch: guard((id) => inner.touch(id)),
    touchOwned: guard((id, o, e) => inner.touchOwned(id, o, e)),
    update: guard((id, c) => inner.update(id, c)),
    claimOwner: guard((id, e, n) => inner.claimOwner(id, e, n)),
    releaseOwner: guard((id, c, h) => inner.releaseOwner(id, c, h)),
    deleteIfOwner: guard((id, o) => inner.deleteIfOwner(id, o)),
    delete: guard((id) => inner.delete(id)),
    ping: guard(() => inner.ping()),
    close: () => inner.close(),
  };
}

/** A proxy whose sessions fail the given way once they need an upstream session. */
async function failingProxy(failure: Failure, extra: Partial<ProxyOptions> = {}): Promise<{ tp: TestProxy; sid: string; down: (on: boolean) => void }> {
  let isDown = false;
  const store = storeThatFails(() => isDown);
  const err = {
    storeUnavailable: () => new Error('not reached'),
    capacity: () => new Error('not reached'),
    sessionNotFound: () => new SessionGoneError(),
    badGateway: () => new UpstreamError('connect ECONNREFUSED'),
    gatewayTimeout: () => new UpstreamError('no answer within 1 ms', 504),
    internal: () => new Error('a bug'),
  }[failure];
  const tp = await startTestProxy({
    store,
    upstream: failingConnector(err),
    legacySse: { ssePath: '/sse', messagePath: '/message' },
    ...(failure === 'capacity' ? { maxSessions: 0 } : {}),
    ...extra,
  });
  // A session the store knows and this replica has no upstream session for: its next request replays.
  const { id, principal } = new SessionIdCodec([SECRET]).mint(undefined);
  await store.create({ id, principal, protocolVersion: '2025-06-18', initializeParams: INIT_PARAMS });
  return { tp, sid: id, down: (on) => void (isDown = on) };
}

const json = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/**
 * A chunked POST (no `Content-Length`) on a connection of its own: the proxy notices the size while
 * reading, and answers 413 before closing. (A declared length over the limit makes it close after at
 * most another limit's worth of body, possibly before the client reads the answer.)
 */
function postAlone(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...json, 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const code = (JSON.parse(text) as { error?: { code?: number } }).error?.code;
        resolve({ status: res.statusCode ?? 0, code, retryAfter: (res.headers['retry-after'] as string | undefined) ?? null });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { ...json, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const toolsList = { jsonrpc: '2.0', id: 7, method: 'tools/list' };
const modern = {
  jsonrpc: '2.0',
  id: 9,
  method: 'tools/list',
  params: {
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientCapabilities': {},
      'io.modelcontextprotocol/clientInfo': { name: 'error-table', version: '1' },
    },
  },
};
const modernHeaders = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' };

describe('the error table on every front: failures while serving a request', () => {
  for (const failure of FAILURES) {
    it(`${failure}: the same status and code on the Streamable HTTP, legacy HTTP+SSE and 2026-07-28 fronts`, async () => {
      const { tp, sid, down } = await failingProxy(failure);
      down(failure === 'storeUnavailable');
      const base = tp.url.replace(/\/mcp$/, '');
      const streamable = await answerOf(await post(tp.url, toolsList, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }));
      expectRow(failure, streamable, 'Streamable HTTP');
      // A notification: the legacy front answers the POST itself once the exchange is over (a request's
      // answer goes to the SSE stream, with the same code: see legacy-sse.test.ts).
      const legacy = await answerOf(await post(`${base}/message?sessionId=${sid}`, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' }));
      expectRow(failure, legacy, 'legacy HTTP+SSE');
      const m = await answerOf(await post(tp.url, modern, modernHeaders));
      expectRow(failure, m, '2026-07-28');
      await tp.close();
    });
  }
});

describe('the error table on every front: requests the fronts refuse', () => {
  it('Streamable HTTP endpoint', async () => {
    const { tp, sid } = await failingProxy('internal', { maxBodyBytes: 64, allowedOrigins: ['https://app.example'] });
    const s = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    expectRow('parseError', await answerOf(await post(tp.url, '{"jsonrpc"', s)), 'Streamable HTTP');
    expectRow('invalidRequest', await answerOf(await post(tp.url, { hello: 1 }, s)), 'Streamable HTTP');
    expectRow('sessionRequired', await answerOf(await post(tp.url, toolsList, { 'mcp-protocol-version': '2025-06-18' })), 'Streamable HTTP');
    expectRow('unsupportedVersion', await answerOf(await post(tp.url, toolsList, { ...s, 'mcp-protocol-version': '1999-01-01' })), 'Streamable HTTP');
    expectRow('forbiddenOrigin', await answerOf(await post(tp.url, toolsList, { ...s, origin: 'https://evil.example' })), 'Streamable HTTP');
    expectRow('notFound', await answerOf(await post(tp.url.replace(/\/mcp$/, '/elsewhere'), toolsList, s)), 'Streamable HTTP');
    expectRow('sessionNotFound', await answerOf(await post(tp.url, toolsList, { ...s, 'mcp-session-id': 'forged' })), 'Streamable HTTP');
    expectRow('methodNotAllowed', await answerOf(await fetch(tp.url, { method: 'PUT', headers: s })), 'Streamable HTTP');
    expectRow('notAcceptable', await answerOf(await fetch(tp.url, { headers: { ...s, accept: 'application/json' } })), 'Streamable HTTP');
    expectRow('payloadTooLarge', await postAlone(tp.url, JSON.stringify({ ...toolsList, params: { pad: 'x'.repeat(30) } }), s), 'Streamable HTTP');
    expectRow('unsupportedMediaType', await answerOf(await post(tp.url, toolsList, { ...s, 'content-type': 'text/plain' })), 'Streamable HTTP');
    await tp.close();
  });

  it('legacy HTTP+SSE message endpoint', async () => {
    const { tp, sid } = await failingProxy('internal', { maxBodyBytes: 64, allowedOrigins: ['https://app.example'] });
    const url = `${tp.url.replace(/\/mcp$/, '')}/message?sessionId=${sid}`;
    expectRow('parseError', await answerOf(await post(url, '{"jsonrpc"')), 'legacy HTTP+SSE');
    expectRow('invalidRequest', await answerOf(await post(url, [])), 'legacy HTTP+SSE');
    expectRow('badRequest', await answerOf(await post(url.replace(/\?.*$/, ''), toolsList)), 'legacy HTTP+SSE');
    expectRow('unsupportedVersion', await answerOf(await post(url, toolsList, { 'mcp-protocol-version': '1999-01-01' })), 'legacy HTTP+SSE');
    expectRow('forbiddenOrigin', await answerOf(await post(url, toolsList, { origin: 'https://evil.example' })), 'legacy HTTP+SSE');
    expectRow('sessionNotFound', await answerOf(await post(url.replace(sid, 'forged'), toolsList)), 'legacy HTTP+SSE');
    expectRow('methodNotAllowed', await answerOf(await fetch(url, { method: 'GET' })), 'legacy HTTP+SSE');
    expectRow('notAcceptable', await answerOf(await fetch(url.replace(/\/message\?.*$/, '/sse'), { headers: { accept: 'application/json' } })), 'legacy HTTP+SSE');
    expectRow('payloadTooLarge', await postAlone(url, JSON.stringify({ ...toolsList, params: { pad: 'x'.repeat(30) } })), 'legacy HTTP+SSE');
    expectRow('unsupportedMediaType', await answerOf(await post(url, toolsList, { 'content-type': 'text/plain' })), 'legacy HTTP+SSE');
    await tp.close();
  });

  it('owner affinity: a forwarding header this replica cannot verify (421), an owner that keeps changing (503)', async () => {
    const { tp, sid } = await failingProxy('internal', { affinity: 'owner' });
    const s = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    expectRow('misdirected', await answerOf(await post(tp.url, toolsList, { ...s, 'x-mcp-migrate-forwarded': 'ghost;AAAAAAAAAAAAAAAAAAAAAA' })), 'owner affinity');
    await tp.close();
    // Every claim loses (another replica always wins the compare-and-set) and the winner is never
    // registered (with --on-owner-loss replay: with end, the first round would end the session).
    const store = new MemorySessionStore();
    store.claimOwner = async () => ({ claimed: false });
    const ghost = await startTestProxy({ store, affinity: 'owner', onOwnerLoss: 'replay', upstream: failingConnector(() => new Error('not reached')) });
    const { id, principal } = new SessionIdCodec([SECRET]).mint(undefined);
    await store.create({ id, principal, protocolVersion: '2025-06-18', initializeParams: INIT_PARAMS, owner: 'ghost' });
    expectRow('ownerChanging', await answerOf(await post(ghost.url, toolsList, { ...s, 'mcp-session-id': id })), 'owner affinity');
    await ghost.close();
  });

  it('owner routing: an owner that is registered but takes no connection (503, retry), a new legacy stream on a replica that shuts down (503)', async () => {
    const stuck = await startStuckListener();
    try {
      // The owner's registration is alive (a frozen process keeps it until its TTL; here it does not expire).
      const directory = new MemoryReplicaDirectory();
      directory.entries.set('frozen', { url: stuck.url, expiresAt: Number.MAX_SAFE_INTEGER, accepting: true });
      const store = new MemorySessionStore();
      const tp = await startTestProxy({ store, registry: new MemoryReplicaRegistry({ directory }), ownerConnectTimeoutMs: 300, upstream: failingConnector(() => new Error('not reached')) });
      const { id, principal } = new SessionIdCodec([SECRET]).mint(undefined);
      await store.create({ id, principal, protocolVersion: '2025-06-18', initializeParams: INIT_PARAMS, owner: 'frozen' });
      const answer = await answerOf(await post(tp.url, toolsList, { 'mcp-session-id': id, 'mcp-protocol-version': '2025-06-18' }));
      expectRow('ownerUnreachable', answer, 'owner routing');
      expect(answer.retryAfter).toBe('1');
      expect((await store.load(id))?.owner).toBe('frozen'); // neither ended nor taken over
      await tp.close();
    } finally {
      await stuck.stop();
    }
    // A stdio session cannot move: with --on-owner-loss end it is served until the drain time ends.
    const tp = await startTestProxy({ legacySse: { ssePath: '/sse', messagePath: '/message' } });
    const { client } = await connectClient(tp.url);
    const shutdown = tp.proxy.shutdown({ timeoutMs: 3_000 });
    expectRow('draining', await answerOf(await fetch(tp.url.replace(/\/mcp$/, '/sse'), { headers: { accept: 'text/event-stream' } })), 'legacy HTTP+SSE');
    await client.close().catch(() => undefined);
    await shutdown;
  });
});

describe('the error table in SessionTransportRegistry (apply\'s generated code)', () => {
  function registry(sessions: SessionStore, open: () => Promise<never>) {
    const bus = new MemoryMessageBus();
    const stores: RuntimeStores = {
      kind: 'memory',
      sessions,
      kv: new MemoryKeyValueStore(),
      keyPrefix: 'mcpm:',
      ttlMs: 60_000,
      bus,
      streams: new MemorySessionStreams(),
      router: new BusServerRequestRouter({ bus, replicaId: 'r1' }),
      ready: async () => undefined,
      close: async () => undefined,
    };
    return new SessionTransportRegistry({ kind: 'web', stores, log: () => undefined }).opener(open);
  }
  const request = (sid: string, method = 'POST', headers: Record<string, string> = {}) =>
    new Request('http://localhost/mcp', { method, headers: { ...json, 'mcp-session-id': sid, ...headers }, ...(method === 'POST' ? { body: JSON.stringify(toolsList) } : {}) });

  it('sessionNotFound, storeUnavailable, internal, notAcceptable: the same rows as the proxy', async () => {
    let down = false;
    const sessions = storeThatFails(() => down);
    await sessions.create({ id: 'known', principal: '', protocolVersion: '2025-06-18', initializeParams: INIT_PARAMS });
    const r = registry(sessions, () => Promise.reject(new Error('the server could not open the session')));
    expectRow('sessionNotFound', await answerOf((await r.prepareRequest(request('unknown')))!), 'SessionTransportRegistry');
    expectRow('internal', await answerOf((await r.prepareRequest(request('known')))!), 'SessionTransportRegistry');
    expectRow('notAcceptable', await answerOf((await r.prepareRequest(request('known', 'GET', { accept: 'application/json' })))!), 'SessionTransportRegistry');
    down = true;
    expectRow('storeUnavailable', await answerOf((await r.prepareRequest(request('known')))!), 'SessionTransportRegistry');
  });
});

describe('coverage of the table', () => {
  it('every row of ERROR_ANSWERS is walked above', () => {
    expect([...covered].sort()).toEqual(Object.keys(ERROR_ANSWERS).sort());
  });
});
