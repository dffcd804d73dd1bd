import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BusServerRequestRouter,
  isRewrittenId,
  MemoryMessageBus,
  newReplicaId,
  replicaOfRewrittenId,
  rewriteCancellation,
  RUNTIME_ID_PREFIX,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type MessageBus,
} from '@mcp-migrate/runtime';
import { pollUntil, redisParts, startRedis, stopAllProcesses, type RedisInstance } from '../helpers/index.js';

let redis: RedisInstance;
const parts = redisParts(() => redis);

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-router-test' });
});
afterAll(async () => {
  await parts.closeAll();
  await redis?.stop();
  await stopAllProcesses();
});

async function redisBus(): Promise<MessageBus> {
  return (await parts.bus()).bus;
}

async function router(bus: MessageBus, opts: Partial<ConstructorParameters<typeof BusServerRequestRouter>[0]> = {}): Promise<BusServerRequestRouter> {
  const r = new BusServerRequestRouter({ bus, replicaId: newReplicaId(), channelPrefix: 'rt:', ...opts });
  parts.onClose(() => r.close());
  await r.ready;
  return r;
}

const sampling = (id: number | string): JsonRpcRequest => ({
  jsonrpc: '2.0',
  id,
  method: 'sampling/createMessage',
  params: { messages: [], maxTokens: 10 },
});
const answer = (id: string, text = 'hi'): JsonRpcResponse => ({ jsonrpc: '2.0', id, result: { content: { type: 'text', text } } });

const until = (check: () => boolean, ms = 5_000) => pollUntil(check, ms, 10);

