import { applyChange, newRecord, type NewSessionRecord, type SessionChange, type SessionRecord } from './session-record.js';
import type { OwnerClaim, SessionStore } from './session-store.js';

export interface MemorySessionStoreOptions {
  /** Sliding TTL of a record, in milliseconds. Default 3,600,000 (one hour). */
  ttlMs?: number;
  /** How often expired records are swept, in milliseconds. Default 60,000. The timer is `unref`ed. */
  sweepIntervalMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  record: SessionRecord;
  expiresAt: number;
  /** Owner generation: incremented by each claimOwner (absent = 0). */
  epoch?: number;
}

/**
 * In-process {@link SessionStore}: the embedded default for a single replica (`--store memory`).
 * Records vanish when the process exits; sessions are then 404 and clients re-initialize (spec §Session Management 4).
 */
export class MemorySessionStore implements SessionStore {
  readonly ttlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #sweep: NodeJS.Timeout;

  constructor(options: MemorySessionStoreOptions = {}) {
    this.ttlMs = options.ttlMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
    this.#sweep = setInterval(() => this.#sweepExpired(), options.sweepIntervalMs ?? 60_000);
    this.#sweep.unref();
  }

  /** Number of live records (expired ones not yet swept excluded). */
  get size(): number {
    this.#sweepExpired();
    return this.#entries.size;
  }

  async create(input: NewSessionRecord): Promise<SessionRecord> {
    const now = this.#now();
    const record = newRecord(input, now, this.ttlMs);
    this.#entries.set(record.id, { record, expiresAt: now + this.ttlMs });
    return structuredClone(record);
  }

  async load(id: string): Promise<SessionRecord | undefined> {
    const entry = this.#live(id);
    if (!entry) return undefined;
    this.#refresh(entry);
    return structuredClone(entry.record);
  }

  async touch(id: string): Promise<boolean> {
    const entry = this.#live(id);
    if (!entry) return false;
    this.#refresh(entry);
    return true;
  }

  async update(id: string, change: SessionChange): Promise<number | undefined> {
    const entry = this.#live(id);
    if (!entry) return undefined;
    entry.record = applyChange(entry.record, change);
    this.#refresh(entry);
    return entry.record.revision;
  }

  async claimOwner(id: string, expected: string | undefined, next: string): Promise<OwnerClaim> {
    if (next.length === 0) throw new RangeError('claimOwner: the new owner must be a non-empty replica id');
    const entry = this.#live(id);
    if (!entry || (entry.record.owner ?? '') !== (expected ?? '')) return { claimed: false };
    const handover = entry.record.handover;
    entry.record.owner = next;
    delete entry.record.handover;
    const epoch = (entry.epoch ?? 0) + 1;
    entry.epoch = epoch;
    this.#refresh(entry);
    return handover === undefined ? { claimed: true, epoch } : { claimed: true, handover, epoch };
  }

  async touchOwned(id: string, owner: string, epoch: number): Promise<'ok' | 'moved' | 'gone'> {
    const entry = this.#live(id);
    if (!entry) return 'gone';
    if (entry.record.owner !== owner || (entry.epoch ?? 0) !== epoch) return 'moved';
    this.#refresh(entry);
    return 'ok';
  }

  async releaseOwner(id: string, current: string, handover?: string): Promise<boolean> {
    if (current.length === 0) throw new RangeError('releaseOwner: the current owner must be a non-empty replica id');
    const entry = this.#live(id);
    if (!entry || entry.record.owner !== current) return false;
    delete entry.record.owner;
    if (handover !== undefined && handover !== '') entry.record.handover = handover;
    else delete entry.record.handover;
    return true;
  }

  async deleteIfOwner(id: string, owner: string): Promise<boolean> {
    if (owner.length === 0) throw new RangeError('deleteIfOwner: the owner must be a non-empty replica id');
    const entry = this.#live(id);
    if (!entry || entry.record.owner !== owner) return false;
    this.#entries.delete(id);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    const existed = this.#live(id) !== undefined;
    this.#entries.delete(id);
    return existed;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#entries.clear();
  }

  #live(id: string): Entry | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(id);
      return undefined;
    }
    return entry;
  }

  #refresh(entry: Entry): void {
    const now = this.#now();
    entry.record.lastSeenAt = now;
    entry.expiresAt = now + this.ttlMs;
  }

  #sweepExpired(): void {
    const now = this.#now();
    for (const [id, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(id);
  }
}
