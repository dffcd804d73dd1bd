import { createHmac } from 'node:crypto';
import { VERSION } from '../../../version.js';
import { canonicalJson } from './canonical.js';
import { UPSTREAM_PROTOCOL_VERSION } from './protocol.js';

/** Prefix of every pooled session id. Never a valid `Mcp-Session-Id` (those are 43 base64url characters). */
export const POOLED_SESSION_PREFIX = 'pool.';

/**
 * What a pooled upstream session is shared by: requests of one principal that declare the same client
 * capabilities and protocol version. The upstream (a legacy, sessionful server) fixes both at `initialize`
 * and may vary its behaviour by them (server-everything registers its sampling, elicitation and roots tools
 * only for clients that declared those capabilities), so requests differing in either must not share.
 */
export interface PoolKey {
  /** Principal hash (`SessionIdCodec.principalHash`). */
  principal: string;
  /** The modern revision of the requests (`_meta` `io.modelcontextprotocol/protocolVersion`). */
  protocolVersion: string;
  /** The client capabilities as sent upstream (see {@link legacyCapabilities}). */
  capabilities: Record<string, unknown>;
}

/**
 * The client capabilities to declare upstream for a modern request's
 * `io.modelcontextprotocol/clientCapabilities`: the same object without `extensions` (2026-07-28
 * extension negotiation, which a legacy server does not know).
 */
export function legacyCapabilities(modern: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(modern)) if (k !== 'extensions') out[k] = v;
  return out;
}

/**
 * The `initialize` params of a pooled session, replayed upstream by whichever replica opens it: the
 * upstream's newest legacy revision, the request's capabilities, and the proxy as `clientInfo` (modern
 * `clientInfo` is per request and display-only, spec `basic/index.mdx`; the pool serves many clients).
 */
export function pooledInitializeParams(key: PoolKey): Record<string, unknown> {
  return {
    protocolVersion: UPSTREAM_PROTOCOL_VERSION,
    capabilities: key.capabilities,
    clientInfo: { name: 'mcp-migrate (2026-07-28 front)', version: VERSION },
  };
}

/**
 * Derives pooled session ids: `pool.` + base64url(HMAC-SHA256(k, canonical key))[0..32 chars], with k
 * derived from the first session secret. Deterministic, so every replica maps a key to the same record
 * (and to the same session streams: a change notification from any replica's upstream session of the
 * pool reaches `subscriptions/listen` streams on every replica); keyed, so ids cannot be guessed or
 * correlated with principals without the secret.
 */
export class PoolIds {
  readonly #key: Buffer;

  constructor(secret: string) {
    this.#key = createHmac('sha256', Buffer.from(secret, 'utf8')).update('mcp-migrate/pool-id/v1').digest();
  }

  id(key: PoolKey): string {
    const mac = createHmac('sha256', this.#key)
      .update(canonicalJson({ p: key.principal, v: key.protocolVersion, c: key.capabilities }))
      .digest()
      .toString('base64url')
      .slice(0, 32);
    return `${POOLED_SESSION_PREFIX}${mac}`;
  }
}

/** Whether a session id names a pooled session. */
export function isPooledSessionId(id: string): boolean {
  return id.startsWith(POOLED_SESSION_PREFIX);
}
