import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryMessageBus, MemorySessionStore } from '@mcp-migrate/runtime';
import { SessionManager } from '../../src/proxy/sessions.js';
import { ownedTouchEveryMs } from '../../src/proxy/server.js';
import type { UpstreamConnector } from '../../src/proxy/upstreams/upstream.js';

/** A store that counts `touch` calls and can move its clock. */
class CountingStore extends MemorySessionStore {
  touches = 0;
  override async touch(id: string): Promise<boolean> {
    this.touches++;
    return super.touch(id);
  }
}

const INIT = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } };

async function setup(ownedTouchEvery: number | undefined, owner: string | undefined) {
  const store = new CountingStore({ ttlMs: 60_000 });
  const sessions = new SessionManager({
    replicaId: 'r1',
    store,
    connector: {} as UpstreamConnector, // never reached: no upstream session is opened here
    bus: new MemoryMessageBus(),
    busChannel: 'events',
    maxSessions: 10,
    idleTimeoutMs: 60_000,
    logger: pino({ level: 'silent' }),
    ...(ownedTouchEvery !== undefined ? { ownedTouchEveryMs: ownedTouchEvery } : {}),
  });
  await store.create({ id: 's1', principal: 'p', protocolVersion: INIT.protocolVersion, initializeParams: INIT, ...(owner ? { owner } : {}) });
  expect(await sessions.resolve('s1', 'p')).toBeDefined(); // the first request loads (and refreshes) the record
  return { store, sessions };
}

describe('SessionManager: coalesced TTL refresh of owned sessions', () => {
  it('touches a session it owns at most once per interval, and again once the interval has passed', async () => {
    const { store, sessions } = await setup(50, 'r1');
    for (let i = 0; i < 5; i++) expect(await sessions.resolve('s1', 'p')).toBeDefined();
    expect(store.touches).toBe(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(await sessions.resolve('s1', 'p')).toBeDefined();
    expect(await sessions.resolve('s1', 'p')).toBeDefined();
    expect(store.touches).toBe(1);
  });

  it('finds a record that expired or was deleted elsewhere on the first request after the interval (404)', async () => {
    const { store, sessions } = await setup(50, 'r1');
    await store.delete('s1');
    await new Promise((r) => setTimeout(r, 60));
    expect(await sessions.resolve('s1', 'p')).toBeUndefined();
  });

  it('touches on every request a session owned elsewhere, and every session without the option (replay mode)', async () => {
    const other = await setup(50, 'r2');
    for (let i = 0; i < 3; i++) await other.sessions.resolve('s1', 'p');
    expect(other.store.touches).toBe(3);
    const replay = await setup(undefined, undefined);
    for (let i = 0; i < 3; i++) await replay.sessions.resolve('s1', 'p');
    expect(replay.store.touches).toBe(3);
    await replay.store.delete('s1');
    expect(await replay.sessions.resolve('s1', 'p')).toBeUndefined();
  });

  it('refreshes a second, or a tenth of a shorter TTL', () => {
    expect(ownedTouchEveryMs(3_600_000)).toBe(1_000);
    expect(ownedTouchEveryMs(2_000)).toBe(200);
  });
});
