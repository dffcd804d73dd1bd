/**
 * Fuzz (issue 7): 10,000 generated malformed, oversized and random HTTP requests against one
 * `mcp-migrate proxy` replica (real Redis, server-everything over Streamable HTTP upstream).
 *
 * Every case carries the answer docs/proxy.md promises for it, computed from the case itself:
 *   - malformed JSON → 400 / -32700; valid JSON that is not JSON-RPC 2.0 (independent oracle,
 *     ./jsonrpc-oracle.ts), empty batch → 400 / -32600; reserved request ids, initialize with a
 *     session id or in a batch → 400 / -32600;
 *   - valid JSON-RPC without Mcp-Session-Id → 400 / -32000; with a forged id → 404 / -32001;
 *   - oversized body → 413; header block over Node's 16 KiB → 431; wrong Content-Type → 415;
 *     unsupported MCP-Protocol-Version → 400; disallowed Origin → 403; other methods → 405;
 *     GET without `Accept: text/event-stream` → 406; other paths → 404;
 *   - raw garbage on a socket → Node's own 4xx (400/431/413…), never a crash.
 * The only legitimately valid requests are generated on purpose, as their own kind: unknown methods
 * inside one genuine session, which the spec answers with 200 and a JSON-RPC error (-32601) from the
 * server, and unknown notifications (202). `initialize` without a session id, the one request that
 * creates a session, is never generated.
 *
 * Afterwards: the replica is still running, /healthz answers 200, and the number of session records
 * in Redis is what it was before (the one genuine session).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startEverythingHttp,
  startProxyReplica,
  startRedis,
  stopAllProcesses,
  type ProxyReplica,
  type RedisInstance,
} from '../helpers/index.js';
import { bodyValid, proxyKind, strictKind } from './jsonrpc-oracle.js';
import {
  health,
  KeepAliveClient,
  mapPool,
  mcpHeaders,
  messagesIn,
  openSession,
  rawExchange,
  SESSION_KEY_PATTERN,
  type RawResponse,
} from './support.js';

/** Paths the proxy answers with something other than 404. */
const SERVED_PATHS = new Set(['/mcp', '/healthz', '/readyz', '/metrics', '/sse', '/message']);

const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_807);
const CONCURRENCY = 16;
const MAX_BODY = 64 * 1024;
const ALLOWED_ORIGIN = 'https://app.example';
const OWNER = { authorization: 'Bearer fuzz-owner' };
const SUPPORTED_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07'];

interface Expectation {
  /** Allowed HTTP statuses. */
  status: number[];
  /** JSON-RPC error code of the body, when the answer is a proxy error with a body. */
  code?: number;
}

interface FuzzCase {
  kind: string;
  method: string;
  path?: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Raw bytes for a socket instead of an HTTP request. */
  raw?: Buffer;
  /** Set when the expectation is computed at run time (in-session cases need the real id). */
  inSession?: 'request' | 'notification';
  expect: Expectation;
  /** A body that is invalid by strict JSON-RPC 2.0 but accepted by the proxy's documented looser rule. */
  lenient?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const printable = (max: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));
const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const RESERVED_HEADERS = new Set([
  'content-type', 'content-length', 'host', 'transfer-encoding', 'connection', 'mcp-session-id', 'mcp-protocol-version',
  'origin', 'authorization', 'accept', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection',
]);
const extraHeaders = fc.dictionary(token.filter((n) => !RESERVED_HEADERS.has(n)), printable(80).map((s) => s.trim() || 'x'), { maxKeys: 6 });

const b64url = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url'));
const forgedSid = fc.oneof(
  b64url,
  fc.uuid(),
  fc.stringMatching(/^[\x21-\x7e]{1,120}$/),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/),
);
const principal = fc.oneof(fc.constant(undefined), fc.constant(OWNER.authorization), printable(60).map((s) => `Bearer ${s.trim()}`));

