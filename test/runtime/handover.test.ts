/**
 * The graceful-shutdown parts the proxy and the runtime share (packages/runtime/src/handover.ts,
 * request-tracker.ts, shutdown.ts): the hand-over loop, the request count a drain waits on, and the
 * shutdown settings from the environment.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { handOverAll, RequestTracker, shutdownFromEnv } from '@mcp-migrate/runtime';

describe('handOverAll', () => {
  it('lets go of each session once due, of every one left at the deadline, and returns when none is left', async () => {
    const owned = new Set(['idle', 'busy-then-idle', 'always-busy']);
    let busy = new Set(['busy-then-idle', 'always-busy']);
    const order: string[] = [];
    setTimeout(() => (busy = new Set(['always-busy'])), 120);
    const t0 = Date.now();
    await handOverAll<string>(
      {
        owned: () => [...owned],
        due: (s) => !busy.has(s),
        handOver: async (s) => {
          order.push(s);
          owned.delete(s);
        },
      },
      t0 + 400,
    );
    expect(order).toEqual(['idle', 'busy-then-idle', 'always-busy']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390); // the busy one waited for the deadline
    expect(owned.size).toBe(0);
  });
});

describe('RequestTracker', () => {
  it('counts a request by session until its response closes; settled resolves then, or at the deadline with what is left', async () => {
    const tracker = new RequestTracker();
    let finish: (() => void) | undefined;
    const server = http.createServer((req, res) => {
      tracker.begin(res, 's1');
      finish = () => res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const answered = fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    while (!finish) await new Promise((r) => setTimeout(r, 10));
    expect(tracker.busy('s1')).toBe(true);
    expect(tracker.busy('s2')).toBe(false);
    expect(await tracker.settled(Date.now() + 50)).toBe(1); // the deadline comes first
    setTimeout(() => finish!(), 30);
    expect(await tracker.settled(Date.now() + 5_000)).toBe(0);
    expect(await answered).toBe('ok');
    expect(tracker.busy('s1')).toBe(false);
    server.close();
  });
});

describe('shutdownFromEnv', () => {
  it('defaults to 10 s and signals on; reads seconds and on/off; rejects anything else', () => {
    expect(shutdownFromEnv({})).toEqual({ timeoutMs: 10_000, signals: true });
    expect(shutdownFromEnv({ MCP_MIGRATE_SHUTDOWN_TIMEOUT: '2.5', MCP_MIGRATE_SHUTDOWN_SIGNALS: 'off' })).toEqual({ timeoutMs: 2_500, signals: false });
    expect(() => shutdownFromEnv({ MCP_MIGRATE_SHUTDOWN_TIMEOUT: '-1' })).toThrow(RangeError);
    expect(() => shutdownFromEnv({ MCP_MIGRATE_SHUTDOWN_TIMEOUT: 'ten' })).toThrow(/MCP_MIGRATE_SHUTDOWN_TIMEOUT/);
    expect(() => shutdownFromEnv({ MCP_MIGRATE_SHUTDOWN_SIGNALS: 'yes' })).toThrow(/MCP_MIGRATE_SHUTDOWN_SIGNALS/);
  });
});
