/**
 * The analyzer on real input nobody here wrote: the JavaScript that
 * `@modelcontextprotocol/server-everything@2026.8.31` ships (pinned in devDependencies).
 * Every expected finding below was checked by hand against that package's `dist/` sources.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze, type AnalysisResult } from '../../src/analyzer/index.js';

const dist = path.resolve('node_modules/@modelcontextprotocol/server-everything/dist');
const row = (f: AnalysisResult['findings'][number]) => `${f.file}:${f.line} ${f.ruleId} ${f.symbol} ${f.fix}`;

describe('server-everything (shipped JavaScript)', async () => {
  const result = await analyze({ paths: [dist], cwd: process.cwd() });
  const state = result.findings.filter((f) => f.category !== 'server-initiated-request').map(row);

  it('finds exactly the session state it holds in process', () => {
    expect(state).toEqual([
      // resources registered by a session's tool on its own server, kept in one module-level Map by URI
      'resources/session.js:6 no-global-connection-state registeredResources transform:shared-map',
      // subscriber sets: Map<uri, Set<sessionId>> and per-session update timers
      'resources/subscriptions.js:3 no-session-keyed-state subscriptions transform:session-keyed-map',
      'resources/subscriptions.js:5 no-session-keyed-state subsUpdateIntervals manual',
      // the update interval a tool starts for the session, kept in that map (no replay re-runs the tool)
      'resources/subscriptions.js:102 no-per-session-timer subsUpdateIntervals manual',
      // per-session factory: the SDK's in-memory task store (its queue, given to the same server, is in the
      // same finding), the roots-sync timer variable and the timer set in oninitialized (both replayed)
      'server/index.js:26 no-in-memory-task-store taskStore transform:task-store',
      'server/index.js:28 no-per-session-closure-state initializeTimeout proxy',
      'server/index.js:78 no-per-session-timer initializeTimeout proxy',
      // the per-session map of logging timers, and the interval the logging tool starts
      'server/logging.js:2 no-session-keyed-state logsUpdateIntervals manual',
      'server/logging.js:45 no-per-session-timer logsUpdateIntervals manual',
      // the per-session map of roots
      'server/roots.js:3 no-session-keyed-state roots transform:session-keyed-map',
      // the running research of each task a session's tool created, read back by that task's getTaskResult
      'tools/simulate-research-query.js:21 no-global-connection-state researchStates transform:shared-map',
      // Sets of session ids that toggled simulated logging / subscriber updates
      'tools/toggle-simulated-logging.js:16 no-session-keyed-state clients transform:session-keyed-map',
      'tools/toggle-subscriber-updates.js:16 no-session-keyed-state clients transform:session-keyed-map',
      // one-shot retry markers keyed `${sessionId}\0${url}\0${elicitationId}`
      'tools/trigger-url-elicitation.js:58 no-session-keyed-state issuedErrorPathElicitations transform:session-keyed-map',
      // the legacy SSE transport and its registry
      'transports/sse.js:15 no-session-transport-registry transports transform:transport-registry',
      'transports/sse.js:28 no-sse-server-transport SSEServerTransport proxy',
      // Streamable HTTP: the in-memory event store, the transport registry, the session id generator
      'transports/streamableHttp.js:7 no-in-memory-event-store InMemoryEventStore transform:event-store',
      // its events field and its \`new\`, covered by the class's finding (one rewrite)
      'transports/streamableHttp.js:8 no-in-memory-event-store InMemoryEventStore.events transform:event-store',
      'transports/streamableHttp.js:39 no-session-transport-registry transports transform:transport-registry',
      'transports/streamableHttp.js:54 no-in-memory-event-store new InMemoryEventStore transform:event-store',
      'transports/streamableHttp.js:56 no-stateful-session-id-generator sessionIdGenerator transform:transport-registry',
    ]);
  });

  it('lists the server-to-client calls that need a live stream', () => {
    const calls = result.findings.filter((f) => f.category === 'server-initiated-request').map((f) => `${f.file}:${f.line} ${f.symbol}`);
    expect(calls).toEqual(
      expect.arrayContaining([
        'server/roots.js:31 listRoots',
        'tools/trigger-sampling-request.js:65 sendRequest',
        'tools/trigger-elicitation-request.js:40 sendRequest',
        'tools/trigger-url-elicitation.js:135 sendRequest',
        'resources/subscriptions.js:82 notification',
        'server/logging.js:38 sendLoggingMessage',
        'tools/trigger-long-running-operation.js:46 notification',
      ]),
    );
    expect(result.findings.filter((f) => f.category === 'server-initiated-request').every((f) => f.severity === 'note')).toBe(true);
  });

  it('decides that hidden per-session state needs owner routing', () => {
    expect(result.verdict.kind).toBe('owner-routing');
    const deciding = result.verdict.decidingFindings.map((i) => result.findings[i]!.symbol).sort();
    // registeredResources and researchStates are keyed Maps the shared-map transform is offered (and refuses, with a marker: a sync use, a value changed in place), so they do not decide it.
    expect(deciding).toEqual(['logsUpdateIntervals', 'logsUpdateIntervals', 'subsUpdateIntervals', 'subsUpdateIntervals']);
  });

  it('reports relative POSIX paths, 1-based spans and a message that says what, why and what to do', () => {
    expect(result.summary.files).toBeGreaterThan(30);
    expect(result.warnings).toEqual([]);
    for (const f of result.findings) {
      expect(path.isAbsolute(f.file)).toBe(false);
      expect(f.file).not.toContain('\\');
      expect(f.line).toBeGreaterThanOrEqual(1);
      expect(f.column).toBeGreaterThanOrEqual(1);
      expect(f.endLine * 100000 + f.endColumn).toBeGreaterThan(f.line * 100000 + f.column);
      expect(f.message).toMatch(/load balancer/);
      expect(f.message).toMatch(/mcp-migrate (apply|proxy)|shared store|by hand|manual/);
    }
  });
});
