/**
 * DNS-rebinding protection by default: a proxy bound to loopback without `--allowed-origins` accepts
 * only loopback `Origin`s (spec 2025-11-25 Streamable HTTP: an invalid `Origin` MUST get 403), while
 * non-browser clients (no `Origin`) are unaffected. A configured allow-list replaces the default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, isLoopbackOrigin } from '../../src/proxy/server.js';
import { stopAllProcesses } from '../helpers/index.js';
import { closeAll, INIT_PARAMS, rawInitialize, rawPost, startTestProxy, type TestProxy } from '../helpers/in-process-proxy.js';

const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT_PARAMS };

describe('Origin checks', () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ loopbackOriginsOnly: true });
  });
  afterAll(async () => {
    await closeAll();
    await stopAllProcesses();
  });

  it('refuses a foreign Origin before any session is created', async () => {
    for (const origin of ['http://evil.example', 'http://127.0.0.1.evil.example', 'null']) {
      const r = await rawPost(p.url, init, { origin });
      expect(r.status, origin).toBe(403);
      expect(r.headers.get('mcp-session-id')).toBeNull();
    }
  });

  it('accepts loopback Origins on any port, and requests without Origin', async () => {
    for (const origin of ['http://127.0.0.1:6274', 'http://localhost:3000', 'http://[::1]:8080']) {
      const r = await rawPost(p.url, init, { origin });
      expect(r.status, origin).toBe(200);
    }
    const sid = await rawInitialize(p.url);
    expect(sid).toMatch(/^[\x21-\x7e]+$/);
  });

  it('classifies origins and listen hosts', () => {
    expect(isLoopbackOrigin('http://127.0.0.2:1')).toBe(true);
    expect(isLoopbackOrigin('https://localhost')).toBe(true);
    expect(isLoopbackOrigin('http://localhost.evil.example')).toBe(false);
    expect(isLoopbackOrigin('not a url')).toBe(false);
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
    expect(isLoopbackHost('')).toBe(false);
  });
});
