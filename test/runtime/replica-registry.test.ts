/**
 * Owner affinity's runtime pieces, on a real redis-server, on a 3-master Redis Cluster and in memory: the replica registry
 * (heartbeats, expiry when heartbeats stop, deregistration, the lookup cache, down marks, draining and
 * the replicas that take new sessions) and the session record's `owner` with its compare-and-set
 * `claimOwner`, the graceful hand-over (`releaseOwner`, `handover`) and `deleteIfOwner`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import {
  createRedisStoreClient,
  MemoryReplicaDirectory,
  MemoryReplicaRegistry,
  MemorySessionStore,
  RedisReplicaRegistry,
  RedisSessionStore,
  SessionStoreUnavailableError,
  waitForRedis,
  type ReplicaRegistry,
  type SessionStore,
} from '@mcp-migrate/runtime';
import { REDIS_STORE_KINDS, startRedis, startRedisStore, stopAllProcesses, type RedisInstance, type RedisStoreInstance } from '../helpers/index.js';

let redis: RedisInstance;
const clients: (Redis | Cluster)[] = [];

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-registry-test' });
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
  await stopAllProcesses();
});

async function newClient(url = redis.url): Promise<Redis | Cluster> {
  const c = createRedisStoreClient(url);
  clients.push(c);
  expect(await waitForRedis(c, 5_000)).toBe(true);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniq = (what: string) => `${what}-${process.pid}-${++n}`;

/** Two registries as two replicas would have them (their own connections), sharing one backend. */
type Pair = () => Promise<[ReplicaRegistry, ReplicaRegistry]>;

function registryContract(name: string, pair: Pair, interval: number) {
  describe(`${name}: ReplicaRegistry`, () => {
    it('registers a replica that the other one can look up, and heartbeats keep it alive past its TTL', async () => {
      const [a, b] = await pair();
      const id = uniq('replica');
      await a.register({ replicaId: id, url: 'http://127.0.0.1:4001' });
      expect(a.ttlMs).toBe(3 * interval);
      expect(await b.lookup(id)).toBe('http://127.0.0.1:4001');
      expect(await b.lookup(uniq('never-registered'))).toBeUndefined();
      await sleep(a.ttlMs * 2);
      expect(await b.lookup(id, { fresh: true })).toBe('http://127.0.0.1:4001');
      await a.deregister();
    });

    it('forgets a replica whose heartbeats stopped (a killed process) after one TTL', async () => {
      const [a, b] = await pair();
      const id = uniq('replica');
      await a.register({ replicaId: id, url: 'http://127.0.0.1:4002' });
      await a.close(); // stops heartbeating, does not deregister
      expect(await b.lookup(id, { fresh: true })).toBe('http://127.0.0.1:4002');
      await sleep(a.ttlMs + interval);
      expect(await b.lookup(id, { fresh: true })).toBeUndefined();
    });

    it('deregister removes a replica at once', async () => {
      const [a, b] = await pair();
      const id = uniq('replica');
      await a.register({ replicaId: id, url: 'http://127.0.0.1:4003' });
      expect(await b.lookup(id)).toBe('http://127.0.0.1:4003');
      await a.deregister();
      expect(await b.lookup(id, { fresh: true })).toBeUndefined();
      // and stays gone: no heartbeat brings it back
      await sleep(interval * 2);
      expect(await b.lookup(id, { fresh: true })).toBeUndefined();
    });

    it('answers lookups from its cache for one interval; fresh lookups bypass it', async () => {
      const [a, b] = await pair();
      const id = uniq('replica');
      await a.register({ replicaId: id, url: 'http://127.0.0.1:4004' });
      expect(await b.lookup(id)).toBe('http://127.0.0.1:4004');
      await a.deregister();
      expect(await b.lookup(id)).toBe('http://127.0.0.1:4004'); // cached
      expect(await b.lookup(id, { fresh: true })).toBeUndefined();
      expect(await b.lookup(id)).toBeUndefined(); // the fresh answer was cached
    });

    it('markDown hides a replica on this registry only, for one TTL', async () => {
      const [a, b] = await pair();
      const id = uniq('replica');
      await a.register({ replicaId: id, url: 'http://127.0.0.1:4005' });
      b.markDown(id);
      expect(await b.lookup(id, { fresh: true })).toBeUndefined();
      await sleep(b.ttlMs + interval);
      expect(await b.lookup(id)).toBe('http://127.0.0.1:4005');
      a.markDown(id); // a replica never marks itself down
      expect(await a.lookup(id)).toBe('http://127.0.0.1:4005');
      await a.deregister();
    });

    it('accepting lists the other live replicas that take new sessions; a draining one stays registered but leaves the list', async () => {
      const [a, b] = await pair();
      const [ida, idb] = [uniq('replica'), uniq('replica')];
      await a.register({ replicaId: ida, url: 'http://127.0.0.1:4006' });
      await b.register({ replicaId: idb, url: 'http://127.0.0.1:4007' });
      expect(await b.accepting()).toEqual([ida]); // not itself
      expect(await a.accepting()).toEqual([idb]);
      await a.drain();
      await sleep(interval + 50); // b's cache of the list is one interval old at most
      expect(await b.accepting()).toEqual([]);
      await sleep(a.ttlMs + interval); // heartbeats go on while draining: forwards still reach a
      expect(await b.lookup(ida, { fresh: true })).toBe('http://127.0.0.1:4006');
      await a.deregister();
      expect(await b.lookup(ida, { fresh: true })).toBeUndefined();
      const c = (await pair())[0];
      const idc = uniq('replica');
      await c.register({ replicaId: idc, url: 'http://127.0.0.1:4008' });
      await c.close(); // killed: no more heartbeats, and it leaves the list once its registration expired
      await sleep(c.ttlMs + interval * 2);
      expect(await b.accepting()).toEqual([]);
      await b.deregister();
    });
  });
}

