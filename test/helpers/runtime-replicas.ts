/**
 * Replicas of a migrated server on the runtime's `SessionTransportRegistry({ affinity: 'owner' })`
 * (test/helpers/servers/per-session-state.mjs) behind a real nginx round-robin with a real Redis, and
 * the SDK client calls and raw requests the owner-affinity tests make of them. Every tool result names
 * the replica (and process id) that ran it.
 */
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startNginx, type NginxInstance } from './nginx.js';
import { getFreePort } from './ports.js';
import { spawnManaged, stopAllProcesses, type ManagedProcess } from './processes.js';
import { startRedis, type RedisInstance } from './redis.js';
import { REPO_ROOT } from './everything.js';

export const PER_SESSION_STATE_SERVER = path.join(REPO_ROOT, 'test', 'helpers', 'servers', 'per-session-state.mjs');
/** SDK request timeout of these tests, ms. */
export const CALL_TIMEOUT_MS = 40_000;

export interface RuntimeReplica {
  name: string;
  hostPort: string;
  url: string;
  process: ManagedProcess;
}
export interface RuntimeCluster {
  replicas: RuntimeReplica[];
  nginx: NginxInstance;
}
/** What a tool of the per-session-state server answers. */
export interface Recall {
  replica: string;
  pid: number;
  value: string;
  ticks: number;
}

/** One Redis for a test file: started before its tests, stopped after them with every child process. Call at the top level; the getter is valid inside tests. */
export function redisForFile(): () => RedisInstance {
  let redis: RedisInstance | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
    await stopAllProcesses();
  });
  return () => redis!;
}

/** `count` replicas named `<prefix><i>` on one Redis (key prefix `<prefix>:`), behind nginx with passive health checks. */
export async function startRuntimeCluster(redisUrl: string, prefix: string, env: Record<string, string>, count = 3): Promise<RuntimeCluster> {
  const replicas = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const port = await getFreePort();
      const name = `${prefix}${i}`;
      const proc = spawnManaged(process.execPath, [PER_SESSION_STATE_SERVER], {
        name,
        cwd: REPO_ROOT,
        env: { PORT: String(port), REPLICA: name, MCP_MIGRATE_STORE: redisUrl, MCP_MIGRATE_KEY_PREFIX: `${prefix}:`, ...env },
      });
      await proc.waitForPort(port, 20_000);
      return { name, hostPort: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}/mcp`, process: proc };
    }),
  );
  // Passive health checks: once a replica is gone, nginx sends its share to the others (as a production balancer would).
  const nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp', failover: true });
  return { replicas, nginx };
}

export async function stopRuntimeCluster(c: RuntimeCluster | undefined): Promise<void> {
  await c?.nginx.stop();
  await Promise.all((c?.replicas ?? []).map((r) => r.process.stop()));
}

/** An SDK client session through `url`. */
export async function connectClient(url: string, name = 'owner-affinity-test'): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
  return { client, transport };
}

/** One `tools/call` through the SDK client; the tool's answer. Rejects as the SDK does (an HTTP 404 is a `StreamableHTTPError` with `code` 404). */
export async function callTool(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Recall> {
  const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS })) as { content: { text: string }[] };
  return JSON.parse(r.content[0]!.text) as Recall;
}

/** A raw POST of `tools/call <tool>` with session id `sid` to `url`: the status and the parsed result, if any. */
export async function rawCall(url: string, sid: string, tool = 'recall', args: Record<string, unknown> = {}): Promise<{ status: number; recall?: Recall; body: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: tool, arguments: args } }),
  });
  const body = await res.text();
  const data = /^data: (.*)$/m.exec(body)?.[1] ?? (body.startsWith('{') ? body : undefined);
  const text = data ? (JSON.parse(data) as { result?: { content?: { text: string }[] } }).result?.content?.[0]?.text : undefined;
  return { status: res.status, ...(text ? { recall: JSON.parse(text) as Recall } : {}), body };
}