describe('BusServerRequestRouter', () => {
  it('rewrites ids into the reserved space, naming the replica, never twice, and routes a local reply with the original id', async () => {
    const r = await router(new MemoryMessageBus());
    expect(r.replicaId).toMatch(/^[0-9a-z]{10}$/);
    const got: JsonRpcResponse[] = [];
    const seen = new Set<string>();
    let out!: JsonRpcRequest;
    for (let i = 0; i < 1000; i++) {
      out = r.outgoing('s1', sampling(0), (resp) => got.push(resp)); // the upstream reuses id 0 every time
      const id = out.id as string;
      expect(typeof id).toBe('string');
      expect(id).toMatch(/^[\x21-\x7e]+$/);
      expect(id.startsWith(RUNTIME_ID_PREFIX)).toBe(true);
      expect(isRewrittenId(id)).toBe(true);
      expect(replicaOfRewrittenId(id)).toBe(r.replicaId);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
    }
    expect(out.method).toBe('sampling/createMessage');
    expect(out.params).toEqual(sampling(0).params);
    expect(await r.reply('s1', answer(out.id as string))).toBe('local');
    expect(got).toEqual([{ jsonrpc: '2.0', id: 0, result: { content: { type: 'text', text: 'hi' } } }]);
    // Delivered once: a second answer to the same request is dropped.
    expect(await r.reply('s1', answer(out.id as string, 'again'))).toBe('local');
    expect(got).toHaveLength(1);
  });

  it('ids of two replicas never collide; a client id or a runtime handshake id is `unknown`', async () => {
    const bus = new MemoryMessageBus();
    const a = await router(bus);
    const b = await router(bus);
    const ids = new Set<string>();
    for (let i = 0; i < 500; i++) {
      ids.add(a.outgoing('s', sampling(i), () => undefined).id as string);
      ids.add(b.outgoing('s', sampling(i), () => undefined).id as string);
    }
    expect(ids.size).toBe(1000);
    for (const id of [0, 7, 'abc', `${RUNTIME_ID_PREFIX}replay:123:4`, `${RUNTIME_ID_PREFIX}s:`, `${RUNTIME_ID_PREFIX}s:${a.replicaId}:`, `${RUNTIME_ID_PREFIX}s::1`, `${RUNTIME_ID_PREFIX}s:a b:1`]) {
      expect(await a.reply('s', { jsonrpc: '2.0', id, result: {} }), String(id)).toBe('unknown');
    }
  });

  it('routes a reply that reached another replica to the one holding the request, over Redis pub/sub', async () => {
    const a = await router(await redisBus());
    const b = await router(await redisBus());
    const got: JsonRpcResponse[] = [];
    const out = a.outgoing('sess-x', sampling(5), (resp) => got.push(resp));
    expect(await b.reply('sess-x', answer(out.id as string))).toBe('remote');
    expect(await until(() => got.length === 1)).toBe(true);
    expect(got[0]).toEqual({ jsonrpc: '2.0', id: 5, result: { content: { type: 'text', text: 'hi' } } });
    expect(a.pendingCount).toBe(0);
  });

  it("never delivers a reply to another session's pending request, locally or remotely (hijack)", async () => {
    const a = await router(await redisBus());
    const b = await router(await redisBus());
    const drops: string[] = [];
    const c = await router(await redisBus(), { onDrop: (reason) => drops.push(reason) });
    const got: JsonRpcResponse[] = [];
    const out = c.outgoing('victim', sampling(1), (resp) => got.push(resp));
    // The attacker's session answers the victim's request id: on the same replica and from others.
    expect(await c.reply('attacker', answer(out.id as string, 'evil'))).toBe('local');
    expect(await a.reply('attacker', answer(out.id as string, 'evil'))).toBe('remote');
    expect(await b.reply('attacker', answer(out.id as string, 'evil'))).toBe('remote');
    expect(await until(() => drops.length === 3)).toBe(true);
    expect(drops).toEqual(['wrong-session', 'wrong-session', 'wrong-session']);
    expect(got).toEqual([]);
    // The request is still pending for its own session.
    expect(await a.reply('victim', answer(out.id as string, 'good'))).toBe('remote');
    expect(await until(() => got.length === 1)).toBe(true);
    expect((got[0] as unknown as { result: { content: { text: string } } }).result.content.text).toBe('good');
  });

  it('pending requests expire, and forget() drops those of a session', async () => {
    const drops: string[] = [];
    const r = await router(new MemoryMessageBus(), { timeoutMs: 100, onDrop: (reason) => drops.push(reason) });
    const got: JsonRpcResponse[] = [];
    const expiring = r.outgoing('s', sampling(1), (resp) => got.push(resp));
    const forgotten = r.outgoing('t', sampling(2), (resp) => got.push(resp));
    r.forget('t');
    expect(r.pendingCount).toBe(1);
    await r.reply('t', answer(forgotten.id as string));
    await new Promise((res) => setTimeout(res, 200));
    expect(r.pendingCount).toBe(0);
    await r.reply('s', answer(expiring.id as string));
    expect(got).toEqual([]);
    expect(drops).toEqual(['not-pending', 'not-pending']);
  });

  it("rewrites the requestId of the server's notifications/cancelled for a pending request of the same session only", async () => {
    const r = await router(new MemoryMessageBus());
    const out = r.outgoing('s', sampling(3), () => undefined);
    r.outgoing('other', sampling(4), () => undefined);
    const cancel = (requestId: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/cancelled', params: { requestId, reason: 'timeout' } });
    expect(rewriteCancellation(r, 's', cancel(3))).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: out.id, reason: 'timeout' } });
    expect(rewriteCancellation(r, 's', cancel(4))).toEqual(cancel(4));
    expect(rewriteCancellation(r, 'other', cancel(3))).toEqual(cancel(3));
    const note = { jsonrpc: '2.0' as const, method: 'notifications/message', params: { requestId: 3 } };
    expect(rewriteCancellation(r, 's', note)).toBe(note);
  });

  it('refuses replica ids that cannot appear in ids and channel names', () => {
    for (const bad of ['', 'a:b', 'a b', 'x'.repeat(65), 'é']) {
      expect(() => new BusServerRequestRouter({ bus: new MemoryMessageBus(), replicaId: bad })).toThrow(TypeError);
    }
  });
});
