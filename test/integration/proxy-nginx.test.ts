/**
 * What issue 3 must show: with `mcp-migrate proxy` in front of each replica, the same plain
 * round-robin nginx that breaks every session in `baseline-no-proxy.test.ts` serves 50 full
 * sessions without a single failure, with default flags (owner routing: the replica that created a
 * session serves it, the others forward to it), for both kinds of upstream:
 *   (a) stdio: each replica runs server-everything `stdio` processes (`-- node …/index.js stdio`);
 *   (b) HTTP: each replica fronts its own server-everything `streamableHttp` sidecar.
 * Real redis-server, real nginx, three real proxy processes, the official SDK client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatReport,
  runScenarios,
  startProxyCluster,
  startRedis,
  stopAllProcesses,
  type AccessLogEntry,
  type NginxInstance,
  type ProxyCluster,
  type ProxyReplica,
  type RedisInstance,
  type ScenarioReport,
} from '../helpers/index.js';

const REPLICAS = 3;
const SESSIONS = 50;

type UpstreamKind = 'stdio' | 'http';

describe.each<UpstreamKind>(['stdio', 'http'])('mcp-migrate proxy × 3 behind round-robin nginx (%s upstream)', (kind) => {
  let redis: RedisInstance;
  let cluster: ProxyCluster;
  let proxies: readonly ProxyReplica[] = [];
  let nginx: NginxInstance;
  let report: ScenarioReport;

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await startProxyCluster({ store: redis.url, upstream: kind, name: `proxy-${kind}`, replicas: REPLICAS });
    ({ replicas: proxies, nginx } = cluster);
    report = await runScenarios(nginx.url, { sessions: SESSIONS, concurrency: 10, requestTimeoutMs: cluster.requestTimeoutMs });
    console.log(`proxy (${kind} upstream): ${formatReport(report)}`);
  });

  afterAll(async () => {
    await cluster?.stop();
    await stopAllProcesses();
    await redis?.stop();
  });

  const warnings = (): string => cluster.warnings();

  it(`runs ${SESSIONS} full sessions with zero failures`, () => {
    const logs = proxies.map((p) => `--- ${p.process.name} ---\n${p.process.output().slice(-2000)}`).join('\n');
    expect(report.failed, `${formatReport(report)}\n${report.failed > 0 ? logs : ''}`).toBe(0);
    expect(report.passed).toBe(SESSIONS);
    // Each session got its own id, and none saw an out-of-band error before DELETE.
    expect(new Set(report.results.map((r) => r.sessionId)).size).toBe(SESSIONS);
  });

  it('spread every session over all three replicas (nginx has no affinity; non-owners forward to the owner)', () => {
    const log: AccessLogEntry[] = nginx.accessLog();
    const replicas = new Set(proxies.map((p) => p.hostPort));
    expect(new Set(log.map((e) => e.upstream))).toEqual(replicas);
    // Each replica took a fair share of the traffic (strict rotation gives about a third each).
    for (const hostPort of replicas) {
      const share = log.filter((e) => e.upstream === hostPort).length / log.length;
      expect(share).toBeGreaterThan(0.2);
    }
    // And every session was served by more than one replica, so the proxy really moved sessions.
    const replicasPerSession = new Map<string, Set<string>>();
    for (const e of log) {
      if (!e.sessionId) continue;
      const set = replicasPerSession.get(e.sessionId) ?? new Set<string>();
      set.add(e.upstream);
      replicasPerSession.set(e.sessionId, set);
    }
    for (const r of report.results) {
      expect(replicasPerSession.get(r.sessionId!)?.size ?? 0, `session ${r.sessionId}`).toBeGreaterThanOrEqual(2);
    }
    const allThree = [...replicasPerSession.values()].filter((s) => s.size === REPLICAS).length;
    expect(allThree).toBeGreaterThanOrEqual(SESSIONS * 0.8);
  });

  it('kept the sessions in Redis: created once, loaded by the other replicas, removed on DELETE', async () => {
    const stats = await redis.commandStats();
    const calls = (cmd: string): number => stats.get(cmd)?.calls ?? 0;
    // One record per session, created in a MULTI/EXEC (docs/proxy.md, "Store layout and cost").
    expect(calls('exec')).toBe(SESSIONS);
    // Every session reached at least one replica that had not created it, which loaded the record.
    expect(calls('hgetall')).toBeGreaterThanOrEqual(SESSIONS);
    // DELETE removed every record: nothing is left behind (but the replica registry of owner routing).
    expect((await redis.keys('*')).filter((k) => !k.startsWith('mcpm:replicas:') && k !== 'mcpm:replica-set')).toEqual([]);
  });

  it('keeps every replica subscribed to the session-events channel', async () => {
    // docs/proxy.md: cross-replica events go over pub/sub on `<prefix>session-events` (prefix `mcpm:`).
    let reply: unknown;
    for (let i = 0; i < 20; i += 1) {
      reply = await redis.command('PUBSUB', 'NUMSUB', 'mcpm:session-events');
      if (Array.isArray(reply) && reply[1] === REPLICAS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(reply, warnings()).toEqual(['mcpm:session-events', REPLICAS]);
  });

  it('closes the upstream sessions on every replica once the sessions are deleted', async () => {
    type Health = { status: string; sessions: number; upstreamSessions: number };
    let health: Health[] = [];
    // Bounded but generous: other replicas learn of a DELETE over pub/sub, and a loaded machine is slow.
    for (let i = 0; i < 300; i += 1) {
      health = await Promise.all(proxies.map(async (p) => (await (await fetch(`http://${p.hostPort}/healthz`)).json()) as Health));
      if (health.every((h) => h.upstreamSessions === 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health.map((h) => h.status)).toEqual(['ok', 'ok', 'ok']);
    expect(health.map((h) => h.upstreamSessions), `${JSON.stringify(health)}\n${warnings()}`).toEqual([0, 0, 0]);
  });
});
