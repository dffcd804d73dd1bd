/**
 * Covered findings: a finding whose `coveredBy` names another finding of the same analysis is the same
 * piece of state as that one (see {@link Finding.coveredBy}). The verdict, `apply` and the CI gate's
 * marker check read a covered finding through its cover.
 */
import type { Finding, FindingRef } from './types.js';

/** The reference to `f` another finding stores in `coveredBy` (a copy of exactly its fields, for a reference too). */
export function findingRef(f: FindingRef): FindingRef {
  return { ruleId: f.ruleId, file: f.file, line: f.line, column: f.column, symbol: f.symbol };
}

/** A key equal for a finding and every reference to it. */
export function refKey(r: FindingRef): string {
  return `${r.ruleId}\0${r.file}\0${r.line}\0${r.column}`;
}

/**
 * Resolves covers within `findings`: returns, for a covered finding, its cover when that is among
 * `findings` (a baseline or a suppression may have taken it out), and `undefined` for every other finding.
 */
export function coverLookup(findings: readonly Finding[]): (f: Finding) => Finding | undefined {
  const byKey = new Map(findings.map((f) => [refKey(f), f]));
  return (f) => (f.coveredBy ? byKey.get(refKey(f.coveredBy)) : undefined);
}

/** `` `InMemoryEventStore` (no-in-memory-event-store, src/store.ts:30) ``: how reporters name a cover. */
export function describeCover(ref: FindingRef): string {
  return `\`${ref.symbol}\` (${ref.ruleId}, ${ref.file}:${ref.line})`;
}
