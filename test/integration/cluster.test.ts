/**
 * Issue 7: the runtime on a Redis Cluster. Everything `proxy-nginx.test.ts` and
 * `apply-server-everything.test.ts` show on one redis-server, shown again with the store on a real
 * 3-master Redis Cluster on loopback (`startRedisCluster()`, reached with `--store redis+cluster://…`
 * or `MCP_MIGRATE_STORE=redis+cluster://…`):
 *   - 3 `mcp-migrate proxy` replicas behind plain round-robin nginx serve the 50-session SDK scenario
 *     against server-everything with zero failures, for stdio and for Streamable HTTP upstreams, with
 *     owner routing (the default: replica registry, owner claims, forwarding) and with `--affinity replay`;
 *   - 3 replicas of server-everything migrated by `mcp-migrate apply` do the same, with no proxy.
 * The records land on every master (hash-tagged keys spread over the slots), every replica's
 * pub/sub subscription works across nodes, and nothing is left behind after DELETE.
 *
 * Extending: the store comes from `startRedisStore(STORE_KIND)`; new per-session keys must share the
 * session's hash tag (`<prefix>{<sid>}:<kind>`), which `leavesNoSessionKey` checks over all nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  migrateEverything,
  startMigratedReplicas,
  type MigratedEverything,
  formatReport,
  runScenarios,
  startNginx,
  startProxyCluster,
  startRedisStore,
  stopAllProcesses,
  type ManagedProcess,
  type NginxInstance,
  type ProxyReplica,
  type RedisStoreInstance,
  type RedisStoreKind,
  type ScenarioReport,
} from '../helpers/index.js';

/** The store every test here runs on. (`'single'` runs the same assertions on one redis-server.) */
const STORE_KIND: RedisStoreKind = 'cluster';
const REPLICAS = 3;
const SESSIONS = 50;

/** Session records spread over the masters: each master created (MULTI/EXEC) at least one. */
async function recordsOnEveryMaster(store: RedisStoreInstance): Promise<number[]> {
  return await Promise.all(store.nodes.map(async (n) => (await n.commandStats()).get('exec')?.calls ?? 0));
}

/** No key of any session is left on any node (every per-session key is `<prefix>{<sid>}:<kind>`). */
async function leavesNoSessionKey(store: RedisStoreInstance): Promise<string[]> {
  return await store.keys('mcpm:{*');
}

/** Upstream kind, and the proxy's session mode: owner routing (the default: replica registry, owner claims, forwarding) or `--affinity replay`. */
// A stdio upstream runs with the default only: in replay mode each of the 3 replicas starts its own
// child per session (150 Node processes for 50 sessions), which on a loaded 2-core CI machine makes
// replays slower than the SDK client's 60 s request timeout (see docs/reliability.md, "Findings").
const PROXY_RUNS: [upstream: 'stdio' | 'http', mode: 'replay' | 'owner'][] = [
  ['stdio', 'owner'],
  ['http', 'replay'],
  ['http', 'owner'],
];

