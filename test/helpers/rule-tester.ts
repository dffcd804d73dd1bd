/**
 * Fixture-driven rule tests (semgrep-style annotations, next-codemod-style discovery).
 *
 * Each rule has a folder `fixtures/rules/<rule-id>/` whose entries are cases:
 * - `valid-<case>.<ext>` or `valid-<case>/`: the rule must report nothing;
 * - `invalid-<case>.<ext>` or `invalid-<case>/` (several files: declared in one module, filled in
 *   another, read in a third): every finding of the rule must start on a line directly preceded by
 *   `// expect: <rule-id>`, and every such annotation must be matched by a finding.
 *
 * An annotation may name the expected fix when it differs from the rule's default:
 * `// expect: no-session-keyed-state fix=manual`. Several rules may be listed on one line
 * (`// expect: rule-a, rule-b`) or on stacked annotation lines.
 *
 * Cases are analyzed in place so that imports of `@modelcontextprotocol/*`, `express` and `hono`
 * resolve through the repository's `node_modules`, as they would in a real server.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analyzer/index.js';
import type { Finding, Fix } from '../../src/analyzer/types.js';
import type { Rule } from '../../src/rules/create-rule.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES_ROOT = path.join(REPO_ROOT, 'fixtures', 'rules');

const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;
const ANNOTATION = /^\s*\/\/\s*expect:\s*(.+?)\s*$/;
/**
 * `// todo-expect: <rule-id> -- <why>`: a known gap (semgrep's `todoruleid`). The finding SHOULD be
 * there but the analyzer does not find it yet; the test asserts it is still missing, so fixing the gap
 * fails the test until the annotation is promoted to `// expect:`.
 */
const TODO_ANNOTATION = /^\s*\/\/\s*todo-expect:\s*([\w-]+)/;

export interface RuleCase {
  /** `valid-…` or `invalid-…` (file name or folder name). */
  name: string;
  kind: 'valid' | 'invalid';
  /** Absolute path of the file or folder analyzed. */
  path: string;
}

export interface Expectation {
  /** Path relative to the analyzed root (the case file's folder, or the case folder), POSIX. */
  file: string;
  line: number;
  fix?: Fix;
}

/** The cases of a rule, sorted by name. */
export function ruleCases(ruleId: string): RuleCase[] {
  const dir = path.join(FIXTURES_ROOT, ruleId);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^(valid|invalid)-/.test(e) && (statSync(path.join(dir, e)).isDirectory() || SOURCE.test(e)))
    .sort()
    .map((e) => ({ name: e, kind: e.startsWith('invalid-') ? 'invalid' : 'valid', path: path.join(dir, e) }));
}

function sourceFilesOf(casePath: string): string[] {
  if (!statSync(casePath).isDirectory()) return [casePath];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (SOURCE.test(e.name)) out.push(full);
    }
  };
  walk(casePath);
  return out.sort();
}

/** Parses the `// expect:` annotations of `ruleId` in a case. */
export function expectations(ruleCase: RuleCase, ruleId: string, known?: Expectation[]): Expectation[] {
  const root = statSync(ruleCase.path).isDirectory() ? ruleCase.path : path.dirname(ruleCase.path);
  const out: Expectation[] = [];
  for (const file of sourceFilesOf(ruleCase.path)) {
    const lines = readFileSync(file, 'utf8').split(/\r?\n/);
    lines.forEach((text, i) => {
      const todo = TODO_ANNOTATION.exec(text);
      if (todo && todo[1] === ruleId && known) {
        known.push({ file: path.relative(root, file).split(path.sep).join('/'), line: i + 2 });
        return;
      }
      const m = ANNOTATION.exec(text);
      if (!m) return;
      // The finding starts on the next line that is not itself an annotation.
      let target = i + 1;
      while (target < lines.length && ANNOTATION.test(lines[target]!)) target++;
      for (const item of m[1]!.split(',')) {
        const [id, ...opts] = item.trim().split(/\s+/);
        if (id !== ruleId) continue;
        const fixOpt = opts.find((o) => o.startsWith('fix='));
        out.push({
          file: path.relative(root, file).split(path.sep).join('/'),
          line: target + 1,
          ...(fixOpt ? { fix: fixOpt.slice(4) as Fix } : {}),
        });
      }
    });
  }
  return out;
}

/** Runs one rule over one case and returns its findings. */
export async function runRule(rule: Rule, ruleCase: RuleCase): Promise<Finding[]> {
  const result = await analyze({ paths: [ruleCase.path], cwd: REPO_ROOT, rules: [rule] });
  return result.findings.filter((f) => f.ruleId === rule.meta.id);
}

export const key = (f: { file: string; line: number }): string => `${f.file}:${f.line}`;

/**
 * Asserts the parts every finding message must have: what (names the state or API), why (the
 * round-robin load balancer / replicas), and what to do (a command, a transform, or a manual change).
 */
export function expectGoodMessage(finding: Finding): void {
  const m = finding.message;
  expect(m.length, 'message is empty or too short').toBeGreaterThan(80);
  expect(m, 'message says why: load balancer or replica').toMatch(/load balancer|replica/i);
  expect(m, 'message says what to do').toMatch(/mcp-migrate|\b(run|use|move|keep|serve|set|key it|back it|rewrite)\b/i);
  expect(m, 'message names the state or API').toContain(finding.symbol.split('.').pop()!);
}

/** Defines one vitest test per fixture case of `rule`. */
export function describeRule(rule: Rule): void {
  const id = rule.meta.id;
  const cases = ruleCases(id);
  describe(id, () => {
    it('has at least one valid and one invalid fixture case', () => {
      expect(cases.some((c) => c.kind === 'valid')).toBe(true);
      expect(cases.some((c) => c.kind === 'invalid')).toBe(true);
    });
    for (const c of cases) {
      it(`${c.name}`, async () => {
        const gaps: Expectation[] = [];
        const expected = expectations(c, id, gaps);
        if (c.kind === 'invalid') expect(expected.length + gaps.length, `${c.name} has no \`// expect: ${id}\` annotation`).toBeGreaterThan(0);
        else expect(expected, `${c.name} is valid but carries \`// expect: ${id}\` annotations`).toEqual([]);
        const findings = await runRule(rule, c);
        const found = new Set(findings.map(key));
        for (const gap of gaps) expect(found.has(key(gap)), `known gap ${key(gap)} is now found: promote its \`// todo-expect:\` to \`// expect:\``).toBe(false);
        expect(findings.map(key).sort(), `findings of ${id} in ${c.name}`).toEqual(expected.map(key).sort());
        const byKey = new Map(expected.map((e) => [key(e), e]));
        for (const f of findings) {
          expect(f.category).toBe(rule.meta.category);
          expect(f.fix, `fix of ${key(f)}`).toBe(byKey.get(key(f))?.fix ?? rule.meta.fix);
          expectGoodMessage(f);
        }
      });
    }
  });
}
