import { describe, expect, it } from 'vitest';
import type { AnalysisResult, Finding } from '../../src/analyzer/types.js';
import { applyGate, configuredMetas, createBaseline, enabledRules } from '../../src/gate/index.js';
import { ruleMetas, rules } from '../../src/rules/index.js';

const KNOWN = ruleMetas.map((m) => m.id);

function finding(ruleId: string, line: number, over: Partial<Finding> = {}): Finding {
  return { ruleId, category: 'session-registry', severity: 'error', file: 'src/server.ts', line, column: 1, endLine: line, endColumn: 5, symbol: `s${line}`, message: 'm', fix: 'transform:transport-registry', ...over };
}

function result(findings: Finding[]): AnalysisResult {
  return {
    root: '/project',
    summary: { files: 2, findings: findings.length, byCategory: {} as AnalysisResult['summary']['byCategory'], bySeverity: {} as AnalysisResult['summary']['bySeverity'], durationMs: 1 },
    verdict: { kind: 'stateless', summary: '', decidingFindings: [] },
    findings,
    warnings: [{ file: 'src/broken.ts', message: 'does not parse; skipped' }],
    files: ['src/clean.ts', 'src/server.ts'],
  };
}

const SOURCES: Record<string, string> = {
  'src/server.ts': ['line 1', '// mcp-migrate-ignore-next-line no-session-keyed-state -- reviewed', 'line 3', 'line 4'].join('\n'),
  'src/clean.ts': ['// mcp-migrate-ignore-next-line server-initiated-request -- stale', 'x'].join('\n'),
};
const readText = (abs: string) => SOURCES[abs.slice('/project/'.length)];

describe('applyGate', () => {
  it('applies configured severities, suppressions and the baseline, and recomputes the summary', () => {
    const findings = [
      finding('no-session-transport-registry', 1),
      finding('no-session-keyed-state', 3, { category: 'session-keyed-state' }),
      finding('server-initiated-request', 4, { category: 'server-initiated-request', severity: 'note', fix: 'proxy' }),
    ];
    const out = applyGate(result(findings), {
      config: { rules: { 'server-initiated-request': 'warning' } },
      knownRules: KNOWN,
      baseline: createBaseline([findings[0]!]),
      readText,
    });
    expect(out.result.findings.map((f) => [f.ruleId, f.severity])).toEqual([['server-initiated-request', 'warning']]);
    expect(out.result.summary).toMatchObject({ files: 2, findings: 1, bySeverity: { error: 0, warning: 1, note: 0 } });
    expect(out.result.summary.byCategory['server-initiated-request']).toBe(1);
    expect(out.result.gate).toEqual({ suppressed: 1, baselined: 1, staleBaselineEntries: 0 });
    expect(out.unbaselined.map((f) => f.ruleId)).toEqual(['no-session-transport-registry', 'server-initiated-request']);
    // The unused directive in clean.ts is a warning after the analysis warnings; the run does not fail.
    expect(out.result.warnings.slice(1)).toEqual([{ file: 'src/clean.ts', line: 1, message: expect.stringMatching(/^unused suppression of server-initiated-request/) }]);
    expect(out.failed).toBe(false);
  });

  it('decides the verdict over baselined findings too: a baseline does not make a server stateless', () => {
    const findings = [finding('no-session-transport-registry', 1)];
    const out = applyGate(result(findings), { config: {}, knownRules: KNOWN, baseline: createBaseline(findings), readText });
    expect(out.result.findings).toEqual([]);
    expect(out.result.verdict.kind).toBe('rewritable');
    expect(out.result.verdict.decidingFindings).toEqual([]);
  });

  it('unused suppressions: error fails the run, off hides them; stale baseline entries are a warning only', () => {
    const findings = [finding('no-session-transport-registry', 1)];
    const stale = createBaseline([...findings, finding('no-session-transport-registry', 9, { symbol: 'gone' })]);
    const failing = applyGate(result(findings), { config: {}, knownRules: KNOWN, reportUnusedSuppressions: 'error', baseline: stale, readText });
    expect(failing.failed).toBe(true);
    expect(failing.result.gate!.staleBaselineEntries).toBe(1);
    expect(failing.result.warnings.at(-1)!.message).toBe('1 baseline entry no longer occurs; rewrite the baseline (--write-baseline FILE)');
    const off = applyGate(result(findings), { config: {}, knownRules: KNOWN, reportUnusedSuppressions: 'off', readText });
    expect(off.failed).toBe(false);
    expect(off.problems).toEqual([]);
    expect(off.result.warnings).toHaveLength(1);
  });

  it('enabledRules and configuredMetas follow the rules setting', () => {
    const config = { rules: { 'no-global-connection-state': 'off', 'server-initiated-request': 'warning' } } as const;
    expect(enabledRules(rules, config).map((r) => r.meta.id)).not.toContain('no-global-connection-state');
    expect(enabledRules(rules, config)).toHaveLength(rules.length - 1);
    const metas = configuredMetas(ruleMetas, config);
    expect(metas.find((m) => m.id === 'server-initiated-request')!.severity).toBe('warning');
    expect(metas.find((m) => m.id === 'no-global-connection-state')).toBeUndefined();
  });
});
