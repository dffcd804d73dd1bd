/**
 * Full client sessions against any MCP server, with the official SDK client: connect (initialize),
 * then the caller's steps, then DELETE and close. Unlike `scenario.ts` (server-everything's tools),
 * the steps are the caller's, for the real servers of other stacks. Never throws: each session
 * reports whether it passed and, if not, the error; every session is bounded in time.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface ClientSessionsReport {
  ok: number;
  failed: number;
  /** One line per failed session: its index and the error. */
  errors: string[];
  /** The `Mcp-Session-Id` of each session that got one. */
  sessionIds: string[];
}

export interface ClientSessionsOptions {
  sessions: number;
  concurrency?: number;
  /** Headers sent with every request (an `Authorization` header). */
  headers?: Record<string, string>;
  /** The session's steps after `initialize`; throw to fail the session. */
  steps: (client: Client, index: number) => Promise<void>;
  /** Bound of one whole session, ms. Default 30,000. */
  timeoutMs?: number;
}

export async function runClientSessions(url: string, opts: ClientSessionsOptions): Promise<ClientSessionsReport> {
  const report: ClientSessionsReport = { ok: 0, failed: 0, errors: [], sessionIds: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < opts.sessions; i = next++) {
      const error = await oneSession(url, opts, i, report.sessionIds);
      if (error === undefined) report.ok++;
      else {
        report.failed++;
        report.errors.push(`session ${i}: ${error}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 5, opts.sessions) }, worker));
  return report;
}

async function oneSession(url: string, opts: ClientSessionsOptions, i: number, ids: string[]): Promise<string | undefined> {
  const client = new Client({ name: 'mcp-migrate-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: opts.headers ?? {} } });
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`session timed out after ${opts.timeoutMs ?? 30_000} ms`)), opts.timeoutMs ?? 30_000);
  });
  try {
    await Promise.race([
      (async () => {
        await client.connect(transport);
        if (transport.sessionId) ids.push(transport.sessionId);
        await opts.steps(client, i);
        await transport.terminateSession();
      })(),
      bound,
    ]);
    return undefined;
  } catch (err) {
    return (err as Error).message.slice(0, 300);
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
  }
}
