import { describe, expect, it } from 'vitest';
import { json, type JsonReport } from '../../src/reporters/json.js';
import { JSON_REPORT_VERSION } from '../../src/reporters/index.js';
import { bundledResult, ctx, FINDINGS, makeResult, shuffled } from './fixture.js';

describe('json reporter', () => {
  it('prints exactly the documented top-level shape', () => {
    const doc = JSON.parse(json(makeResult(), ctx())) as JsonReport;
    expect(Object.keys(doc)).toEqual(['version', 'tool', 'root', 'summary', 'verdict', 'findings', 'warnings']);
    expect(doc.version).toBe(JSON_REPORT_VERSION);
    expect(doc.version).toBe(1);
    expect(doc.tool).toEqual({ name: 'mcp-migrate', version: '9.8.7' });
    expect(doc.root).toBe('/home/dev/my-server');
    expect(Object.keys(doc.summary)).toEqual(['files', 'findings', 'byCategory', 'bySeverity', 'durationMs']);
    expect(doc.summary).toMatchObject({ files: 5, findings: 3, durationMs: 123, bySeverity: { error: 1, warning: 1, note: 1 } });
    expect(doc.summary.byCategory['session-registry']).toBe(1);
    expect(doc.verdict).toEqual({
      kind: 'owner-routing',
      summary: expect.stringContaining('owner routing'),
      decidingFindings: [2],
    });
    expect(doc.warnings).toEqual([{ file: 'src/broken.ts', message: 'does not parse; skipped' }]);
  });

  it('lists every finding with all its fields, sorted', () => {
    const doc = JSON.parse(json(makeResult(), ctx())) as JsonReport;
    expect(doc.findings).toEqual(FINDINGS);
    expect(Object.keys(doc.findings[0]!)).toEqual([
      'ruleId', 'category', 'severity', 'file', 'line', 'column', 'endLine', 'endColumn', 'symbol', 'message', 'fix',
    ]);
  });

  it('sorts findings itself and keeps the verdict pointing at the same findings', () => {
    const input = shuffled(makeResult());
    expect(input.findings[input.verdict.decidingFindings[0]!]!.symbol).toBe('elicitInput');
    const doc = JSON.parse(json(input, ctx())) as JsonReport;
    expect(doc.findings.map((f) => f.symbol)).toEqual(['transports', 'sessions', 'elicitInput']);
    expect(doc.findings[doc.verdict.decidingFindings[0]!]!.symbol).toBe('elicitInput');
    expect(json(input, ctx())).toBe(json(makeResult(), ctx()));
  });

  it('does not depend on colour and drops fields the model does not document', () => {
    const result = makeResult();
    (result.findings[0] as unknown as Record<string, unknown>).internal = 'x';
    const plain = json(result, ctx({ color: false }));
    expect(json(result, ctx({ color: true }))).toBe(plain);
    expect(plain).not.toContain('internal');
  });

  it('carries a finding\'s bundled dependency, and no field for the application\'s own findings', () => {
    const doc = JSON.parse(json(bundledResult(), ctx())) as JsonReport;
    expect(doc.findings.map((f) => f.dependency)).toEqual([{ name: 'mcp-router' }, { name: '@acme/mcp-framework', version: '2.1.0' }, undefined]);
    expect(Object.keys(doc.findings[2]!)).not.toContain('dependency');
  });
});
