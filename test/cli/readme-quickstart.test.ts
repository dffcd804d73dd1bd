/**
 * The README's first command, as a new user runs it after `npm ci` (whose `prepare` builds the CLI):
 * `npx mcp-migrate analyze node_modules/@modelcontextprotocol/server-everything/dist`. npx runs the
 * package's own `bin`, which must therefore be executable: tsc writes files without the executable bit,
 * so the build sets it (a clean clone answered "mcp-migrate: Permission denied" before).
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { CLI_ENTRY, REPO_ROOT } from '../helpers/index.js';

/** The command after `npm ci &&` on the README's first command line. */
function quickstartCommand(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith('npm ci && npx mcp-migrate '));
  if (!line) throw new Error("README.md has no 'npm ci && npx mcp-migrate …' line");
  return line.replace(/^npm ci && /, '').replace(/\s+#.*$/, '').trim().split(/\s+/);
}

it('the built CLI is executable, so `npx mcp-migrate` can run it', () => {
  expect(statSync(CLI_ENTRY).mode & 0o111).not.toBe(0);
});

it("runs the README's first command: a verdict on server-everything, exit 1 (it keeps session state)", async () => {
  const [cmd, ...args] = quickstartCommand();
  expect(cmd).toBe('npx');
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(cmd!, ['--no-install', ...args], { cwd: REPO_ROOT, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
  expect(stderr).not.toMatch(/Permission denied/);
  expect(stdout).toMatch(/^Verdict: /m);
  expect(code, stderr).toBe(1);
}, 150_000);
