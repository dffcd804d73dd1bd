/**
 * The analyzer on the example servers that `@modelcontextprotocol/sdk@1.32.2` ships
 * (`dist/esm/examples/server/*.js`), each analyzed as its own program. Stateful and stateless alike:
 * the stateless ones (and the stdio ones) must produce no finding at all.
 */
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
    ['simpleStreamableHttp.js', ['562 no-session-transport-registry sessions', '607 no-in-memory-event-store InMemoryEventStore', '609 no-stateful-session-id-generator sessionIdGenerator']],
    ['jsonResponseStreamableHttp.js', ['70 no-session-transport-registry sessions', '108 no-stateful-session-id-generator sessionIdGenerator']],
    ['standaloneSseWithGetStreamableHttp.js', ['36 no-session-transport-registry sessions', '75 no-stateful-session-id-generator sessionIdGenerator']],
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
        // module-level Map of pending URL elicitations (their resolvers), filled by the tools of every session
        '90 no-global-connection-state elicitationsMap',
        '495 no-session-transport-registry sessions',
        '514 no-session-keyed-state sessionsNeedingElicitation',
        '534 no-in-memory-event-store InMemoryEventStore',
        '536 no-stateful-session-id-generator sessionIdGenerator',
      ],
    ],
    [
      'simpleTaskInteractive.js',
      [
        // the module-level TaskResultHandler keeps the resolvers of requests sent to each session's client,
        // and activeTaskExecutions the running tasks (with their session's server) by task id
        '163 no-global-connection-state TaskResultHandler.pendingRequests',
        '350 no-global-connection-state taskResultHandler',
        '352 no-global-connection-state activeTaskExecutions',
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

  it('reports sampling and elicitation calls of stateful servers as informational notes', async () => {
    const r = await analyze({ paths: [path.join(examples, 'simpleTaskInteractive.js')], cwd: process.cwd() });
    const notes = r.findings.filter((f) => f.category === 'server-initiated-request').map((f) => f.symbol);
    expect(notes).toEqual(['elicitInput', 'createMessage']);
  });

  it('finds the in-memory event store class where it is defined', async () => {
    const r = await analyze({ paths: [path.join(examples, '..', 'shared')], cwd: process.cwd() });
    expect(r.findings.map((f) => `${f.file}:${f.line} ${f.ruleId}`)).toEqual(['inMemoryEventStore.js:6 no-in-memory-event-store']);
  });
});
