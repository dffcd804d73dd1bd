import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

describe.concurrent('mcp-migrate --help', () => {
  it('analyze --help documents every option, its choices and defaults, examples and exit codes', async () => {
    const run = await runCli(['analyze', '--help'], { cwd: tmpdir() });
    expect(run.code).toBe(0);
    const help = run.stdout;
    expect(help).toContain('mcp-migrate analyze [paths..]');
    for (const option of ['paths', '-f, --format', '-o, --output', '--fail-on', '-c, --config', '--baseline', '--write-baseline', '--report-unused-suppressions', '--color', '-h, --help', '--version']) {
      expect(help).toContain(option);
    }
    expect(help).toContain('--no-color');
    expect(help).toContain('[choices: "stylish", "json", "sarif", "github", "markdown"] [default: "stylish"]');
    expect(help).toContain('[choices: "error", "warning", "note", "none"] [default: config failOn, else "error"]');
    expect(help).toContain('NO_COLOR');
    expect(help).toMatch(/Examples:[\s\S]*--format sarif --output/);
    expect(help).toMatch(/Exit codes: 0 .*; 1 .*; 2 usage error/);
    // Every option line carries a description (no bare flags).
    const optionLines = help.split('\n').filter((l) => /^\s+(-\w, )?--[\w-]+\s/.test(l));
    for (const line of optionLines) expect(line.trim().split(/\s{2,}/).length).toBeGreaterThan(1);
  });

  it('the top-level --help lists the analyze command with a description', async () => {
    const run = await runCli(['--help'], { cwd: tmpdir() });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/mcp-migrate analyze \[paths\.\.\]\s+Find in-process MCP session state/);
  });
});
