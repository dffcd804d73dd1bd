import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const RANDOM_BYTES = 16; // 128 bits of entropy (SEP-2567 / security best practices: ≥128 bits)
const MAC_BYTES = 16; // HMAC-SHA256 truncated to 128 bits
/** Length of a session id: base64url of 32 bytes, no padding. */
export const SESSION_ID_LENGTH = Math.ceil(((RANDOM_BYTES + MAC_BYTES) * 4) / 3);
/** Minimum length of a session secret, in bytes of UTF-8. */
export const MIN_SESSION_SECRET_BYTES = 16;

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;

interface Keys {
  id: Buffer;
  principal: Buffer;
}

function deriveKeys(secret: string): Keys {
  // Derive once per secret (no per-request KDF, cf. the Envoy AI Gateway PBKDF2 lesson).
  const base = Buffer.from(secret, 'utf8');
  return {
    id: createHmac('sha256', base).update('mcp-migrate/session-id/v1').digest(),
    principal: createHmac('sha256', base).update('mcp-migrate/principal/v1').digest(),
  };
}

/** A verified session id: the principal hash it is bound to (computed with the secret that verified it). */
export interface VerifiedSessionId {
  principal: string;
}

/**
 * Mints and verifies `Mcp-Session-Id` values.
 *
 * Format: `base64url(random[16] ‖ HMAC-SHA256(idKey, random ‖ principalHash)[0..16])`, 43 visible ASCII
 * characters (spec §Session Management 1: "only visible ASCII 0x21–0x7E", "globally unique and
 * cryptographically secure"). The MAC binds the id to the principal, so a forged id, or a real id presented
 * by another principal, is rejected by {@link verify} without a store lookup (security best practices
 * §Session Hijacking: bind session ids to user-specific information).
 *
 * Key rotation: the first secret mints; every secret verifies. Replicas must share the secrets.
 */
export class SessionIdCodec {
  readonly #keys: Keys[];

  /** @throws RangeError if no secret is given or one is shorter than {@link MIN_SESSION_SECRET_BYTES}. */
  constructor(secrets: string | readonly string[]) {
    const list = typeof secrets === 'string' ? [secrets] : [...secrets];
    if (list.length === 0) throw new RangeError('SessionIdCodec needs at least one secret');
    for (const s of list) {
      if (Buffer.byteLength(s, 'utf8') < MIN_SESSION_SECRET_BYTES) {
        throw new RangeError(`session secret must be at least ${MIN_SESSION_SECRET_BYTES} bytes`);
      }
    }
    this.#keys = list.map(deriveKeys);
  }

  /** Generates a random secret suitable for a single replica (base64url of 32 random bytes). */
  static generateSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /**
   * The principal hash of a credential (the `Authorization` header, or the header named by
   * `--principal-header`), as stored in the record: base64url of HMAC-SHA256 truncated to 128 bits,
   * keyed by the minting secret so raw credentials never reach the store. An absent credential hashes
   * like the empty string (the anonymous principal).
   */
  principalHash(credential: string | undefined): string {
    return this.#principalHash(this.#keys[0]!, credential);
  }

  /** Mints a new session id bound to `credential`. */
  mint(credential: string | undefined): { id: string; principal: string } {
    const keys = this.#keys[0]!;
    const principal = this.#principalHash(keys, credential);
    const random = randomBytes(RANDOM_BYTES);
    const mac = this.#mac(keys, random, principal);
    return { id: Buffer.concat([random, mac]).toString('base64url'), principal };
  }

  /**
   * Verifies that `id` was minted by one of the secrets for `credential`. Returns the principal hash,
   * or `undefined` for a malformed, forged or foreign id (→ HTTP 404, spec §Session Management 3).
   * Constant-time in the MAC comparison.
   */
  verify(id: string, credential: string | undefined): VerifiedSessionId | undefined {
    if (id.length !== SESSION_ID_LENGTH || !ID_PATTERN.test(id)) return undefined;
    const raw = Buffer.from(id, 'base64url');
    // Canonical encoding only: the last character carries 4 unused bits, so several strings decode to
    // the same bytes; accepting them would make one session reachable under several ids.
    if (raw.length !== RANDOM_BYTES + MAC_BYTES || raw.toString('base64url') !== id) return undefined;
    const random = raw.subarray(0, RANDOM_BYTES);
    const mac = raw.subarray(RANDOM_BYTES);
    for (const keys of this.#keys) {
      const principal = this.#principalHash(keys, credential);
      if (timingSafeEqual(mac, this.#mac(keys, random, principal))) return { principal };
    }
    return undefined;
  }

  #principalHash(keys: Keys, credential: string | undefined): string {
    return createHmac('sha256', keys.principal)
      .update(credential ?? '')
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }

  #mac(keys: Keys, random: Buffer, principal: string): Buffer {
    return createHmac('sha256', keys.id).update(random).update(principal).digest().subarray(0, MAC_BYTES);
  }
}

/** A short non-reversible fingerprint of a session id for logs (never log the id itself). */
export function sessionFingerprint(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 10);
}
