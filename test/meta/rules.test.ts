/**
 * Keeps the rule triplets honest (typescript-eslint `docs.test.mts`, ESLint `check-rule-examples.js`):
 * every registered rule has a doc whose description equals `meta.description`, fixtures and a test
 * file; every rule file is registered under its file name; and the doc's examples really are what
 * they claim — each ❌ block produces a finding of the rule, each ✅ block none.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze } from '../../src/analyzer/index.js';
import type { Rule } from '../../src/rules/create-rule.js';
import { rules } from '../../src/rules/index.js';
import { REPO_ROOT, ruleCases } from '../helpers/rule-tester.js';

const RULES_DIR = path.join(REPO_ROOT, 'src', 'rules');
const DOCS_DIR = path.join(REPO_ROOT, 'docs', 'rules');
const FIXTURES_DIR = path.join(REPO_ROOT, 'fixtures', 'rules');
const NOT_RULES = new Set(['index', 'create-rule']);
const REQUIRED_SECTIONS = ['## Why it matters behind a round-robin load balancer', '## Examples', '## How to fix', '## When not to use it'];

interface DocExample {
  kind: 'incorrect' | 'correct';
  lang: string;
  code: string;
}

function readDoc(id: string): string {
  return readFileSync(path.join(DOCS_DIR, `${id}.md`), 'utf8');
}

/** The frontmatter `description`, unquoted (YAML single quotes double an inner `'`). */
function docDescription(doc: string): string | undefined {
  const front = /^---\r?\n([\s\S]*?)\r?\n---/.exec(doc)?.[1];
  const line = front?.split(/\r?\n/).find((l) => l.startsWith('description:'));
  if (!line) return undefined;
  const raw = line.slice('description:'.length).trim();
  if (raw.startsWith("'") && raw.endsWith("'")) return raw.slice(1, -1).replace(/''/g, "'");
  if (raw.startsWith('"') && raw.endsWith('"')) return JSON.parse(raw) as string;
  return raw;
}

/** The code blocks under `### ❌ …` and `### ✅ …` inside `## Examples`. */
function docExamples(doc: string): DocExample[] {
  const start = doc.indexOf('\n## Examples');
  if (start < 0) return [];
  const rest = doc.slice(start + 1);
  const end = rest.indexOf('\n## ', 1);
  const section = end < 0 ? rest : rest.slice(0, end);
  const out: DocExample[] = [];
  let kind: DocExample['kind'] | undefined;
  const lines = section.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('### ')) kind = line.includes('❌') ? 'incorrect' : line.includes('✅') ? 'correct' : undefined;
    const fence = /^```(ts|typescript|js|javascript|mjs)\s*$/.exec(line);
    if (!fence) continue;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    if (kind) out.push({ kind, lang: fence[1]!, code: body.join('\n') + '\n' });
  }
  return out;
}

const ruleFiles = readdirSync(RULES_DIR)
  .filter((f) => f.endsWith('.ts') && !NOT_RULES.has(path.basename(f, '.ts')))
  .map((f) => path.basename(f, '.ts'))
  .sort();

describe('rule registry', () => {
  it('registers every rule file under src/rules, once', async () => {
    for (const id of ruleFiles) {
      const mod = (await import(pathToFileURL(path.join(RULES_DIR, `${id}.ts`)).href)) as { default: Rule };
      expect(rules, `src/rules/${id}.ts is not listed in src/rules/index.ts`).toContain(mod.default);
      expect(mod.default.meta.id, `rule id of src/rules/${id}.ts`).toBe(id);
    }
    expect(rules.map((r) => r.meta.id).sort()).toEqual(ruleFiles);
    expect(new Set(rules.map((r) => r.meta.id)).size).toBe(rules.length);
  });

  it('has no doc or fixture folder without a rule', () => {
    const ids = new Set(rules.map((r) => r.meta.id));
    const docs = readdirSync(DOCS_DIR).filter((f) => f.endsWith('.md') && f !== 'TEMPLATE.md').map((f) => path.basename(f, '.md'));
    expect(docs.filter((d) => !ids.has(d)), 'orphan docs/rules/*.md').toEqual([]);
    const fixtures = readdirSync(FIXTURES_DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(fixtures.filter((d) => !ids.has(d)), 'orphan fixtures/rules/*/').toEqual([]);
  });
});

// Doc examples are analyzed inside the repository (an ignored `.tmp/`) so that their imports of
// `@modelcontextprotocol/*`, `express` and `hono` resolve through `node_modules`, as in a real server.
const scratchParent = path.join(REPO_ROOT, '.tmp');
let scratch: string | undefined;
function scratchDir(): string {
  if (!scratch) {
    mkdirSync(scratchParent, { recursive: true });
    scratch = mkdtempSync(path.join(scratchParent, 'doc-examples-'));
  }
  return scratch;
}
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

for (const rule of rules) {
  const { id } = rule.meta;
  describe(id, () => {
    it('has a doc whose frontmatter description equals meta.description, with the template sections', () => {
      expect(existsSync(path.join(DOCS_DIR, `${id}.md`)), `docs/rules/${id}.md`).toBe(true);
      const doc = readDoc(id);
      expect(docDescription(doc)).toBe(rule.meta.description);
      expect(doc).toContain(`# \`${id}\``);
      for (const section of REQUIRED_SECTIONS) expect(doc, `docs/rules/${id}.md lacks "${section}"`).toContain(`\n${section}\n`);
      if (rule.meta.fix.startsWith('transform:')) expect(doc).toContain(rule.meta.fix);
      const examples = docExamples(doc);
      expect(examples.some((e) => e.kind === 'incorrect'), 'at least one ❌ example').toBe(true);
      expect(examples.some((e) => e.kind === 'correct'), 'at least one ✅ example').toBe(true);
    });

    it('has fixtures (at least one valid and one invalid case) and a test file', () => {
      const cases = ruleCases(id);
      expect(cases.some((c) => c.kind === 'valid'), `fixtures/rules/${id}/valid-*`).toBe(true);
      expect(cases.some((c) => c.kind === 'invalid'), `fixtures/rules/${id}/invalid-*`).toBe(true);
      expect(existsSync(path.join(REPO_ROOT, 'test', 'rules', `${id}.test.ts`)), `test/rules/${id}.test.ts`).toBe(true);
    });

    const examples = existsSync(path.join(DOCS_DIR, `${id}.md`)) ? docExamples(readDoc(id)) : [];
    examples.forEach((example, n) => {
      it(`doc example ${n + 1} (${example.kind === 'incorrect' ? '❌' : '✅'}) ${example.kind === 'incorrect' ? 'is reported' : 'is not reported'}`, async () => {
        const dir = path.join(scratchDir(), id, `${n + 1}-${example.kind}`);
        mkdirSync(dir, { recursive: true });
        const ext = example.lang.startsWith('j') ? (example.lang === 'mjs' ? 'mjs' : 'js') : 'ts';
        writeFileSync(path.join(dir, `example.${ext}`), example.code);
        const result = await analyze({ paths: [dir], cwd: REPO_ROOT, rules: [rule] });
        const findings = result.findings.filter((f) => f.ruleId === id);
        const shown = findings.map((f) => `${f.line}:${f.symbol}`).join(', ');
        if (example.kind === 'incorrect') expect(findings.length, `❌ example ${n + 1} of docs/rules/${id}.md produced no finding`).toBeGreaterThan(0);
        else expect(findings, `✅ example ${n + 1} of docs/rules/${id}.md produced findings: ${shown}`).toEqual([]);
      });
    });
  });
}
