/**
 * Owner affinity in the runtime (issue 13): a migrated server whose state is per session and in process
 * (a closure value and a per-session timer, test/helpers/servers/per-session-state.mjs) on
 * `SessionTransportRegistry({ affinity: 'owner' })`, 3 replicas behind a real nginx round-robin with a
 * real Redis, driven by the official SDK client:
 *   - 10/10 sessions read back their own value, though round-robin lands their requests on every
 *     replica (nginx's access log): the owner serves each one (the tool result names it);
 *   - a GET SSE stream opened on a non-owner replica gets the owner's timer notifications;
 *   - DELETE, then 404 on every replica;
 *   - kill -9 of the owner of some sessions: their next request gets 404 (MCP_MIGRATE_ON_OWNER_LOSS=end),
 *     the other sessions keep their own value; with `replay` they are restored (never another session's value).
 * A forged forwarding header gets 421. On the runtime before owner affinity (replay only), 5 of the 6 tests fail (all but DELETE).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisForFile, CALL_TIMEOUT_MS as TIMEOUT, callTool as call, connectClient as connect, openGetStream, rawCall as rawRecall, readSseResponse, startRuntimeCluster, stopRuntimeCluster as stopCluster } from '../helpers/index.js';
import type { Recall, RuntimeCluster as Cluster } from '../helpers/index.js';

const SESSIONS = 10;
const READS = 4;

const redis = redisForFile();

const startCluster = (prefix: string, env: Record<string, string>): Promise<Cluster> => startRuntimeCluster(redis().url, prefix, env);

/** Opens SESSIONS sessions through nginx; each remembers its own tag and reads it back READS times. */
async function openSessions(c: Cluster, tag: string) {
  return await Promise.all(
    Array.from({ length: SESSIONS }, async (_, i) => {
      const value = `${tag}-${i}-${Math.random().toString(36).slice(2, 8)}`;
      const { client, transport } = await connect(c.nginx.url);
      const wrote = await call(client, 'remember', { value });
      const reads: Recall[] = [];
      for (let r = 0; r < READS; r++) reads.push(await call(client, 'recall'));
      return { client, transport, value, owner: wrote.replica, reads, sid: transport.sessionId! };
    }),
  );
}

