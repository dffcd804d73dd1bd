/**
 * The analyzer on the example servers that `@modelcontextprotocol/sdk@1.32.2` ships
 * (`dist/esm/examples/server/*.js`), each analyzed as its own program. Stateful and stateless alike:
 * the stateless ones (and the stdio ones) must produce no finding at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analyzer/index.js';

const examples = path.resolve('node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server');

async function stateOf(file: string): Promise<string[]> {
  const r = await analyze({ paths: [path.join(examples, file)], cwd: process.cwd() });
  return r.findings.filter((f) => f.category !== 'server-initiated-request').map((f) => `${f.line} ${f.ruleId} ${f.symbol}`);
}

describe('SDK example servers', () => {
  it.each([
    ['simpleStatelessStreamableHttp.js'],
    ['honoWebStandardStreamableHttp.js'],
    ['mcpServerOutputSchema.js'],
    ['progressExample.js'],
    ['toolWithSampleServer.js'],
  ])('%s (stateless or stdio) has no findings', async (file) => {
    const r = await analyze({ paths: [path.join(examples, file)], cwd: process.cwd() });
    expect(r.findings).toEqual([]);
    expect(r.verdict.kind).toBe('stateless');
  });

  it.each([
    [
      'simpleStreamableHttp.js',
      ['16 no-in-memory-task-store taskStore', '562 no-session-transport-registry sessions', '607 no-in-memory-event-store InMemoryEventStore', '609 no-stateful-session-id-generator sessionIdGenerator'],
    ],
    ['jsonResponseStreamableHttp.js', ['70 no-session-transport-registry sessions', '108 no-stateful-session-id-generator sessionIdGenerator']],
    // A per-session server factory starts an interval that adds resources: replay starts it again on another replica.
    ['standaloneSseWithGetStreamableHttp.js', ['23 no-per-session-timer resourceChangeInterval', '36 no-session-transport-registry sessions', '75 no-stateful-session-id-generator sessionIdGenerator']],
    ['simpleSseServer.js', ['61 no-session-transport-registry transports', '68 no-sse-server-transport SSEServerTransport']],
    [
      'sseAndStreamableHttpCompatibleServer.js',
      ['64 no-session-transport-registry sessions', '119 no-in-memory-event-store InMemoryEventStore', '121 no-stateful-session-id-generator sessionIdGenerator', '184 no-sse-server-transport SSEServerTransport'],
    ],
    ['ssePollingExample.js', ['68 no-in-memory-event-store InMemoryEventStore', '72 no-session-transport-registry sessions', '117 no-stateful-session-id-generator sessionIdGenerator']],
    ['elicitationFormExample.js', ['326 no-session-transport-registry sessions', '366 no-stateful-session-id-generator sessionIdGenerator']],
    [
      'elicitationUrlExample.js',
      [
        // Elicitations keyed by elicitation id, each carrying its session id, and the process-wide sweep over them.
        '90 no-session-keyed-state elicitationsMap',
        '103 no-per-session-timer setInterval',
        '495 no-session-transport-registry sessions',
        '514 no-session-keyed-state sessionsNeedingElicitation',
        '534 no-in-memory-event-store InMemoryEventStore',
        '536 no-stateful-session-id-generator sessionIdGenerator',
      ],
    ],
    [
      'simpleTaskInteractive.js',
      [
        // the module-level TaskResultHandler keeps the resolvers of requests sent to each session's client
        '163 no-global-connection-state TaskResultHandler.pendingRequests',
        '348 no-in-memory-task-store taskStore',
        '349 no-in-memory-task-store messageQueue',
        '350 no-global-connection-state taskResultHandler',
        '352 no-session-keyed-state activeTaskExecutions',
        '501 no-session-transport-registry sessions',
        '540 no-stateful-session-id-generator sessionIdGenerator',
      ],
    ],
  ])('%s (stateful) reports its session state', async (file, expected) => {
    expect(await stateOf(file)).toEqual(expected);
  });

  it('marks session-keyed values that cannot be serialized as manual', async () => {
    const r = await analyze({ paths: [path.join(examples, 'elicitationUrlExample.js')], cwd: process.cwd() });
    const f = r.findings.find((x) => x.symbol === 'sessionsNeedingElicitation');
    expect(f?.fix).toBe('manual'); // it stores callbacks (elicitationSender, createCompletionNotifier)
    expect(r.verdict.kind).toBe('owner-routing');
  });

  it("reports the demo OAuth server's clients, codes and tokens when its module is analyzed with elicitationUrlExample", async () => {
    const r = await analyze({ paths: ['elicitationUrlExample.js', 'demoInMemoryOAuthProvider.js'].map((f) => path.join(examples, f)), cwd: process.cwd() });
    const f = r.findings.find((x) => x.ruleId === 'no-global-connection-state' && x.file.endsWith('demoInMemoryOAuthProvider.js'));
    // Reported at the `provider` option of `mcpAuthRouter({`.
    const lines = readFileSync(path.join(examples, 'demoInMemoryOAuthProvider.js'), 'utf8').split('\n');
    expect(lines[f!.line - 1]).toMatch(/^\s*provider,/);
    expect(lines[f!.line - 2]).toMatch(/mcpAuthRouter\(\{/);
    expect(f!.symbol).toBe('DemoInMemoryAuthProvider');
    for (const field of ['`codes` (written by `authorize`)', '`tokens` (written by `exchangeAuthorizationCode`)', '`clientsStore.clients` (written by `registerClient`)']) expect(f!.message).toContain(field);
    // Its maps hold plain data and are used only in async methods: the shared-map transform moves them to the store.
    expect(f!.fix).toBe('transform:shared-map');
  });

  it('reports the task store of every example server that has one', async () => {
    // The SDK's in-memory task classes are defined in this module; an example that imports it keeps tasks in memory.
    const withTasks = readdirSync(examples).filter((f) => f.endsWith('.js') && readFileSync(path.join(examples, f), 'utf8').includes('experimental/tasks/stores/in-memory.js'));
    expect(withTasks.length).toBeGreaterThanOrEqual(2);
    for (const file of withTasks) {
      const r = await analyze({ paths: [path.join(examples, file)], cwd: process.cwd() });
      const stores = r.findings.filter((f) => f.ruleId === 'no-in-memory-task-store');
      const lines = readFileSync(path.join(examples, file), 'utf8').split('\n');
      const storeLines = stores.map((f) => lines[f.line - 1] ?? '');
      expect(storeLines.some((l) => /\bnew \w*TaskStore\w*\(/.test(l)), `${file}: the task store's construction is reported`).toBe(true);
      expect(r.verdict.kind, `${file}: a task store keeps the server from being stateless`).not.toBe('stateless');
    }
  });

  it('marks the SDK task store as rewritable and a derived one as manual', async () => {
    const plain = await analyze({ paths: [path.join(examples, 'simpleStreamableHttp.js')], cwd: process.cwd() });
    expect(plain.findings.find((f) => f.ruleId === 'no-in-memory-task-store')?.fix).toBe('transform:task-store');
    const derived = await analyze({ paths: [path.join(examples, 'simpleTaskInteractive.js')], cwd: process.cwd() });
    expect(derived.findings.filter((f) => f.ruleId === 'no-in-memory-task-store').map((f) => f.fix)).toEqual(['manual', 'manual']);
  });

  it('reports sampling and elicitation calls of stateful servers as informational notes', async () => {
    const r = await analyze({ paths: [path.join(examples, 'simpleTaskInteractive.js')], cwd: process.cwd() });
    const notes = r.findings.filter((f) => f.category === 'server-initiated-request').map((f) => f.symbol);
    expect(notes).toEqual(['elicitInput', 'createMessage']);
  });

  it('finds the in-memory event store class where it is defined', async () => {
    const r = await analyze({ paths: [path.join(examples, '..', 'shared')], cwd: process.cwd() });
    expect(r.findings.filter((f) => !f.coveredBy).map((f) => `${f.file}:${f.line} ${f.ruleId}`)).toEqual(['inMemoryEventStore.js:6 no-in-memory-event-store']);
    // Its events field is the same state: reported covered by the class's finding.
    const covered = r.findings.filter((f) => f.coveredBy);
    expect(covered.map((f) => [f.symbol, f.coveredBy?.line])).toEqual([['InMemoryEventStore.events', 6]]);
  });
});
