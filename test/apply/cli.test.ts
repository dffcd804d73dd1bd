/**
 * `mcp-migrate apply` from the command line (built CLI): `--list`, `--dry-run --diff` writes nothing,
 * a dirty git tree is refused without `--force`, a real run writes files and package.json and prints
 * the summary; the outcome is honest: exit 0 and "ready" only when the analysis of the rewritten code
 * finds nothing that breaks round-robin, else exit 1 with what remains (`--allow-partial`: exit 0);
 * package.json gets `@mcp-migrate/runtime` only when rewritten code imports it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { makeProject, runCli } from '../cli/helpers.js';

const fixture = (p: string) => readFileSync(new URL(`../../fixtures/transforms/${p}`, import.meta.url), 'utf8');
const SERVER = fixture('transport-registry/sdk-v1-node-http/input.ts');
/** A migratable registry, and module state about "the" client that no transform rewrites. */
const PARTLY = fixture('transport-registry/record-registry-capacity-guard/input.js');
const GLOBAL_STATE = fixture('todo-markers/global-connection-state/input.js');
/** A registry and a per-session timer (owner affinity makes it correct). */
const TIMER = fixture('transport-registry/per-session-timer-owner/input.ts');
/** A per-session timer, and a session-keyed map a route iterates (no session owns that read). */
const ITERATED = fixture('transport-registry/session-keyed-iterated-remains/input.js');
const PKG = '{\n  "name": "demo",\n  "type": "module"\n}\n';
const git = (cwd: string, ...args: string[]) => promisify(execFile)('git', ['-C', cwd, ...args]);

describe('mcp-migrate apply', () => {
  it('--list shows the transforms in the order they run', async () => {
    const r = await runCli(['apply', '--list'], { cwd: process.cwd() });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['event-store', 'task-store', 'web-transport-registry', 'transport-registry', 'session-keyed-map', 'shared-map', 'framework-sessions', 'owner-affinity', 'todo-markers']);
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
    // The runtime alone: it brings ioredis; the CLI is no dependency of the server.
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies).toEqual({ '@mcp-migrate/runtime': expect.stringMatching(/^\^/) });
    expect(forced.stdout).toMatch(/Ready for any number of replicas behind a round-robin load balancer/);
    // A second run finds nothing more to rewrite.
    const again = await runCli(['apply', '.', '--force'], { cwd: dir });
    expect(again.stdout).toMatch(/changed 0 files/);
  });

  it('exits 1 and lists what still breaks round-robin (file:line in the migrated code, rule, why); --allow-partial exits 0', async (t) => {
    const dir = await makeProject(t, { 'server.js': PARTLY, 'client-state.js': GLOBAL_STATE, 'package.json': PKG });
    const dry = await runCli(['apply', '.', '--dry-run'], { cwd: dir });
    expect(dry.code).toBe(1);
    expect(readFileSync(join(dir, 'server.js'), 'utf8')).toBe(PARTLY);
    const r = await runCli(['apply', '.', '--force'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/\[transport-registry\] `openSessions` is a SessionEntryRegistry/);
    expect(r.stdout).toMatch(/Not ready for round-robin: 1 finding of the migrated code still breaks/);
    const written = readFileSync(join(dir, 'client-state.js'), 'utf8');
    const markerLine = written.split('\n').findIndex((l) => l.includes('@mcp-migrate-todo no-global-connection-state')) + 1;
    // The line cited is the state's own line in the written file (just below its marker).
    expect(r.stdout).toMatch(new RegExp(`client-state\\.js:${markerLine + 1} +no-global-connection-state \`clientCapabilities\`: process state that requests write`));
    const partial = await runCli(['apply', '.', '--force', '--allow-partial'], { cwd: dir });
    expect(partial.code).toBe(0);
    expect(partial.stdout).toMatch(/changed 0 files/);
    expect(partial.stdout).toMatch(/Not ready for round-robin/);
  });

  it('resolves per-session state by owner affinity: the registry gets { affinity: \'owner\' }, exit 0 when nothing else remains', async (t) => {
    const dir = await makeProject(t, { 'server.ts': TIMER, 'package.json': PKG });
    const r = await runCli(['apply', '.', '--force'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const written = readFileSync(join(dir, 'server.ts'), 'utf8');
    expect(written).toContain("new SessionTransportRegistry<StreamableHTTPServerTransport>({ affinity: 'owner' })");
    expect(written).not.toContain('@mcp-migrate-todo');
    const timerLine = written.split('\n').findIndex((l) => l.includes('setInterval(')) + 1;
    expect(r.stdout).toMatch(/Resolved by owner affinity: .*1 finding of per-session state/);
    expect(r.stdout).toMatch(new RegExp(`server\\.ts:${timerLine} +no-per-session-timer \`ticker\``));
    expect(r.stdout).toMatch(/sessions end with 404/);
    expect(r.stdout).toMatch(/Ready for any number of replicas .* once each session is served by its owner replica/);
    const json = JSON.parse((await runCli(['apply', '.', '--dry-run', '--json'], { cwd: dir })).stdout) as { ready: boolean; affinity: string; owned: Array<{ ruleId: string; line: number }>; remaining: unknown[] };
    expect(json).toMatchObject({ ready: true, affinity: 'owner', remaining: [], owned: [{ ruleId: 'no-per-session-timer', line: timerLine }] });
  });

  it('keeps exit 1 for state owner affinity does not make correct (a session-keyed map a route iterates), with the JSON saying which is which', async (t) => {
    const dir = await makeProject(t, { 'server.js': ITERATED, 'package.json': PKG });
    const r = await runCli(['apply', '.', '--dry-run', '--json'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const json = JSON.parse(r.stdout) as { ready: boolean; affinity: string; owned: Array<{ ruleId: string; symbol: string }>; remaining: Array<{ ruleId: string; symbol: string }> };
    expect(json.ready).toBe(false);
    expect(json.affinity).toBe('owner');
    expect(json.owned.map((o) => o.ruleId)).toEqual(['no-per-session-timer']);
    expect(json.remaining.map((o) => [o.ruleId, o.symbol])).toEqual([['no-session-keyed-state', 'heartbeats']]);
  });

  it('adds no dependency when nothing rewritten imports the runtime (markers only)', async (t) => {
    const dir = await makeProject(t, { 'client-state.js': GLOBAL_STATE, 'package.json': PKG });
    const r = await runCli(['apply', '.', '--force'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(readFileSync(join(dir, 'client-state.js'), 'utf8')).toContain('@mcp-migrate-todo no-global-connection-state');
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe(PKG);
    expect(r.stdout).toMatch(/changed 1 file\n/);
  });

  it('rejects an unknown transform id with exit code 2', async (t) => {
    const dir = await makeProject(t, { 'server.ts': SERVER });
    const r = await runCli(['apply', '.', '--dry-run', '--transforms', 'nope'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown transform: nope/);
  });
});
