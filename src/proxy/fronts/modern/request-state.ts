import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { JsonRpcId } from '@mcp-migrate/runtime';
import { MIN_SESSION_SECRET_BYTES } from '@mcp-migrate/runtime';
import { canonicalJson } from './canonical.js';

/** One `inputRequests` entry: a server-to-client request embedded in an `InputRequiredResult`. */
export interface InputRequest {
  method: string;
  params?: Record<string, unknown>;
}

/**
 * What a `requestState` minted by the modern front carries. Short field names keep the token small;
 * it is signed, not encrypted, and holds no credential (see {@link RequestStateCodec}).
 */
export interface RequestState {
  /** Principal hash the state is bound to (`SessionIdCodec.principalHash` of the credential). */
  p: string;
  /** Id of the pooled session whose upstream session runs the interrupted exchange. */
  s: string;
  /** Replica that holds the exchange (informational: replies are routed by the ids in `k`). */
  r: string;
  /** Session stream (of `s`) the holding replica appends the exchange's further messages to. */
  t: string;
  /** Event id in `t` after which the retry continues (the last one the client has seen the effect of). */
  a: string;
  /** `inputRequests` key → client-facing id of the pending server-to-client request (see `ServerRequestRouter`). */
  k: Record<string, JsonRpcId>;
  /** The `inputRequests` themselves, so a retry that leaves one unanswered can ask again. */
  q: Record<string, InputRequest>;
  /** Method of the original request. */
  m: string;
  /** {@link requestDigest} of the original request's params. */
  d: string;
  /** Expiry, ms since the epoch. */
  e: number;
}

/** Why a presented `requestState` was refused (each maps to -32602 Invalid params). */
export type RequestStateRejection = 'malformed' | 'forged' | 'expired' | 'principal' | 'request';

/** Largest `requestState` accepted, characters. */
export const MAX_REQUEST_STATE_LENGTH = 64 * 1024;
const MAC_BYTES = 32;
const PREFIX = 'mm1.';

/**
 * Digest identifying an original request across MRTR retries: SHA-256 (base64url) of the method and the
 * canonical JSON of its params without `_meta`, `inputResponses` and `requestState`, which legitimately
 * change from one round to the next (spec `mrtr.mdx` §Server Requirements: bind "an identifier for the
 * originating request, e.g. the method name and a digest of its salient parameters").
 */
export function requestDigest(method: string, params: Record<string, unknown> | undefined): string {
  const salient: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (k !== '_meta' && k !== 'inputResponses' && k !== 'requestState') salient[k] = v;
  }
  return createHash('sha256').update(method).update('\0').update(canonicalJson(salient)).digest('base64url');
}

/**
 * Mints and verifies the `requestState` of the proxy's `InputRequiredResult`s (spec 2026-07-28
 * `basic/patterns/mrtr.mdx` §Server Requirements: treat it as attacker-controlled, protect its integrity
 * with an HMAC or AEAD, bind the principal, a short expiry and the originating request).
 *
 * Format: `mm1.` + base64url(JSON of {@link RequestState}) + `.` + base64url(HMAC-SHA256(key, "mm1." ‖
 * payload)). The key is derived from the session secret (HMAC-SHA256(secret, "mcp-migrate/request-state/v1")),
 * so every replica sharing `--session-secret` verifies what any other minted; the first secret mints and
 * every secret verifies (rotation, as for session ids). Signed, not encrypted: the payload names ids
 * internal to the proxy (pooled session, replica, stream) but no credential — a pooled session id is not a
 * valid `Mcp-Session-Id` and a client cannot act on it.
 */
export class RequestStateCodec {
  readonly #keys: Buffer[];

  /** @throws RangeError if no secret is given or one is shorter than 16 bytes. */
  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new RangeError('RequestStateCodec needs at least one secret');
    this.#keys = secrets.map((s) => {
      if (Buffer.byteLength(s, 'utf8') < MIN_SESSION_SECRET_BYTES) throw new RangeError(`session secret must be at least ${MIN_SESSION_SECRET_BYTES} bytes`);
      return createHmac('sha256', Buffer.from(s, 'utf8')).update('mcp-migrate/request-state/v1').digest();
    });
  }

  mint(state: RequestState): string {
    const payload = Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
    const mac = createHmac('sha256', this.#keys[0]!).update(PREFIX).update(payload).digest().toString('base64url');
    return `${PREFIX}${payload}.${mac}`;
  }

  /**
   * Verifies a presented `requestState` against the retry it came with: the MAC (any secret), the
   * expiry, the principal and the request (method and {@link requestDigest}). Constant-time MAC check.
   */
  verify(
    token: unknown,
    expect: { principal: string; method: string; digest: string; now?: number },
  ): { state: RequestState } | { rejected: RequestStateRejection } {
    if (typeof token !== 'string' || token.length > MAX_REQUEST_STATE_LENGTH || !token.startsWith(PREFIX)) return { rejected: 'malformed' };
    const dot = token.indexOf('.', PREFIX.length);
    if (dot < 0) return { rejected: 'malformed' };
    const payload = token.slice(PREFIX.length, dot);
    const mac = Buffer.from(token.slice(dot + 1), 'base64url');
    if (mac.length !== MAC_BYTES) return { rejected: 'malformed' };
    const ok = this.#keys.some((key) => timingSafeEqual(mac, createHmac('sha256', key).update(PREFIX).update(payload).digest()));
    if (!ok) return { rejected: 'forged' };
    let state: RequestState;
    try {
      state = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as RequestState;
    } catch {
      return { rejected: 'malformed' };
    }
    if (!isState(state)) return { rejected: 'malformed' };
    if (state.e <= (expect.now ?? Date.now())) return { rejected: 'expired' };
    if (state.p !== expect.principal) return { rejected: 'principal' };
    if (state.m !== expect.method || state.d !== expect.digest) return { rejected: 'request' };
    return { state };
  }
}

function isState(v: unknown): v is RequestState {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s.p === 'string' &&
    typeof s.s === 'string' &&
    typeof s.r === 'string' &&
    typeof s.t === 'string' &&
    typeof s.a === 'string' &&
    typeof s.m === 'string' &&
    typeof s.d === 'string' &&
    typeof s.e === 'number' &&
    typeof s.k === 'object' &&
    s.k !== null &&
    typeof s.q === 'object' &&
    s.q !== null
  );
}
