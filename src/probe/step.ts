/**
 * The frame every session's checks run in: the run's shared context, the session's recording fetch,
 * and `step`, which runs one check and records pass or failure with the exchange that decided it.
 */
import { ExchangeLog } from './exchange-log.js';
import { exchangeSince, failure, pass, requestFailure } from './checks.js';
import { sessionToken, type ProbeOptions } from './options.js';
import type { CheckResult, Exchange, ProbeTransport, SessionRun, Symptom } from './types.js';

/** How much later than the run's deadline an SDK request timeout may fire. */
const DEADLINE_MARGIN_MS = 250;

/** What every session of one run shares. */
export interface RunContext {
  opts: ProbeOptions;
  /** Random, per run: makes the values sessions write unique to this run. */
  runId: string;
  /** Milliseconds since the run started. */
  clock: () => number;
  /** Aborted when `--timeout` is reached. */
  signal: AbortSignal;
  /** `clock()` value at which the run ends. */
  deadline: number;
  /** mcp-migrate's version, sent as `clientInfo.version`. */
  version: string;
}

/** Thrown inside a step for a failure that is not an HTTP or SDK error (a wrong value, a missing message). */
export class CheckFailure extends Error {
  constructor(
    readonly symptom: Symptom,
    detail: string,
    readonly extra: Partial<CheckResult> = {},
  ) {
    super(detail);
  }
}

/** Which recorded exchanges belong to a step: a JSON-RPC method name, or a predicate. */
export type ExchangeMatch = string | ((e: Exchange) => boolean);

export class SessionProbe {
  readonly checks: CheckResult[] = [];
  readonly log: ExchangeLog;
  readonly started: number;

  constructor(
    readonly run: RunContext,
    readonly index: number,
    readonly transport: ProbeTransport,
  ) {
    this.started = run.clock();
    this.log = createLog(run);
  }

  /** The value this session writes (substituted for `{{session}}`). */
  get token(): string {
    return sessionToken(this.run.runId, this.index);
  }

  /**
   * Milliseconds an SDK request may take now: the request timeout, or a little more than what is left
   * of the run, so that at the deadline the run's abort (a clear `aborted`) comes first, not a timeout.
   */
  timeout(): number {
    return Math.max(1, Math.min(this.run.opts.requestTimeoutMs, this.run.deadline - this.run.clock() + DEADLINE_MARGIN_MS));
  }

  /** SDK request options: the current timeout and the run's abort signal. */
  requestOptions(): { timeout: number; signal: AbortSignal } {
    return { timeout: this.timeout(), signal: this.run.signal };
  }

  /**
   * Runs one check. `fn` returns the detail of a pass; an exception is a failure, classified from the
   * newest exchange the step made that matches `match` (or from a {@link CheckFailure}). Returns whether it passed.
   */
  async step(id: string, match: ExchangeMatch, fn: () => Promise<string>): Promise<boolean> {
    const test = typeof match === 'string' ? (e: Exchange) => e.rpc === match : match;
    const mark = this.log.exchanges.length;
    try {
      const detail = await fn();
      this.checks.push(pass(id, detail, exchangeSince(this.log.exchanges, mark, test)));
      return true;
    } catch (err) {
      const failed = exchangeSince(this.log.exchanges, mark, (e) => test(e) && (e.network !== undefined || (e.status ?? 0) >= 400));
      const ex = failed ?? exchangeSince(this.log.exchanges, mark, test);
      if (err instanceof CheckFailure) this.checks.push({ ...failure(id, err.symptom, err.message, ex), ...err.extra });
      else this.checks.push(requestFailure(id, ex, this.run.signal.aborted ? new DOMException('--timeout reached', 'AbortError') : err));
      return false;
    }
  }

  add(check: CheckResult): void {
    this.checks.push(check);
  }

  result(sessionId?: string, protocolVersion?: string): SessionRun {
    return {
      index: this.index,
      transport: this.transport,
      ...(sessionId !== undefined ? { sessionId } : {}),
      ...(protocolVersion !== undefined ? { protocolVersion } : {}),
      checks: this.checks,
      exchanges: this.log.exchanges,
      durationMs: Math.round(this.run.clock() - this.started),
    };
  }
}

/** A recording fetch for `run`: each request but a GET is bounded by `--request-timeout`, every one by the run's deadline. */
export function createLog(run: RunContext): ExchangeLog {
  const { replicaHeader, headers, requestTimeoutMs } = run.opts;
  return new ExchangeLog({ replicaHeader, headers, signal: run.signal, clock: run.clock, requestTimeoutMs: () => requestTimeoutMs });
}

/** Text of a tool result's text content, on one line, at most 200 characters. */
export function toolText(result: object): string {
  const raw = (result as { content?: unknown }).content;
  const content = Array.isArray(raw) ? (raw as { type?: string; text?: string }[]) : [];
  return content
    .map((c) => (c.type === 'text' ? (c.text ?? '') : `[${c.type ?? 'content'}]`))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}