const jsonId = fc.oneof(fc.integer(), fc.string({ maxLength: 30 }).filter((s) => !s.startsWith('mcp-migrate:')));
const methodName = fc.oneof(
  fc.constantFrom('ping', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'prompts/get', 'logging/setLevel', 'resources/subscribe', 'completion/complete', 'notifications/initialized', 'notifications/cancelled'),
  fc.string({ maxLength: 40 }),
).filter((m) => m !== 'initialize');
const params = fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), { nil: undefined });

/** Valid JSON-RPC 2.0 messages other than initialize. */
const validMessage: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ id: jsonId, method: methodName, params }).map(({ id, method, params: p }) => ({ jsonrpc: '2.0', id, method, ...(p ? { params: p } : {}) })),
  fc.record({ method: methodName, params }).map(({ method, params: p }) => ({ jsonrpc: '2.0', method, ...(p ? { params: p } : {}) })),
  fc.record({ id: jsonId, result: fc.jsonValue({ maxDepth: 2 }) }).map(({ id, result }) => ({ jsonrpc: '2.0', id, result })),
  fc.record({ id: fc.oneof(jsonId, fc.constant(null)), code: fc.integer(), message: fc.string({ maxLength: 20 }) }).map(({ id, code, message }) => ({
    jsonrpc: '2.0',
    id,
    error: { code, message },
  })),
);

/** Mutations of a valid message that usually make it invalid (the oracle decides). */
const junk = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.constant([]), fc.constant({}), fc.array(fc.integer(), { maxLength: 3 }));
const mutated: fc.Arbitrary<unknown> = fc
  .tuple(validMessage, fc.constantFrom('jsonrpc', 'id', 'method', 'params', 'result', 'error', 'drop-jsonrpc', 'drop-id', 'error.code', 'error.message', 'both'), junk)
  .map(([m, what, j]) => {
    const v: Record<string, unknown> = { ...m };
    switch (what) {
      case 'drop-jsonrpc':
        delete v.jsonrpc;
        break;
      case 'drop-id':
        delete v.id;
        break;
      case 'error.code':
        v.error = { code: j, message: 'm' };
        break;
      case 'error.message':
        v.error = { code: 1, message: j };
        break;
      case 'both':
        v.result = {};
        v.error = { code: 1, message: 'm' };
        break;
      default:
        v[what] = j;
    }
    return v;
  });

const notJsonRpc: fc.Arbitrary<unknown> = fc
  .oneof(
    { weight: 3, arbitrary: mutated },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.array(fc.oneof(validMessage, mutated), { minLength: 1, maxLength: 4 }) },
  )
  .filter((v) => !bodyValid(v, strictKind));

const malformedJson: fc.Arbitrary<string | Buffer> = fc
  .oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    validMessage.chain((m) => {
      const s = JSON.stringify(m);
      return fc.integer({ min: 0, max: s.length - 1 }).map((n) => s.slice(0, n));
    }),
    fc.tuple(validMessage, fc.string({ minLength: 1, maxLength: 10 })).map(([m, tail]) => JSON.stringify(m) + tail),
  )
  .filter((b) => {
    try {
      JSON.parse(Buffer.isBuffer(b) ? b.toString('utf8') : b);
      return false;
    } catch {
      return true;
    }
  });

const postCase = (kind: string, body: string | Buffer, headers: Record<string, string>, e: Expectation, extra: Partial<FuzzCase> = {}): FuzzCase => ({
  kind,
  method: 'POST',
  headers,
  body,
  expect: e,
  ...extra,
});
const withPrincipal = (h: Record<string, string>, p: string | undefined): Record<string, string> => (p === undefined ? h : { ...h, authorization: p });

