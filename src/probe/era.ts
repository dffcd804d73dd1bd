/**
 * Which protocol revisions the endpoint serves, the way a dual-era client finds out (spec 2026-07-28
 * `basic/versioning.mdx` §Backward Compatibility): a 2026-07-28 `server/discover` whose success, or
 * whose 400 with a modern error code (-32020/-32021/-32022), means the endpoint speaks 2026-07-28;
 * and a 2025-era `initialize` (its session, if one is issued, is ended again with DELETE).
 */
import { describeExchange } from './checks.js';
import { postRaw, sendBare } from './rpc.js';
import { modernHeaders, modernRequest, MODERN_VERSION } from './modern.js';
import { createLog, type RunContext } from './step.js';
import type { Era, EraResult } from './types.js';

/** The 2025-era revision the probe offers in `initialize` (the SDK's latest). */
export const LEGACY_VERSION = '2025-11-25';
/** The errors only a 2026-07-28 server sends (HeaderMismatch, MissingRequiredClientCapability, UnsupportedProtocolVersion). */
const MODERN_CODES = new Set([-32020, -32021, -32022]);

export async function detectEra(run: RunContext): Promise<EraResult> {
  const log = createLog(run);
  const url = run.opts.url;
  const discover = await postRaw(log, url, modernRequest('mcp-migrate-probe-era', 'server/discover', MODERN_VERSION, run.version), modernHeaders('server/discover'));
  if (discover.ex.status === undefined && run.signal.aborted) {
    const why = 'not checked: --timeout was reached first';
    return { era: 'none', modern: { supported: false, detail: why }, legacy: { supported: false, detail: why }, exchanges: log.exchanges };
  }
  if (discover.ex.status === undefined) {
    const why = describeExchange(discover.ex);
    return { era: 'none', unreachable: why, modern: { supported: false, detail: why }, legacy: { supported: false, detail: why }, exchanges: log.exchanges };
  }
  const result = discover.message?.result;
  const versions = Array.isArray(result?.supportedVersions) ? (result.supportedVersions as unknown[]).map(String) : undefined;
  const code = discover.message?.error?.code;
  const modernSupported = (discover.ex.status === 200 && versions !== undefined) || (discover.ex.status === 400 && typeof code === 'number' && MODERN_CODES.has(code));
  const modern: EraResult['modern'] = {
    supported: modernSupported,
    status: discover.ex.status,
    detail: versions ? `server/discover: supportedVersions ${versions.join(', ')}` : `server/discover got ${describeExchange(discover.ex)}`,
    ...(versions ? { supportedVersions: versions } : {}),
  };

  const init = await postRaw(log, url, {
    jsonrpc: '2.0',
    id: 'mcp-migrate-probe-era-init',
    method: 'initialize',
    params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'mcp-migrate-probe', version: run.version } },
  });
  const negotiated = init.message?.result?.protocolVersion;
  const sessionId = init.ex.sessionId;
  if (sessionId) await sendBare(log, url, 'DELETE', { 'mcp-session-id': sessionId, ...(typeof negotiated === 'string' ? { 'mcp-protocol-version': negotiated } : {}) });
  const legacy: EraResult['legacy'] =
    init.ex.status === 200 && typeof negotiated === 'string'
      ? { supported: true, status: 200, protocolVersion: negotiated, sessionIssued: sessionId !== undefined, detail: `initialize: protocol ${negotiated}, ${sessionId ? 'Mcp-Session-Id issued' : 'no session (stateless)'}` }
      : { supported: false, ...(init.ex.status !== undefined ? { status: init.ex.status } : {}), detail: `initialize got ${describeExchange(init.ex)}` };
  return { era: eraOf(modern.supported, legacy.supported), modern, legacy, exchanges: log.exchanges };
}

export function eraOf(modern: boolean, legacy: boolean): Era {
  if (modern && legacy) return 'dual';
  if (modern) return 'modern';
  return legacy ? 'legacy' : 'none';
}
