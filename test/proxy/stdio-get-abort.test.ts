/**
 * Found by the 10-minute soak (docs/reliability.md): a GET stream whose client gives up while the proxy
 * is still resolving the session left the stdio upstream session "busy" for good, so it was never
 * reaped and its child process stayed until the replica stopped.
 */
import http from 'node:http';
import { afterAll, afterEach, expect, it } from 'vitest';
import { MemorySessionStore } from '@mcp-migrate/runtime';
import { stopAllProcesses } from '../helpers/index.js';
import { closeAll, rawInitialize, rawPost, startTestProxy, pollUntil } from '../helpers/in-process-proxy.js';

afterEach(closeAll);
afterAll(() => stopAllProcesses());

/** A store whose `touch` takes 100 ms: long enough for a client to give up in the middle of it. */
class SlowTouchStore extends MemorySessionStore {
  override async touch(id: string): Promise<boolean> {
    await new Promise((r) => setTimeout(r, 100));
    return super.touch(id);
  }
}

it('a GET stream abandoned before it opened does not keep its stdio session from being reaped', async () => {
  const p = await startTestProxy({ store: new SlowTouchStore(), idleTimeoutMs: 500 });
  const sid = await rawInitialize(p.url);
  const ping = await rawPost(p.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': sid });
  expect(ping.status).toBe(200);
  expect(p.proxy.sessions.openUpstreams).toBe(1);

  // GET the standalone stream and drop the connection 20 ms later, while the proxy awaits the store.
  const { port } = new URL(p.url);
  await new Promise<void>((resolve) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/mcp',
      method: 'GET',
      headers: { 'mcp-session-id': sid, accept: 'text/event-stream', 'mcp-protocol-version': '2025-06-18' },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => req.destroy(), 20);
  });
  await new Promise((r) => setTimeout(r, 200)); // the proxy has finished the touch and handled the GET

  expect(p.proxy.sessions.peek(sid)?.upstream?.busy).toBe(false);
  // Idle reaping (500 ms) closes the upstream session and its child.
  expect(await pollUntil(() => p.proxy.sessions.openUpstreams === 0, 5_000)).toBe(true);
});