const cases: fc.Arbitrary<FuzzCase> = fc.oneof(
  // Malformed JSON, with or without a (forged) session id: the parse error comes first.
  { weight: 14, arbitrary: fc.tuple(malformedJson, fc.option(forgedSid, { nil: undefined })).map(([b, sid]) => postCase('malformed-json', b, mcpHeaders(sid), { status: [400], code: -32700 })) },
  // Valid JSON, not JSON-RPC 2.0.
  {
    weight: 14,
    arbitrary: fc.tuple(notJsonRpc, fc.option(forgedSid, { nil: undefined })).map(([v, sid]) => {
      const lenient = bodyValid(v, proxyKind);
      // Looser proxy rule: such a body is treated as a message, then refused for the session (400 without id, 404 forged).
      const e: Expectation = lenient ? (sid === undefined ? { status: [400], code: -32000 } : { status: [404], code: -32001 }) : { status: [400], code: -32600 };
      return postCase('not-jsonrpc', JSON.stringify(v), mcpHeaders(sid), e, { lenient });
    }),
  },
  // Valid JSON-RPC without a session id.
  { weight: 8, arbitrary: fc.tuple(fc.oneof(validMessage, fc.array(validMessage, { minLength: 1, maxLength: 3 })), principal).map(([m, p]) => postCase('valid-no-session', JSON.stringify(m), withPrincipal(mcpHeaders(), p), { status: [400], code: -32000 })) },
  // Valid JSON-RPC with a forged session id (and random extra headers).
  {
    weight: 12,
    arbitrary: fc.tuple(fc.oneof(validMessage, fc.array(validMessage, { minLength: 1, maxLength: 3 })), forgedSid, principal, extraHeaders).map(([m, sid, p, x]) =>
      postCase('valid-forged-session', JSON.stringify(m), withPrincipal(mcpHeaders(sid, x), p), { status: [404], code: -32001 }),
    ),
  },
  // initialize with a session id, or inside a batch.
  {
    weight: 3,
    arbitrary: fc.tuple(jsonId, fc.boolean(), forgedSid).map(([id, inBatch, sid]) => {
      const init = { jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'f', version: '0' } } };
      return inBatch
        ? postCase('initialize-in-batch', JSON.stringify([init, { jsonrpc: '2.0', method: 'notifications/initialized' }]), mcpHeaders(), { status: [400], code: -32600 })
        : postCase('initialize-with-session-id', JSON.stringify(init), mcpHeaders(sid), { status: [400], code: -32600 });
    }),
  },
  // Reserved request ids.
  {
    weight: 3,
    arbitrary: fc.tuple(fc.string({ maxLength: 20 }), methodName, fc.option(forgedSid, { nil: undefined })).map(([tail, method, sid]) =>
      postCase('reserved-id', JSON.stringify({ jsonrpc: '2.0', id: `mcp-migrate:${tail}`, method }), mcpHeaders(sid), { status: [400], code: -32600 }),
    ),
  },
  // Oversized bodies (the replica runs with --max-body-bytes 65536).
  {
    weight: 3,
    arbitrary: fc.tuple(fc.integer({ min: MAX_BODY + 1, max: 4 * MAX_BODY }), fc.boolean(), fc.option(forgedSid, { nil: undefined })).map(([n, asJson, sid]) => {
      const body = asJson ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(n) } }) : Buffer.alloc(n, 0x7b);
      return postCase('oversized-body', body, mcpHeaders(sid), { status: [413], code: -32000 });
    }),
  },
  // Header block over Node's default 16 KiB limit.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 17 * 1024, max: 64 * 1024 }).map((n) =>
      postCase('oversized-headers', '{}', { ...mcpHeaders(), 'x-pad': 'a'.repeat(n) }, { status: [431] }),
    ),
  },
  // Wrong Content-Type.
  {
    weight: 5,
    arbitrary: fc.tuple(printable(60).filter((s) => !s.toLowerCase().includes('application/json') && s.trim() !== ''), validMessage, fc.option(forgedSid, { nil: undefined })).map(([ct, m, sid]) =>
      postCase('bad-content-type', JSON.stringify(m), { ...mcpHeaders(sid), 'content-type': ct }, { status: [415], code: -32000 }),
    ),
  },
  // Unsupported MCP-Protocol-Version, any method.
  {
    weight: 5,
    arbitrary: fc.tuple(printable(40).filter((s) => !SUPPORTED_VERSIONS.includes(s.trim())), fc.constantFrom('POST', 'GET', 'DELETE'), validMessage, forgedSid).map(([v, method, m, sid]) => ({
      kind: 'bad-protocol-version',
      method,
      headers: { ...mcpHeaders(sid), 'mcp-protocol-version': v },
      body: method === 'POST' ? JSON.stringify(m) : undefined,
      expect: { status: [400], code: -32000 },
    })),
  },
  // Disallowed Origin, whatever else the request is.
  {
    weight: 5,
    arbitrary: fc.tuple(fc.oneof(fc.webUrl(), printable(60).filter((s) => s.trim() !== '')), fc.constantFrom('POST', 'GET', 'DELETE', 'PUT'), fc.oneof(validMessage, fc.jsonValue())).filter(([o]) => o.trim() !== ALLOWED_ORIGIN).map(([origin, method, m]) => ({
      kind: 'bad-origin',
      method,
      headers: { ...mcpHeaders(), origin },
      body: method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify(m),
      expect: { status: [403], code: -32000 },
    })),
  },
  // Other HTTP methods.
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'PURGE', 'REPORT'), fc.option(forgedSid, { nil: undefined }), fc.option(fc.jsonValue(), { nil: undefined })).map(([method, sid, b]) => ({
      kind: 'bad-method',
      method,
      headers: mcpHeaders(sid),
      body: b === undefined || method === 'HEAD' ? undefined : JSON.stringify(b),
      expect: method === 'HEAD' ? { status: [405] } : { status: [405], code: -32000 },
    })),
  },
  // GET and DELETE.
  {
    weight: 6,
    arbitrary: fc.tuple(fc.constantFrom('GET', 'DELETE'), fc.option(forgedSid, { nil: undefined }), fc.boolean(), principal).map(([method, sid, acceptSse, p]): FuzzCase => {
      const headers = withPrincipal({ ...(sid ? { 'mcp-session-id': sid } : {}), accept: acceptSse ? 'text/event-stream' : 'application/json' }, p);
      let e: Expectation;
      if (sid === undefined) e = { status: [405], code: -32000 }; // no session, no GET stream or DELETE: 2026-07-28 §Backward Compatibility
      else if (method === 'GET' && !acceptSse) e = { status: [406], code: -32000 };
      else e = { status: [404], code: -32001 };
      return { kind: `${method.toLowerCase()}-${sid ? 'forged' : 'no'}-session`, method, headers, expect: e };
    }),
  },
  // Other paths (every path the proxy serves is left out: the MCP endpoint, health, readiness, metrics, legacy SSE).
  {
    weight: 3,
    arbitrary: fc.tuple(fc.stringMatching(/^\/[A-Za-z0-9._~/-]{0,40}$/).filter((p) => !SERVED_PATHS.has(p)), fc.constantFrom('GET', 'POST', 'DELETE')).map(([path, method]) => ({
      kind: 'wrong-path',
      method,
      path,
      headers: mcpHeaders(),
      body: method === 'POST' ? '{}' : undefined,
      expect: { status: [404], code: -32000 },
    })),
  },
  // Raw garbage on a socket: Node's HTTP parser answers 4xx and closes.
  {
    weight: 3,
    arbitrary: fc
      .oneof(
        fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.concat([Buffer.from(b), Buffer.from('\r\n\r\n')])),
        fc.tuple(printable(30), printable(60)).map(([m, h]) => Buffer.from(`POST /mcp HTTP/1.1\r\nHost: x\r\n${m}: ${h}\r\nContent-Length: abc\r\n\r\n`)),
        fc.string({ maxLength: 40 }).map((s) => Buffer.from(`${s} /mcp HTTP/1.1\r\nHost: x\r\n\r\n`)),
        fc.nat({ max: 1000 }).map((n) => Buffer.from(`POST /mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz${n}\r\n{}\r\n0\r\n\r\n`)),
      )
      .map((raw) => ({ kind: 'raw-garbage', method: 'RAW', headers: {}, raw, expect: { status: [400, 404, 405, 413, 414, 431, 501, 505] } })),
  },
  // Legitimately valid requests, inside one genuine session: unknown methods and notifications.
  {
    weight: 5,
    arbitrary: fc.tuple(fc.boolean(), fc.stringMatching(/^[a-z][a-z0-9/_]{0,20}$/), params).map(([isRequest, name, p]) => ({
      kind: isRequest ? 'in-session-unknown-request' : 'in-session-unknown-notification',
      method: 'POST',
      headers: {},
      body: JSON.stringify({ jsonrpc: '2.0', method: `${isRequest ? 'fuzz' : 'notifications/fuzz'}/${name}`, ...(p ? { params: p } : {}) }),
      inSession: isRequest ? ('request' as const) : ('notification' as const),
      expect: isRequest ? { status: [200] } : { status: [202] },
    })),
  },
);

