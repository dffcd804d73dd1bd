/**
 * action.yml: its shape (inputs, the upload step) and its analyze script, run with bash against a fake
 * `npx` that records the command lines, as a runner would run them.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/rule-tester.js';

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  shell?: string;
  env?: Record<string, string>;
  with?: Record<string, string>;
}
interface Action {
  inputs: Record<string, { default?: string; description: string }>;
  runs: { using: string; steps: Step[] };
}

const action = load(readFileSync(path.join(REPO_ROOT, 'action.yml'), 'utf8')) as Action;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the analyze step's script with `inputs`; the fake npx exits `exitCode` for the SARIF run. */
function runAnalyzeStep(inputs: Record<string, string>, exitCode: number): { calls: string[][]; output: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-action-'));
  dirs.push(dir);
  const log = path.join(dir, 'calls.jsonl');
  const npx = path.join(dir, 'npx');
  writeFileSync(
    npx,
    `#!/usr/bin/env node\nrequire('fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify(process.argv.slice(2)) + '\\n');\n` +
      `process.exit(process.argv.includes('sarif') ? ${exitCode} : 0);\n`,
  );
  chmodSync(npx, 0o755);
  const step = action.runs.steps.find((s) => s.id === 'analyze')!;
  const env: Record<string, string> = { PATH: `${dir}:${process.env.PATH}`, GITHUB_OUTPUT: path.join(dir, 'out'), GITHUB_STEP_SUMMARY: path.join(dir, 'summary') };
  for (const [k, v] of Object.entries(step.env!)) {
    const input = /^\$\{\{ inputs\.([\w-]+) \}\}$/.exec(v)![1]!;
    env[k] = inputs[input] ?? action.inputs[input]!.default ?? '';
  }
  writeFileSync(path.join(dir, 'out'), '');
  execFileSync('bash', ['-e', '-c', step.run!], { env, cwd: dir });
  const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
  return { calls, output: readFileSync(path.join(dir, 'out'), 'utf8') };
}

describe('action.yml', () => {
  it('is a composite action with the documented inputs', () => {
    expect(action.runs.using).toBe('composite');
    expect(Object.keys(action.inputs)).toEqual(expect.arrayContaining(['paths', 'baseline', 'fail-on', 'config']));
    for (const input of Object.values(action.inputs)) expect(input.description.length).toBeGreaterThan(10);
  });

  it('uploads the SARIF report with codeql-action/upload-sarif even when the gate fails', () => {
    const upload = action.runs.steps.find((s) => s.uses?.startsWith('github/codeql-action/upload-sarif@'))!;
    expect(upload.with!.sarif_file).toBe('${{ inputs.sarif-file }}');
    expect(upload.if).toContain('always()');
    // The job fails after the upload, in the last step.
    expect(action.runs.steps.at(-1)!.run).toContain('exit "$MCP_MIGRATE_EXIT"');
  });

  it('runs the gate with the inputs, records the exit code, and writes a Markdown summary', () => {
    const { calls, output } = runAnalyzeStep({ paths: 'src lib', baseline: '.mcp-migrate-baseline.json', 'fail-on': 'warning', config: 'ci/mcp.json' }, 1);
    expect(calls[0]).toEqual([
      '--yes', 'mcp-migrate', 'analyze', 'src', 'lib', '--baseline', '.mcp-migrate-baseline.json', '--config', 'ci/mcp.json',
      '--format', 'sarif', '--output', 'mcp-migrate.sarif', '--fail-on', 'warning',
    ]);
    expect(calls[1]).toEqual([
      '--yes', 'mcp-migrate', 'analyze', 'src', 'lib', '--baseline', '.mcp-migrate-baseline.json', '--config', 'ci/mcp.json',
      '--format', 'markdown', '--fail-on', 'none',
    ]);
    expect(output).toBe('exit-code=1\n');
  });

  it('leaves out empty inputs', () => {
    const { calls, output } = runAnalyzeStep({}, 0);
    expect(calls[0]).toEqual(['--yes', 'mcp-migrate', 'analyze', '.', '--format', 'sarif', '--output', 'mcp-migrate.sarif']);
    expect(output).toBe('exit-code=0\n');
  });
});
