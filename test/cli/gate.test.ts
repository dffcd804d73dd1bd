/**
 * The CI gate end to end, through the built CLI: baselines, suppressions, configuration and the
 * `github`/`markdown` formats, on temporary git-less projects.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JsonReport } from '../../src/reporters/index.js';
import { ERROR_SERVER, makeProject, runCli, STATELESS_SERVER, WARNING_SERVER } from './helpers.js';

const BASELINE = 'mcp-migrate-baseline.json';

/** ERROR_SERVER plus a per-session map of last-seen times, written by the request handler. */
function withSessionMap(source: string): string {
  return source
    .replace('const app = express();', 'const lastSeen = new Map<string, number>();\nconst app = express();')
    .replace(
      "const sessionId = req.headers['mcp-session-id'] as string | undefined;",
      "const sessionId = req.headers['mcp-session-id'] as string | undefined;\n  if (sessionId) lastSeen.set(sessionId, Date.now());",
    );
}

function report(stdout: string): JsonReport {
  return JSON.parse(stdout) as JsonReport;
}

describe.concurrent('CI gate', { timeout: 180_000 }, () => {
  it('runs as CI would: fail, write a baseline, pass, survive shifted lines, fail on the one new finding', async (t) => {
    const dir = await makeProject(t, { 'src/server.ts': ERROR_SERVER });
    const server = join(dir, 'src/server.ts');

    const first = await runCli(['analyze', '--format', 'json'], { cwd: dir });
    expect(first.code).toBe(1);
    expect(report(first.stdout).findings).toHaveLength(2);

    const write = await runCli(['analyze', '--write-baseline', BASELINE], { cwd: dir });
    expect(write.code).toBe(0);
    expect(write.stderr).toContain(`wrote 2 findings to the baseline ${BASELINE}`);
    const baseline = JSON.parse(await readFile(join(dir, BASELINE), 'utf8')) as { version: number; findings: Array<Record<string, unknown>> };
    expect(baseline.version).toBe(1);
    expect(baseline.findings.map((e) => e.ruleId)).toEqual(['no-session-transport-registry', 'no-stateful-session-id-generator']);
    expect(baseline.findings.every((e) => !('line' in e))).toBe(true);

    const gated = await runCli(['analyze', '--baseline', BASELINE, '--format', 'json'], { cwd: dir });
    expect(gated.code).toBe(0);
    expect(report(gated.stdout).findings).toEqual([]);
    expect(gated.stderr).toContain('2 findings recorded in the baseline are not reported');

    // Unrelated edit: every line moves down.
    await writeFile(server, `// Copyright header\n// added by an unrelated change\n\nconst unrelated = 1;\nvoid unrelated;\n${ERROR_SERVER}`);
    const shifted = await runCli(['analyze', '--baseline', BASELINE, '--format', 'github'], { cwd: dir });
    expect(shifted.code).toBe(0);
    expect(shifted.stdout).not.toMatch(/^::error/m);
    expect(shifted.stderr).not.toMatch(/no longer occur/);

    // A new session map: exit 1, and only it is reported.
    await writeFile(server, withSessionMap(`// Copyright header\n${ERROR_SERVER}`));
    const [json, annotations] = await Promise.all([
      runCli(['analyze', '--baseline', BASELINE, '--format', 'json'], { cwd: dir }),
      runCli(['analyze', '--baseline', BASELINE, '--format', 'github'], { cwd: dir }),
    ]);
    expect(json.code).toBe(1);
    expect(report(json.stdout).findings.map((f) => [f.ruleId, f.symbol])).toEqual([['no-session-keyed-state', 'lastSeen']]);
    expect(annotations.code).toBe(1);
    const errors = annotations.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^::error file=src\/server\.ts,line=9,col=7,endLine=9,endColumn=15,title=mcp-migrate no-session-keyed-state::`lastSeen`/);
  });

  it('counts fixed findings still in the baseline without failing', async (t) => {
    const dir = await makeProject(t, { 'src/server.ts': ERROR_SERVER });
    expect((await runCli(['analyze', '--write-baseline', BASELINE], { cwd: dir })).code).toBe(0);
    // Make the server stateless: a server without the registry (and with it the generator's session).
    await writeFile(join(dir, 'src/server.ts'), STATELESS_SERVER);
    const run = await runCli(['analyze', '--baseline', BASELINE, '--format', 'markdown'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('mcp-migrate: warning: 2 baseline entries no longer occur; rewrite the baseline (--write-baseline FILE)');
    expect(run.stdout).toContain('> 2 baseline entries no longer occur; rewrite the baseline.');
  });

  it('a missing or broken baseline is a usage error (exit 2)', async (t) => {
    const dir = await makeProject(t, { 'src/server.ts': ERROR_SERVER, 'bad.json': '{"version": 9, "findings": []}' });
    const [missing, bad] = await Promise.all([
      runCli(['analyze', '--baseline', 'nope.json'], { cwd: dir }),
      runCli(['analyze', '--baseline', 'bad.json'], { cwd: dir }),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/baseline not found: nope\.json \(create it with --write-baseline nope\.json\)/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/format version 9/);
  });

  it('inline suppressions: a reason is required, unused ones are reported per --report-unused-suppressions', async (t) => {
    const suppressed = ERROR_SERVER.replace(
      'const transports: Record',
      '// mcp-migrate-ignore-next-line no-session-transport-registry -- single replica until the Redis store lands\nconst transports: Record',
    ).replace(
      'const app = express();',
      '/* mcp-migrate-ignore-next-line server-initiated-request -- nothing to suppress here */\nconst app = express();',
    );
    const dir = await makeProject(t, { 'src/server.ts': suppressed, 'src/nreason.ts': '// mcp-migrate-ignore-next-line no-session-keyed-state\nexport const x = 1;\n' });
    const [warn, error, off] = await Promise.all([
      runCli(['analyze', '--format', 'json'], { cwd: dir }),
      runCli(['analyze', '--format', 'json', '--report-unused-suppressions', 'error', '--fail-on', 'none'], { cwd: dir }),
      runCli(['analyze', '--format', 'json', '--report-unused-suppressions', 'off'], { cwd: dir }),
    ]);
    // The registry is suppressed; the session id generator still fails the run.
    expect(report(warn.stdout).findings.map((f) => f.ruleId)).toEqual(['no-stateful-session-id-generator']);
    expect(warn.code).toBe(1);
    expect(warn.stderr).toMatch(/^mcp-migrate: warning: src\/server\.ts:9: unused suppression of server-initiated-request: no such finding on line 10; remove it$/m);
    expect(warn.stderr).toMatch(/^mcp-migrate: warning: src\/nreason\.ts:1: suppression comment needs a reason/m);
    expect(report(warn.stdout).warnings).toContainEqual({ file: 'src/server.ts', message: expect.stringMatching(/^unused suppression/) });
    expect(error.code).toBe(1);
    expect(error.stderr).toMatch(/error: unused suppression comments fail the run/);
    expect(off.stderr).not.toMatch(/unused suppression/);
    expect(off.stderr).toMatch(/needs a reason/); // invalid comments are always reported
  });

  it('configuration: rules off and severities, include/exclude, failOn; --fail-on wins', async (t) => {
    const config = {
      rules: { 'no-stateful-session-id-generator': 'off', 'no-session-transport-registry': 'warning' },
      exclude: ['src/legacy/**'],
      failOn: 'warning',
    };
    const dir = await makeProject(t, {
      'mcp-migrate.config.json': JSON.stringify(config),
      'src/server.ts': ERROR_SERVER,
      'src/legacy/sse.ts': WARNING_SERVER,
    });
    const [json, cliWins, sarif] = await Promise.all([
      runCli(['analyze', 'src', '--format', 'json'], { cwd: dir }),
      runCli(['analyze', 'src', '--fail-on', 'error'], { cwd: dir }),
      runCli(['analyze', 'src', '--format', 'sarif'], { cwd: dir }),
    ]);
    const r = report(json.stdout);
    expect(r.summary.files).toBe(1);
    expect(r.findings.map((f) => [f.ruleId, f.severity])).toEqual([['no-session-transport-registry', 'warning']]);
    expect(json.code).toBe(1); // failOn: warning from the configuration
    expect(cliWins.code).toBe(0);
    const rules = (JSON.parse(sarif.stdout) as import('sarif').Log).runs[0]!.tool.driver.rules!;
    expect(rules.map((x) => x.id)).not.toContain('no-stateful-session-id-generator');
    expect(rules.find((x) => x.id === 'no-session-transport-registry')!.defaultConfiguration!.level).toBe('warning');
  });

  it('package.json "mcp-migrate" key and --config FILE', async (t) => {
    const dir = await makeProject(t, {
      'package.json': JSON.stringify({ name: 'server', 'mcp-migrate': { failOn: 'none' } }),
      'ci/strict.json': JSON.stringify({ failOn: 'note' }),
      'src/server.ts': WARNING_SERVER,
    });
    const [fromPackage, explicit] = await Promise.all([
      runCli(['analyze', '--fail-on', 'none', '--format', 'json'], { cwd: dir }),
      runCli(['analyze', '--config', 'ci/strict.json'], { cwd: dir }),
    ]);
    expect(fromPackage.code).toBe(0);
    expect(explicit.code).toBe(1);
  });

  it('an invalid configuration exits 2 with every problem and suggestions', async (t) => {
    const dir = await makeProject(t, {
      'mcp-migrate.config.json': JSON.stringify({ rules: { 'no-global-conection-state': 'off', 'server-initiated-request': 'warn' }, include: 'src' }),
      'src/server.ts': ERROR_SERVER,
    });
    const run = await runCli(['analyze'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('mcp-migrate: invalid configuration in mcp-migrate.config.json:');
    expect(run.stderr).toContain('rules: unknown rule id "no-global-conection-state"; did you mean "no-global-connection-state"?');
    expect(run.stderr).toContain('rules.server-initiated-request: "warn" is not one of off, error, warning, note; did you mean "warning"?');
    expect(run.stderr).toContain('include: must be array, not a string');
  });

  it('--format markdown prints the pull-request summary', async (t) => {
    const dir = await makeProject(t, { 'src/server.ts': ERROR_SERVER });
    const run = await runCli(['analyze', '--format', 'markdown'], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^## ❌ mcp-migrate: rewritable by `mcp-migrate apply`\n\n\*\*2 findings\*\* \(2 errors\) in 1 file · 1 file analyzed\n/);
    expect(run.stdout).toContain('| 🔴 error | [`no-session-transport-registry`](https://github.com/mcp-migrate/mcp-migrate/blob/main/docs/rules/no-session-transport-registry.md) | `src/server.ts:7:7` | `transports` |');
  });
});
