/**
 * Human wording shared by the reporters: how a fix is carried out and what a verdict means. Kept in one
 * place so that the terminal report, the SARIF help texts and the docs say the same thing.
 */
import { describeCover } from '../analyzer/cover.js';
import type { Finding, FindingRef, Fix, Severity, VerdictKind } from '../analyzer/types.js';
import { SEVERITIES } from '../analyzer/types.js';

/** The kind of a {@link Fix} without its transform id: `transform`, `proxy` or `manual`. */
export type FixKind = 'transform' | 'proxy' | 'manual';

/** Splits a fix into its kind and, for `transform:<id>`, the transform id. */
export function parseFix(fix: Fix): { kind: FixKind; transform?: string } {
  if (fix.startsWith('transform:')) return { kind: 'transform', transform: fix.slice('transform:'.length) };
  return { kind: fix === 'proxy' ? 'proxy' : 'manual' };
}

/** One line telling the user how the finding is fixed, e.g. "run `mcp-migrate apply` (transform `x`)". */
export function describeFix(fix: Fix): string {
  const { kind, transform } = parseFix(fix);
  switch (kind) {
    case 'transform':
      return `rewritable: run \`mcp-migrate apply\` (transform \`${transform}\`)`;
    case 'proxy':
      return 'safe behind `mcp-migrate proxy`, without code changes';
    case 'manual':
      return 'manual: rewrite by hand, or run `mcp-migrate proxy` with owner routing';
  }
}

/** Short headline of each whole-server verdict, from the most to the least migratable. */
export const VERDICT_LABELS: Record<VerdictKind, string> = {
  stateless: 'already stateless',
  rewritable: 'rewritable by `mcp-migrate apply`',
  'proxy-replay': 'safe behind `mcp-migrate proxy` with handshake replay',
  'owner-routing': 'needs owner routing (`mcp-migrate proxy` with session-owner routing) or a manual rewrite',
};

/** 0 for `error`, 1 for `warning`, 2 for `note`: lower is more severe. */
export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Total order of findings: file, line, column, rule id, symbol (the order the result model promises). */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    compareStrings(a.file, b.file) ||
    a.line - b.line ||
    a.column - b.column ||
    compareStrings(a.ruleId, b.ruleId) ||
    compareStrings(a.symbol, b.symbol)
  );
}

/** Locale-independent string comparison (code unit order), so output does not depend on `LANG`. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `1 finding`, `2 findings`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `express@4.21.2`, or the bare name when the bundle does not say which version it holds. */
export function describeDependency(dependency: NonNullable<Finding['dependency']>): string {
  return dependency.version ? `${dependency.name}@${dependency.version}` : dependency.name;
}

/** The sentence every reporter adds to a covered finding: which finding it is part of, and that its fix is that one's. */
export function coverNote(ref: FindingRef): string {
  return `Covered by ${describeCover(ref)}: the same state, fixed with it (\`mcp-migrate apply\` rewrites or marks that finding, not this one).`;
}

/** The sentence every reporter adds to a finding inside a bundled third-party package. */
export function dependencyNote(dependency: NonNullable<Finding['dependency']>): string {
  return `In the bundled dependency \`${describeDependency(dependency)}\`, not in the application's code: \`mcp-migrate apply\` leaves it unchanged.`;
}
