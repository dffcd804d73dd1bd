import { describe, expect, it } from 'vitest';
import { RequestStateCodec, requestDigest, type RequestState } from '../../src/proxy/fronts/modern/request-state.js';
import { legacyCapabilities, PoolIds, pooledInitializeParams, isPooledSessionId } from '../../src/proxy/fronts/modern/pool.js';
import { SessionIdCodec } from '@mcp-migrate/runtime';

const SECRET = 'request-state-secret-0123456789';
const OTHER = 'another-secret-abcdefghijklmnop';

function state(over: Partial<RequestState> = {}): RequestState {
  return {
    p: 'principal-a',
    s: 'pool.abc',
    r: 'replica1',
    t: 'mX',
    a: 'ev-1',
    k: { r0: 'mcp-migrate:srv:replica1:1' },
    q: { r0: { method: 'elicitation/create', params: { message: 'hi' } } },
    m: 'tools/call',
    d: requestDigest('tools/call', { name: 'x', arguments: { a: 1 } }),
    e: Date.now() + 60_000,
    ...over,
  };
}

const expectFor = (s: RequestState) => ({ principal: s.p, method: s.m, digest: s.d });

describe('RequestStateCodec', () => {
  it('round-trips, and another replica with the same secret verifies it', () => {
    const s = state();
    const token = new RequestStateCodec([SECRET]).mint(s);
    expect(new RequestStateCodec([SECRET]).verify(token, expectFor(s))).toEqual({ state: s });
  });

  it('rotation: the first secret mints, every secret verifies', () => {
    const s = state();
    const old = new RequestStateCodec([OTHER]).mint(s);
    const rotated = new RequestStateCodec([SECRET, OTHER]);
    expect(rotated.verify(old, expectFor(s))).toEqual({ state: s });
    expect(new RequestStateCodec([SECRET]).verify(old, expectFor(s))).toEqual({ rejected: 'forged' });
  });

  it('rejects a tampered payload, a tampered MAC, garbage and oversized input', () => {
    const s = state();
    const codec = new RequestStateCodec([SECRET]);
    const token = codec.mint(s);
    const [head, mac] = [token.slice(0, token.lastIndexOf('.')), token.slice(token.lastIndexOf('.') + 1)];
    const forgedPayload = Buffer.from(JSON.stringify({ ...s, p: 'principal-b' })).toString('base64url');
    expect(codec.verify(`mm1.${forgedPayload}.${mac}`, expectFor(s))).toEqual({ rejected: 'forged' });
    const flipped = mac.startsWith('A') ? `B${mac.slice(1)}` : `A${mac.slice(1)}`;
    expect(codec.verify(`${head}.${flipped}`, expectFor(s))).toEqual({ rejected: 'forged' });
    expect(codec.verify('hello', expectFor(s))).toEqual({ rejected: 'malformed' });
    expect(codec.verify(42, expectFor(s))).toEqual({ rejected: 'malformed' });
    expect(codec.verify(`mm1.${'a'.repeat(70_000)}.x`, expectFor(s))).toEqual({ rejected: 'malformed' });
  });

  it('binds expiry, principal and the original request', () => {
    const codec = new RequestStateCodec([SECRET]);
    const expired = state({ e: Date.now() - 1 });
    expect(codec.verify(codec.mint(expired), expectFor(expired))).toEqual({ rejected: 'expired' });
    const s = state();
    const token = codec.mint(s);
    expect(codec.verify(token, { ...expectFor(s), principal: 'principal-b' })).toEqual({ rejected: 'principal' });
    expect(codec.verify(token, { ...expectFor(s), method: 'prompts/get' })).toEqual({ rejected: 'request' });
    expect(codec.verify(token, { ...expectFor(s), digest: requestDigest('tools/call', { name: 'y' }) })).toEqual({ rejected: 'request' });
  });
});

describe('requestDigest', () => {
  it('ignores _meta, inputResponses, requestState and key order; not other params', () => {
    const a = requestDigest('tools/call', { name: 'x', arguments: { a: 1, b: 2 }, _meta: { progressToken: 1 } });
    const b = requestDigest('tools/call', { arguments: { b: 2, a: 1 }, name: 'x', inputResponses: { r0: {} }, requestState: 'mm1.x.y' });
    expect(a).toBe(b);
    expect(requestDigest('tools/call', { name: 'x', arguments: { a: 2, b: 2 } })).not.toBe(a);
    expect(requestDigest('prompts/get', { name: 'x', arguments: { a: 1, b: 2 } })).not.toBe(a);
  });
});

describe('pooled sessions', () => {
  const key = { principal: 'p1', protocolVersion: '2026-07-28', capabilities: { sampling: {}, elicitation: { form: {} } } };

  it('one id per (principal, version, capabilities), the same on every replica, independent of key order', () => {
    const ids = new PoolIds(SECRET);
    const id = ids.id(key);
    expect(isPooledSessionId(id)).toBe(true);
    expect(new PoolIds(SECRET).id({ ...key, capabilities: { elicitation: { form: {} }, sampling: {} } })).toBe(id);
    expect(ids.id({ ...key, principal: 'p2' })).not.toBe(id);
    expect(ids.id({ ...key, capabilities: { sampling: {} } })).not.toBe(id);
    expect(new PoolIds(OTHER).id(key)).not.toBe(id);
  });

  it('a pooled id is never a valid Mcp-Session-Id', () => {
    const id = new PoolIds(SECRET).id(key);
    expect(new SessionIdCodec(SECRET).verify(id, undefined)).toBeUndefined();
  });

  it('the replayed initialize declares the legacy revision and the capabilities without extensions', () => {
    const caps = legacyCapabilities({ sampling: {}, extensions: { 'io.modelcontextprotocol/ui': {} } });
    expect(caps).toEqual({ sampling: {} });
    expect(pooledInitializeParams({ ...key, capabilities: caps })).toMatchObject({ protocolVersion: '2025-11-25', capabilities: { sampling: {} } });
  });
});
