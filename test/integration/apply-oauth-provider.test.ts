/**
 * The demo OAuth authorization server of the SDK 1.32.2 examples (`demoInMemoryOAuthProvider.js`,
 * `setupAuthServer`: the SDK's `mcpAuthRouter` over a provider keeping clients, codes and tokens in
 * `Map`s) as 3 replicas behind real nginx round-robin. `apply --store redis`, given that module, rewrites
 * the provider's maps into store-backed `SharedMap`s (`shared-map` transform) and exits 0; then the
 * flow of `test/helpers/oauth-flow.ts` — discovery, registration, `/authorize`, `/token`, `/introspect`,
 * one request each, each state-reading step on another replica than the step that wrote its state —
 * succeeds on a real redis-server. The original passes the same flow on one replica and fails behind
 * round-robin: the replica answering `/authorize` never saw the registration.
 *
 * Each replica runs `setupAuthServer` from a one-line launcher with the nginx URL as the issuer; the
 * demo listens on the issuer's port, which `listen-port.mjs` maps to the replica's own port.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySdk, exampleEntry, getFreePort, runApply, startNginx, startRedis, startServerReplicas, stopAllProcesses, type NginxInstance, type RedisInstance } from '../helpers/index.js';
import { runOAuthFlow } from '../helpers/oauth-flow.js';

const MODULE = 'demoInMemoryOAuthProvider';
const LAUNCHER = 'auth-server.mjs';
const MCP_SERVER_URL = 'http://127.0.0.1:3000/mcp';

let redis: RedisInstance;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(async () => {
  redis = await startRedis({ name: 'redis-oauth-provider' });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await stopAllProcesses();
});

/** A copy of the SDK with the launcher; migrated with `apply` when `migrate`. */
async function project(migrate: boolean): Promise<{ dir: string; applyCode?: number; applyOutput?: string }> {
  const copy = copySdk(`oauth-${migrate ? 'migrated' : 'original'}`);
  cleanups.push(copy.remove);
  fs.writeFileSync(
    path.join(copy.dir, LAUNCHER),
    `import { setupAuthServer } from './${exampleEntry(MODULE)}';\nsetupAuthServer({ authServerUrl: new URL(process.env.AUTH_ISSUER), mcpServerUrl: new URL(${JSON.stringify(MCP_SERVER_URL)}), strictResource: true });\n`,
  );
  if (!migrate) return { dir: copy.dir };
  const run = await runApply(copy.dir, [exampleEntry(MODULE)]);
  return { dir: copy.dir, applyCode: run.code, applyOutput: run.output };
}

/** `count` replicas of the auth server behind nginx (whose URL is the issuer), or one replica reached directly. */
async function authServers(dir: string, count: number, storeUrl?: string): Promise<{ issuer: URL; nginx?: NginxInstance }> {
  const name = `oauth-${storeUrl ? 'migrated' : 'original'}`;
  if (count === 1) {
    const [one] = await startServerReplicas(dir, 1, name, { args: [LAUNCHER], storeUrl, env: (p) => ({ AUTH_ISSUER: `http://127.0.0.1:${p}` }) });
    return { issuer: new URL(`http://${one!.hostPort}`) };
  }
  const port = await getFreePort();
  const issuer = new URL(`http://127.0.0.1:${port}`);
  const replicas = await startServerReplicas(dir, count, name, { args: [LAUNCHER], storeUrl, fixedPorts: [port], env: () => ({ AUTH_ISSUER: issuer.href }) });
  const nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), port, name: `nginx-oauth-${storeUrl ? 'migrated' : 'original'}` });
  return { issuer, nginx };
}

/** The upstream of each request of the flow, by path, in order. */
function upstreamsByPath(nginx: NginxInstance): Array<{ path: string; upstream: string; status: number }> {
  return nginx.accessLog().map((e) => ({ path: new URL(e.uri, 'http://x').pathname, upstream: e.upstream, status: e.status }));
}

describe('SDK demo OAuth authorization server, 3 replicas behind nginx round-robin', () => {
  it('migrated by apply (SharedMap on Redis): register, authorize, token and introspect succeed, each on another replica', async () => {
    const { dir, applyCode, applyOutput } = await project(true);
    expect(applyOutput).toMatch(/\[shared-map\].*DemoInMemoryAuthProvider\.clientsStore\.clients.*DemoInMemoryAuthProvider\.codes.*DemoInMemoryAuthProvider\.tokens/);
    expect(applyOutput).toContain('Ready for any number of replicas');
    expect(applyCode).toBe(0);
    const migrated = fs.readFileSync(path.join(dir, exampleEntry(MODULE)), 'utf8');
    expect(migrated.match(/createSharedMap\(/g)).toHaveLength(3);

    const { issuer, nginx } = await authServers(dir, 3, redis.url);
    const flow = await runOAuthFlow(issuer, { resource: new URL(MCP_SERVER_URL), scope: 'mcp:tools' });
    expect(flow.steps.filter((s) => !s.ok), JSON.stringify(nginx!.accessLog())).toEqual([]);
    expect(flow.ok).toBe(true);

    const log = upstreamsByPath(nginx!);
    const at = (p: string): string => log.find((e) => e.path === p)!.upstream;
    // Round-robin: each step that reads state another step wrote is served by a replica that did not write it.
    expect(log.map((e) => e.path)).toEqual(['/.well-known/oauth-authorization-server', '/register', '/authorize', '/token', '/introspect']);
    expect(new Set(log.map((e) => e.upstream)).size).toBe(3);
    expect(at('/authorize')).not.toBe(at('/register'));
    expect(at('/token')).not.toBe(at('/authorize'));
    expect(at('/token')).not.toBe(at('/register'));
    expect(at('/introspect')).not.toBe(at('/token'));
    // The entries are in Redis under names every replica derives alike.
    expect(await redis.command('KEYS', `mcpm:shared:${MODULE}.js#DemoInMemoryAuthProvider.tokens:*`)).toEqual([`mcpm:shared:${MODULE}.js#DemoInMemoryAuthProvider.tokens:${flow.accessToken}`]);
  }, 180_000);

  it('original: the same flow passes on one replica and fails behind round-robin (/authorize on a replica that never saw the client)', async () => {
    const { dir } = await project(false);
    const direct = await authServers(dir, 1);
    const one = await runOAuthFlow(direct.issuer, { resource: new URL(MCP_SERVER_URL), scope: 'mcp:tools' });
    expect(one.steps.filter((s) => !s.ok)).toEqual([]);

    const { issuer, nginx } = await authServers(dir, 3);
    const flow = await runOAuthFlow(issuer, { resource: new URL(MCP_SERVER_URL), scope: 'mcp:tools' });
    expect(flow.ok).toBe(false);
    const failed = flow.steps.find((s) => !s.ok)!;
    expect(failed.name).toBe('authorize');
    expect(failed.status).toBe(400);
    expect(failed.detail).toMatch(/invalid_client|Invalid client/i);
    const log = upstreamsByPath(nginx!);
    expect(log.find((e) => e.path === '/authorize')!.upstream).not.toBe(log.find((e) => e.path === '/register')!.upstream);
  }, 120_000);
});
