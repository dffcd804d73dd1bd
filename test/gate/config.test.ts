import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/analyzer/types.js';
import { didYouMean } from '../../src/gate/did-you-mean.js';
import { configSchema, fileFilter, findConfigFile, loadConfig, validate } from '../../src/gate/index.js';
import { rules } from '../../src/rules/index.js';
import { REPO_ROOT } from '../helpers/rule-tester.js';
import { tempTrees } from '../helpers/temp-tree.js';

const tree = tempTrees('mcp-migrate-config');

function problemsOf(value: unknown): string {
  try {
    validate(value, 'mcp-migrate.config.json');
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('configuration schema', () => {
  it('is the shipped schema/config.schema.json, a valid draft-07 schema listed in package.json files', () => {
    const file = JSON.parse(readFileSync(path.join(REPO_ROOT, 'schema/config.schema.json'), 'utf8')) as unknown;
    expect(configSchema).toEqual(file);
    expect(new Ajv({ strict: true }).validateSchema(configSchema)).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('schema');
  });

  it('lists exactly the registered rules, each with off and the three severities', () => {
    const ruleProps = (configSchema as { properties: { rules: { properties: Record<string, { enum: string[]; description: string }> } } }).properties.rules.properties;
    // `npm run schema` rewrites this part of the schema from the registry.
    expect(Object.keys(ruleProps)).toEqual(rules.map((r) => r.meta.id));
    for (const r of rules) {
      expect(ruleProps[r.meta.id]!.enum).toEqual(['off', 'error', 'warning', 'note']);
      expect(ruleProps[r.meta.id]!.description).toContain(r.meta.description);
    }
  });

  it('accepts a full configuration', () => {
    const config = {
      $schema: './node_modules/mcp-migrate/schema/config.schema.json',
      rules: { 'no-global-connection-state': 'off', 'server-initiated-request': 'warning' },
      include: ['src/**'],
      exclude: ['src/generated/**'],
      failOn: 'warning',
      reportUnusedSuppressions: 'error',
    };
    expect(validate(config, 'x')).toEqual(config);
    expect(validate({}, 'x')).toEqual({});
  });

  it('rejects an unknown rule id with a suggestion', () => {
    expect(problemsOf({ rules: { 'no-sesion-keyed-state': 'off' } })).toMatch(
      /rules: unknown rule id "no-sesion-keyed-state"; did you mean "no-session-keyed-state"\?/,
    );
  });

  it('rejects a bad severity with a suggestion', () => {
    expect(problemsOf({ rules: { 'no-session-keyed-state': 'warn' } })).toMatch(
      /rules\.no-session-keyed-state: "warn" is not one of off, error, warning, note; did you mean "warning"\?/,
    );
    expect(problemsOf({ failOn: 'errors' })).toMatch(/failOn: "errors" is not one of error, warning, note, none; did you mean "error"\?/);
  });

  it('rejects wrong types and unknown options, listing every problem', () => {
    const message = problemsOf({ include: 'src/**', exclude: [3], rules: [], failon: 'error' });
    expect(message).toMatch(/^invalid configuration in mcp-migrate\.config\.json:/);
    expect(message).toMatch(/include: must be array, not a string/);
    expect(message).toMatch(/exclude\[0\]: must be string, not a number/);
    expect(message).toMatch(/rules: must be object, not an array/);
    expect(message).toMatch(/unknown option "failon"; did you mean "failOn"\?/);
    expect(problemsOf(null)).toMatch(/must be object, not null/);
  });

  it('suggests nothing for a name far from every candidate', () => {
    expect(didYouMean('completely-different', rules.map((r) => r.meta.id))).toBeUndefined();
  });
});

describe('configuration discovery', () => {
  it('finds mcp-migrate.config.json from the analyzed root upward', () => {
    const dir = tree({ 'mcp-migrate.config.json': '{"failOn":"warning"}', 'packages/server/src/': '' });
    const found = loadConfig(path.join(dir, 'packages/server/src'), { cwd: dir });
    expect(found.file).toBe(path.join(dir, 'mcp-migrate.config.json'));
    expect(found.dir).toBe(dir);
    expect(found.config).toEqual({ failOn: 'warning' });
  });

  it('reads the "mcp-migrate" key of package.json, and prefers a config file in the same directory', () => {
    const dir = tree({ 'package.json': JSON.stringify({ name: 'x', 'mcp-migrate': { failOn: 'note' } }), 'src/': '' });
    expect(loadConfig(path.join(dir, 'src'), { cwd: dir }).config).toEqual({ failOn: 'note' });
    writeFileSync(path.join(dir, 'mcp-migrate.config.json'), '{"failOn":"none"}');
    expect(loadConfig(path.join(dir, 'src'), { cwd: dir }).config).toEqual({ failOn: 'none' });
  });

  it('skips a package.json without the key and keeps looking upward', () => {
    const dir = tree({ 'mcp-migrate.config.json': '{"failOn":"warning"}', 'app/package.json': '{"name":"app"}' });
    expect(findConfigFile(path.join(dir, 'app'))).toEqual({ file: path.join(dir, 'mcp-migrate.config.json') });
  });

  it('stops at the git root', () => {
    const dir = tree({ 'mcp-migrate.config.json': '{"failOn":"warning"}', 'repo/.git/': '', 'repo/src/': '' });
    expect(findConfigFile(path.join(dir, 'repo/src'))).toBeUndefined();
    expect(loadConfig(path.join(dir, 'repo/src'), { cwd: dir })).toEqual({ config: {} });
  });

  it('--config names the file, relative to the working directory; package.json there needs the key', () => {
    const dir = tree({ 'ci/gate.json': '{"failOn":"note"}', 'ci/package.json': '{"name":"x"}' });
    expect(loadConfig(dir, { cwd: dir, explicit: 'ci/gate.json' })).toMatchObject({ config: { failOn: 'note' }, dir: path.join(dir, 'ci') });
    expect(() => loadConfig(dir, { cwd: dir, explicit: 'ci/missing.json' })).toThrow(/configuration file not found: ci\/missing\.json/);
    expect(() => loadConfig(dir, { cwd: dir, explicit: 'ci/package.json' })).toThrow(/has no "mcp-migrate" key/);
  });

  it('reports JSON syntax errors and invalid values with the file name', () => {
    const dir = tree({ 'mcp-migrate.config.json': '{"failOn": }', 'b/package.json': '{"mcp-migrate": {"rules": {"x": "off"}}}' });
    expect(() => loadConfig(dir, { cwd: dir })).toThrow(/mcp-migrate\.config\.json is not valid JSON/);
    expect(() => loadConfig(path.join(dir, 'b'), { cwd: dir })).toThrow(/invalid configuration in b\/package\.json \("mcp-migrate"\):\n {2}- rules: unknown rule id "x"/);
  });
});

describe('include and exclude', () => {
  it('match globs relative to the configuration directory', () => {
    const dir = '/repo';
    const filter = fileFilter({ config: { include: ['src/**'], exclude: ['**/generated/**', 'src/legacy.ts'] }, dir })!;
    expect(filter('/repo/src/server.ts')).toBe(true);
    expect(filter('/repo/src/deep/.hidden/x.ts')).toBe(true);
    expect(filter('/repo/src/generated/api.ts')).toBe(false);
    expect(filter('/repo/src/legacy.ts')).toBe(false);
    expect(filter('/repo/scripts/seed.ts')).toBe(false);
    expect(fileFilter({ config: { exclude: ['scripts/**'] }, dir })!('/repo/lib/a.js')).toBe(true);
    expect(fileFilter({ config: {}, dir })).toBeUndefined();
  });
});
