/**
 * Covered findings (`Finding.coveredBy`): the verdict decides a covered finding by its cover, and every
 * reporter shows the link (stylish and markdown text, GitHub annotations, JSON field, SARIF relatedLocations).
 */
import { describe, expect, it } from 'vitest';
import { findingRef } from '../../src/analyzer/cover.js';
import type { AnalysisResult, Finding } from '../../src/analyzer/types.js';
import { decideVerdict } from '../../src/analyzer/verdict.js';
import { github } from '../../src/reporters/github.js';
import { json } from '../../src/reporters/json.js';
import { markdown } from '../../src/reporters/markdown.js';
import { sarif } from '../../src/reporters/sarif.js';
import { stylish } from '../../src/reporters/stylish.js';
import { ctx, makeResult } from '../reporters/fixture.js';

const store: Finding = {
  ruleId: 'no-in-memory-event-store', category: 'stateful-transport', severity: 'error', file: 'src/store.ts', line: 30, column: 14, endLine: 30, endColumn: 32,
  symbol: 'InMemoryEventStore', message: '`InMemoryEventStore` keeps events in memory; behind a load balancer another replica has none.', fix: 'transform:event-store',
};
const site: Finding = {
  ...store, file: 'src/server.ts', line: 56, column: 10, endLine: 56, endColumn: 40, symbol: 'new InMemoryEventStore',
  message: '`new InMemoryEventStore()` makes a store of the in-memory event store reported at its class.', coveredBy: findingRef(store),
};

describe('verdict with covered findings', () => {
  it('counts a covered finding through its cover: rewritable, decided by the cover alone', () => {
    const v = decideVerdict([store, site]);
    expect(v.kind).toBe('rewritable');
    expect(v.decidingFindings).toEqual([0]);
  });

  it('takes the cover\'s fix, not the covered finding\'s own, while the cover is there', () => {
    // A covered finding that (wrongly) carried `manual` would make the verdict owner-routing on its own.
    expect(decideVerdict([store, { ...site, fix: 'manual' }]).kind).toBe('rewritable');
  });

  it('decides on its own (with the fix it took from its cover) when the cover is gone (baselined or suppressed)', () => {
    const v = decideVerdict([{ ...site, fix: 'manual' }]);
    expect(v.kind).toBe('owner-routing');
    expect(v.decidingFindings).toEqual([0]);
  });
});

describe('reporters show the link', () => {
  const result = (): AnalysisResult => makeResult({ findings: [store, site] });

  it('stylish names the cover under the finding', () => {
    expect(stylish(result(), ctx())).toContain('covered by: `InMemoryEventStore` (no-in-memory-event-store, src/store.ts:30)');
  });

  it('json carries coveredBy with rule id, file, line, column and symbol', () => {
    const doc = JSON.parse(json(result(), ctx())) as { findings: Finding[] };
    expect(doc.findings.find((f) => f.line === 56)!.coveredBy).toEqual({ ruleId: 'no-in-memory-event-store', file: 'src/store.ts', line: 30, column: 14, symbol: 'InMemoryEventStore' });
    expect(doc.findings.find((f) => f.line === 30)!.coveredBy).toBeUndefined();
  });

  it('sarif gives the covered result its cover as a related location', () => {
    const log = JSON.parse(sarif(result(), ctx())) as { runs: Array<{ results: Array<{ relatedLocations?: Array<{ physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } }; message: { text: string } }>; properties: Record<string, unknown> }> }> };
    const [covered, cover] = log.runs[0]!.results; // sorted by file: src/server.ts, then src/store.ts
    expect(cover!.relatedLocations).toBeUndefined();
    const rel = covered!.relatedLocations![0]!;
    expect([rel.physicalLocation.artifactLocation.uri, rel.physicalLocation.region.startLine]).toEqual(['src/store.ts', 30]);
    expect(rel.message.text).toContain('Covered by `InMemoryEventStore`');
    expect(covered!.properties['coveredBy']).toMatchObject({ file: 'src/store.ts', line: 30 });
  });

  it('markdown and GitHub annotations add the cover sentence', () => {
    for (const out of [markdown(result(), ctx()), github(result(), ctx())]) expect(out).toContain('Covered by `InMemoryEventStore` (no-in-memory-event-store, src/store.ts:30)');
  });
});
