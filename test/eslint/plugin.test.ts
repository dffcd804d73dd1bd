/**
 * The ESLint plugin runs the mcp-migrate engine (no second implementation): RuleTester on fixture files
 * on disk (fixtures/eslint/project), and the ESLint class linting a temporary project with the flat
 * recommended config.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ESLint, RuleTester } from 'eslint';
import { afterAll, describe, expect, it } from 'vitest';
import plugin from '../../src/eslint/index.js';
import { ruleMetas } from '../../src/rules/index.js';
import { REPO_ROOT } from '../helpers/rule-tester.js';

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const PROJECT = path.join(REPO_ROOT, 'fixtures/eslint/project');
const SERVER = path.join(PROJECT, 'src/server.mjs');
const STATELESS = path.join(PROJECT, 'src/stateless.mjs');
const read = (file: string) => readFileSync(file, 'utf8');

describe('eslint plugin shape', () => {
  it('has one rule per mcp-migrate rule, same ids, docs links, and a flat recommended config', () => {
    expect(Object.keys(plugin.rules)).toEqual(ruleMetas.map((m) => m.id));
    for (const m of ruleMetas) expect(plugin.rules[m.id]!.meta!.docs!.url).toBe(m.docsUrl);
    const recommended = plugin.configs.recommended;
    expect(recommended.plugins!['mcp-migrate']).toBe(plugin);
    expect(recommended.rules!['mcp-migrate/no-session-transport-registry']).toBe('error');
    expect(recommended.rules!['mcp-migrate/no-sse-server-transport']).toBe('warn');
    expect(Object.keys(recommended.rules!)).toHaveLength(ruleMetas.length);
  });
});

const tester = new RuleTester({ languageOptions: { ecmaVersion: 'latest', sourceType: 'module' } });

tester.run('no-session-transport-registry', plugin.rules['no-session-transport-registry']!, {
  valid: [{ code: read(STATELESS), filename: STATELESS }],
  invalid: [
    {
      code: read(SERVER),
      filename: SERVER,
      errors: [{ message: /^`transports` keeps each session's transport/, line: 6, column: 7, endLine: 6, endColumn: 17 }],
    },
  ],
});

tester.run('no-stateful-session-id-generator', plugin.rules['no-stateful-session-id-generator']!, {
  valid: [{ code: read(STATELESS), filename: STATELESS }],
  invalid: [{ code: read(SERVER), filename: SERVER, errors: [{ message: /sessionIdGenerator/, line: 15, column: 7, endLine: 15, endColumn: 45 }] }],
});

tester.run('no-sse-server-transport', plugin.rules['no-sse-server-transport']!, {
  valid: [
    { code: read(SERVER), filename: SERVER },
    { code: read(STATELESS), filename: STATELESS },
  ],
  invalid: [],
});

describe('ESLint class with the flat recommended config', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('lints a temporary project, honours suppressions and sees edits (cache keyed by mtimes)', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-eslint-'));
    dirs.push(dir);
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(path.join(dir, 'src/server.mjs'), read(SERVER));
    writeFileSync(path.join(dir, 'src/stateless.mjs'), read(STATELESS));
    const eslint = new ESLint({
      cwd: dir,
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.mjs'], ...plugin.configs.recommended }],
    });
    const results = await eslint.lintFiles(['src']);
    const byFile = Object.fromEntries(results.map((r) => [path.relative(dir, r.filePath), r.messages.map((m) => [m.ruleId, m.line, m.severity])]));
    expect(byFile).toEqual({
      'src/server.mjs': [
        ['mcp-migrate/no-session-transport-registry', 6, 2],
        ['mcp-migrate/no-stateful-session-id-generator', 15, 2],
      ],
      'src/stateless.mjs': [],
    });

    const suppressed = read(SERVER).replace(
      'const transports = {};',
      '// mcp-migrate-ignore-next-line no-session-transport-registry -- single replica\nconst transports = {};',
    );
    writeFileSync(path.join(dir, 'src/server.mjs'), suppressed);
    const [again] = await eslint.lintFiles(['src/server.mjs']);
    expect(again!.messages.map((m) => [m.ruleId, m.line])).toEqual([['mcp-migrate/no-stateful-session-id-generator', 16]]);
  });
});