// ---------------------------------------------------------------------------------------------

let redis: RedisInstance;
let replica: ProxyReplica;
let client: KeepAliveClient;
let ownerSid: string;

beforeAll(async () => {
  redis = await startRedis();
  const everything = await startEverythingHttp({ name: 'fuzz-everything' });
  replica = await startProxyReplica({
    store: redis.url,
    upstream: everything.url,
    name: 'fuzz-proxy',
    extraArgs: ['--max-body-bytes', String(MAX_BODY), '--allowed-origins', ALLOWED_ORIGIN],
  });
  client = new KeepAliveClient(replica.url, CONCURRENCY);
  ownerSid = await openSession(client, OWNER);
});

afterAll(async () => {
  client?.close();
  await stopAllProcesses();
  await redis?.stop();
});

interface Outcome {
  c: FuzzCase;
  status: number;
  problem?: string;
}

async function runCase(c: FuzzCase, nextId: () => number): Promise<Outcome> {
  if (c.raw) {
    const reply = await rawExchange(replica.port, c.raw, 5_000);
    const m = /^HTTP\/1\.1 (\d{3})/.exec(reply);
    const status = m ? Number(m[1]) : 0;
    return { c, status, problem: c.expect.status.includes(status) ? undefined : `raw reply ${JSON.stringify(reply.slice(0, 120))}` };
  }
  let body = c.body;
  let headers = c.headers;
  let id: number | undefined;
  if (c.inSession) {
    headers = mcpHeaders(ownerSid, OWNER);
    if (c.inSession === 'request') {
      id = nextId();
      body = JSON.stringify({ ...(JSON.parse(String(c.body)) as object), id });
    }
  }
  let res: RawResponse;
  try {
    res = await client.request({ method: c.method, path: c.path, headers, body, timeoutMs: 15_000 });
  } catch (err) {
    // A 413 or 431 closes the connection; a very large body may still be on its way when it does.
    if ((c.kind === 'oversized-body' || c.kind === 'oversized-headers') && /EPIPE|ECONNRESET/.test(String(err))) return { c, status: c.expect.status[0]! };
    return { c, status: 0, problem: `request failed: ${String(err)}` };
  }
  if (!c.expect.status.includes(res.status)) return { c, status: res.status, problem: `HTTP ${res.status} ${res.body.slice(0, 200)}` };
  if (c.inSession === 'request') {
    // 200 with the server's JSON-RPC error for an unknown method, carrying our id.
    const msgs = messagesIn(res) as { id?: unknown; error?: { code?: number } }[];
    const answer = msgs.find((m) => m.id === id);
    if (!answer || answer.error?.code !== -32601) return { c, status: res.status, problem: `expected a -32601 answer for id ${id}: ${res.body.slice(0, 200)}` };
  } else if (c.expect.code !== undefined) {
    let parsed: { jsonrpc?: string; error?: { code?: number; message?: unknown } };
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {
      return { c, status: res.status, problem: `body is not JSON: ${res.body.slice(0, 200)}` };
    }
    if (parsed.jsonrpc !== '2.0' || parsed.error?.code !== c.expect.code || typeof parsed.error.message !== 'string') {
      return { c, status: res.status, problem: `expected JSON-RPC error ${c.expect.code}: ${res.body.slice(0, 200)}` };
    }
  }
  return { c, status: res.status };
}