const INTERVAL = 250;

// Every Redis test runs on one redis-server and on a 3-master Redis Cluster (ioredis `Cluster` client).
describe.each(REDIS_STORE_KINDS)('on Redis (%s)', (kind) => {
  let store: RedisStoreInstance;
  beforeAll(async () => {
    store = await startRedisStore(kind, { name: `redis-registry-${kind}` });
  });
  afterAll(async () => {
    await store?.stop();
  });

  registryContract(
    `redis (${kind})`,
    async () => {
      const keyPrefix = `${uniq('t')}:`;
      const a = new RedisReplicaRegistry({ client: await newClient(store.url), keyPrefix, heartbeatIntervalMs: INTERVAL });
      const b = new RedisReplicaRegistry({ client: await newClient(store.url), keyPrefix, heartbeatIntervalMs: INTERVAL });
      return [a, b];
    },
    INTERVAL,
  );

  claimContract(`redis (${kind})`, async (ttlMs) =>
    new RedisSessionStore({ client: await newClient(store.url), ownsClient: false, keyPrefix: `${uniq('c')}:`, ...(ttlMs ? { ttlMs } : {}) }),
  );

  it('claimOwner is one EVALSHA on the record key (one round trip; Redis also counts the commands the script runs)', async () => {
    const s = new RedisSessionStore({ client: await newClient(store.url), ownsClient: false, keyPrefix: `${uniq('cost')}:` });
    const id = uniq('s');
    await s.create(input(id, 'a'));
    await s.claimOwner(id, 'a', 'b'); // loads the script once
    await store.resetStats();
    await s.claimOwner(id, 'b', 'c');
    const stats = await store.commandStats();
    const counted = Object.fromEntries([...stats.entries()].filter(([cmd]) => cmd !== 'info' && cmd !== 'config|resetstat' && !cmd.startsWith('cluster')).map(([k, v]) => [k, v.calls]));
    expect(counted).toEqual({ evalsha: 1, exists: 1, hget: 2, hset: 1, hdel: 1, hincrby: 1, pexpire: 1 });
    expect(await store.command('HGET', `${s.keyPrefix}{${id}}:session`, 'owner')).toBe('c');
  });

  it("touchOwned (the owner's fencing check before it serves) is one EVALSHA on the record key, in place of touch's PEXPIRE", async () => {
    const s = new RedisSessionStore({ client: await newClient(store.url), ownsClient: false, keyPrefix: `${uniq('cost')}:` });
    const id = uniq('s');
    await s.create(input(id, 'a'));
    await s.touchOwned(id, 'a', 0); // loads the script once
    await store.resetStats();
    expect(await s.touchOwned(id, 'a', 0)).toBe('ok');
    const stats = await store.commandStats();
    const counted = Object.fromEntries([...stats.entries()].filter(([cmd]) => cmd !== 'info' && cmd !== 'config|resetstat' && !cmd.startsWith('cluster')).map(([k, v]) => [k, v.calls]));
    expect(counted).toEqual({ evalsha: 1, hmget: 1, pexpire: 1 });
  });
});

registryContract(
  'memory',
  async () => {
    const directory = new MemoryReplicaDirectory();
    return [new MemoryReplicaRegistry({ directory, heartbeatIntervalMs: INTERVAL }), new MemoryReplicaRegistry({ directory, heartbeatIntervalMs: INTERVAL })];
  },
  INTERVAL,
);

