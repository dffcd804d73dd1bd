import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request header of a forwarded request: `<from replica id, URI-encoded>;<MAC>`, the MAC being
 * base64url(HMAC-SHA256(key, session id, from, to)[0..16]) with a key derived from the session secret.
 * A request carrying it is never forwarded again (no loops); one whose MAC does not verify for this
 * replica (forged by a client, or sent to a restarted replica at the same address) gets 421.
 */
export const FORWARDED_HEADER = 'x-mcp-migrate-forwarded';
/** Response header of this proxy's own 421 answers to a forwarded request (vs. any other 421). */
export const MISDIRECTED_HEADER = 'x-mcp-migrate-misdirected';

const MAC_BYTES = 16;
/** Header values kept by each of {@link ForwardingMac}'s caches. */
const MAC_CACHE_SIZE = 10_000;

/**
 * Signs and verifies {@link FORWARDED_HEADER} values. The first secret signs; every secret verifies.
 * Both directions are cached (exact inputs, least recently used first out; failures never cached): a
 * session's forwards carry the same value every time, so the steady path computes no HMAC.
 */
export class ForwardingMac {
  readonly #keys: Buffer[];
  readonly #signed = new Map<string, string>();
  readonly #verified = new Map<string, string>();

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new RangeError('ForwardingMac needs at least one secret');
    // A key of its own, derived once: never the key that signs session ids.
    this.#keys = secrets.map((s) => createHmac('sha256', Buffer.from(s, 'utf8')).update('mcp-migrate/owner-forward/v1').digest());
  }

  /** The header value for a request of session `sessionId` forwarded by replica `from` to replica `to`. */
  header(sessionId: string, from: string, to: string): string {
    const key = `${sessionId}\n${from}\n${to}`;
    let value = this.#signed.get(key);
    if (value === undefined) {
      value = `${encodeURIComponent(from)};${this.#mac(this.#keys[0]!, sessionId, from, to).toString('base64url')}`;
      remember(this.#signed, key, value);
    }
    return value;
  }

  /** The sending replica's id if `value` was made by {@link header} for (`sessionId`, any sender, `to`); else `undefined`. */
  verify(value: string, sessionId: string, to: string): string | undefined {
    const key = `${value}\n${sessionId}\n${to}`;
    const hit = this.#verified.get(key);
    if (hit !== undefined) return hit;
    const from = this.#verify(value, sessionId, to);
    if (from !== undefined) remember(this.#verified, key, from);
    return from;
  }

  #verify(value: string, sessionId: string, to: string): string | undefined {
    const cut = value.lastIndexOf(';');
    if (cut <= 0) return undefined;
    let from: string;
    try {
      from = decodeURIComponent(value.slice(0, cut));
    } catch {
      return undefined;
    }
    const mac = Buffer.from(value.slice(cut + 1), 'base64url');
    if (mac.length !== MAC_BYTES) return undefined;
    for (const key of this.#keys) if (timingSafeEqual(mac, this.#mac(key, sessionId, from, to))) return from;
    return undefined;
  }

  #mac(key: Buffer, sessionId: string, from: string, to: string): Buffer {
    // Length-prefixed fields: no two (sid, from, to) triples hash the same input.
    return createHmac('sha256', key)
      .update(`${sessionId.length}:${sessionId}|${from.length}:${from}|${to}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}

/** Adds to a bounded cache, dropping the oldest entry once full. */
function remember(cache: Map<string, string>, key: string, value: string): void {
  if (cache.size >= MAC_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}
