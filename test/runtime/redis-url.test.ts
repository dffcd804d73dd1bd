/** Store URLs (`--store`, `MCP_MIGRATE_STORE`): one parser for the proxy and apply's generated runtime. */
import { describe, expect, it } from 'vitest';
import { proxyConfigFromArgs, type ProxyArgs } from '../../src/cli/commands/proxy.js';
import { createRedisClient, createRedisStoreClient, parseStoreUrl, redact, storesFromEnv } from '@mcp-migrate/runtime';

describe('parseStoreUrl', () => {
  it('reads memory, one server and a cluster', () => {
    expect(parseStoreUrl('memory')).toEqual({ kind: 'memory' });
    expect(parseStoreUrl('  ')).toEqual({ kind: 'memory' });
    expect(parseStoreUrl('redis://h:6380/2')).toEqual({ kind: 'redis', url: 'redis://h:6380/2' });
    expect(parseStoreUrl('rediss://u:p@h')).toEqual({ kind: 'redis', url: 'rediss://u:p@h' });
    expect(parseStoreUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001, redis-3 ,[::1]:7002,[fe80::1]')).toEqual({
      kind: 'redis-cluster',
      tls: false,
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'redis-3', port: 6379 },
        { host: '::1', port: 7002 },
        { host: 'fe80::1', port: 6379 },
      ],
    });
  });

  it('reads TLS, ACL users and passwords (percent-decoded) on a cluster URL, as ioredis reads them on redis://', () => {
    expect(parseStoreUrl('rediss+cluster://app:s%40cret@h1:7000,h2:7000/')).toEqual({
      kind: 'redis-cluster',
      tls: true,
      username: 'app',
      password: 's@cret',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7000 },
      ],
    });
    expect(parseStoreUrl('REDIS+CLUSTER://:pw@h1/0')).toMatchObject({ kind: 'redis-cluster', tls: false, password: 'pw', nodes: [{ host: 'h1', port: 6379 }] });
    expect(parseStoreUrl('redis+cluster://:pw@h1')).not.toHaveProperty('username');
  });

  it.each([
    ['postgres://x', /must be "memory", redis:\/\/…/],
    ['redis+cluster://', /at least one seed node/],
    ['redis+cluster://h1:7000,h2:99999', /bad cluster seed node "h2:99999"/],
    ['redis+cluster://h1:7000/1', /only database 0/],
    ['redis+cluster://h1:7000?family=6', /query parameters are not supported/],
    ['redis+sentinel://h1:26379', /must be "memory"/],
  ])('rejects %j with a clear message', (url, message) => {
    expect(() => parseStoreUrl(url)).toThrow(RangeError);
    expect(() => parseStoreUrl(url)).toThrow(message);
  });

  it('never repeats a password in an error message', () => {
    expect(() => parseStoreUrl('mysql://root:hunter2@db')).toThrow(/root:\*\*\*@db/);
    expect(redact('redis+cluster://u:p@h1,h2')).toBe('redis+cluster://u:***@h1,h2');
    expect(redact('redis://secret@h')).toBe('redis://***@h');
  });
});

describe('where store URLs are read', () => {
  const args = (store: unknown): ProxyArgs =>
    ({
      listen: '127.0.0.1:0',
      path: '/mcp',
      store,
      upstream: 'http://127.0.0.1:1/mcp',
      'principal-header': 'authorization',
      'max-body-bytes': 1024,
      'idle-timeout': 10,
      'session-ttl': 10,
      'handshake-timeout': 10,
      'store-prefix': 'mcpm:',
      'log-level': 'info',
      _: [],
    }) as ProxyArgs;

  it('the proxy CLI takes a cluster URL in one --store, and says how when --store is repeated or bad', () => {
    expect(proxyConfigFromArgs(args('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).store).toBe('redis+cluster://127.0.0.1:7000,127.0.0.1:7001');
    expect(() => proxyConfigFromArgs(args(['redis://127.0.0.1:7000', 'redis://127.0.0.1:7001']))).toThrow(/give --store once.*redis\+cluster:\/\//);
    expect(() => proxyConfigFromArgs(args('redis+cluster://h:7000/3'))).toThrow(/--store: .*database 0/);
  });

  it('MCP_MIGRATE_STORE errors name the variable', () => {
    expect(() => storesFromEnv({ MCP_MIGRATE_STORE: 'redis+cluster://127.0.0.1:7000/2' })).toThrow(/MCP_MIGRATE_STORE: .*database 0/);
    expect(() => storesFromEnv({ MCP_MIGRATE_STORE: 'redis+cluster://127.0.0.1:7000?x=1' })).toThrow(/MCP_MIGRATE_STORE: .*query/);
  });

  it('createRedisStoreClient picks the client kind; createRedisClient refuses a cluster URL', () => {
    const opts = { lazyConnect: true } as const;
    const single = createRedisStoreClient('redis://127.0.0.1:1');
    const cluster = createRedisStoreClient('redis+cluster://127.0.0.1:1,127.0.0.1:2');
    try {
      expect((single as { isCluster?: boolean }).isCluster).toBeFalsy();
      expect((cluster as { isCluster?: boolean }).isCluster).toBe(true);
    } finally {
      single.disconnect();
      cluster.disconnect();
    }
    expect(() => createRedisClient('redis+cluster://127.0.0.1:1', opts)).toThrow(/createRedisStoreClient/);
    expect(() => createRedisStoreClient('memory')).toThrow(RangeError);
  });
});
