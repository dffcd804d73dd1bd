/**
 * The ESLint plugin (flat config): `import mcpMigrate from 'mcp-migrate/eslint-plugin'`.
 *
 * One ESLint rule per mcp-migrate rule, with the same id. They run the SAME analysis as
 * `mcp-migrate analyze`: on `Program`, a rule analyzes the file's project (the nearest directory with a
 * `tsconfig.json` or `package.json`) with the mcp-migrate engine and reports the findings of its rule
 * located in the current file. One analysis per project is cached per lint run, keyed by the project root
 * and the modification times of its source files, so the eight rules over many files share it.
 * `mcp-migrate-ignore-next-line` comments apply as in the CLI.
 *
 * ESLint parses the file itself, so TypeScript files need a TypeScript parser in the ESLint config
 * (typescript-eslint); the analysis reads the files from disk with its own TypeScript program.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ESLint, Linter, Rule as ESLintRule } from 'eslint';
import { analyzeSync } from '../analyzer/engine.js';
import { listSourceFiles } from '../analyzer/project.js';
import type { Finding, RuleMeta } from '../analyzer/types.js';
import { applySuppressions } from '../gate/suppressions.js';
import { coverNote } from '../reporters/describe.js';
import { ruleMetas } from '../rules/index.js';
import { TOOL_NAME, VERSION } from '../version.js';

interface CacheEntry {
  key: string;
  /** Findings by absolute file path. */
  byFile: Map<string, Finding[]>;
}

const cache = new Map<string, CacheEntry>();

/** The nearest directory at or above the file's with a `tsconfig.json` or `package.json`. */
export function projectRoot(file: string): string {
  let dir = path.dirname(path.resolve(file));
  for (;;) {
    if (existsSync(path.join(dir, 'tsconfig.json')) || existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.dirname(path.resolve(file));
    dir = parent;
  }
}

/** The findings of the project holding `file`, analyzed once per root and set of file versions. */
export function findingsFor(file: string): Finding[] {
  const root = projectRoot(file);
  const files = listSourceFiles(root);
  const key = files.map((f) => `${f}\0${mtime(f)}`).join('\n') + `\n${path.join(root, 'tsconfig.json')}\0${mtime(path.join(root, 'tsconfig.json'))}`;
  let entry = cache.get(root);
  if (!entry || entry.key !== key) {
    const result = analyzeSync({ paths: [root], cwd: root });
    const kept = applySuppressions(result.findings, { root, files: result.files ?? [], knownRules: ruleMetas.map((m) => m.id) }).findings;
    const byFile = new Map<string, Finding[]>();
    for (const f of kept) {
      const abs = path.join(root, f.file);
      byFile.set(abs, [...(byFile.get(abs) ?? []), f]);
    }
    entry = { key, byFile };
    cache.set(root, entry);
  }
  return entry.byFile.get(path.resolve(file)) ?? [];
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

function eslintRule(meta: RuleMeta): ESLintRule.RuleModule {
  return {
    meta: {
      type: 'problem',
      docs: { description: meta.description, recommended: true, url: meta.docsUrl },
      schema: [],
    },
    create(context) {
      return {
        Program() {
          for (const f of findingsFor(context.filename)) {
            if (f.ruleId !== meta.id) continue;
            context.report({
              loc: { start: { line: f.line, column: f.column - 1 }, end: { line: f.endLine, column: f.endColumn - 1 } },
              message: f.coveredBy ? `${f.message} ${coverNote(f.coveredBy)}` : f.message,
            });
          }
        },
      };
    },
  };
}

const rules: Record<string, ESLintRule.RuleModule> = Object.fromEntries(ruleMetas.map((m) => [m.id, eslintRule(m)]));

/** ESLint has two severities: mcp-migrate `error` stays `error`; `warning` and `note` become `warn`. */
const recommendedRules: Linter.RulesRecord = Object.fromEntries(
  ruleMetas.map((m) => [`${TOOL_NAME}/${m.id}`, m.severity === 'error' ? 'error' : 'warn'] as const),
);

const plugin = {
  meta: { name: TOOL_NAME, version: VERSION },
  rules,
  configs: {} as Record<'recommended', Linter.Config>,
} satisfies ESLint.Plugin;

plugin.configs.recommended = {
  name: `${TOOL_NAME}/recommended`,
  plugins: { [TOOL_NAME]: plugin },
  rules: recommendedRules,
};

export default plugin;
