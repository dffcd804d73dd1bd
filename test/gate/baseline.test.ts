import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/analyzer/types.js';
import { applyBaseline, BASELINE_VERSION, createBaseline, parseBaseline, serializeBaseline } from '../../src/gate/index.js';

function finding(ruleId: string, file: string, symbol: string, line: number): Finding {
  return { ruleId, category: 'session-keyed-state', severity: 'error', file, line, column: 1, endLine: line, endColumn: 5, symbol, message: 'm', fix: 'manual' };
}

const TODAY = [
  finding('no-session-keyed-state', 'src/b.ts', 'timers', 30),
  finding('no-session-transport-registry', 'src/a.ts', 'transports', 7),
  finding('no-session-keyed-state', 'src/b.ts', 'timers', 10),
  finding('no-session-keyed-state', 'src/a.ts', 'sessions', 12),
];

describe('baseline', () => {
  it('records rule, file, symbol and occurrence — sorted, without lines — in a versioned document', () => {
    const baseline = createBaseline(TODAY);
    expect(baseline.version).toBe(BASELINE_VERSION);
    expect(baseline.tool).toBe('mcp-migrate');
    expect(baseline.findings).toEqual([
      { ruleId: 'no-session-keyed-state', file: 'src/a.ts', symbol: 'sessions', occurrence: 0 },
      { ruleId: 'no-session-transport-registry', file: 'src/a.ts', symbol: 'transports', occurrence: 0 },
      { ruleId: 'no-session-keyed-state', file: 'src/b.ts', symbol: 'timers', occurrence: 0 },
      { ruleId: 'no-session-keyed-state', file: 'src/b.ts', symbol: 'timers', occurrence: 1 },
    ]);
  });

  it('serializes the same findings to the same bytes, whatever their order, and parses back', () => {
    const a = serializeBaseline(createBaseline(TODAY));
    const b = serializeBaseline(createBaseline([...TODAY].reverse()));
    expect(a).toBe(b);
    expect(a.endsWith('}\n')).toBe(true);
    expect(a).not.toMatch(/"line"/);
    expect(parseBaseline(a, 'b.json')).toEqual(createBaseline(TODAY));
  });

  it('still matches every finding when all lines move', () => {
    const moved = TODAY.map((f) => ({ ...f, line: f.line + 40, endLine: f.endLine + 40 }));
    const out = applyBaseline(moved, createBaseline(TODAY));
    expect(out.findings).toEqual([]);
    expect(out.baselined).toBe(4);
    expect(out.stale).toEqual([]);
  });

  it('reports a new finding, and one more occurrence of a known symbol, as new', () => {
    const extra = finding('no-session-keyed-state', 'src/c.ts', 'pending', 3);
    const third = finding('no-session-keyed-state', 'src/b.ts', 'timers', 50);
    const out = applyBaseline([...TODAY, extra, third], createBaseline(TODAY));
    expect(out.findings).toEqual([extra, third]);
    expect(out.baselined).toBe(4);
  });

  it('counts entries that no longer occur (fixed findings) without reporting anything', () => {
    const out = applyBaseline(TODAY.slice(1), createBaseline(TODAY));
    expect(out.findings).toEqual([]);
    expect(out.stale).toEqual([{ ruleId: 'no-session-keyed-state', file: 'src/b.ts', symbol: 'timers', occurrence: 1 }]);
  });

  it('rejects invalid JSON, another format version and malformed entries', () => {
    expect(() => parseBaseline('{', 'b.json')).toThrow(/baseline b\.json is not valid JSON/);
    expect(() => parseBaseline('{"version":2,"findings":[]}', 'b.json')).toThrow(/format version 2; this mcp-migrate reads version 1/);
    expect(() => parseBaseline('{"version":1,"findings":[{"ruleId":"x","file":"a.ts","symbol":"s"}]}', 'b.json')).toThrow(
      /not an mcp-migrate baseline: \/findings\/0 must have required property 'occurrence'/,
    );
    expect(() => parseBaseline('[]', 'b.json')).toThrow(/not an mcp-migrate baseline/);
  });
});
