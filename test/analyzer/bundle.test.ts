/**
 * A server shipped as one bundle: `fixtures/bundle/server.ts` bundled by esbuild with the MCP SDK,
 * express and zod inside. The application's findings stay the application's; findings inside the
 * bundled SDK are attributed to `@modelcontextprotocol/sdk`, never rewritten, and do not decide the verdict.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleSegments, dependencyOf } from '../../src/analyzer/bundle.js';
import { analyze, type AnalysisResult } from '../../src/analyzer/index.js';
import { planApply } from '../../src/apply/engine.js';
import { REPO_ROOT } from '../helpers/rule-tester.js';

let dir: string;
let bundle: string;
let result: AnalysisResult;
const state = (r: AnalysisResult) => r.findings.filter((f) => f.category !== 'server-initiated-request');

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-bundle-'));
  bundle = path.join(dir, 'server.mjs');
  await build({
    entryPoints: [path.join(REPO_ROOT, 'fixtures/bundle/server.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: bundle,
    sourcemap: 'linked',
    logLevel: 'silent',
  });
  result = await analyze({ paths: [bundle], cwd: dir });
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a bundled server', () => {
  it('attributes the application\'s findings to the application', () => {
    const app = state(result).filter((f) => !f.dependency).map((f) => `${f.ruleId} ${f.symbol} ${f.fix}`);
    expect(app).toEqual([
      'no-global-connection-state currentProject manual',
      'no-session-transport-registry transports transform:transport-registry',
      'no-stateful-session-id-generator sessionIdGenerator transform:transport-registry',
    ]);
  });

  it('attributes the SDK\'s own per-session bookkeeping to the SDK, with a fix apply never claims', () => {
    const sdk = state(result).filter((f) => f.dependency);
    expect(sdk.map((f) => `${f.dependency!.name} ${f.symbol} ${f.fix}`)).toEqual(['@modelcontextprotocol/sdk _loggingLevels manual']);
    const notes = result.findings.filter((f) => f.category === 'server-initiated-request');
    expect(notes.length).toBeGreaterThan(0);
    expect(notes.every((f) => f.dependency?.name === '@modelcontextprotocol/sdk')).toBe(true);
  });

  it('decides the verdict on the application\'s state only', () => {
    expect(result.verdict.kind).toBe('owner-routing');
    expect(result.verdict.decidingFindings.map((i) => result.findings[i]!.symbol)).toEqual(['currentProject']);
  });

  it('leaves the SDK\'s own bookkeeping out of what apply says still breaks, as the verdict does', async () => {
    const plan = await planApply({ paths: [bundle], cwd: dir, store: 'redis' });
    const remaining = plan.remaining.map((r) => r.symbol);
    expect(remaining).toContain('currentProject');
    expect(plan.after.findings.some((f) => f.symbol === '_loggingLevels' && f.dependency)).toBe(true);
    expect(remaining).not.toContain('_loggingLevels');
  }, 180_000); // apply analyzes the bundle twice and rewrites it: 14–40 s on a loaded 2-core machine

  it('finds the same attribution from the source map when the bundle has no path comments', async () => {
    const stripped = path.join(dir, 'stripped.mjs');
    // Blank the path comments, keeping every line where it was so the source map still applies.
    const text = readFileSync(bundle, 'utf8').replace(/^\/\/ \S+\.(?:[cm]?[jt]s|json)$/gm, '').replace(/server\.mjs\.map/, 'stripped.mjs.map');
    writeFileSync(stripped, text);
    writeFileSync(`${stripped}.map`, readFileSync(`${bundle}.map`));
    const viaMap = await analyze({ paths: [stripped], cwd: dir });
    const rows = (r: AnalysisResult) => state(r).map((f) => `${f.symbol} ${f.dependency?.name ?? 'app'}`);
    expect(rows(viaMap)).toEqual(rows(result));
  });
});

describe('bundle segments', () => {
  it('reads module boundaries from esbuild path comments', () => {
    const text = ['// node_modules/ms/index.js', 'var a = 1;', '// src/server.ts', 'var b = 2;', ''].join('\n');
    expect(bundleSegments('x.js', text)?.map((s) => [s.source, s.dependency?.name ?? null, text.slice(s.start, s.end).split('\n')[1]])).toEqual([
      ['node_modules/ms/index.js', 'ms', 'var a = 1;'],
      ['src/server.ts', null, 'var b = 2;'],
    ]);
  });

  it('is not a bundle without third-party modules', () => {
    expect(bundleSegments('x.js', '// src/a.ts\nvar a;\n// src/b.ts\nvar b;\n')).toBeUndefined();
  });

  it('names the package from the last node_modules segment, with the version pnpm\'s layout carries', () => {
    expect(dependencyOf('../node_modules/@modelcontextprotocol/sdk/dist/esm/server/index.js')).toEqual({ name: '@modelcontextprotocol/sdk' });
    expect(dependencyOf('node_modules/.pnpm/express@4.21.2/node_modules/express/lib/router/index.js')).toEqual({ name: 'express', version: '4.21.2' });
    expect(dependencyOf('node_modules/.pnpm/@scope+pkg@1.0.0_zod@3.0.0/node_modules/@scope/pkg/index.js')).toEqual({ name: '@scope/pkg', version: '1.0.0' });
    expect(dependencyOf('src/server.ts')).toBeUndefined();
  });
});
