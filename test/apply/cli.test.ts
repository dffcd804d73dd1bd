/**
 * `mcp-migrate apply` from the command line (built CLI): `--list`, `--dry-run --diff` writes nothing,
 * a dirty git tree is refused without `--force`, a real run writes files and package.json and prints
 * the summary.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { makeProject, runCli } from '../cli/helpers.js';

const SERVER = readFileSync(new URL('../../fixtures/transforms/transport-registry/sdk-v1-node-http/input.ts', import.meta.url), 'utf8');
const git = (cwd: string, ...args: string[]) => promisify(execFile)('git', ['-C', cwd, ...args]);

describe('mcp-migrate apply', () => {
  it('--list shows the transforms in the order they run', async () => {
    const r = await runCli(['apply', '--list'], { cwd: process.cwd() });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['event-store', 'web-transport-registry', 'transport-registry', 'session-keyed-map', 'framework-sessions', 'todo-markers']);
  });

  it('--dry-run --diff prints a unified diff and writes nothing', async (t) => {
    const dir = await makeProject(t, { 'server.ts': SERVER, 'package.json': '{\n  "name": "demo",\n  "type": "module"\n}\n' });
    const r = await runCli(['apply', '.', '--dry-run', '--diff'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--- a/server.ts');
    expect(r.stdout).toContain('+const transports = new SessionTransportRegistry<StreamableHTTPServerTransport>();');
    expect(r.stdout).toContain('+    "@mcp-migrate/runtime": "^');
    expect(r.stdout).toContain('would change 1 file and package.json');
    expect(readFileSync(join(dir, 'server.ts'), 'utf8')).toBe(SERVER);
  });

  it('refuses a dirty git tree unless --force, then writes files, package.json and a summary', async (t) => {
    const dir = await makeProject(t, { 'server.ts': SERVER, 'package.json': '{\n  "name": "demo",\n  "type": "module"\n}\n' });
    await git(dir, 'init', '-q');
    const refused = await runCli(['apply', '.'], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/uncommitted changes/);
    expect(readFileSync(join(dir, 'server.ts'), 'utf8')).toBe(SERVER);
    const forced = await runCli(['apply', '.', '--force'], { cwd: dir });
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/changed 1 file and package\.json/);
    expect(forced.stdout).toMatch(/server\.ts:\d+ +\[transport-registry\]/);
    expect(readFileSync(join(dir, 'server.ts'), 'utf8')).toContain('transports.opener(openSession)');
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies).toEqual({ ioredis: expect.any(String), '@mcp-migrate/runtime': expect.stringMatching(/^\^/) });
    // A second run finds nothing more to rewrite.
    const again = await runCli(['apply', '.', '--force'], { cwd: dir });
    expect(again.stdout).toMatch(/changed 0 files/);
  });

  it('rejects an unknown transform id with exit code 2', async (t) => {
    const dir = await makeProject(t, { 'server.ts': SERVER });
    const r = await runCli(['apply', '.', '--dry-run', '--transforms', 'nope'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown transform: nope/);
  });
});
