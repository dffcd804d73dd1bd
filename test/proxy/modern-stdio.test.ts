/**
 * The 2026-07-28 front over the stdio upstream (server-everything `stdio` children), on two in-process
 * replicas sharing a store, a bus (router inboxes) and session streams: requests, progress on the
 * response stream, and an MRTR round whose retry lands on the other replica.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryMessageBus, MemorySessionStore, MemorySessionStreams } from '@mcp-migrate/runtime';
import { createProxy, type McpProxy } from '../../src/proxy/index.js';
import { logger, SECRET, stdioConnector } from '../helpers/in-process-proxy.js';

const V = '2026-07-28';
const store = new MemorySessionStore();
const bus = new MemoryMessageBus();
const streams = new MemorySessionStreams();
const proxies: McpProxy[] = [];
const urls: string[] = [];

/** Shared objects survive one replica's close (closed in afterAll). */
function shared<T extends object>(x: T): T {
  return new Proxy(x, {
    get(target, prop) {
      if (prop === 'close') return async () => undefined;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

beforeAll(async () => {
  for (const replicaId of ['stdioa', 'stdiob']) {
    const proxy = createProxy({ sessionSecrets: [SECRET], logger, replicaId, store: shared(store), bus: shared(bus), streams: shared(streams), upstream: stdioConnector() });
    proxies.push(proxy);
    urls.push((await proxy.listen(0, '127.0.0.1')).url);
  }
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await streams.close();
  await bus.close();
  await store.close();
});

async function call(url: string, method: string, params: Record<string, unknown>, caps: Record<string, unknown> = {}, metaExtra: Record<string, unknown> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V,
      'mcp-method': method,
      ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': caps, ...metaExtra } },
    }),
  });
  const text = await res.text();
  const messages = (res.headers.get('content-type') ?? '').includes('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as Record<string, any>)
    : [JSON.parse(text) as Record<string, any>];
  return { status: res.status, messages, body: messages.at(-1)! };
}

describe('2026-07-28 front, stdio upstream, two replicas', () => {
  it('tools/list and tools/call', async () => {
    const list = await call(urls[0]!, 'tools/list', {});
    expect(list.body.result.resultType).toBe('complete');
    expect(list.body.result.tools.map((t: { name: string }) => t.name)).toContain('echo');
    const echo = await call(urls[1]!, 'tools/call', { name: 'echo', arguments: { message: 'stdio' } });
    expect(echo.body.result.content[0].text).toBe('Echo: stdio');
  });

  it('progress notifications reach the response stream with the client token', async () => {
    const r = await call(urls[0]!, 'tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 } }, {}, { progressToken: 'p-1' });
    expect(r.messages.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progressToken)).toEqual(['p-1', 'p-1']);
    expect(r.body.result.content[0].text).toContain('Long running operation completed');
  });

  it('elicitation: input_required on one replica, the retry completes on the other', async () => {
    const caps = { elicitation: {} };
    const r1 = await call(urls[0]!, 'tools/call', { name: 'trigger-elicitation-request', arguments: {} }, caps);
    expect(r1.body.result.resultType).toBe('input_required');
    const [key] = Object.keys(r1.body.result.inputRequests);
    const r2 = await call(
      urls[1]!,
      'tools/call',
      { name: 'trigger-elicitation-request', arguments: {}, inputResponses: { [key!]: { action: 'accept', content: { name: 'Over Stdio' } } }, requestState: r1.body.result.requestState },
      caps,
    );
    expect(r2.body.result.resultType).toBe('complete');
    expect(JSON.stringify(r2.body.result.content)).toContain('Over Stdio');
  });
});
