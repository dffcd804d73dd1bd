/**
 * One series of stateless 2026-07-28 requests (no session: spec 2026-07-28 `basic/index.mdx`
 * §Statelessness), in place of the session checks:
 *
 * - `discover`: a raw `server/discover` (`server/discover.mdx`): 200 with `supportedVersions` naming 2026-07-28;
 * - `connect`, `tools/list`, `call`: the official v2 client pinned to 2026-07-28 (`@modelcontextprotocol/client`);
 * - the exact errors (`basic/transports/streamable-http.mdx` §Server Validation, `basic/versioning.mdx`),
 *   each with the request's id: `missing-meta` 400/-32602, `header-mismatch` 400/-32020,
 *   `unsupported-version` 400/-32022 with `data.supported`, `unknown-method` 404/-32601;
 * - `get-405`: a GET without a session SHOULD get 405 (§Backward Compatibility); anything else is a warning.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { describeExchange, failure, pass } from './checks.js';
import { postRaw, sendBare, type RawAnswer } from './rpc.js';
import { SessionProbe, type RunContext } from './step.js';
import type { CheckResult, SessionRun } from './types.js';

export const MODERN_VERSION = '2026-07-28';
const META = 'io.modelcontextprotocol/';

/** A 2026-07-28 request: `_meta` carries the version, capabilities and client info (`basic/index.mdx` §`_meta`). */
export function modernRequest(id: string, method: string, version = MODERN_VERSION, probeVersion = '0'): object {
  return {
    jsonrpc: '2.0',
    id,
    method,
    params: { _meta: { [`${META}protocolVersion`]: version, [`${META}clientCapabilities`]: {}, [`${META}clientInfo`]: { name: 'mcp-migrate-probe', version: probeVersion } } },
  };
}

/** The standard headers of a 2026-07-28 POST (§Standard Request Headers). */
export function modernHeaders(method: string, version = MODERN_VERSION): Record<string, string> {
  return { 'mcp-protocol-version': version, 'mcp-method': method };
}

export async function probeModernSeries(run: RunContext, index: number): Promise<SessionRun> {
  const p = new SessionProbe(run, index, 'modern');
  const url = run.opts.url;
  const id = (what: string): string => `mcp-migrate-probe-${index}-${what}`;
  const discover = await postRaw(p.log, url, modernRequest(id('discover'), 'server/discover', MODERN_VERSION, run.version), modernHeaders('server/discover'));
  p.add(discoverCheck(discover));
  await clientChecks(p);
  const noMeta = { jsonrpc: '2.0', id: id('missing-meta'), method: 'tools/list', params: {} };
  p.add(expectError('missing-meta', await postRaw(p.log, url, noMeta, modernHeaders('tools/list')), noMeta.id, 400, -32602));
  const mismatch = modernRequest(id('header-mismatch'), 'tools/list', MODERN_VERSION, run.version);
  p.add(expectError('header-mismatch', await postRaw(p.log, url, mismatch, modernHeaders('prompts/list')), id('header-mismatch'), 400, -32020));
  const future = '2099-01-01';
  const unsupported = await postRaw(p.log, url, modernRequest(id('unsupported-version'), 'tools/list', future, run.version), modernHeaders('tools/list', future));
  p.add(expectError('unsupported-version', unsupported, id('unsupported-version'), 400, -32022, (data) => supportedNames(data, future)));
  const unknown = 'mcp-migrate/no-such-method';
  p.add(expectError('unknown-method', await postRaw(p.log, url, modernRequest(id('unknown-method'), unknown, MODERN_VERSION, run.version), modernHeaders(unknown)), id('unknown-method'), 404, -32601));
  const get = await sendBare(p.log, url, 'GET');
  p.add(
    get.status === 405
      ? pass('get-405', '405 for a GET without a session', get)
      : { ...failure('get-405', 'wrong-error', `${describeExchange(get)}; a GET without a session SHOULD get 405`, get), status: 'warn' },
  );
  return p.result(undefined, MODERN_VERSION);
}

