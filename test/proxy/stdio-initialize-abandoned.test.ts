/**
 * Found by proxy-nginx and cluster (stdio upstream) on a loaded machine: children that start slowly made
 * clients give up on `initialize` (the SDK's request timeout) while the proxy, within its own handshake
 * timeout, went on: the child answered later, the proxy created the session no client knew, and the session
 * and its child stayed until idle reaping ("6 sessions and 6 upstream sessions after DELETE"). An initialize
 * whose client went away must stop its child and create nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
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
 * A stdio MCP server that writes its pid to `<dir>/pid` on start and answers `initialize` only once
 * `<dir>/answer` exists: the test decides when the answer comes, not a clock.
 */
const GATED_SERVER = `
const fs = require('node:fs'), path = require('node:path'), readline = require('node:readline');
const dir = process.argv[1];
fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method !== 'initialize') return;
  const answer = () => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {
    protocolVersion: m.params.protocolVersion, capabilities: {}, serverInfo: { name: 'gated', version: '1' } } }) + '\\n');
  const wait = () => (fs.existsSync(path.join(dir, 'answer')) ? answer() : setTimeout(wait, 20));
  wait();
});
`;

/** A store that remembers the ids of the records created. */
class RecordingStore extends MemorySessionStore {
  readonly created: string[] = [];
  override async create(...args: Parameters<MemorySessionStore['create']>): ReturnType<MemorySessionStore['create']> {
    this.created.push(args[0].id);
    return super.create(...args);
  }
}

/** A proxy in front of {@link GATED_SERVER} (also serving the legacy HTTP+SSE front on `/sse` and `/message`); `dir` holds its pid and answer files. */
async function startGated(handshakeTimeoutMs?: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-gated-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new RecordingStore();
  const upstream = new StdioUpstreamConnector({ command: process.execPath, args: ['-e', GATED_SERVER, dir], handshakeTimeoutMs: handshakeTimeoutMs ?? 30_000, logger });
  const p = await startTestProxy({ store, upstream, legacySse: { ssePath: '/sse', messagePath: '/message' } });
  const pidFile = path.join(dir, 'pid');
  /** The child's pid, once it has started. */
  const childPid = async (): Promise<number> => {
    expect(await pollUntil(() => startedPid() !== undefined)).toBe(true);
    return startedPid()!;
  };
  /** The child's pid if it has written it. */
  const startedPid = (): number | undefined => (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '' ? Number(fs.readFileSync(pidFile, 'utf8')) : undefined);
  /** Nothing left behind: no child, no local session, no upstream session, no record. */
  const expectNothingLeft = async (pid: number | undefined): Promise<void> => {
    if (pid !== undefined) expect(await pollUntil(() => !isAlive(pid), 10_000)).toBe(true);
    expect(p.proxy.sessions.size).toBe(0);
    expect(p.proxy.sessions.openUpstreams).toBe(0);
    for (const id of store.created) expect(await store.load(id)).toBeUndefined();
  };
  return { p, dir, childPid, startedPid, expectNothingLeft, answer: () => fs.writeFileSync(path.join(dir, 'answer'), '') };
}

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT_PARAMS });

it('an initialize whose client went away stops its child and creates no session, even if the child answers later', async () => {
  const g = await startGated();
  // POST initialize; once the child runs, the client gives up (as the SDK does on its request timeout).
  const { port } = new URL(g.p.url);
  const req = http.request({
    host: '127.0.0.1',
    port,
    path: '/mcp',
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  });
  const ended = new Promise<void>((resolve) => {
    req.on('error', () => resolve());
    req.on('close', () => resolve());
  });
  req.end(INITIALIZE);
  const pid = await g.childPid();
  req.destroy();
  await ended;

  // The child may now answer: nobody is waiting for it.
  g.answer();
  await g.expectNothingLeft(pid);
});

it('an initialize the child does not answer within the handshake timeout gets 504 from the error table and leaves nothing behind', async () => {
  const g = await startGated(200);
  const r = await rawPost(g.p.url, JSON.parse(INITIALIZE));
  expect(r.status).toBe(504);
  expect(r.headers.get('mcp-session-id')).toBeNull();
  expect(r.json()).toMatchObject({ id: 1, error: { code: ERROR_ANSWERS.gatewayTimeout.code, message: expect.stringContaining('did not answer initialize') } });
  // The answer comes once the child has exited; on a slow machine it may not even have written its pid.
  await g.expectNothingLeft(g.startedPid());
});

/** A request to the proxy that the test ends (`cut`) as a client that gives up does; `ended` resolves once it is closed. */
function openRequest(url: URL, method: 'GET' | 'POST', headers: http.OutgoingHttpHeaders) {
  const req = http.request({ host: '127.0.0.1', port: url.port, path: url.pathname + url.search, method, headers });
  const ended = new Promise<void>((resolve) => {
    req.on('error', () => resolve());
    req.on('close', () => resolve());
  });
  const response = new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
  return { req, ended, response };
}

/** A legacy SSE stream (GET /sse) and the message endpoint its `endpoint` event names. */
async function openLegacyStream(base: string) {
  const s = openRequest(new URL('/sse', base), 'GET', { accept: 'text/event-stream' });
  s.req.end();
  const res = await s.response;
  expect(res.statusCode).toBe(200);
  res.setEncoding('utf8');
  let text = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    res.on('data', (chunk: string) => {
      text += chunk;
      const m = /event: endpoint\ndata: (\S+)\n/.exec(text);
      if (m) resolve(m[1]!);
    });
    res.once('end', () => reject(new Error(`SSE stream ended before its endpoint event: ${text}`)));
  });
  return { stream: s, endpoint: new URL(endpoint, base) };
}

const LEGACY_INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { ...INIT_PARAMS, protocolVersion: '2024-11-05' } });

it('legacy HTTP+SSE: an initialize whose POST the client cut stops its child and creates no session', async () => {
  const g = await startGated();
  const { stream, endpoint } = await openLegacyStream(g.p.url);
  const post = openRequest(endpoint, 'POST', { 'content-type': 'application/json' });
  post.req.end(LEGACY_INITIALIZE);
  const pid = await g.childPid();
  post.req.destroy();
  await post.ended;

  g.answer();
  await g.expectNothingLeft(pid);
  stream.req.destroy();
});

it('legacy HTTP+SSE: an initialize whose SSE stream closed stops its child, creates no session and answers its POST 404', async () => {
  const g = await startGated();
  const { stream, endpoint } = await openLegacyStream(g.p.url);
  const post = openRequest(endpoint, 'POST', { 'content-type': 'application/json' });
  post.req.end(LEGACY_INITIALIZE);
  const pid = await g.childPid();
  // The client goes away by closing its stream (the session's lifetime); its POST stays open.
  stream.req.destroy();
  await stream.ended;

  const res = await post.response;
  expect(res.statusCode).toBe(404);
  g.answer();
  await g.expectNothingLeft(pid);
});
