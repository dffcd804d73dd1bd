import { describe, expect, it } from 'vitest';
import type { Finding, Severity } from '../../src/analyzer/types.js';
import { FAIL_ON, reachesThreshold } from '../../src/cli/commands/analyze.js';

function findings(...severities: Severity[]): { findings: Finding[] } {
  return {
    findings: severities.map((severity, i) => ({
      ruleId: 'r',
      category: 'session-keyed-state',
      severity,
      file: 'a.ts',
      line: i + 1,
      column: 1,
      endLine: i + 1,
      endColumn: 2,
      symbol: 's',
      message: 'm',
      fix: 'manual',
    })),
  };
}

describe('--fail-on threshold', () => {
  it('offers the three severities and none', () => {
    expect(FAIL_ON).toEqual(['error', 'warning', 'note', 'none']);
  });

  // Rows: the most severe finding present; columns: --fail-on error, warning, note, none.
  const table: Array<[Severity[], [boolean, boolean, boolean, boolean]]> = [
    [[], [false, false, false, false]],
    [['note'], [false, false, true, false]],
    [['note', 'warning'], [false, true, true, false]],
    [['note', 'error', 'warning'], [true, true, true, false]],
  ];
  it.for(table)('findings %j', ([severities, expected]) => {
    expect(FAIL_ON.map((t) => reachesThreshold(findings(...severities), t))).toEqual(expected);
  });
});