describe('RedisReplicaRegistry specifics', () => {
  it('is one key per replica with a TTL of three intervals (and the set of those taking new sessions), one SET per heartbeat and at most one GET per interval per looked-up replica', async () => {
    const keyPrefix = `${uniq('layout')}:`;
    const a = new RedisReplicaRegistry({ client: await newClient(), keyPrefix, heartbeatIntervalMs: 200 });
    const b = new RedisReplicaRegistry({ client: await newClient(), keyPrefix, heartbeatIntervalMs: 5_000 });
    await a.register({ replicaId: 'r1', url: 'http://127.0.0.1:4010' });
    expect((await redis.keys(`${keyPrefix}*`)).sort()).toEqual([`${keyPrefix}replica-set`, `${keyPrefix}replicas:r1`]);
    const pttl = Number(await redis.command('PTTL', `${keyPrefix}replicas:r1`));
    expect(pttl).toBeGreaterThan(400);
    expect(pttl).toBeLessThanOrEqual(600);
    await a.close();
    await redis.resetStats();
    for (let i = 0; i < 50; i++) expect(await b.lookup('r1')).toBe('http://127.0.0.1:4010');
    const stats = await redis.commandStats();
    expect(stats.get('get')?.calls).toBe(1);
    expect(stats.get('set')).toBeUndefined(); // a closed registry sends no heartbeat
  });

  it('registers again by itself after Redis lost its data (restart), and a lookup while Redis is down rejects as "store unavailable"', async () => {
    const own = await startRedis({ name: 'redis-registry-restart' });
    try {
      const errors: Error[] = [];
      const a = new RedisReplicaRegistry({ client: await newClient(own.url), heartbeatIntervalMs: INTERVAL, onError: (e) => errors.push(e) });
      const b = new RedisReplicaRegistry({ client: await newClient(own.url), heartbeatIntervalMs: INTERVAL });
      await a.register({ replicaId: 'phoenix', url: 'http://127.0.0.1:4011' });
      await own.kill();
      await expect(b.lookup('phoenix', { fresh: true })).rejects.toBeInstanceOf(SessionStoreUnavailableError);
      await sleep(INTERVAL * 3);
      expect(errors.length).toBeGreaterThan(0); // heartbeat failures are reported, not thrown
      await own.restart(); // same port, no data
      const deadline = Date.now() + 10_000;
      let url: string | undefined;
      while (Date.now() < deadline && url === undefined) {
        url = await b.lookup('phoenix', { fresh: true }).catch(() => undefined);
        if (url === undefined) await sleep(INTERVAL);
      }
      expect(url).toBe('http://127.0.0.1:4011');
      await a.deregister();
    } finally {
      await own.stop();
    }
  });
});

// ---- the record's owner and its compare-and-set ----

const input = (id: string, owner?: string) => ({
  id,
  principal: 'principal-hash',
  protocolVersion: '2025-06-18',
  initializeParams: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
  ...(owner !== undefined ? { owner } : {}),
});

const CLAIMED = { claimed: true };
const NOT_CLAIMED = { claimed: false };

