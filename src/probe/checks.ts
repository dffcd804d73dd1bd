/**
 * Turning what happened into check results. `classify` names the symptom of a failed request from
 * the recorded exchange (HTTP status, JSON-RPC error) and the SDK's error; `failure` and `pass` build
 * the one-line details every reporter shows.
 */
import type { CheckResult, Exchange, Symptom } from './types.js';

/**
 * The symptom of a failed request of a live session. `ex` is the exchange that failed (when the
 * failure was an HTTP one); `err` what the SDK threw.
 *
 * - no answer: `timeout` when the request timed out, `aborted` when the run's `--timeout` ended it,
 *   else `unreachable`;
 * - 404, or 400 whose message names the session → `session-unknown` (spec §Session Management: a
 *   server that does not know the id answers 404; SDK-based routers often answer 400 "No valid session ID");
 * - 400 "not initialized" → `not-initialized` (SDK transport that never saw `initialize`);
 * - 401/403 → `auth`; 413 → `too-large`; 408/504 → `gateway-timeout`; 502/503 → `bad-gateway`;
 * - anything else (a JSON-RPC error in a 200 answer, a wrong result) → `rpc-error`.
 */
export function classify(ex: Exchange | undefined, err?: unknown): Symptom {
  if (ex?.network !== undefined) {
    if (ex.network.startsWith('aborted')) return 'aborted';
    return ex.network === 'timed out' ? 'timeout' : 'unreachable';
  }
  const status = ex?.status;
  if (status !== undefined && status >= 400) {
    const message = ex?.error?.message ?? '';
    if (status === 404) return 'session-unknown';
    if (status === 400 && /not initiali[sz]ed/i.test(message)) return 'not-initialized';
    if (status === 400 && /session/i.test(message)) return 'session-unknown';
    if (status === 401 || status === 403) return 'auth';
    if (status === 413) return 'too-large';
    if (status === 408 || status === 504) return 'gateway-timeout';
    if (status === 502 || status === 503) return 'bad-gateway';
    return 'rpc-error';
  }
  if (isTimeout(err)) return 'timeout';
  if (isAbort(err)) return 'aborted';
  return 'rpc-error';
}

/** The SDKs' request timeout (`McpError` RequestTimeout, -32001 "Request timed out"). */
export function isTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | undefined;
  return (e?.code === -32001 && /timed out/i.test(String(e.message))) || e?.name === 'TimeoutError';
}

function isAbort(err: unknown): boolean {
  return (err as { name?: unknown } | undefined)?.name === 'AbortError';
}

/** `400 on replica b: "Bad Request: No valid session ID provided" (-32000)`, or the network failure. */
export function describeExchange(ex: Exchange): string {
  if (ex.network !== undefined) return `no answer (${ex.network})`;
  const where = ex.replica ? ` on replica ${ex.replica}` : '';
  const error = ex.error ? `: "${ex.error.message}"${ex.error.code !== undefined ? ` (${ex.error.code})` : ''}` : '';
  return `${ex.status}${where}${error}`;
}

/** A passed check; `ex` adds the status and replica of the deciding exchange. */
export function pass(id: string, detail: string, ex?: Exchange): CheckResult {
  return { id, status: 'pass', detail, ...facts(ex) };
}

export function skip(id: string, detail: string, ex?: Exchange): CheckResult {
  return { id, status: 'skip', detail, ...facts(ex) };
}

/** A failed check. The detail says what was sent and what came back. */
export function failure(id: string, symptom: Symptom, detail: string, ex?: Exchange): CheckResult {
  return { id, status: 'fail', symptom, detail, ...facts(ex) };
}

/** A failed request of a live session: symptom from {@link classify}, detail from the exchange or the error. */
export function requestFailure(id: string, ex: Exchange | undefined, err: unknown): CheckResult {
  const symptom = classify(ex, err);
  const httpFailed = ex && (ex.network !== undefined || (ex.status ?? 0) >= 400);
  const detail = httpFailed ? describeExchange(ex) : errorText(err);
  return failure(id, symptom, detail, httpFailed ? ex : undefined);
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.message}${typeof code === 'number' && !err.message.includes(String(code)) ? ` (${code})` : ''}`.slice(0, 300);
  }
  return String(err).slice(0, 300);
}

function facts(ex: Exchange | undefined): Pick<CheckResult, 'http' | 'rpcCode' | 'replica'> {
  if (!ex) return {};
  return {
    ...(ex.status !== undefined ? { http: ex.status } : {}),
    ...(ex.error?.code !== undefined ? { rpcCode: ex.error.code } : {}),
    ...(ex.replica !== undefined ? { replica: ex.replica } : {}),
  };
}

/** The newest exchange recorded at index `from` or later that matches `test` (the one a just-finished call made). */
export function exchangeSince(exchanges: readonly Exchange[], from: number, test: (e: Exchange) => boolean): Exchange | undefined {
  for (let i = exchanges.length - 1; i >= from; i -= 1) if (test(exchanges[i]!)) return exchanges[i];
  return undefined;
}
