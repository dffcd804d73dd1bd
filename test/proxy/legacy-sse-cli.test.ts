/** The legacy HTTP+SSE flags of `mcp-migrate proxy` (`--legacy-sse`, `--sse-path`, `--message-path`). */
import { describe, expect, it } from 'vitest';
import { proxyConfigFromArgs, type ProxyArgs } from '../../src/cli/commands/proxy.js';

const base: ProxyArgs = {
  listen: '127.0.0.1:0',
  path: '/mcp',
  store: 'memory',
  'principal-header': 'authorization',
  'max-body-bytes': 1024,
  'idle-timeout': 300,
  'session-ttl': 3600,
  'handshake-timeout': 10,
  'store-prefix': 'mcpm:',
  'log-level': 'info',
  '--': ['node', 'server.js'],
  _: [],
};

describe('legacy HTTP+SSE flags', () => {
  it('are on by default at /sse and /message, and take other paths', () => {
    expect(proxyConfigFromArgs(base).legacySse).toEqual({ ssePath: '/sse', messagePath: '/message' });
    expect(proxyConfigFromArgs({ ...base, 'sse-path': '/legacy/sse', 'message-path': '/legacy/messages' }).legacySse).toEqual({
      ssePath: '/legacy/sse',
      messagePath: '/legacy/messages',
    });
  });

  it('--no-legacy-sse turns the front off (and its paths are then not checked)', () => {
    expect(proxyConfigFromArgs({ ...base, 'legacy-sse': false, 'sse-path': '/mcp' }).legacySse).toBeUndefined();
  });

  it('refuses paths that are not paths, clash with each other or with the proxy’s own endpoints', () => {
    expect(() => proxyConfigFromArgs({ ...base, 'sse-path': 'sse' })).toThrow(/--sse-path must be a path/);
    expect(() => proxyConfigFromArgs({ ...base, 'message-path': '/message?x=1' })).toThrow(/--message-path must be a path/);
    expect(() => proxyConfigFromArgs({ ...base, 'sse-path': '/mcp' })).toThrow(/--sse-path "\/mcp" is already used/);
    expect(() => proxyConfigFromArgs({ ...base, 'message-path': '/healthz' })).toThrow(/--message-path "\/healthz" is already used/);
    expect(() => proxyConfigFromArgs({ ...base, 'sse-path': '/x', 'message-path': '/x' })).toThrow(/must differ/);
  });
});