/** `server/discover` must answer 200 with `supportedVersions` naming 2026-07-28 and a `capabilities` object. */
export function discoverCheck({ ex, message }: RawAnswer): CheckResult {
  const result = message?.result;
  const versions = Array.isArray(result?.supportedVersions) ? (result.supportedVersions as unknown[]).map(String) : [];
  if (ex.status === 200 && versions.includes(MODERN_VERSION) && typeof result?.capabilities === 'object') {
    return pass('discover', `supportedVersions ${versions.join(', ')}${ex.replica ? ` (replica ${ex.replica})` : ''}`, ex);
  }
  const got = message?.error ? `error ${String(message.error.code)} "${String(message.error.message)}"` : result ? `a result without supportedVersions ${MODERN_VERSION} or capabilities` : describeExchange(ex);
  return failure('discover', ex.status === undefined ? 'unreachable' : 'wrong-error', `server/discover got ${ex.status ?? 'no answer'}: ${got}`, ex);
}

/** The official v2 client, pinned to 2026-07-28: connect (its own discover), tools/list, a list call. */
async function clientChecks(p: SessionProbe): Promise<void> {
  const client = new Client({ name: 'mcp-migrate-probe', version: p.run.version }, { capabilities: {}, versionNegotiation: { mode: { pin: MODERN_VERSION } } });
  try {
    const connected = await p.step('connect', 'server/discover', async () => {
      await client.connect(new StreamableHTTPClientTransport(p.run.opts.url, { fetch: p.log.fetch }), p.requestOptions());
      return `era ${client.getProtocolEra() ?? '?'}`;
    });
    if (!connected) return;
    const opts = { ...p.requestOptions(), cache: 'bypass' as const };
    await p.step('tools/list', 'tools/list', async () => `${(await client.listTools(undefined, opts)).tools.length} tools`);
    const caps = client.getServerCapabilities() ?? {};
    if (caps.resources) await p.step('call', 'resources/list', async () => `resources/list: ${(await client.listResources(undefined, opts)).resources.length} resources`);
    else if (caps.prompts) await p.step('call', 'prompts/list', async () => `prompts/list: ${(await client.listPrompts(undefined, opts)).prompts.length} prompts`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * An error answer must have exactly `status` and JSON-RPC `code`, and carry the request's id
 * (2026-07-28: "every error carries the request's id"). `data` adds a check of `error.data`.
 */
export function expectError(id: string, { ex, message }: RawAnswer, requestId: string, status: number, code: number, data?: (d: unknown) => string | undefined): CheckResult {
  const gotCode = message?.error?.code;
  const problems: string[] = [];
  if (ex.status !== status) problems.push(`HTTP ${ex.status ?? 'no answer'}, expected ${status}`);
  if (gotCode !== code) problems.push(`code ${gotCode === undefined ? 'none' : String(gotCode)}, expected ${code}`);
  if (message?.error && message.id !== requestId) problems.push(`error id ${JSON.stringify(message.id)}, expected the request's`);
  const dataProblem = message?.error && data ? data(message.error.data) : undefined;
  if (dataProblem) problems.push(dataProblem);
  const what = `${status} ${code}${ex.replica ? ` (replica ${ex.replica})` : ''}`;
  if (problems.length === 0) return pass(id, what, ex);
  const text = message?.error?.message ? ` "${String(message.error.message).slice(0, 120)}"` : '';
  return failure(id, ex.status === undefined ? 'unreachable' : 'wrong-error', `${problems.join('; ')}${text}`, ex);
}

/** -32022's `data` must list the supported versions (including 2026-07-28) and echo the requested one. */
function supportedNames(data: unknown, requested: string): string | undefined {
  const d = data as { supported?: unknown; requested?: unknown } | undefined;
  if (!Array.isArray(d?.supported) || !d.supported.includes(MODERN_VERSION)) return `data.supported does not list ${MODERN_VERSION}`;
  if (d.requested !== requested) return `data.requested is ${JSON.stringify(d.requested)}, expected "${requested}"`;
  return undefined;
}