describe(`fuzz: ${CASES} generated requests against one replica (seed ${SEED})`, () => {
  it('answers every one as documented, stays up, and creates no session', { timeout: 120_000 }, async () => {
    const sessionKeysBefore = await redis.keys(SESSION_KEY_PATTERN);
    expect(sessionKeysBefore).toHaveLength(1);
    const generated = fc.sample(cases, { numRuns: CASES, seed: SEED });
    expect(generated).toHaveLength(CASES);

    let id = 1000;
    const t0 = performance.now();
    const outcomes = await mapPool(generated, CONCURRENCY, (c) => runCase(c, () => id++));
    const seconds = (performance.now() - t0) / 1000;

    const byKind = new Map<string, { n: number; statuses: Map<number, number> }>();
    for (const o of outcomes) {
      const k = byKind.get(o.c.kind) ?? { n: 0, statuses: new Map() };
      k.n += 1;
      k.statuses.set(o.status, (k.statuses.get(o.status) ?? 0) + 1);
      byKind.set(o.c.kind, k);
    }
    const lenient = outcomes.filter((o) => o.c.lenient);
    const table = [...byKind.entries()]
      .sort((a, b) => b[1].n - a[1].n)
      .map(([kind, k]) => `  ${kind.padEnd(34)} ${String(k.n).padStart(5)}  ${[...k.statuses.entries()].map(([s, n]) => `${s}×${n}`).join(' ')}`)
      .join('\n');
    console.log(
      `fuzz: ${CASES} cases (seed ${SEED}) in ${seconds.toFixed(1)} s = ${Math.round(CASES / seconds)} requests/s, concurrency ${CONCURRENCY}, keep-alive\n${table}\n` +
        `  bodies invalid by strict JSON-RPC 2.0 but accepted as messages by the proxy's looser documented rule: ${lenient.length}` +
        (lenient.length ? ` (e.g. ${String(lenient[0]!.c.body).slice(0, 100)})` : ''),
    );

    const problems = outcomes.filter((o) => o.problem);
    expect(
      problems.length,
      problems
        .slice(0, 10)
        .map((o) => `${o.c.kind} ${o.c.method} ${JSON.stringify(o.c.headers).slice(0, 200)} body=${String(o.c.body ?? o.c.raw?.toString('latin1') ?? '').slice(0, 200)}\n   → ${o.problem}`)
        .join('\n'),
    ).toBe(0);
    // Apart from the in-session cases (valid on purpose), every answer is a 4xx.
    for (const o of outcomes) {
      if (o.c.inSession) continue;
      expect(o.status, o.c.kind).toBeGreaterThanOrEqual(400);
      expect(o.status, o.c.kind).toBeLessThan(500);
    }

    // Still up, still healthy, still the one genuine session and its one upstream session.
    expect(replica.process.exitInfo()).toBeUndefined();
    const h = await health(client);
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok', store: 'ok', upstreamSessions: 1 });
    expect(await redis.keys(SESSION_KEY_PATTERN)).toEqual(sessionKeysBefore);
    const stillWorks = await client.request({ headers: mcpHeaders(ownerSid, OWNER), body: JSON.stringify({ jsonrpc: '2.0', id: 'after', method: 'ping' }) });
    expect(stillWorks.status).toBe(200);
    expect(messagesIn(stillWorks)).toEqual([{ jsonrpc: '2.0', id: 'after', result: {} }]);
  });
});