function claimContract(name: string, make: (ttlMs?: number) => Promise<SessionStore>) {
  describe(`${name}: session owner and claimOwner`, () => {
    it('stores the owner given at creation and loads it back; no owner without one', async () => {
      const store = await make();
      const a = uniq('s');
      const b = uniq('s');
      expect((await store.create(input(a, 'replica-1'))).owner).toBe('replica-1');
      await store.create(input(b));
      expect((await store.load(a))?.owner).toBe('replica-1');
      expect(await store.load(b)).not.toHaveProperty('owner');
    });

    it('claims only from the expected owner (compare-and-set)', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id, 'dead'));
      expect(await store.claimOwner(id, 'someone-else', 'r2')).toEqual(NOT_CLAIMED);
      expect(await store.claimOwner(id, undefined, 'r2')).toEqual(NOT_CLAIMED);
      expect((await store.load(id))?.owner).toBe('dead');
      expect(await store.claimOwner(id, 'dead', 'r2')).toMatchObject(CLAIMED);
      expect((await store.load(id))?.owner).toBe('r2');
      expect(await store.claimOwner(id, 'dead', 'r3')).toEqual(NOT_CLAIMED); // r2 was first
      expect((await store.load(id))?.owner).toBe('r2');
    });

    it('claims an unowned session with expected = undefined', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id));
      expect(await store.claimOwner(id, undefined, 'r1')).toMatchObject(CLAIMED);
      expect((await store.load(id))?.owner).toBe('r1');
    });

    it('a graceful hand-over releases only its own session, keeps the handover for the next claim, which clears it', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id, 'r1'));
      expect(await store.releaseOwner(id, 'r2', 'h')).toBe(false); // not r2's
      expect(await store.releaseOwner(uniq('never'), 'r1')).toBe(false);
      expect(await store.releaseOwner(id, 'r1', '{"upstreamSessionId":"u-1"}')).toBe(true);
      const released = await store.load(id);
      expect(released).not.toHaveProperty('owner');
      expect(released?.handover).toBe('{"upstreamSessionId":"u-1"}');
      expect(await store.claimOwner(id, 'r1', 'r2')).toEqual(NOT_CLAIMED); // r1 let go of it
      expect(await store.claimOwner(id, undefined, 'r2')).toMatchObject({ claimed: true, handover: '{"upstreamSessionId":"u-1"}' });
      expect(await store.load(id)).not.toHaveProperty('handover');
      expect(await store.claimOwner(id, 'r2', 'r3')).toMatchObject(CLAIMED); // handed over once only
      // Released without anything to hand over: the next owner replays.
      expect(await store.releaseOwner(id, 'r3')).toBe(true);
      expect(await store.claimOwner(id, undefined, 'r4')).toMatchObject(CLAIMED);
    });

    it('deleteIfOwner ends a session only while the given owner holds it', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id, 'dead'));
      expect(await store.claimOwner(id, 'dead', 'alive')).toMatchObject(CLAIMED);
      expect(await store.deleteIfOwner(id, 'dead')).toBe(false); // claimed meanwhile: not ended
      expect((await store.load(id))?.owner).toBe('alive');
      expect(await store.deleteIfOwner(id, 'alive')).toBe(true);
      expect(await store.load(id)).toBeUndefined();
      expect(await store.deleteIfOwner(id, 'alive')).toBe(false);
      const unowned = uniq('s');
      await store.create(input(unowned));
      expect(await store.deleteIfOwner(unowned, 'alive')).toBe(false);
      expect(await store.load(unowned)).toBeDefined();
    });

    it('fences the owner by generation: touchOwned is ok only for the current owner and epoch (a claim back by an earlier owner is another generation)', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id, 'a'));
      expect(await store.touchOwned(id, 'a', 0)).toBe('ok'); // the creator holds generation 0
      const b = await store.claimOwner(id, 'a', 'b'); // a looked dead, b took over
      expect(b).toEqual({ claimed: true, epoch: 1 });
      expect(await store.touchOwned(id, 'a', 0)).toBe('moved'); // a, alive after all, must not serve
      expect(await store.touchOwned(id, 'b', 1)).toBe('ok');
      const a2 = await store.claimOwner(id, 'b', 'a'); // and back to a: a new generation
      expect(a2).toEqual({ claimed: true, epoch: 2 });
      expect(await store.touchOwned(id, 'a', 0)).toBe('moved'); // a's state of generation 0 is stale
      expect(await store.touchOwned(id, 'a', 2)).toBe('ok');
      expect(await store.releaseOwner(id, 'a')).toBe(true);
      expect(await store.touchOwned(id, 'a', 2)).toBe('moved'); // released: nobody's until claimed
      await store.delete(id);
      expect(await store.touchOwned(id, 'a', 2)).toBe('gone');
      expect(await store.touchOwned(uniq('never'), 'a', 0)).toBe('gone');
    });

    it('lets exactly one of many concurrent claimers win', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id, 'dead'));
      const results = (await Promise.all(Array.from({ length: 20 }, (_, i) => store.claimOwner(id, 'dead', `r${i}`)))).map((r) => r.claimed);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await store.load(id))?.owner).toBe(`r${results.indexOf(true)}`);
    });

    it('never resurrects a deleted or expired session, and refreshes the TTL when it claims', async () => {
      const store = await make(400);
      const gone = uniq('s');
      await store.create(input(gone, 'dead'));
      await store.delete(gone);
      expect(await store.claimOwner(gone, 'dead', 'r1')).toEqual(NOT_CLAIMED);
      expect(await store.load(gone)).toBeUndefined();
      const live = uniq('s');
      await store.create(input(live, 'dead'));
      await sleep(250);
      expect(await store.claimOwner(live, 'dead', 'r1')).toMatchObject(CLAIMED);
      await sleep(250); // 500 ms after creation, 250 ms after the claim
      expect(await store.touch(live)).toBe(true);
    });

    it('refuses an empty new owner', async () => {
      const store = await make();
      const id = uniq('s');
      await store.create(input(id));
      await expect(store.claimOwner(id, undefined, '')).rejects.toThrow(RangeError);
    });
  });
}

claimContract('memory', async (ttlMs) => new MemorySessionStore(ttlMs ? { ttlMs } : {}));
