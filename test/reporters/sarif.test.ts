import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Log, ReportingDescriptor, Result } from 'sarif';
import { beforeAll, describe, expect, it } from 'vitest';
import { FINGERPRINT_KEY, INFORMATION_URI, SRCROOT, sarif } from '../../src/reporters/sarif.js';
import { bundledResult, ctx, makeResult, RULES, shuffled } from './fixture.js';

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS with a default export; require() sidesteps the ESM default-interop mismatch.
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;

/**
 * The official SARIF 2.1.0 schema (as shipped by `@microsoft/jest-sarif`) is draft-04; Ajv 8 speaks
 * draft-07. The schema uses no draft-04-only keyword semantics (no boolean `exclusiveMinimum`), so
 * renaming the root `id` to `$id` and dropping `$schema` is the whole conversion.
 */
function loadSarifValidator(): ValidateFunction {
  const path = require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json');
  const schema = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const text = JSON.stringify(schema);
  expect(text).not.toMatch(/"exclusive(Minimum|Maximum)":\s*(true|false)/);
  const { $schema: _draft, id, ...rest } = schema;
  // unicodeRegExp: false because one schema pattern (`language`) has a stray `]`, legal only without the `u` flag.
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats(ajv);
  return ajv.compile({ $id: id as string, ...rest });
}

let validate: ValidateFunction;
beforeAll(() => {
  validate = loadSarifValidator();
});

function render(result = makeResult(), context = ctx()): Log {
  return JSON.parse(sarif(result, context)) as Log;
}

