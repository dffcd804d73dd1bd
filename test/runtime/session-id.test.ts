import { describe, expect, it } from 'vitest';
import { SESSION_ID_LENGTH, SessionIdCodec } from '@mcp-migrate/runtime';

const SECRET = 'runtime-test-secret-0123456789';

describe('SessionIdCodec', () => {
  const codec = new SessionIdCodec(SECRET);

  it('mints short, visible-ASCII, unique ids that verify for the same principal', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { id, principal } = codec.mint('Bearer alice');
      expect(id).toHaveLength(SESSION_ID_LENGTH);
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/); // base64url ⊂ 0x21–0x7E
      expect(seen.has(id)).toBe(false);
      seen.add(id);
      expect(codec.verify(id, 'Bearer alice')).toEqual({ principal });
    }
    expect(SESSION_ID_LENGTH).toBeLessThan(64);
  });

  it('rejects the id for another principal, including the anonymous one', () => {
    const { id } = codec.mint('Bearer alice');
    expect(codec.verify(id, 'Bearer bob')).toBeUndefined();
    expect(codec.verify(id, undefined)).toBeUndefined();
    const anon = codec.mint(undefined);
    expect(codec.verify(anon.id, undefined)).toBeDefined();
    expect(codec.verify(anon.id, '')).toBeDefined(); // absent and empty are the same principal
    expect(codec.verify(anon.id, 'Bearer alice')).toBeUndefined();
  });

  it('rejects forged, tampered and malformed ids', () => {
    const { id } = codec.mint('p');
    const flipped = id.slice(0, 5) + (id[5] === 'A' ? 'B' : 'A') + id.slice(6);
    expect(codec.verify(flipped, 'p')).toBeUndefined();
    const macFlipped = id.slice(0, -2) + (id.at(-2) === 'A' ? 'B' : 'A') + id.at(-1);
    expect(codec.verify(macFlipped, 'p')).toBeUndefined();
    expect(codec.verify('', 'p')).toBeUndefined();
    expect(codec.verify(id + 'A', 'p')).toBeUndefined();
    expect(codec.verify('x'.repeat(SESSION_ID_LENGTH), 'p')).toBeUndefined();
    expect(codec.verify('!'.repeat(SESSION_ID_LENGTH), 'p')).toBeUndefined();
    expect(codec.verify(crypto.randomUUID(), 'p')).toBeUndefined();
  });

  it('accepts only the canonical spelling of an id (no base64 padding-bit variants)', () => {
    const { id } = codec.mint('p');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const variants = [...alphabet].map((c) => id.slice(0, -1) + c).filter((v) => v !== id);
    expect(variants).toHaveLength(63);
    for (const v of variants) expect(codec.verify(v, 'p'), v).toBeUndefined();
    expect(codec.verify(id, 'p')).toBeDefined();
  });

  it('does not verify ids minted with another secret', () => {
    const other = new SessionIdCodec('another-secret-0123456789abcdef');
    const { id } = other.mint('p');
    expect(codec.verify(id, 'p')).toBeUndefined();
  });

  it('keeps verifying old ids during a secret rotation, with the old principal hash', () => {
    const old = new SessionIdCodec(SECRET);
    const minted = old.mint('Bearer alice');
    const rotated = new SessionIdCodec(['new-secret-0123456789abcdefgh', SECRET]);
    expect(rotated.verify(minted.id, 'Bearer alice')).toEqual({ principal: minted.principal });
    expect(rotated.verify(minted.id, 'Bearer bob')).toBeUndefined();
    // New ids are minted with the new secret only.
    const fresh = rotated.mint('Bearer alice');
    expect(old.verify(fresh.id, 'Bearer alice')).toBeUndefined();
  });

  it('hashes principals without storing the credential', () => {
    const h = codec.principalHash('Bearer secret-token');
    expect(h).not.toContain('secret-token');
    expect(h).toBe(codec.principalHash('Bearer secret-token'));
    expect(h).not.toBe(codec.principalHash('Bearer other-token'));
  });

  it('refuses short secrets and an empty secret list', () => {
    expect(() => new SessionIdCodec('short')).toThrow(RangeError);
    expect(() => new SessionIdCodec([])).toThrow(RangeError);
    expect(SessionIdCodec.generateSecret().length).toBeGreaterThanOrEqual(32);
  });
});
