/**
 * Store faults (issue 7), with stdio upstreams so that every upstream session is a child process we
 * can count in /proc:
 *   1. Redis with the append-only file on is killed (SIGKILL, a crash) and restarted: the sessions
 *      survive and keep working on both replicas.
 *   2. Redis is down for 5 seconds: the replica answers clear 503s (with Retry-After, JSON-RPC
 *      -32000, /healthz 503) during the outage and nothing else, serves again by itself afterwards,
 *      never crashes, and leaks no child process (the initialize attempts made during the outage
 *      spawned children that must be gone again).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVERYTHING_STDIO_COMMAND,
  startProxyReplica,
  startRedis,
  stopAllProcesses,
  type ProxyReplica,
  type RedisInstance,
} from '../helpers/index.js';
import {
  childPids,
  health,
  INIT_PARAMS,
  KeepAliveClient,
  mcpHeaders,
  messagesIn,
  openSession,
  ping,
  pollUntil,
  SESSION_KEY_PATTERN,
  sleep,
} from './support.js';

const SESSIONS = 6;
const auth = (i: number): Record<string, string> => ({ authorization: `Bearer store-fault-${i}` });

async function echo(client: KeepAliveClient, sid: string, extra: Record<string, string>, message: string): Promise<string | undefined> {
  const r = await client.request({
    headers: mcpHeaders(sid, extra),
    body: JSON.stringify({ jsonrpc: '2.0', id: 'echo', method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
  });
  if (r.status !== 200) return undefined;
  const m = messagesIn(r).find((x) => (x as { id?: unknown }).id === 'echo') as { result?: { content?: { text?: string }[] } } | undefined;
  return m?.result?.content?.[0]?.text;
}

describe('Redis restarted with AOF on (crash: SIGKILL)', () => {
  let redis: RedisInstance;
  let replicas: ProxyReplica[];
  let clients: KeepAliveClient[];

  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
    replicas = await Promise.all(
      [0, 1].map((i) => startProxyReplica({ store: redis.url, command: EVERYTHING_STDIO_COMMAND, name: `aof-proxy-${i}`, extraArgs: ['--handshake-timeout', '30'] })),
    );
    clients = replicas.map((r) => new KeepAliveClient(r.url, 8));
  });
  afterAll(async () => {
    for (const c of clients ?? []) c.close();
    await stopAllProcesses();
    await redis?.stop();
  });

  it('keeps every session: they answer on both replicas after the restart', async () => {
    const sids: string[] = [];
    for (let i = 0; i < SESSIONS; i += 1) sids.push(await openSession(clients[i % 2]!, auth(i)));
    for (let i = 0; i < SESSIONS; i += 1) expect(await echo(clients[(i + 1) % 2]!, sids[i]!, auth(i), `before-${i}`)).toBe(`Echo: before-${i}`);
    const keysBefore = await redis.keys(SESSION_KEY_PATTERN);
    expect(keysBefore).toHaveLength(SESSIONS);

    const t0 = performance.now();
    await redis.restart({ signal: 'SIGKILL' });
    // Replicas reconnect with backoff capped at 2 s.
    const back = await pollUntil(async () => (await Promise.all(clients.map((c) => health(c)))).every((h) => h.status === 200), 15_000, 100);
    const recoveryMs = performance.now() - t0;
    expect(back).toBe(true);
    console.log(`AOF restart: Redis SIGKILLed and restarted; both replicas healthy again after ${Math.round(recoveryMs)} ms`);

    expect(await redis.keys(SESSION_KEY_PATTERN)).toEqual(keysBefore);
    for (let i = 0; i < SESSIONS; i += 1) {
      for (const c of clients) expect(await echo(c, sids[i]!, auth(i), `after-${i}`)).toBe(`Echo: after-${i}`);
    }
    for (const r of replicas) expect(r.process.exitInfo()).toBeUndefined();
  });
});

describe('Redis down for 5 seconds', () => {
  let redis: RedisInstance;
  let replica: ProxyReplica;
  let client: KeepAliveClient;

  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
    replica = await startProxyReplica({ store: redis.url, command: EVERYTHING_STDIO_COMMAND, name: 'outage-proxy', extraArgs: ['--handshake-timeout', '30'] });
    client = new KeepAliveClient(replica.url, 8);
  });
  afterAll(async () => {
    client?.close();
    await stopAllProcesses();
    await redis?.stop();
  });

  it('answers 503 during the outage, recovers by itself, never crashes, leaks no child', { timeout: 90_000 }, async () => {
    const sids: string[] = [];
    for (let i = 0; i < SESSIONS; i += 1) sids.push(await openSession(client, auth(i)));
    expect(childPids(replica.process.pid)).toHaveLength(SESSIONS);

    type Probe = { phase: 'down' | 'after'; what: 'ping' | 'initialize' | 'healthz'; status: number; retryAfter?: string; code?: unknown };
    const probes: Probe[] = [];
    let phase: Probe['phase'] = 'down';
    const created: { sid: string; extra: Record<string, string> }[] = []; // by the initialize probes; deleted below
    let stop = false;
    const probeLoop = async (): Promise<void> => {
      for (let n = 0; n < 1_000 && !stop; n += 1) {
        const p = phase;
        const i = n % SESSIONS;
        const [pg, init, h] = await Promise.all([
          ping(client, sids[i]!, auth(i)),
          client.request({
            headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth(100 + n) },
            body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT_PARAMS }),
            timeoutMs: 40_000,
          }),
          health(client),
        ]);
        const code = (r: { body: string }): unknown => {
          try {
            return (JSON.parse(r.body) as { error?: { code?: unknown } }).error?.code;
          } catch {
            return undefined;
          }
        };
        probes.push({ phase: p, what: 'ping', status: pg.status, retryAfter: pg.headers['retry-after'] as string | undefined, code: code(pg) });
        probes.push({ phase: p, what: 'initialize', status: init.status, retryAfter: init.headers['retry-after'] as string | undefined, code: code(init) });
        probes.push({ phase: p, what: 'healthz', status: h.status });
        if (init.status === 200 && typeof init.headers['mcp-session-id'] === 'string') created.push({ sid: init.headers['mcp-session-id'], extra: auth(100 + n) });
        await sleep(200);
      }
    };

    const t0 = performance.now();
    await redis.kill(); // down (the AOF stays in its temp dir)
    const loop = probeLoop();
    await sleep(5_000);
    await redis.restart(); // starts again from the AOF (restart() of a stopped server just starts it)
    const upAt = performance.now();
    phase = 'after';
    const recovered = await pollUntil(async () => (await ping(client, sids[0]!, auth(0))).status === 200, 15_000, 100);
    const recoveryMs = performance.now() - upAt;
    await sleep(1_000);
    stop = true;
    await loop;
    expect(recovered).toBe(true);

    const down = probes.filter((p) => p.phase === 'down');
    const tally = (ps: Probe[]): string => {
      const m = new Map<string, number>();
      for (const p of ps) m.set(`${p.what} ${p.status}`, (m.get(`${p.what} ${p.status}`) ?? 0) + 1);
      return [...m.entries()].map(([k, v]) => `${k}×${v}`).join(', ');
    };
    console.log(
      `Redis outage: ${((upAt - t0) / 1000).toFixed(1)} s down; during: ${tally(down)}; after restart: ${tally(probes.filter((p) => p.phase === 'after'))}; ` +
        `first successful request ${Math.round(recoveryMs)} ms after Redis was back`,
    );
    // During the outage: only clear 503s (the probe that was in flight as Redis came back may already succeed).
    const duringOutage = down.slice(0, -3);
    // At least two full rounds of probes (a round is slower on a loaded machine: initialize reaches the upstream first).
    expect(duringOutage.length).toBeGreaterThanOrEqual(6);
    for (const p of duringOutage) {
      expect(p.status, `${p.what} during the outage`).toBe(503);
      if (p.what !== 'healthz') {
        expect(p.retryAfter).toBe('1');
        expect(p.code).toBe(-32000);
      }
    }
    // After: every request to an existing session works again, and the AOF kept every session.
    for (let i = 0; i < SESSIONS; i += 1) expect((await ping(client, sids[i]!, auth(i))).status).toBe(200);
    expect(replica.process.exitInfo()).toBeUndefined();
    expect((await health(client)).status).toBe(200);

    // No leak: one child per open upstream session, and none at all once every session is deleted.
    const h = await health(client);
    expect(childPids(replica.process.pid)).toHaveLength(h.body!.upstreamSessions);
    for (const s of [...sids.map((sid, i) => ({ sid, extra: auth(i) })), ...created]) {
      const r = await client.request({ method: 'DELETE', headers: { 'mcp-session-id': s.sid, ...s.extra } });
      expect(r.status).toBe(200);
    }
    const clean = await pollUntil(async () => childPids(replica.process.pid).length === 0 && (await health(client)).body?.upstreamSessions === 0, 15_000, 200);
    expect(clean, `children left: ${childPids(replica.process.pid).join(' ')}`).toBe(true);
    expect(await redis.keys(SESSION_KEY_PATTERN)).toEqual([]);
  });
});
