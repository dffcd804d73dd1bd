/**
 * The probe's inputs: options after validation, and parsers for the values given on the command line.
 * Parsers throw {@link UsageError} (exit 2) with a message that shows the expected form.
 */
import { UsageError } from '../analyzer/types.js';

/** The response header the proxy names its replica in (docs/proxy.md). */
export const DEFAULT_REPLICA_HEADER = 'x-mcp-migrate-replica';

/** Placeholder in `--write`/`--read`/`--notify` arguments and `--expect`, replaced by a value unique to the session. */
export const SESSION_PLACEHOLDER = '{{session}}';

/** A tool call given on the command line as `TOOL` or `TOOL {JSON arguments}`. */
export interface ToolCallSpec {
  name: string;
  /** The JSON arguments as given, `{}` when none; placeholders are substituted per session. */
  argumentsJson: string;
}

/** Validated options of one run. Times are milliseconds. */
export interface ProbeOptions {
  url: URL;
  sessions: number;
  concurrency: number;
  /** Bound on the whole run. */
  timeoutMs: number;
  /** Bound on one request (never longer than what is left of the run). */
  requestTimeoutMs: number;
  era: 'auto' | 'legacy' | 'modern';
  /** Added to every request; a header the client sets itself (e.g. `Mcp-Session-Id`) is not overridden. */
  headers: Record<string, string>;
  /** Lower case. */
  replicaHeader: string;
  /** The legacy HTTP+SSE endpoint (`GET`), when its checks were asked for. */
  legacySseUrl?: URL;
  write?: ToolCallSpec;
  read?: ToolCallSpec;
  /** How many times each session reads back (each read is its own request). */
  reads: number;
  /** Text every read must contain (placeholders substituted). */
  expect?: string;
  notify?: ToolCallSpec;
  /** How long to wait for a message on the held GET stream after the trigger. */
  notifyWaitMs: number;
  /**
   * How long after its handshake a Streamable HTTP session stays open for requests the server sends on
   * its own (roots/list after `notifications/initialized`, sampling, elicitation), so their answers are checked.
   */
  askWaitMs: number;
  /** Size of the padded `ping` of the `large-body` check (off when absent). */
  bodyBytes?: number;
  /** Idle time with the GET stream held before the session ends (off when 0). */
  holdMs: number;
}

/** Parses `TOOL` or `TOOL {JSON}`; the JSON must be an object. @throws UsageError */
export function parseToolCall(flag: string, value: string): ToolCallSpec {
  const m = /^([^\s{]+)\s*([\s\S]*)$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag} must be TOOL or 'TOOL {"arg": …}' (a tool name, then its JSON arguments), got "${value}"`);
  const argumentsJson = m[2] === '' ? '{}' : m[2]!;
  try {
    // A placeholder stands inside JSON strings; any text in its place parses the same.
    const parsed: unknown = JSON.parse(argumentsJson.split(SESSION_PLACEHOLDER).join('x'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
  } catch (err) {
    throw new UsageError(`${flag}: the arguments of ${m[1]} are not a JSON object (${(err as Error).message}): ${argumentsJson}`);
  }
  return { name: m[1]!, argumentsJson };
}

/** The arguments of `spec` for one session, with {@link SESSION_PLACEHOLDER} replaced by `token`. */
export function toolArguments(spec: ToolCallSpec, token: string): Record<string, unknown> {
  return JSON.parse(spec.argumentsJson.split(SESSION_PLACEHOLDER).join(token)) as Record<string, unknown>;
}

/** Parses repeated `--header 'Name: value'`. @throws UsageError */
export function parseHeaders(values: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf(':');
    const name = i > 0 ? v.slice(0, i).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new UsageError(`--header must be 'Name: value', got "${v}"`);
    headers[name.toLowerCase()] = v.slice(i + 1).trim();
  }
  return headers;
}

/** The MCP endpoint URL: absolute `http:` or `https:`. @throws UsageError */
export function parseEndpointUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`the URL must be absolute, e.g. https://mcp.example.com/mcp; got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`the URL must be http: or https:, got "${value}"`);
  return url;
}

/**
 * The legacy HTTP+SSE endpoint: `--legacy-sse` alone means `/sse` on the MCP endpoint's origin; a
 * relative value is resolved against the MCP endpoint URL. @throws UsageError
 */
export function resolveLegacySseUrl(value: string, endpoint: URL): URL {
  const url = new URL(value === '' ? '/sse' : value, endpoint);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--legacy-sse must be an http(s) URL or a path, got "${value}"`);
  return url;
}

/** The session-unique value substituted for {@link SESSION_PLACEHOLDER}: `mcp-migrate-probe-<run>-<index>`. */
export function sessionToken(runId: string, index: number): string {
  return `mcp-migrate-probe-${runId}-${index}`;
}

/** The session index a value written by this run names, if any (to tell another session's value from none). */
export function tokenSessions(text: string, runId: string): number[] {
  const re = new RegExp(`mcp-migrate-probe-${runId}-(\\d+)`, 'g');
  return [...text.matchAll(re)].map((m) => Number(m[1]));
}