describe.each(PROXY_RUNS)(`mcp-migrate proxy × 3 behind round-robin nginx, store on Redis (${STORE_KIND}) (%s upstream, %s mode)`, (kind, mode) => {
  let store: RedisStoreInstance;
  let proxies: readonly ProxyReplica[] = [];
  let nginx: NginxInstance;
  let report: ScenarioReport;

  beforeAll(async () => {
    store = await startRedisStore(STORE_KIND, { name: `cluster-it-${kind}-${mode}` });
    const modeArgs = mode === 'replay' ? ['--affinity', 'replay'] : [];
    const cluster = await startProxyCluster({ store: store.url, upstream: kind, name: `cluster-proxy-${kind}-${mode}`, replicas: REPLICAS, extraArgs: modeArgs });
    ({ replicas: proxies, nginx } = cluster);
    report = await runScenarios(nginx.url, { sessions: SESSIONS, concurrency: 10, requestTimeoutMs: cluster.requestTimeoutMs });
    console.log(`proxy on Redis ${STORE_KIND} (${kind} upstream, ${mode} mode): ${formatReport(report)}`);
  }, 300_000); // 50 sessions of stdio children on 3 replicas take over a minute on a loaded 2-core machine

  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
    await store?.stop();
  });

  const logs = (): string => proxies.map((p) => `--- ${p.process.name} ---\n${p.process.output().slice(-2000)}`).join('\n');

  it('each replica connected to the store the URL names', () => {
    for (const p of proxies) expect(p.process.output()).toMatch(STORE_KIND === 'cluster' ? /"msg":"listening".*"store":"redis-cluster"|"store":"redis-cluster".*"msg":"listening"/ : /"store":"redis"/);
  });

  it(`runs ${SESSIONS} full sessions with zero failures`, () => {
    expect(report.failed, `${formatReport(report)}\n${report.failed > 0 ? logs() : ''}`).toBe(0);
    expect(report.passed).toBe(SESSIONS);
    expect(new Set(report.results.map((r) => r.sessionId)).size).toBe(SESSIONS);
  });

  it('sent every session to several replicas (nginx has no affinity)', () => {
    const perSession = new Map<string, Set<string>>();
    for (const e of nginx.accessLog()) {
      if (!e.sessionId) continue;
      const set = perSession.get(e.sessionId) ?? new Set<string>();
      set.add(e.upstream);
      perSession.set(e.sessionId, set);
    }
    for (const r of report.results) expect(perSession.get(r.sessionId!)?.size ?? 0, `session ${r.sessionId}`).toBeGreaterThanOrEqual(2);
  });

  it('kept the records on every master, loaded them on other replicas, and removed them all on DELETE', async () => {
    const exec = await recordsOnEveryMaster(store);
    expect(exec.reduce((a, b) => a + b, 0)).toBe(SESSIONS); // one MULTI/EXEC per session
    if (STORE_KIND === 'cluster') for (const n of exec) expect(n).toBeGreaterThan(0);
    expect((await store.commandStats()).get('hgetall')?.calls ?? 0).toBeGreaterThanOrEqual(SESSIONS);
    expect(await leavesNoSessionKey(store)).toEqual([]);
  });

  it('keeps every replica subscribed to the session-events channel, across the nodes', async () => {
    let n = 0;
    for (let i = 0; i < 20 && n !== REPLICAS; i += 1) {
      n = await store.subscribers('mcpm:session-events');
      if (n !== REPLICAS) await new Promise((r) => setTimeout(r, 100));
    }
    expect(n).toBe(REPLICAS);
  });

  it('closes the upstream sessions on every replica once the sessions are deleted', async () => {
    type Health = { status: string; store: string; upstreamSessions: number };
    let health: Health[] = [];
    // Bounded but generous: other replicas learn of a DELETE over pub/sub, and a loaded machine is slow.
    for (let i = 0; i < 300; i += 1) {
      health = await Promise.all(proxies.map(async (p) => (await (await fetch(`http://${p.hostPort}/healthz`)).json()) as Health));
      if (health.every((h) => h.upstreamSessions === 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health.map((h) => [h.status, h.store])).toEqual(Array(REPLICAS).fill(['ok', 'ok']));
    expect(health.map((h) => h.upstreamSessions), JSON.stringify(health)).toEqual(Array(REPLICAS).fill(0));
  });
});

/** A node_modules for the migrated copy: every dependency of this repo, plus this repo as `mcp-migrate`. */

describe(`apply --store redis on server-everything, 3 replicas behind round-robin nginx, MCP_MIGRATE_STORE on Redis (${STORE_KIND})`, () => {
  let migrated: MigratedEverything | undefined;
  let dir: string;
  let store: RedisStoreInstance;
  let replicas: { process: ManagedProcess; hostPort: string }[] = [];
  let nginx: NginxInstance;
  let report: ScenarioReport;

  beforeAll(async () => {
    migrated = await migrateEverything('apply-cluster');
    dir = migrated.dir;
    store = await startRedisStore(STORE_KIND, { name: 'cluster-it-apply' });
    replicas = await startMigratedReplicas(dir, store.url, REPLICAS, 'migrated-everything-cluster');
    nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
    report = await runScenarios(nginx.url, { sessions: SESSIONS, concurrency: 10 });
    console.log(`migrated server-everything on Redis ${STORE_KIND}: ${formatReport(report)}`);
  }, 300_000);

  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
    await store?.stop();
    migrated?.remove();
  });

  it(`runs ${SESSIONS} full sessions with zero failures`, () => {
    const logs = replicas.map((r) => `--- ${r.process.name} ---\n${r.process.output().slice(-2000)}`).join('\n');
    expect(report.failed, `${formatReport(report)}\n${report.failed > 0 ? logs : ''}`).toBe(0);
    expect(report.passed).toBe(SESSIONS);
  });

  it('kept the handshakes on every master and removed every session record on DELETE', async () => {
    const exec = await recordsOnEveryMaster(store);
    expect(exec.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(SESSIONS);
    if (STORE_KIND === 'cluster') for (const n of exec) expect(n).toBeGreaterThan(0);
    expect((await store.commandStats()).get('hgetall')?.calls ?? 0).toBeGreaterThanOrEqual(SESSIONS);
    expect(await store.keys('mcpm:*:session')).toEqual([]);
  });
});
