import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/analyzer/types.js';
import { applySuppressions, findDirectives } from '../../src/gate/index.js';

const RULES = ['no-session-keyed-state', 'no-session-transport-registry', 'server-initiated-request'];

function finding(ruleId: string, line: number, file = 'src/server.ts'): Finding {
  return {
    ruleId,
    category: 'session-keyed-state',
    severity: 'error',
    file,
    line,
    column: 7,
    endLine: line,
    endColumn: 12,
    symbol: `s${line}`,
    message: 'm',
    fix: 'manual',
  };
}

function run(sources: Record<string, string>, findings: Finding[]) {
  return applySuppressions(findings, {
    root: '/project',
    files: Object.keys(sources),
    knownRules: RULES,
    readText: (abs) => sources[abs.slice('/project/'.length)],
  });
}

describe('suppression comments', () => {
  it('a line comment suppresses the named rule on the next line only', () => {
    const src = [
      'const a = 1;',
      '// mcp-migrate-ignore-next-line no-session-keyed-state -- per-session config is immutable and replayed',
      'const sessions = new Map();',
      'const other = new Map();',
    ].join('\n');
    const out = run({ 'src/server.ts': src }, [finding('no-session-keyed-state', 3), finding('no-session-keyed-state', 4), finding('no-session-transport-registry', 3)]);
    expect(out.suppressed).toBe(1);
    expect(out.findings.map((f) => [f.ruleId, f.line])).toEqual([
      ['no-session-keyed-state', 4],
      ['no-session-transport-registry', 3],
    ]);
    expect(out.problems).toEqual([]);
  });

  it('a block comment, also over several lines, with several comma-separated rules', () => {
    const src = [
      '/* mcp-migrate-ignore-next-line no-session-keyed-state, no-session-transport-registry -- migrated in #12 */',
      'const sessions = new Map();',
      '/*',
      ' * mcp-migrate-ignore-next-line server-initiated-request',
      ' *   -- elicitation only over stdio',
      ' */',
      'await server.elicitInput();',
    ].join('\n');
    const out = run({ 'src/server.ts': src }, [
      finding('no-session-keyed-state', 2),
      finding('no-session-transport-registry', 2),
      finding('server-initiated-request', 7),
    ]);
    expect(out.findings).toEqual([]);
    expect(out.suppressed).toBe(3);
    expect(out.problems).toEqual([]);
  });

  it('a trailing comment on the line above works too; a directive inside a string is not one', () => {
    const src = [
      'const x = 1; // mcp-migrate-ignore-next-line no-session-keyed-state -- reason',
      'const sessions = new Map();',
      'const s = "// mcp-migrate-ignore-next-line no-session-keyed-state -- reason";',
      'const t = new Map();',
    ].join('\n');
    const out = run({ 'a.ts': src }, [finding('no-session-keyed-state', 2, 'a.ts'), finding('no-session-keyed-state', 4, 'a.ts')]);
    expect(out.findings.map((f) => f.line)).toEqual([4]);
    expect(findDirectives('a.ts', src, RULES)).toHaveLength(1);
  });

  it('a directive without a reason, with no rule or an unknown rule suppresses nothing and is reported', () => {
    const src = [
      '// mcp-migrate-ignore-next-line no-session-keyed-state',
      'const a = new Map();',
      '// mcp-migrate-ignore-next-line -- because',
      'const b = new Map();',
      '// mcp-migrate-ignore-next-line no-session-keyd-state -- typo',
      'const c = new Map();',
      '// mcp-migrate-ignore-next-line no-session-keyed-state because I said so',
      'const d = new Map();',
    ].join('\n');
    const findings = [2, 4, 6, 8].map((l) => finding('no-session-keyed-state', l));
    const out = run({ 'src/server.ts': src }, findings);
    expect(out.findings).toHaveLength(4);
    expect(out.suppressed).toBe(0);
    expect(out.problems.map((p) => [p.kind, p.line])).toEqual([
      ['invalid', 1],
      ['invalid', 3],
      ['invalid', 5],
      ['invalid', 7],
      ['invalid', 7],
    ]);
    expect(out.problems[0]!.message).toMatch(/needs a reason: `mcp-migrate-ignore-next-line no-session-keyed-state -- <reason>`/);
    expect(out.problems[1]!.message).toMatch(/names no rule/);
    expect(out.problems[2]!.message).toMatch(/unknown rule id "no-session-keyd-state"; did you mean "no-session-keyed-state"\?/);
    expect(out.problems[3]!.message).toMatch(/"no-session-keyed-state because I said so" is not a rule id/);
  });

  it('reports unused directives and unused rule ids, also in files without findings', () => {
    const server = [
      '// mcp-migrate-ignore-next-line no-session-keyed-state, server-initiated-request -- reason',
      'const sessions = new Map();',
    ].join('\n');
    const clean = ['// mcp-migrate-ignore-next-line no-session-transport-registry -- fixed long ago', 'const x = 1;'].join('\n');
    const out = run({ 'src/server.ts': server, 'src/clean.ts': clean }, [finding('no-session-keyed-state', 2)]);
    expect(out.findings).toEqual([]);
    expect(out.problems).toEqual([
      { kind: 'unused', file: 'src/clean.ts', line: 1, message: expect.stringMatching(/^unused suppression of no-session-transport-registry: no such finding on line 2/) },
      { kind: 'unused', file: 'src/server.ts', line: 1, message: expect.stringMatching(/^unused suppression of server-initiated-request:/) },
    ]);
  });
});
