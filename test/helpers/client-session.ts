/**
 * One MCP session with the official SDK client (`@modelcontextprotocol/sdk` 1.32.2), for servers other
 * than server-everything: connect (initialize, notifications/initialized, the standalone GET stream),
 * the server-specific `steps`, DELETE, and then a raw POST with the terminated id, which must get 404
 * (for servers that serve DELETE).
 * Never throws: each session reports `ok` or the step and error that failed it. Every session is
 * bounded as a whole (`timeoutMs`).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';

/** One HTTP request the client sent; its URL carried `?t=<tag>`, which the nginx access log shows. */
export interface SentRequest {
  tag: string;
  method: string;
  /** The `Last-Event-ID` it carried (a resumed stream). */
  lastEventId?: string;
  /** The JSON-RPC method (or `tools/call:<name>`) of a POST. */
  rpc?: string;
}

export interface ClientSession {
  client: Client;
  /** Every request sent so far. */
  requests: SentRequest[];
  transport: StreamableHTTPClientTransport;
  /** `notifications/message` data received so far (any stream). */
  logs: string[];
  /** Marks the step in progress (reported if the session fails). */
  step(name: string): void;
}

export interface ClientSessionOptions {
  capabilities?: ClientCapabilities;
  /** Registers request and notification handlers before connecting. */
  setup?: (client: Client) => void;
  /** The server-specific part of the session; throw (or fail an `expect`) to fail it. */
  steps: (s: ClientSession) => Promise<void>;
  /** Bound of the whole session, ms. Default 60,000. */
  timeoutMs?: number;
  /** Whether the server serves DELETE (default true): then the session ends with one, and its id must get 404 afterwards. */
  terminate?: boolean;
}

export interface ClientSessionOutcome {
  ok: boolean;
  sessionId?: string;
  requests: SentRequest[];
  failedStep?: string;
  error?: string;
}

export async function runClientSession(url: string, name: string, options: ClientSessionOptions): Promise<ClientSessionOutcome> {
  let step = 'connect';
  let sessionId: string | undefined;
  const client = new Client({ name, version: '1.0.0' }, { capabilities: options.capabilities ?? {} });
  const logs: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(String(n.params.data));
  });
  options.setup?.(client);
  const requests: SentRequest[] = [];
  const tagging = (async (input: string | URL | Request, init?: RequestInit) => {
    const tag = `${name}-${requests.length + 1}`;
    const headers = new Headers(init?.headers);
    let rpc: string | undefined;
    if (typeof init?.body === 'string') {
      const m = JSON.parse(init.body) as { method?: string; params?: { name?: string } };
      rpc = m.method === 'tools/call' ? `tools/call:${m.params?.name}` : (m.method ?? 'response');
    }
    requests.push({ tag, method: init?.method ?? 'GET', lastEventId: headers.get('last-event-id') ?? undefined, rpc });
    const u = new URL(String(input instanceof Request ? input.url : input));
    u.searchParams.set('t', tag);
    return await fetch(u, init);
  }) as typeof fetch;
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: tagging });
  const run = async (): Promise<void> => {
    await client.connect(transport);
    sessionId = transport.sessionId;
    await options.steps({ client, transport, logs, requests, step: (s) => void (step = s) });
    if (options.terminate === false) return;
    step = 'delete';
    await transport.terminateSession();
    step = 'terminated id gets 404';
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId!, 'mcp-protocol-version': transport.protocolVersion ?? '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
    });
    await res.text();
    if (res.status !== 404) throw new Error(`a request with the terminated session id got ${res.status}, not 404`);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`session did not finish within ${options.timeoutMs ?? 60_000} ms`)), options.timeoutMs ?? 60_000);
      }),
    ]);
    return { ok: true, sessionId, requests };
  } catch (err) {
    return { ok: false, sessionId, requests, failedStep: step, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
  }
}

export interface ClientSessionsReport {
  passed: number;
  failed: number;
  outcomes: ClientSessionOutcome[];
}

/** Runs `sessions` sessions, `concurrency` at a time. */
export async function runClientSessions(url: string, sessions: number, concurrency: number, options: ClientSessionOptions): Promise<ClientSessionsReport> {
  const outcomes: ClientSessionOutcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, sessions) }, async () => {
      for (let i = next++; i < sessions; i = next++) outcomes[i] = await runClientSession(url, `session-${i}`, options);
    }),
  );
  const passed = outcomes.filter((o) => o.ok).length;
  return { passed, failed: sessions - passed, outcomes };
}

/** One line per failed session. */
export function formatFailures(report: ClientSessionsReport): string {
  return report.outcomes
    .filter((o) => !o.ok)
    .map((o) => `${o.sessionId ?? '(no session)'} failed at ${o.failedStep}: ${o.error}`)
    .join('\n');
}
