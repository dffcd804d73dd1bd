import type { SessionIdCodec, VerifiedSessionId } from '@mcp-migrate/runtime';

/** How many verified (session id, credential) pairs {@link VerifiedIdCache} keeps. */
const VERIFIED_CACHE_SIZE = 10_000;

/**
 * Remembers session ids that passed {@link SessionIdCodec.verify}, with the credential they were
 * presented with, so a steady-state request skips the two HMAC-SHA256 computations. Exact: a hit needs
 * the same id and the same credential, and verification depends on nothing else (the secrets are fixed
 * for the life of the process). Failures are never cached, so forged ids cannot fill it. Least recently
 * used pairs go first once {@link VERIFIED_CACHE_SIZE} are held.
 */
export class VerifiedIdCache {
  readonly #entries = new Map<string, { credential: string; verified: VerifiedSessionId }>();

  constructor(
    readonly codec: SessionIdCodec,
    readonly size = VERIFIED_CACHE_SIZE,
  ) {}

  verify(id: string, credential: string | undefined): VerifiedSessionId | undefined {
    // The codec hashes an absent credential like the empty string; so does the cache.
    const cred = credential ?? '';
    const hit = this.#entries.get(id);
    if (hit !== undefined && hit.credential === cred) {
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit.verified;
    }
    const verified = this.codec.verify(id, credential);
    if (verified) {
      if (hit === undefined && this.#entries.size >= this.size) {
        this.#entries.delete(this.#entries.keys().next().value!);
      }
      this.#entries.set(id, { credential: cred, verified });
    }
    return verified;
  }
}
