import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JsonReport } from '../../src/reporters/index.js';
import { ERROR_SERVER, makeProject, runCli, STATELESS_SERVER, WARNING_SERVER } from './helpers.js';

 
const ANSI = /\u001b\[\d+(;\d+)*m/;

const PROJECTS = {
  stateless: { 'src/server.ts': STATELESS_SERVER },
  warning: { 'src/server.ts': WARNING_SERVER },
  error: { 'src/server.ts': ERROR_SERVER },
} as const;

// Every spawn loads TypeScript (about 2 s alone); run the cases concurrently, and allow for a busy
// machine (the integration suites run beside these on two workers).
describe.concurrent('mcp-migrate analyze', { timeout: 180_000 }, () => {
  describe('exit code per --fail-on', () => {
    // [project, --fail-on, expected exit code]; the warning project has one warning and one note.
    const cases = [
      ['stateless', 'error', 0],
      ['stateless', 'warning', 0],
      ['stateless', 'note', 0],
      ['stateless', 'none', 0],
      ['warning', 'error', 0],
      ['warning', 'warning', 1],
      ['warning', 'note', 1],
      ['warning', 'none', 0],
      ['error', 'error', 1],
      ['error', 'warning', 1],
      ['error', 'note', 1],
      ['error', 'none', 0],
    ] as const;
    it.for(cases)('%s project, --fail-on %s → exit %i', async ([project, failOn, code], t) => {
      const dir = await makeProject(t, PROJECTS[project]);
      const run = await runCli(['analyze', '--fail-on', failOn], { cwd: dir });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(code);
    });

    it('fails when nothing is found but the analyzed code holds no MCP server (not shown stateless), unless --fail-on none', async (t) => {
      const dir = await makeProject(t, { 'src/cli.ts': `import { run } from 'some-server-lib';\nvoid run(process.argv);\n` });
      const [byDefault, none] = await Promise.all([runCli(['analyze'], { cwd: dir }), runCli(['analyze', '--fail-on', 'none'], { cwd: dir })]);
      expect(byDefault.stdout).toMatch(/no MCP server code/);
      expect(byDefault.code).toBe(1);
      expect(none.code).toBe(0);
    });

    it('fails on errors by default', async (t) => {
      const [warning, error] = await Promise.all([makeProject(t, PROJECTS.warning), makeProject(t, PROJECTS.error)]);
      const [onWarning, onError] = await Promise.all([runCli(['analyze'], { cwd: warning }), runCli(['analyze'], { cwd: error })]);
      expect(onWarning.code).toBe(0);
      expect(onError.code).toBe(1);
    });
  });

  it('prints the stylish report by default: findings by file, summary, verdict last', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    const run = await runCli(['analyze'], { cwd: dir });
    expect(run.code).toBe(1);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('src/server.ts');
    expect(run.stdout).toMatch(/^\s+7:7\s+error\s+`transports` .*no-session-transport-registry$/m);
    expect(run.stdout).toMatch(/^\s+fix: rewritable: run `mcp-migrate apply`/m);
    expect(run.stdout).toMatch(/2 findings in 1 file \(2 errors\); 1 file analyzed/);
    expect(lines.at(-2)).toMatch(/^Verdict: rewritable by `mcp-migrate apply`$/);
    // Not a terminal, no --color: plain text.
    expect(run.stdout).not.toMatch(ANSI);
  });

  it('analyzes the paths given, relative to the working directory', async (t) => {
    const dir = await makeProject(t, { 'a/server.ts': ERROR_SERVER, 'b/server.ts': STATELESS_SERVER });
    const onlyB = await runCli(['analyze', 'b', '--format', 'json'], { cwd: dir });
    expect(onlyB.code).toBe(0);
    expect((JSON.parse(onlyB.stdout) as JsonReport).verdict.kind).toBe('stateless');
    const both = await runCli(['analyze', 'a', 'b', '--format', 'json'], { cwd: dir });
    expect(both.code).toBe(1);
    const report = JSON.parse(both.stdout) as JsonReport;
    expect(report.summary.files).toBe(2);
    expect(new Set(report.findings.map((f) => f.file))).toEqual(new Set(['a/server.ts']));
  });

  it('--format json prints the documented JSON document', async (t) => {
    const dir = await makeProject(t, PROJECTS.warning);
    const run = await runCli(['analyze', '--format', 'json'], { cwd: dir });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as JsonReport;
    expect(Object.keys(report)).toEqual(['version', 'tool', 'root', 'summary', 'verdict', 'findings', 'warnings']);
    expect(report.version).toBe(1);
    expect(report.tool.name).toBe('mcp-migrate');
    expect(report.root).toBe(dir);
    expect(report.summary).toMatchObject({ files: 1, findings: 2, bySeverity: { error: 0, warning: 1, note: 1 } });
    expect(report.summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(report.findings.map((f) => f.ruleId).sort()).toEqual(['no-sse-server-transport', 'server-initiated-request']);
    expect(report.verdict.kind).toBe('proxy-replay');
  });

  it('--format sarif prints a SARIF 2.1.0 log with relative locations', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    const run = await runCli(['analyze', '--format', 'sarif'], { cwd: dir });
    expect(run.code).toBe(1);
    const log = JSON.parse(run.stdout) as import('sarif').Log;
    expect(log.version).toBe('2.1.0');
    const sarifRun = log.runs[0]!;
    expect(sarifRun.tool.driver.rules!.length).toBeGreaterThanOrEqual(8);
    expect(sarifRun.results!.length).toBe(2);
    for (const r of sarifRun.results!) {
      expect(r.locations![0]!.physicalLocation!.artifactLocation).toMatchObject({ uri: 'src/server.ts', uriBaseId: '%SRCROOT%' });
    }
  });

  it('--output writes the report to the file (creating directories) and nothing to stdout', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    const run = await runCli(['analyze', '--format', 'json', '--output', 'reports/out/analysis.json'], { cwd: dir });
    expect(run.code).toBe(1); // the exit code still reflects the findings
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('');
    const report = JSON.parse(await readFile(join(dir, 'reports/out/analysis.json'), 'utf8')) as JsonReport;
    expect(report.summary.findings).toBe(2);
  });

  it('--output with stylish writes plain text unless --color is given', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    await Promise.all([
      runCli(['analyze', '-o', 'plain.txt'], { cwd: dir }),
      runCli(['analyze', '-o', 'colour.txt', '--color'], { cwd: dir }),
    ]);
    const plain = await readFile(join(dir, 'plain.txt'), 'utf8');
    expect(plain).toContain('Verdict:');
    expect(plain).not.toMatch(ANSI);
    expect(await readFile(join(dir, 'colour.txt'), 'utf8')).toMatch(ANSI);
  });

  it('--output to an unwritable place exits 2 with a message', async (t) => {
    const dir = await makeProject(t, { ...PROJECTS.error, 'taken/keep.txt': '' });
    const run = await runCli(['analyze', '--output', 'taken'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot write the report to taken/);
  });

  it('--color forces ANSI colour, --no-color removes it', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    const [on, off] = await Promise.all([
      runCli(['analyze', '--color'], { cwd: dir }),
      runCli(['analyze', '--no-color'], { cwd: dir, env: { FORCE_COLOR: '3' } }),
    ]);
    expect(on.stdout).toMatch(ANSI);
    expect(off.stdout).not.toMatch(ANSI);
  });

  it('exits 2 with a clear message for a path that does not exist', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    const run = await runCli(['analyze', 'no/such/dir'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^mcp-migrate: .*not found.*no\/such\/dir/m);
  });

  it('exits 2 for a directory without source files', async (t) => {
    const dir = await makeProject(t, { 'README.md': '# nothing to see\n', 'data/config.json': '{}' });
    const run = await runCli(['analyze'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^mcp-migrate: .*no source files/m);
  });

  it('exits 2 for an unknown --format or --fail-on value', async (t) => {
    const dir = await makeProject(t, PROJECTS.error);
    const [format, failOn] = await Promise.all([
      runCli(['analyze', '--format', 'xml'], { cwd: dir }),
      runCli(['analyze', '--fail-on', 'fatal'], { cwd: dir }),
    ]);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/Invalid values?:[\s\S]*format/);
    expect(failOn.code).toBe(2);
    expect(failOn.stderr).toMatch(/Invalid values?:[\s\S]*fail-on/);
  });

  it('skips a file that does not parse with a warning on stderr and analyzes the rest', async (t) => {
    const dir = await makeProject(t, { ...PROJECTS.error, 'src/broken.ts': 'export const x = ;;; {\n' });
    const run = await runCli(['analyze', '--format', 'json'], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^mcp-migrate: warning: src\/broken\.ts: .*skipped/m);
    const report = JSON.parse(run.stdout) as JsonReport;
    expect(report.summary.files).toBe(1);
    expect(report.summary.findings).toBe(2);
    expect(report.findings.every((f) => f.file === 'src/server.ts')).toBe(true);
    expect(report.warnings).toEqual([expect.objectContaining({ file: 'src/broken.ts' })]);
  });
});