describe('sarif reporter', () => {
  it('produces a log valid against the SARIF 2.1.0 schema', () => {
    const ok = validate(render());
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('has a validator that does reject broken logs', () => {
    const badLevel = render();
    (badLevel.runs[0]!.results![0] as { level: string }).level = 'fatal';
    expect(validate(badLevel)).toBe(false);

    const zeroLine = render();
    zeroLine.runs[0]!.results![0]!.locations![0]!.physicalLocation!.region!.startLine = 0;
    expect(validate(zeroLine)).toBe(false);

    const badUri = render();
    badUri.runs[0]!.tool.driver.informationUri = 'not a uri';
    expect(validate(badUri)).toBe(false);

    const noDriver = render() as unknown as { runs: Array<{ tool: Record<string, unknown> }> };
    delete noDriver.runs[0]!.tool.driver;
    expect(validate(noDriver)).toBe(false);
  });

  it('describes the tool and every rule from the rule metadata', () => {
    const log = render();
    expect(log.version).toBe('2.1.0');
    const { driver } = log.runs[0]!.tool;
    expect(driver.name).toBe('mcp-migrate');
    expect(driver.version).toBe('9.8.7');
    expect(driver.informationUri).toBe(INFORMATION_URI);
    expect(driver.rules!.map((r) => r.id)).toEqual([...RULES.map((r) => r.id)].sort());
    const rule = driver.rules!.find((r) => r.id === 'session-transport-map') as ReportingDescriptor;
    expect(rule.shortDescription!.text).toBe(RULES[0]!.description);
    expect(rule.fullDescription!.text).toContain(RULES[0]!.description);
    expect(rule.fullDescription!.text).toContain('session-registry');
    expect(rule.helpUri).toBe(RULES[0]!.docsUrl);
    expect(rule.help!.text).toContain('mcp-migrate apply');
    expect(rule.defaultConfiguration!.level).toBe('error');
    expect(rule.properties!.category).toBe('session-registry');
    expect(driver.rules!.find((r) => r.id === 'server-initiated-request')!.defaultConfiguration!.level).toBe('note');
  });

  it('reports each finding with a relative URI under %SRCROOT%, 1-based region and rule index', () => {
    const log = render();
    const run = log.runs[0]!;
    expect(run.originalUriBaseIds![SRCROOT]!.uri).toBe('file:///home/dev/my-server/');
    const results = run.results!;
    expect(results.map((r) => r.ruleId)).toEqual(['session-transport-map', 'session-keyed-map', 'server-initiated-request']);
    for (const r of results) expect(run.tool.driver.rules![r.ruleIndex!]!.id).toBe(r.ruleId);
    const first = results[0]!;
    expect(first.level).toBe('error');
    expect(first.message.text).toContain('`transports`');
    const loc = first.locations![0]!.physicalLocation!;
    expect(loc.artifactLocation).toMatchObject({ uri: 'src/server.ts', uriBaseId: SRCROOT });
    expect(loc.region).toEqual({ startLine: 3, startColumn: 7, endLine: 3, endColumn: 17 });
    // Spaces (any reserved character) are percent-encoded; separators stay POSIX.
    expect(results[2]!.locations![0]!.physicalLocation!.artifactLocation!.uri).toBe('src/tools/ask%20user.ts');
    expect(run.artifacts!.map((a) => a.location!.uri)).toEqual(['src/server.ts', 'src/tools/ask%20user.ts']);
  });

  it('records the fix kind of each finding (which may narrow the rule default)', () => {
    const results = render().runs[0]!.results!;
    expect(results[0]!.properties).toMatchObject({
      fix: 'transform:externalize-transport-map',
      fixKind: 'transform',
      transform: 'externalize-transport-map',
      category: 'session-registry',
      symbol: 'transports',
    });
    expect(results[2]!.properties).toMatchObject({ fix: 'manual', fixKind: 'manual' });
    expect(results[2]!.properties).not.toHaveProperty('transform');
  });

  it('fingerprints by rule, file and symbol, not by line', () => {
    const fp = (r: Result) => r.partialFingerprints![FINGERPRINT_KEY];
    const before = render().runs[0]!.results!;
    const moved = makeResult();
    for (const f of moved.findings) {
      f.line += 10;
      f.endLine += 10;
    }
    const after = render(moved).runs[0]!.results!;
    expect(after.map(fp)).toEqual(before.map(fp));
    expect(new Set(before.map(fp)).size).toBe(before.length);
    for (const r of before) expect(fp(r)).toMatch(/^[0-9a-f]{64}$/);
    // No line-hash key that would re-fingerprint when code moves.
    expect(Object.keys(before[0]!.partialFingerprints!)).toEqual([FINGERPRINT_KEY]);

    const renamed = makeResult();
    renamed.findings[0]!.symbol = 'otherTransports';
    expect(fp(render(renamed).runs[0]!.results![0]!)).not.toBe(fp(before[0]!));
  });

  it('keeps fingerprints unique when one symbol is reported twice in a file', () => {
    const result = makeResult();
    result.findings.splice(1, 0, { ...result.findings[0]!, line: 5, endLine: 5 });
    const fps = render(result).runs[0]!.results!.map((r) => r.partialFingerprints![FINGERPRINT_KEY]);
    expect(new Set(fps).size).toBe(fps.length);
  });

  it('is byte-for-byte deterministic whatever the order of the findings', () => {
    expect(sarif(shuffled(makeResult()), ctx())).toBe(sarif(makeResult(), ctx()));
  });

  it('adds a descriptor for a rule id missing from the metadata, still schema-valid', () => {
    const log = render(makeResult(), ctx({ rules: RULES.slice(1) }));
    const run = log.runs[0]!;
    const first = run.results![0]!;
    expect(run.tool.driver.rules![first.ruleIndex!]!.id).toBe('session-transport-map');
    expect(validate(log)).toBe(true);
  });

  it('turns analysis warnings into tool execution notifications', () => {
    const inv = render().runs[0]!.invocations![0]!;
    expect(inv.executionSuccessful).toBe(true);
    expect(inv.toolExecutionNotifications).toEqual([
      {
        level: 'warning',
        message: { text: 'does not parse; skipped' },
        locations: [{ physicalLocation: { artifactLocation: { uri: 'src/broken.ts', uriBaseId: SRCROOT } } }],
      },
    ]);
  });

  it('is valid with no findings at all', () => {
    const result = makeResult({ findings: [], warnings: [] });
    const log = render(result);
    expect(log.runs[0]!.results).toEqual([]);
    expect(validate(log)).toBe(true);
  });

  it('puts a result\'s bundled dependency in properties.dependency', () => {
    const log = JSON.parse(sarif(bundledResult(), ctx())) as Log;
    const results = log.runs[0]!.results!;
    expect(results.map((r) => r.properties?.['dependency'])).toEqual([{ name: 'mcp-router' }, { name: '@acme/mcp-framework', version: '2.1.0' }, undefined]);
  });
});
