/**
 * In-process proxies for the proxy's unit and single-replica tests (the built CLI is exercised in
 * cli.test.ts and by the integration suite). Loopback only; every proxy is closed by `closeAll()`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EVERYTHING_STDIO_COMMAND } from './everything.js';
import { MemorySessionStore, MemoryMessageBus, type MessageBus, type SessionStore } from '@mcp-migrate/runtime';
import {
  createLogger,
  createProxy,
  HttpUpstreamConnector,
  StdioUpstreamConnector,
  type McpProxy,
  type ProxyOptions,
  type UpstreamConnector,
} from '../../src/proxy/index.js';

export const SECRET = 'unit-test-secret-0123456789abcdef';
export const logger = createLogger((process.env.TEST_LOG_LEVEL as 'debug' | undefined) ?? 'silent');

export interface TestProxy {
  proxy: McpProxy;
  url: string;
  store: SessionStore;
  close(): Promise<void>;
}

const open = new Set<TestProxy>();

export function stdioConnector(command: readonly string[] = EVERYTHING_STDIO_COMMAND): UpstreamConnector {
  return new StdioUpstreamConnector({ command: command[0]!, args: command.slice(1), handshakeTimeoutMs: 30_000, logger });
}

export function httpConnector(url: string): UpstreamConnector {
  return new HttpUpstreamConnector({ url, handshakeTimeoutMs: 30_000, logger });
}

/** Starts a proxy on a free loopback port. Defaults: memory store, stdio server-everything. */
export async function startTestProxy(
  opts: Partial<ProxyOptions> & { store?: SessionStore; bus?: MessageBus } = {},
): Promise<TestProxy> {
  const store = opts.store ?? new MemorySessionStore();
  const proxy = createProxy({
    sessionSecrets: [SECRET],
    logger,
    ...opts,
    store,
    upstream: opts.upstream ?? stdioConnector(),
    bus: opts.bus ?? new MemoryMessageBus(),
  });
  const { url } = await proxy.listen(0, '127.0.0.1');
  const tp: TestProxy = {
    proxy,
    url,
    store,
    close: async () => {
      open.delete(tp);
      await proxy.close();
    },
  };
  open.add(tp);
  return tp;
}

export async function closeAll(): Promise<void> {
  await Promise.all([...open].map((p) => p.close()));
}

/** An SDK client connected through `url`; `headers` go on every request (e.g. Authorization). */
export async function connectClient(
  url: string,
  opts: { headers?: Record<string, string>; capabilities?: Record<string, unknown> } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; errors: Error[] }> {
  const client = new Client({ name: 'mcp-migrate-test', version: '1.0.0' }, { capabilities: opts.capabilities ?? {} });
  const errors: Error[] = [];
  client.onerror = (e) => errors.push(e);
  const transport = new StreamableHTTPClientTransport(new URL(url), opts.headers ? { requestInit: { headers: opts.headers } } : undefined);
  await client.connect(transport);
  return { client, transport, errors };
}

import { INIT_PARAMS } from './protocol.js';

export { INIT_PARAMS, pollUntil } from './protocol.js';

/** A raw POST to the MCP endpoint. */
export async function rawPost(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; json: () => unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => parseBody(res.headers.get('content-type') ?? '', text) };
}

/** The JSON-RPC responses in a parsed body (drops server notifications and requests sent before them on SSE). */
export function responsesIn(body: unknown): unknown[] {
  const list = Array.isArray(body) ? body : [body];
  return list.filter((m) => typeof m === 'object' && m !== null && !('method' in m));
}

/** Parses a JSON or SSE body into the JSON-RPC message(s) it carries (SSE: array of messages). */
export function parseBody(contentType: string, text: string): unknown {
  if (contentType.includes('text/event-stream')) {
    return text
      .split('\n')
      .filter((l) => l.startsWith('data: ') && l.length > 6)
      .map((l) => JSON.parse(l.slice(6)));
  }
  return JSON.parse(text);
}

/** Initializes a session with raw HTTP; returns its id. */
export async function rawInitialize(url: string, headers: Record<string, string> = {}, protocolVersion = '2025-06-18'): Promise<string> {
  const r = await rawPost(url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { ...INIT_PARAMS, protocolVersion } }, headers);
  if (r.status !== 200) throw new Error(`initialize failed: ${r.status} ${r.text}`);
  const sid = r.headers.get('mcp-session-id');
  if (!sid) throw new Error('no session id');
  const n = await rawPost(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': protocolVersion });
  if (n.status !== 202) throw new Error(`initialized failed: ${n.status} ${n.text}`);
  return sid;
}


export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
