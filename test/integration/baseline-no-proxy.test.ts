/**
 * The problem mcp-migrate solves, shown with real processes: three server-everything
 * `streamableHttp` replicas behind a plain round-robin nginx. Each replica keeps its sessions in
 * memory, so as soon as a request of a session lands on a replica that did not create it, the
 * replica answers 400 "Bad Request: No valid session ID provided" and the session is broken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatReport,
  runScenarios,
  startEverythingHttp,
  startNginx,
  stopAllProcesses,
  type EverythingHttp,
  type NginxInstance,
  type ScenarioReport,
} from '../helpers/index.js';

describe('baseline: 3 stateful replicas behind round-robin nginx, no proxy', () => {
  let replicas: EverythingHttp[] = [];
  let nginx: NginxInstance;
  let report: ScenarioReport;

  beforeAll(async () => {
    replicas = await Promise.all([0, 1, 2].map((i) => startEverythingHttp({ name: `everything-${i}` })));
    nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
    report = await runScenarios(nginx.url, { sessions: 50, concurrency: 10, requestTimeoutMs: 10_000 });
  });

  afterAll(async () => {
    await nginx?.stop();
    await stopAllProcesses();
  });

  it('breaks (nearly) every session', () => {
    console.log(`baseline without proxy: ${formatReport(report)}`);
    // With strict round-robin, consecutive requests of one session go to different replicas; a
    // session survives only if every one of its ~12 requests happens to hit the replica that owns it.
    expect(report.failed, formatReport(report)).toBeGreaterThanOrEqual(45);
  });

  it('fails because replicas do not know each other\'s session ids (400 "No valid session ID provided")', () => {
    const failures = report.results.filter((r) => !r.ok);
    const unknownSession = failures.filter((r) => /No valid session ID provided/.test(r.error ?? '') || r.httpStatus === 400);
    expect(unknownSession.length, formatReport(report)).toBeGreaterThanOrEqual(Math.ceil(failures.length * 0.9));
    // Sessions die early: right at the handshake (notifications/initialized lands elsewhere) or the first call.
    const early = failures.filter((r) => ['initialize', 'tools/list', 'background'].includes(r.failedStep ?? ''));
    expect(early.length, formatReport(report)).toBeGreaterThanOrEqual(Math.ceil(failures.length * 0.8));
  });

  it('spread requests over all three replicas, and each replica answered 400 to ids it never issued', () => {
    const log = nginx.accessLog();
    const upstreams = new Set(log.map((e) => e.upstream));
    expect(upstreams).toEqual(new Set(replicas.map((r) => r.hostPort)));
    for (const r of replicas) {
      expect(log.filter((e) => e.upstream === r.hostPort && e.status === 400).length).toBeGreaterThan(0);
    }
  });
});
