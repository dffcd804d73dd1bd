/**
 * Owner routing, graceful shutdown: one replica's own sequence of accepting a forwarded request and
 * handing its sessions over (in-process, memory store and registry: it is one process's logic; the
 * 3-process rolling restart is test/integration/owner-failover.test.ts). The owner's drain can begin
 * between the moment it accepts a request forwarded by another replica and the moment it counts that
 * request as served; the session then looked idle, was handed over under the request, and the request
 * found no upstream session and ended the session (404, the client re-initializes): the rare reset of
 * a default-mode rolling restart. Now a request is counted in the same step as its acceptance, and one
 * that meets a hand-over under way follows the session where it goes.
 */
import type { Counter } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReplicaRegistry, MemorySessionStore } from '@mcp-migrate/runtime';
import { ForwardingMac, FORWARDED_HEADER } from '../../src/proxy/index.js';
import { startEverythingHttp, stopAllProcesses, type EverythingHttp } from '../helpers/index.js';
import { closeAll, httpConnector, rawInitialize, rawPost, SECRET, startTestProxy } from '../helpers/in-process-proxy.js';

let everything: EverythingHttp;
beforeAll(async () => {
  everything = await startEverythingHttp({ name: 'everything-owner-drain-race' });
});
afterEach(closeAll);
afterAll(async () => {
  await everything?.stop();
  await stopAllProcesses();
});

const toggle = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} } };

describe('owner routing: a drain that begins as the owner accepts a forwarded request', () => {
  it('never ends the session: the request is served before the hand-over, and the session is handed over with its upstream session', async () => {
    const registry = new MemoryReplicaRegistry();
    // The records outlive the replica's shutdown, as they do in Redis.
    const store = new MemorySessionStore();
    const closeStore = store.close.bind(store);
    store.close = async () => undefined;
    const p = await startTestProxy({ upstream: httpConnector(everything.url), registry, store });
    const sid = await rawInitialize(p.url);
    const owner = p.proxy.replicaId;
    // Already out of the accepting set, so the drain's first hand-over pass follows SIGTERM without a store write.
    await registry.drain();
    // The drain begins the moment the owner accepts the forwarded request (it counts it as `served`).
    const received = p.proxy.metrics.registry.getSingleMetric('mcp_migrate_owner_forwarded_received_total') as Counter<'outcome'>;
    const labels = received.labels.bind(received);
    let shutdown: Promise<number> | undefined;
    received.labels = ((...values: Parameters<typeof labels>) => {
      if (String(values[0]) === 'served' && shutdown === undefined) shutdown = p.proxy.shutdown({ timeoutMs: 10_000 });
      return labels(...values);
    }) as typeof received.labels;
    const header = new ForwardingMac([SECRET]).header(sid, 'sender0000', owner);
    const answer = await rawPost(p.url, toggle, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', [FORWARDED_HEADER]: header });
    expect(shutdown, 'the drain began during the forwarded request').toBeDefined();
    expect(await shutdown).toBe(0);
    // Served here, before the hand-over (or 421: the sender routes it again); never 404.
    expect(answer.status, answer.text).toBe(200);
    expect(answer.text).toContain('Started');
    // The session lives on: released to the next owner with its upstream session, not ended.
    const record = await p.store.load(sid);
    expect(record, 'the session record').toBeDefined();
    expect(record!.owner).toBeUndefined();
    expect(record!.handover).toContain('upstreamSessionId');
    await closeStore();
  }, 60_000);
});
