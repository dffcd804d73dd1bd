/**
 * The store-backed containers' value codec (`value-codec.ts`) and `SharedMap` on the memory store: values
 * read back equal to what was written (URL and Date included), refused when they would not, and entries
 * that expire only when a TTL is given. The same on Redis across two sets of stores: `kv-store.test.ts`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSessionMap, createSharedMap, decodeValue, encodeValue, storesFromUrl, UnstorableValueError, type RuntimeStores } from '@mcp-migrate/runtime';

const roundTrip = (v: unknown): unknown => decodeValue(encodeValue(v));

describe('value codec', () => {
  it('gives plain data back unchanged, URL and Date as instances, undefined where it was', () => {
    const value = {
      client: { client_id: 'c', redirect_uris: ['http://x/cb'] },
      params: { resource: new URL('http://localhost:3000/mcp'), scopes: [], state: undefined },
      at: new Date(1_700_000_000_123),
      n: 3.5,
      none: null,
      list: [1, undefined, 'a'],
    };
    const back = roundTrip(value) as typeof value;
    expect(back).toEqual(value);
    expect(back.params.resource).toBeInstanceOf(URL);
    expect(back.params.resource.pathname).toBe('/mcp');
    expect(back.at).toBeInstanceOf(Date);
    expect(Object.hasOwn(back.params, 'state')).toBe(true);
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip(Object.assign(Object.create(null), { a: 1 }))).toEqual({ a: 1 });
  });

  it('keeps data that looks like a tag as data', () => {
    const tricky = { $mcpm: 'URL', v: 'http://x/' };
    expect(roundTrip(tricky)).toEqual(tricky);
    expect(roundTrip([{ $mcpm: 'undefined' }])).toEqual([{ $mcpm: 'undefined' }]);
  });

  it.each([
    ['a function', { cb: () => 1 }, '$.cb'],
    ['a Map', { m: new Map() }, '$.m'],
    ['a Promise', [Promise.resolve(1)], '$[0]'],
    ['a class instance', { c: new (class Session {})() }, '$.c'],
    ['a bigint', { n: 1n }, '$.n'],
    ['NaN', { n: NaN }, '$.n'],
    ['a symbol', Symbol('s'), '$'],
  ])('refuses %s, naming where it is', (_what, value, path) => {
    expect(() => encodeValue(value)).toThrow(UnstorableValueError);
    expect(() => encodeValue(value)).toThrow(path);
  });

  it('refuses cycles but not a value seen twice', () => {
    const shared = { a: 1 };
    expect(roundTrip({ x: shared, y: shared })).toEqual({ x: { a: 1 }, y: { a: 1 } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeValue(cyclic)).toThrow(/cycle at \$\.self/);
  });
});

describe('SharedMap (memory store)', () => {
  let stores: RuntimeStores;
  afterEach(async () => {
    await stores?.close();
  });

  it('gets, sets, checks and deletes; a value read is a copy', async () => {
    stores = storesFromUrl('memory', { keyPrefix: 't:', ttlMs: 60_000 });
    const map = createSharedMap<string, { scopes: string[] }>('f.ts#Store.items', { stores });
    expect(await map.get('k')).toBeUndefined();
    expect(await map.set('k', { scopes: ['a'] })).toBe(map);
    expect(await map.has('k')).toBe(true);
    const read = await map.get('k');
    read!.scopes.push('b');
    expect(await map.get('k')).toEqual({ scopes: ['a'] });
    // Another map object of the same name (another replica's) sees the entry; another name does not.
    expect(await createSharedMap('f.ts#Store.items', { stores }).get('k')).toEqual({ scopes: ['a'] });
    expect(await createSharedMap('f.ts#Other.items', { stores }).has('k')).toBe(false);
    expect(await map.delete('k')).toBe(true);
    expect(await map.delete('k')).toBe(false);
  });

  it('does not follow the session TTL; expires after its own ttlMs when given', async () => {
    stores = storesFromUrl('memory', { keyPrefix: 't:', ttlMs: 10 });
    const kv = stores.kv as unknown as { set: (k: string, v: string, ttl: number) => Promise<void> };
    const set = kv.set.bind(kv);
    const ttls: number[] = [];
    kv.set = async (k, v, ttl) => {
      ttls.push(ttl);
      return set(k, v, ttl);
    };
    await createSharedMap('a', { stores }).set('k', 1);
    await createSharedMap('b', { stores, ttlMs: 250 }).set('k', 1);
    await createSessionMap('c', { stores }).set('k', 1);
    expect(ttls).toEqual([Infinity, 250, 10]);
  });

  it('refuses a bad TTL, a non-string key and a value it cannot give back', async () => {
    stores = storesFromUrl('memory', { keyPrefix: 't:', ttlMs: 60_000 });
    expect(() => createSharedMap('x', { stores, ttlMs: 0 })).toThrow(RangeError);
    const map = createSharedMap<string, unknown>('x', { stores });
    await expect(map.get(1 as unknown as string)).rejects.toThrow(TypeError);
    await expect(map.set('k', { f: () => 1 })).rejects.toThrow(UnstorableValueError);
    expect(await map.has('k')).toBe(false);
  });
});
