/**
 * Session hijacking (issue 7; spec security best practices §Session Hijacking, see docs/proxy.md
 * "Session ids and principals"): 10,000 generated attempts to use a session that is not the caller's
 * — forged ids, guessed ids (random 43-character base64url, the real format), genuine ids with one
 * bit flipped, expired ids (their `--session-ttl` elapsed) presented by their own principal, and
 * live ids presented by another principal — on POST, GET and DELETE, against two replicas sharing Redis.
 * Every one must be 404 / -32001, and none may harm the genuine sessions: afterwards each owner's
 * session still answers, and the store holds exactly the live records.
 *
 * Forged, guessed, bit-flipped and other-principal ids fail the MAC check, so they must cost no
 * store lookup at all; only expired ids (genuine MACs) may reach Redis. The Redis command counts prove it.
 *
 * Also: a disallowed `Origin` gets 403 even with a genuine session and its owner's credentials.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  diffCommandStats,
  startEverythingHttp,
  startProxyReplica,
  startRedis,
  stopAllProcesses,
  type ProxyReplica,
  type RedisInstance,
} from '../helpers/index.js';
import { KeepAliveClient, mapPool, mcpHeaders, openSession, ping, pollUntil, SESSION_KEY_PATTERN } from './support.js';

const ATTEMPTS = Number(process.env.HIJACK_ATTEMPTS ?? 10_000);
const SEED = Number(process.env.HIJACK_SEED ?? 7_007);
const CONCURRENCY = 16;
const LIVE = 20;
const EXPIRED = 20;
const SHORT_TTL_S = 2;
const ALLOWED_ORIGIN = 'https://app.example';

const owner = (i: number): string => `Bearer owner-${i}-secret-token`;

let redis: RedisInstance;
let longLived: ProxyReplica; // --session-ttl default (3600 s), --allowed-origins
let shortLived: ProxyReplica; // --session-ttl 2 s
let clientL: KeepAliveClient;
let clientS: KeepAliveClient;
const live: { sid: string; auth: string }[] = [];
const expired: { sid: string; auth: string }[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const everything = await startEverythingHttp({ name: 'hijack-everything' });
  [longLived, shortLived] = await Promise.all([
    startProxyReplica({ store: redis.url, upstream: everything.url, name: 'hijack-proxy-long', extraArgs: ['--affinity', 'replay', '--allowed-origins', ALLOWED_ORIGIN] }),
    startProxyReplica({ store: redis.url, upstream: everything.url, name: 'hijack-proxy-short', extraArgs: ['--affinity', 'replay', '--session-ttl', String(SHORT_TTL_S)] }),
  ]);
  clientL = new KeepAliveClient(longLived.url, CONCURRENCY);
  clientS = new KeepAliveClient(shortLived.url, CONCURRENCY);
  // Sessions that will expire: created on the short-TTL replica and then left alone.
  for (let i = 0; i < EXPIRED; i += 1) {
    const auth = `Bearer expiring-${i}`;
    const sid = await openSession(clientS, { authorization: auth });
    expect((await ping(clientS, sid, { authorization: auth })).status).toBe(200);
    expired.push({ sid, auth });
  }
  for (let i = 0; i < LIVE; i += 1) live.push({ sid: await openSession(clientL, { authorization: owner(i) }), auth: owner(i) });
  // Wait until Redis itself has dropped the expired records (TTL elapsed).
  const gone = await pollUntil(async () => (await redis.keys(SESSION_KEY_PATTERN)).length === LIVE, 15_000, 200);
  expect(gone, 'the short-TTL records expired').toBe(true);
});

afterAll(async () => {
  clientL?.close();
  clientS?.close();
  await stopAllProcesses();
  await redis?.stop();
});

type Kind = 'forged' | 'guessed' | 'bit-flipped' | 'expired' | 'other-principal';
interface Attempt {
  kind: Kind;
  sid: string;
  auth: string | undefined;
  method: 'POST' | 'GET' | 'DELETE';
  replica: 'long' | 'short';
}

function flipBit(sid: string, bit: number): string {
  const bytes = Buffer.from(sid, 'base64url');
  bytes[bit >> 3]! ^= 1 << (bit & 7);
  return bytes.toString('base64url');
}

const attempts: fc.Arbitrary<Attempt> = fc
  .tuple(
    fc.oneof(
      fc.tuple(fc.constant<Kind>('forged'), fc.oneof(fc.uuid(), fc.stringMatching(/^[\x21-\x7e]{1,100}$/), fc.stringMatching(/^[0-9a-f]{32,64}$/))).map(([kind, sid]) => ({ kind, sid, auth: owner(0) as string | undefined })),
      fc.tuple(fc.constant<Kind>('guessed'), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(LIVE - 1)).map(([kind, b, i]) => ({ kind, sid: Buffer.from(b).toString('base64url'), auth: owner(i) as string | undefined })),
      fc.tuple(fc.constant<Kind>('bit-flipped'), fc.nat(LIVE - 1), fc.nat(255)).map(([kind, i, bit]) => ({ kind, sid: flipBit(live[i]!.sid, bit), auth: live[i]!.auth as string | undefined })),
      fc.tuple(fc.constant<Kind>('expired'), fc.nat(EXPIRED - 1)).map(([kind, i]) => ({ kind, sid: expired[i]!.sid, auth: expired[i]!.auth as string | undefined })),
      fc
        .tuple(fc.constant<Kind>('other-principal'), fc.nat(LIVE - 1), fc.oneof(fc.constant(undefined), fc.nat(LIVE - 1).map((j) => owner(j)), fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`)))
        .filter(([, i, auth]) => auth !== owner(i))
        .map(([kind, i, auth]) => ({ kind, sid: live[i]!.sid, auth })),
    ),
    fc.constantFrom<Attempt['method']>('POST', 'POST', 'GET', 'DELETE'),
    fc.constantFrom<Attempt['replica']>('long', 'short'),
  )
  .map(([a, method, replica]) => ({ ...a, method, replica }));

async function attempt(a: Attempt): Promise<{ status: number; code: unknown }> {
  const client = a.replica === 'long' ? clientL : clientS;
  const auth: Record<string, string> = a.auth === undefined ? {} : { authorization: a.auth };
  const headers: Record<string, string> =
    a.method === 'POST'
      ? mcpHeaders(a.sid, auth)
      : { 'mcp-session-id': a.sid, accept: a.method === 'GET' ? 'text/event-stream' : 'application/json', ...auth };
  const res = await client.request({
    method: a.method,
    headers,
    body: a.method === 'POST' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hijacked' } } }) : undefined,
  });
  let code: unknown;
  try {
    code = (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code };
}

describe(`session hijacking: ${ATTEMPTS} attempts (seed ${SEED})`, () => {
  it('answers every forged, guessed, bit-flipped, expired and other-principal id with 404', { timeout: 120_000 }, async () => {
    const generated = fc.sample(attempts, { numRuns: ATTEMPTS, seed: SEED });
    await redis.resetStats();
    const before = await redis.commandStats();
    const t0 = performance.now();
    const results = await mapPool(generated, CONCURRENCY, attempt);
    const seconds = (performance.now() - t0) / 1000;
    const redisCalls = diffCommandStats(before, await redis.commandStats());

    const byKind = new Map<Kind, { n: number; notFound: number }>();
    const bad: string[] = [];
    results.forEach((r, i) => {
      const a = generated[i]!;
      const k = byKind.get(a.kind) ?? { n: 0, notFound: 0 };
      k.n += 1;
      if (r.status === 404 && r.code === -32001) k.notFound += 1;
      else if (bad.length < 10) bad.push(`${a.kind} ${a.method} on ${a.replica}: HTTP ${r.status} code ${String(r.code)} (auth ${String(a.auth)})`);
      byKind.set(a.kind, k);
    });
    const expiredAttempts = byKind.get('expired')?.n ?? 0;
    console.log(
      `hijack: ${ATTEMPTS} attempts in ${seconds.toFixed(1)} s = ${Math.round(ATTEMPTS / seconds)} requests/s\n` +
        [...byKind.entries()].map(([kind, k]) => `  ${kind.padEnd(16)} ${String(k.n).padStart(5)} attempts, ${k.notFound} × 404`).join('\n') +
        `\n  Redis commands during the run: ${JSON.stringify(Object.fromEntries(redisCalls))} (expired attempts: ${expiredAttempts})`,
    );
    expect(bad, bad.join('\n')).toEqual([]);
    for (const kind of ['forged', 'guessed', 'bit-flipped', 'expired', 'other-principal'] as const) expect(byKind.get(kind)?.n ?? 0, kind).toBeGreaterThan(ATTEMPTS / 20);

    // Only expired ids carry a valid MAC, so only they may reach the store: at most one load
    // (HGETALL + PEXPIRE, pipelined) or one DEL per attempt. Everything else was refused without a lookup.
    const storeCalls = [...redisCalls.values()].reduce((a, b) => a + b, 0);
    expect(storeCalls).toBeLessThanOrEqual(2 * expiredAttempts);
    expect([...redisCalls.keys()].filter((c) => !['hgetall', 'pexpire', 'del'].includes(c))).toEqual([]);

    // No harm done: every owner's session still works (on both replicas) and the store has exactly the live records.
    // The short-TTL replica's touch sets its own 2 s TTL on the record, so the long-TTL replica touches last.
    for (const s of live) {
      expect((await ping(clientS, s.sid, { authorization: s.auth })).status).toBe(200);
      expect((await ping(clientL, s.sid, { authorization: s.auth })).status).toBe(200);
    }
    expect((await redis.keys(SESSION_KEY_PATTERN)).length).toBe(LIVE);
    expect(longLived.process.exitInfo()).toBeUndefined();
    expect(shortLived.process.exitInfo()).toBeUndefined();
  });

  it('refuses a disallowed Origin with 403, even with a genuine session and its owner', async () => {
    const s = live[0]!;
    const auth = { authorization: s.auth };
    for (const origin of ['https://evil.example', 'http://evil.example.com', 'null', `${ALLOWED_ORIGIN}.evil.example`, 'https://APP.example']) {
      const r = await clientL.request({ headers: mcpHeaders(s.sid, { ...auth, origin }), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) });
      expect(r.status, origin).toBe(403);
      const g = await clientL.request({ method: 'GET', headers: { 'mcp-session-id': s.sid, accept: 'text/event-stream', ...auth, origin } });
      expect(g.status, origin).toBe(403);
      const d = await clientL.request({ method: 'DELETE', headers: { 'mcp-session-id': s.sid, ...auth, origin } });
      expect(d.status, origin).toBe(403);
      // initialize from a disallowed origin creates nothing
      const { 'mcp-session-id': _none, ...initHeaders } = mcpHeaders(undefined, { origin });
      const i = await clientL.request({ headers: initHeaders, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '0' } } }) });
      expect(i.status, origin).toBe(403);
    }
    expect((await ping(clientL, s.sid, { ...auth, origin: ALLOWED_ORIGIN })).status).toBe(200);
    expect((await ping(clientL, s.sid, auth)).status).toBe(200); // no Origin (non-browser client): allowed
    expect((await redis.keys(SESSION_KEY_PATTERN)).length).toBe(LIVE);
  });
});
