/**
 * `--max-starting` (docs/reliability.md "Findings"): a burst of `initialize` requests on one replica started
 * that many children at once; they shared the replica's CPU share and all finished late, some past the
 * handshake timeout. The replica now starts at most K at once, first come first served; a waiter whose
 * client goes away, or whose request deadline passes, leaves the queue having started nothing.
 */
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, expect, it, onTestFinished } from 'vitest';
import { ERROR_ANSWERS, MemorySessionStore } from '@mcp-migrate/runtime';
import { StdioUpstreamConnector } from '../../src/proxy/index.js';
import { stopAllProcesses } from '../helpers/index.js';
import { closeAll, INIT_PARAMS, isAlive, logger, pollUntil, rawPost, startTestProxy } from '../helpers/in-process-proxy.js';

afterEach(closeAll);
afterAll(() => stopAllProcesses());

/**
 * A stdio MCP server that creates `<dir>/started/<pid>` on start and answers `initialize` only once
 * `<dir>/answer-<pid>` exists: the test decides when each child answers, not a clock.
 */
const GATED_SERVER = `
const fs = require('node:fs'), path = require('node:path'), readline = require('node:readline');
const dir = process.argv[1];
fs.writeFileSync(path.join(dir, 'started', String(process.pid)), '');
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method !== 'initialize') return;
  const answer = () => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {
    protocolVersion: m.params.protocolVersion, capabilities: {}, serverInfo: { name: 'gated', version: '1' } } }) + '\\n');
  const wait = () => (fs.existsSync(path.join(dir, 'answer-' + process.pid)) ? answer() : setTimeout(wait, 20));
  wait();
});
`;

const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT_PARAMS };

/** A proxy in front of {@link GATED_SERVER} that starts at most `maxStarting` children at once. */
async function startGated(maxStarting: number, requestTimeoutMs?: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-start-limit-'));
  fs.mkdirSync(path.join(dir, 'started'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const upstream = new StdioUpstreamConnector({ command: process.execPath, args: ['-e', GATED_SERVER, dir], handshakeTimeoutMs: 60_000, maxStarting, logger });
  const store = new MemorySessionStore();
  const p = await startTestProxy({ store, upstream, ...(requestTimeoutMs ? { requestTimeoutMs } : {}) });
  /** Pids of the children started so far (each wrote its file). */
  const started = (): number[] => fs.readdirSync(path.join(dir, 'started')).map(Number);
  const answer = (pid: number): void => fs.writeFileSync(path.join(dir, `answer-${pid}`), '');
  return { p, upstream, started, answer };
}

/** An initialize POST the test can abandon (`destroy`), as a client that gives up does. */
function abandonablePost(url: string) {
  const { port } = new URL(url);
  const req = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
  const ended = new Promise<void>((resolve) => {
    req.on('error', () => resolve());
    req.on('close', () => resolve());
  });
  req.end(JSON.stringify(INITIALIZE));
  return { destroy: () => req.destroy(), ended };
}

it('with N concurrent initializes at most K children are starting at once; each answer lets the next waiter start', async () => {
  const N = 6;
  const K = 2;
  const g = await startGated(K);
  const replies = Array.from({ length: N }, () => rawPost(g.p.url, INITIALIZE));
  const answered = new Set<number>();
  while (answered.size < N) {
    const expected = Math.min(N, answered.size + K);
    // Wait until every answer reached the proxy and each freed place went to the next waiter, whose child
    // started; nothing else can free a place, so no more children may have started.
    const settled = () => g.upstream.starts.starting === expected - answered.size && g.upstream.starts.waiting === N - expected;
    expect(await pollUntil(() => settled() && g.started().length >= expected, 20_000)).toBe(true);
    expect(g.upstream.starts.starting).toBeLessThanOrEqual(K);
    expect(g.started()).toHaveLength(expected);
    const next = g.started().find((pid) => !answered.has(pid))!;
    answered.add(next);
    g.answer(next);
  }
  const results = await Promise.all(replies);
  expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
  expect(new Set(results.map((r) => r.headers.get('mcp-session-id'))).size).toBe(N);
  expect(g.upstream.starts.starting).toBe(0);
  expect(g.p.proxy.sessions.size).toBe(N);
});

it('a waiter whose client goes away leaves the queue without starting a child', async () => {
  const g = await startGated(1);
  const first = rawPost(g.p.url, INITIALIZE);
  expect(await pollUntil(() => g.started().length === 1)).toBe(true);
  const second = abandonablePost(g.p.url);
  expect(await pollUntil(() => g.upstream.starts.waiting === 1)).toBe(true);
  second.destroy();
  await second.ended;
  expect(await pollUntil(() => g.upstream.starts.waiting === 0)).toBe(true);

  // The place frees up: nobody is waiting for it, so no second child starts.
  g.answer(g.started()[0]!);
  expect((await first).status).toBe(200);
  expect(g.upstream.starts.starting).toBe(0);
  expect(g.started()).toHaveLength(1);
  expect(g.p.proxy.sessions.size).toBe(1);
  expect(g.p.proxy.sessions.openUpstreams).toBe(1);
});

it('a waiter past the request deadline gets 504 from the error table and leaves nothing behind', async () => {
  const g = await startGated(1, 500);
  // Both arrive together; one takes the place (its child never answers in time), the other waits.
  const [a, b] = await Promise.all([rawPost(g.p.url, INITIALIZE), rawPost(g.p.url, INITIALIZE)]);
  for (const r of [a, b]) {
    expect(r.status).toBe(504);
    expect(r.headers.get('mcp-session-id')).toBeNull();
    expect(r.json()).toMatchObject({ id: 1, error: { code: ERROR_ANSWERS.gatewayTimeout.code } });
  }
  // The waiter left the queue and started nothing; the one child still holds the only place.
  expect(g.upstream.starts.waiting).toBe(0);
  expect(g.upstream.starts.starting).toBe(1);
  expect(await pollUntil(() => g.started().length === 1)).toBe(true);
  const [pid] = g.started();

  // The late answer is closed by nobody waiting for it: no child, session or upstream session stays.
  g.answer(pid!);
  expect(await pollUntil(() => g.upstream.starts.starting === 0 && !isAlive(pid!), 10_000)).toBe(true);
  expect(g.started()).toHaveLength(1);
  expect(g.p.proxy.sessions.size).toBe(0);
  expect(g.p.proxy.sessions.openUpstreams).toBe(0);
});

it('a handshake replay waits for a place like a new session does', async () => {
  const g = await startGated(1);
  const record = await new MemorySessionStore().create({ id: 'replayed-session', principal: '', protocolVersion: INIT_PARAMS.protocolVersion, initializeParams: INIT_PARAMS });
  const held = await g.upstream.starts.acquire(60_000);
  const replay = g.upstream.replay({ sessionId: record.id, record, req: {} as IncomingMessage });
  expect(await pollUntil(() => g.upstream.starts.waiting === 1)).toBe(true);
  expect(g.started()).toHaveLength(0);

  held();
  expect(await pollUntil(() => g.started().length === 1)).toBe(true);
  expect(g.upstream.starts.starting).toBe(1);
  g.answer(g.started()[0]!);
  const session = await replay;
  expect(session.initialized).toBe(true);
  expect(g.upstream.starts.starting).toBe(0);
  await session.close('terminated');
});