describe('owner affinity, MCP_MIGRATE_ON_OWNER_LOSS=end (default)', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster('own', {});
  }, 60_000);
  afterAll(async () => await stopCluster(c));

  it('10/10 sessions read back their own per-session state, served by their owner, from requests landing on every replica', { timeout: 120_000 }, async () => {
    const sessions = await openSessions(c, 'end');
    const log = c.nginx.accessLog();
    for (const s of sessions) {
      expect(s.reads.map((r) => r.value), `session ${s.value}`).toEqual(Array(READS).fill(s.value));
      expect(new Set(s.reads.map((r) => r.replica)), 'the owner serves every request').toEqual(new Set([s.owner]));
      const landed = new Set(log.filter((e) => e.sessionId === s.sid).map((e) => e.upstream));
      expect(landed.size, `replicas the session's requests landed on: ${[...landed].join(', ')}`).toBeGreaterThanOrEqual(2);
      expect(s.reads.at(-1)!.ticks, "the session's own timer runs").toBeGreaterThan(0);
    }
    await Promise.all(sessions.map((s) => s.client.close()));
  });

  it("a GET SSE stream on a non-owner replica gets the owner's notifications", { timeout: 60_000 }, async () => {
    const [s] = await openSessions(c, 'get');
    const other = c.replicas.find((r) => r.name !== s!.owner)!;
    const get = openGetStream(other.url, s!.sid);
    const res = await get.response;
    expect(res.status).toBe(200);
    const stream = readSseResponse<{ method?: string; params?: { data?: string } }>(res);
    await call(s!.client, 'watch');
    const deadline = Date.now() + TIMEOUT;
    const mine = () => stream.messages().filter((m) => m.method === 'notifications/message' && m.params?.data?.startsWith(`${s!.owner}:${s!.value}:`));
    while (mine().length < 2 && Date.now() < deadline && !stream.ended) await new Promise((r) => setTimeout(r, 50));
    get.abort();
    expect(mine().length, JSON.stringify(stream.messages().slice(0, 5))).toBeGreaterThanOrEqual(2);
    await s!.client.close();
  });

  it('a client cannot forge the forwarding header: 421 on a non-owner replica, and the session keeps its state', { timeout: 60_000 }, async () => {
    const [s] = await openSessions(c, 'forge');
    const other = c.replicas.find((r) => r.name !== s!.owner)!;
    const forged = await fetch(other.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': s!.sid, 'mcp-protocol-version': '2025-06-18', 'x-mcp-migrate-forwarded': `${s!.owner};AAAAAAAAAAAAAAAAAAAAAA` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'recall', arguments: {} } }),
    });
    expect(forged.status).toBe(421);
    expect(forged.headers.get('x-mcp-migrate-misdirected')).toBe('1');
    expect((await rawRecall(other.url, s!.sid)).recall).toMatchObject({ replica: s!.owner, value: s!.value });
    await s!.client.close();
  });

  it('DELETE ends the session on every replica (404)', { timeout: 60_000 }, async () => {
    const [s] = await openSessions(c, 'del');
    await s!.transport.terminateSession();
    for (const r of c.replicas) expect((await rawRecall(r.url, s!.sid)).status, r.name).toBe(404);
    await s!.client.close();
  });

  it("kill -9 of an owner: its sessions get 404, the others keep their own state", { timeout: 120_000 }, async () => {
    const sessions = await openSessions(c, 'kill');
    const victim = c.replicas.find((r) => sessions.some((s) => s.owner === r.name))!;
    victim.process.child.kill('SIGKILL');
    await victim.process.exited;
    for (const s of sessions) {
      const seen = await rawRecall(c.nginx.url, s.sid);
      if (s.owner === victim.name) {
        expect(seen.status, `session of the killed owner: ${seen.body}`).toBe(404);
        for (const r of c.replicas.filter((x) => x !== victim)) expect((await rawRecall(r.url, s.sid)).status, r.name).toBe(404);
      } else {
        expect(seen.status, seen.body).toBe(200);
        expect(seen.recall).toMatchObject({ replica: s.owner, value: s.value });
      }
    }
    await Promise.all(sessions.map((s) => s.client.close().catch(() => undefined)));
  });
});

describe('owner affinity, MCP_MIGRATE_ON_OWNER_LOSS=replay', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster('rep', { MCP_MIGRATE_ON_OWNER_LOSS: 'replay' });
  }, 60_000);
  afterAll(async () => await stopCluster(c));

  it('kill -9 of an owner: its sessions are restored by replay on another replica (fresh state, never another session\'s)', { timeout: 120_000 }, async () => {
    const sessions = await openSessions(c, 'replay');
    for (const s of sessions) expect(s.reads.map((r) => r.value)).toEqual(Array(READS).fill(s.value));
    const victim = c.replicas.find((r) => sessions.some((s) => s.owner === r.name))!;
    victim.process.child.kill('SIGKILL');
    await victim.process.exited;
    const values = new Set(sessions.map((s) => s.value));
    for (const s of sessions) {
      const seen = await rawRecall(c.nginx.url, s.sid);
      expect(seen.status, seen.body).toBe(200);
      if (s.owner === victim.name) {
        expect(seen.recall!.replica).not.toBe(victim.name);
        expect(values.has(seen.recall!.value), 'a restored session never reads another session\'s value').toBe(false);
      } else expect(seen.recall).toMatchObject({ replica: s.owner, value: s.value });
    }
    await Promise.all(sessions.map((s) => s.client.close().catch(() => undefined)));
  });
});
