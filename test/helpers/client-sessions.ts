/**
 * Full client sessions against any MCP server, with the official SDK client: connect (initialize),
 * then the caller's steps, then DELETE and close (and, with `expectGone`, a raw POST with the
 * terminated id, which must get 404). Unlike `scenario.ts` (server-everything's tools), the steps are
 * the caller's, for real servers of any stack. Never throws: each session reports whether it passed
 * and, if not, the step and the error; every session is bounded in time.
 *
 * Each request's URL carries `?t=<tag>` (servers route on the path; the nginx access log shows the
 * query), and the session records what it sent, so a test can tell which replica served what.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { postInSession } from './protocol.js';

/** One HTTP request a session sent. */
export interface SentRequest {
  /** The `t` query parameter of its URL. */
  tag: string;
  method: string;
  /** The `Last-Event-ID` it carried (a resumed stream). */
  lastEventId?: string;
  /** The JSON-RPC method of a POST (`tools/call:<name>` for tool calls, `response` for answers). */
  rpc?: string;
}

/** What the steps get besides the client. */
export interface SessionContext {
  transport: StreamableHTTPClientTransport;
  /** `notifications/message` data received so far, on any stream. */
  logs: string[];
  /** Every request sent so far. */
  requests: SentRequest[];
  /** Names the step in progress (reported when the session fails). */
  step(name: string): void;
}

export interface SessionOutcome {
  ok: boolean;
  sessionId?: string;
  requests: SentRequest[];
  failedStep?: string;
  error?: string;
}

export interface ClientSessionsReport {
  ok: number;
  failed: number;
  /** One line per failed session: its index, the step and the error. */
  errors: string[];
  /** The `Mcp-Session-Id` of each session that got one. */
  sessionIds: string[];
  /** Every session, by index. */
  outcomes: SessionOutcome[];
}

export interface ClientSessionsOptions {
  sessions: number;
  concurrency?: number;
  /** Headers sent with every request (an `Authorization` header). */
  headers?: Record<string, string>;
  /** The client's capabilities (elicitation, sampling, roots). */
  capabilities?: ClientCapabilities;
  /** Registers request handlers (elicitation, sampling answers) before connecting. */
  setup?: (client: Client) => void;
  /** The session's steps after `initialize`; throw to fail the session. */
  steps: (client: Client, index: number, session: SessionContext) => Promise<void>;
  /** Bound of one whole session, ms. Default 30,000. */
  timeoutMs?: number;
  /** Whether the server serves DELETE. Default true; false: the session just closes. */
  terminate?: boolean;
  /** After DELETE, a request with the terminated id must get 404 (spec: a terminated session is gone). */
  expectGone?: boolean;
}

export async function runClientSessions(url: string, opts: ClientSessionsOptions): Promise<ClientSessionsReport> {
  const report: ClientSessionsReport = { ok: 0, failed: 0, errors: [], sessionIds: [], outcomes: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < opts.sessions; i = next++) {
      const outcome = await oneSession(url, opts, i);
      report.outcomes[i] = outcome;
      if (outcome.sessionId) report.sessionIds.push(outcome.sessionId);
      if (outcome.ok) report.ok++;
      else {
        report.failed++;
        report.errors.push(`session ${i}${outcome.failedStep ? ` at ${outcome.failedStep}` : ''}: ${outcome.error}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 5, opts.sessions) }, worker));
  return report;
}

async function oneSession(url: string, opts: ClientSessionsOptions, i: number): Promise<SessionOutcome> {
  const client = new Client({ name: 'mcp-migrate-test', version: '1.0.0' }, { capabilities: opts.capabilities ?? {} });
  const logs: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(String(n.params.data));
  });
  opts.setup?.(client);
  const requests: SentRequest[] = [];
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: opts.headers ?? {} }, fetch: tagging(`s${i}`, requests) });
  let step = 'connect';
  let sessionId: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`session timed out after ${opts.timeoutMs ?? 30_000} ms`)), opts.timeoutMs ?? 30_000);
  });
  try {
    await Promise.race([
      (async () => {
        await client.connect(transport);
        sessionId = transport.sessionId;
        await opts.steps(client, i, { transport, logs, requests, step: (s) => void (step = s) });
        if (opts.terminate === false) return;
        step = 'DELETE';
        await transport.terminateSession();
        if (opts.expectGone) {
          step = 'the terminated id gets 404';
          await expectGone(url, sessionId ?? '', transport.protocolVersion);
        }
      })(),
      bound,
    ]);
    return { ok: true, sessionId, requests };
  } catch (err) {
    return { ok: false, sessionId: sessionId ?? transport.sessionId, requests, failedStep: step, error: (err as Error).message.slice(0, 300) };
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
  }
}

/** A fetch that tags each request's URL with `t=<prefix>-<n>` and records it. */
function tagging(prefix: string, requests: SentRequest[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const tag = `${prefix}-${requests.length + 1}`;
    let rpc: string | undefined;
    if (typeof init?.body === 'string') {
      const m = JSON.parse(init.body) as { method?: string; params?: { name?: string } };
      rpc = m.method === 'tools/call' ? `tools/call:${m.params?.name}` : (m.method ?? 'response');
    }
    requests.push({ tag, method: init?.method ?? 'GET', lastEventId: new Headers(init?.headers).get('last-event-id') ?? undefined, rpc });
    const u = new URL(String(input instanceof Request ? input.url : input));
    u.searchParams.set('t', tag);
    return await fetch(u, init);
  }) as typeof fetch;
}

async function expectGone(url: string, sessionId: string, protocolVersion: string | undefined): Promise<void> {
  const res = await postInSession(url, sessionId, protocolVersion, { jsonrpc: '2.0', id: 99, method: 'tools/list' });
  await res.text();
  if (res.status !== 404) throw new Error(`a request with the terminated session id got ${res.status}, not 404`);
}
