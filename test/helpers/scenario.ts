/**
 * The client scenario every load-balancing test runs: one full MCP session with the official SDK
 * client, against server-everything (directly, through nginx, or through mcp-migrate proxy).
 *
 * Steps of one session, in order (a session stops at its first failing step):
 *   initialize (connect: initialize + notifications/initialized), tools/list, tools/call echo,
 *   tools/call get-sum, resources/list, resources/read, prompts/get (args-prompt), logging/setLevel,
 *   ping, delete (transport.terminateSession()), close, and finally a raw POST with the
 *   terminated session id, which must get HTTP 404.
 * Every result is checked (echoed text, the sum, the prompt text…), not just "did not throw".
 *
 * Errors the SDK reports out of band (`client.onerror`: e.g. the standalone GET stream refused with
 * 400) fail the session too if they happen before `delete`; later ones (streams cut by the DELETE
 * itself) are only recorded.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { postInSession } from './protocol.js';

export const SCENARIO_STEPS = [
  'initialize',
  'tools/list',
  'tools/call echo',
  'tools/call get-sum',
  'resources/list',
  'resources/read',
  'prompts/get',
  'logging/setLevel',
  'ping',
  'delete',
  'close',
  'after-delete-404',
] as const;
export type ScenarioStep = (typeof SCENARIO_STEPS)[number] | 'background';

export interface ScenarioOptions {
  /** Per-request timeout for SDK calls. Default 15 s. */
  requestTimeoutMs?: number;
  /** Fail a session on out-of-band transport errors seen before `delete`. Default true. */
  failOnTransportError?: boolean;
  /** Client name sent in `initialize`. */
  clientName?: string;
  /**
   * HTTP status the raw request with the terminated id must get. Default 404, as the spec requires.
   * Only for controls against bare server-everything, which answers 400 instead (its own bug).
   */
  terminatedSessionStatus?: number;
}

export interface StepTiming {
  step: ScenarioStep;
  ms: number;
}

export interface SessionResult {
  index: number;
  ok: boolean;
  sessionId: string | undefined;
  /** First step that failed (`background` = an out-of-band transport error before `delete`). */
  failedStep?: ScenarioStep;
  /** Error message of the failing step, including the HTTP status when the SDK reports one. */
  error?: string;
  /** HTTP status from a `StreamableHTTPError`, when there was one. */
  httpStatus?: number;
  steps: StepTiming[];
  /** Every out-of-band error, with the step that was running. */
  transportErrors: { step: ScenarioStep; message: string }[];
  durationMs: number;
}

export interface ScenarioReport {
  url: string;
  results: SessionResult[];
  passed: number;
  failed: number;
  /** failed step → count */
  failuresByStep: Record<string, number>;
  durationMs: number;
}

class StepError extends Error {
  constructor(
    readonly step: ScenarioStep,
    message: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

function expect(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`unexpected result: ${what}`);
}

function textOf(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return content
    .map((c: { type?: string; text?: string }) => (c?.type === 'text' ? (c.text ?? '') : ''))
    .join('');
}

/** Run the scenario once as session number `index` against `url` (the MCP endpoint). Never throws. */
export async function runSessionScenario(url: string, index: number, opts: ScenarioOptions = {}): Promise<SessionResult> {
  const timeout = opts.requestTimeoutMs ?? 15_000;
  const failOnTransportError = opts.failOnTransportError ?? true;
  const started = performance.now();
  const steps: StepTiming[] = [];
  const transportErrors: { step: ScenarioStep; message: string }[] = [];
  let current: ScenarioStep = 'initialize';
  let sessionId: string | undefined;
  let deleteReached = false;

  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: opts.clientName ?? 'mcp-migrate-scenario', version: '1.0.0' }, { capabilities: {} });
  client.onerror = (err: Error) => {
    transportErrors.push({ step: current, message: describeError(err) });
  };

  const step = async <T>(name: ScenarioStep, fn: () => Promise<T>): Promise<T> => {
    current = name;
    if (name === 'delete') deleteReached = true;
    // An out-of-band error before this step (e.g. GET stream refused) fails the session here.
    if (failOnTransportError && !deleteReached && transportErrors.length > 0) {
      const first = transportErrors[0]!;
      throw new StepError('background', `during ${first.step}: ${first.message}`, statusOf(first.message));
    }
    const t0 = performance.now();
    try {
      const value = await fn();
      steps.push({ step: name, ms: performance.now() - t0 });
      return value;
    } catch (err) {
      if (err instanceof StepError) throw err;
      throw new StepError(name, describeError(err), httpStatusOf(err));
    }
  };
  const reqOpts = { timeout };

  try {
    await step('initialize', () => client.connect(transport, reqOpts));
    sessionId = transport.sessionId;
    await step('tools/list', async () => {
      const { tools } = await client.listTools(undefined, reqOpts);
      const names = new Set(tools.map((t) => t.name));
      expect(names.has('echo') && names.has('get-sum'), `tools/list lacks echo or get-sum: ${[...names].join(', ')}`);
    });
    await step('tools/call echo', async () => {
      const r = await client.callTool({ name: 'echo', arguments: { message: `hello-${index}` } }, undefined, reqOpts);
      expect(textOf(r.content) === `Echo: hello-${index}`, `echo returned ${JSON.stringify(r.content)}`);
    });
    await step('tools/call get-sum', async () => {
      const r = await client.callTool({ name: 'get-sum', arguments: { a: index, b: 1000 } }, undefined, reqOpts);
      expect(textOf(r.content).includes(`is ${index + 1000}`), `get-sum returned ${JSON.stringify(r.content)}`);
    });
    const uri = await step('resources/list', async () => {
      const { resources } = await client.listResources(undefined, reqOpts);
      expect(resources.length > 0, 'resources/list is empty');
      return resources[index % resources.length]!.uri;
    });
    await step('resources/read', async () => {
      const { contents } = await client.readResource({ uri }, reqOpts);
      expect(contents.length > 0 && contents[0]!.uri === uri, `resources/read ${uri} returned ${JSON.stringify(contents).slice(0, 200)}`);
    });
    await step('prompts/get', async () => {
      const city = `City${index}`;
      const r = await client.getPrompt({ name: 'args-prompt', arguments: { city } }, reqOpts);
      const msg = r.messages[0]?.content;
      const text = msg && msg.type === 'text' ? msg.text : '';
      expect(text === `What's weather in ${city}?`, `args-prompt returned ${JSON.stringify(r.messages)}`);
    });
    await step('logging/setLevel', async () => {
      await client.setLoggingLevel('debug', reqOpts);
    });
    await step('ping', async () => {
      await client.ping(reqOpts);
    });
    await step('delete', () => transport.terminateSession());
    await step('close', () => client.close());
    await step('after-delete-404', async () => {
      expect(sessionId, 'no session id was issued');
      const res = await postInSession(url, sessionId, transport.protocolVersion, { jsonrpc: '2.0', id: 'after-delete', method: 'ping' }, AbortSignal.timeout(timeout));
      const body = await res.text();
      const want = opts.terminatedSessionStatus ?? 404;
      if (res.status !== want) throw new StepError('after-delete-404', `expected ${want} for a terminated session, got ${res.status}: ${body.slice(0, 200)}`, res.status);
    });
    return { index, ok: true, sessionId, steps, transportErrors, durationMs: performance.now() - started };
  } catch (err) {
    const e = err instanceof StepError ? err : new StepError(current, describeError(err));
    return {
      index,
      ok: false,
      sessionId,
      failedStep: e.step,
      error: e.message,
      httpStatus: e.httpStatus,
      steps,
      transportErrors,
      durationMs: performance.now() - started,
    };
  } finally {
    // Always abort streams and timers; a failed close must not hide the real failure.
    await client.close().catch(() => undefined);
  }
}

/** Run `sessions` scenarios with at most `concurrency` in flight. Never throws; inspect the report. */
export async function runScenarios(
  url: string,
  opts: ScenarioOptions & { sessions?: number; concurrency?: number } = {},
): Promise<ScenarioReport> {
  const total = opts.sessions ?? 50;
  const concurrency = Math.max(1, Math.min(opts.concurrency ?? 10, total));
  const results: SessionResult[] = new Array(total);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next;
        next += 1;
        results[i] = await runSessionScenario(url, i, opts);
      }
    }),
  );
  const failuresByStep: Record<string, number> = {};
  for (const r of results) if (!r.ok) failuresByStep[r.failedStep!] = (failuresByStep[r.failedStep!] ?? 0) + 1;
  const failed = results.filter((r) => !r.ok).length;
  return { url, results, passed: total - failed, failed, failuresByStep, durationMs: performance.now() - started };
}

/** Human-readable summary: counts, failures by step, and the first `max` distinct errors. */
export function formatReport(report: ScenarioReport, max = 8): string {
  const lines = [
    `${report.passed}/${report.results.length} sessions passed against ${report.url} in ${Math.round(report.durationMs)} ms`,
  ];
  if (report.failed > 0) {
    lines.push(`failures by step: ${JSON.stringify(report.failuresByStep)}`);
    const seen = new Map<string, number>();
    for (const r of report.results) {
      if (r.ok) continue;
      const key = `[${r.failedStep}] ${r.error}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    let shown = 0;
    for (const [msg, n] of [...seen].sort((a, b) => b[1] - a[1])) {
      if (shown++ >= max) break;
      lines.push(`  ${n}× ${msg.slice(0, 400)}`);
    }
  }
  return lines.join('\n');
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${code !== undefined ? ` (code ${String(code)})` : ''}: ${err.message}`;
  }
  return String(err);
}

/** The SDK's `StreamableHTTPError` carries the HTTP status as `code`; JSON-RPC errors use negative codes. */
function httpStatusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' && code >= 100 && code < 600 ? code : undefined;
}

function statusOf(message: string): number | undefined {
  const m = /\(code (\d{3})\)/.exec(message);
  return m ? Number(m[1]) : undefined;
}
