import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze, UsageError } from '../../src/analyzer/index.js';
import { tempTrees } from '../helpers/temp-tree.js';

const tree = tempTrees('mcpm-project');

const registry = `
const sessions = new Map<string, { sessionId: string }>();
export function track(req: { headers: Record<string, string | undefined> }) {
  const sid = req.headers['mcp-session-id'];
  if (sid) sessions.set(sid, { sessionId: sid });
}
`;

describe('project loading', () => {
  it('follows the project references of a solution-style tsconfig (monorepos)', async () => {
    const root = tree({
      'tsconfig.json': JSON.stringify({ files: [], references: [{ path: './packages/server' }] }),
      'packages/server/tsconfig.json': JSON.stringify({ compilerOptions: { strict: true }, include: ['src'] }),
      'packages/server/src/sessions.ts': registry,
    });
    const result = await analyze({ paths: [root], cwd: root });
    expect(result.summary.files).toBe(1);
    expect(result.findings.map((f) => `${f.file}:${f.line} ${f.symbol}`)).toEqual(['packages/server/src/sessions.ts:2 sessions']);
  });

  it('skips a file that does not parse with a warning and analyzes the rest', async () => {
    const root = tree({ 'good.ts': registry, 'broken.ts': 'export const x = {;\n' });
    const result = await analyze({ paths: [root], cwd: root });
    expect(result.summary.files).toBe(1);
    expect(result.warnings).toEqual([expect.objectContaining({ file: 'broken.ts', message: expect.stringMatching(/does not parse/) })]);
    expect(result.findings).toHaveLength(1);
  });

  it('skips node_modules, declaration and test files unless asked for a path inside node_modules', async () => {
    const root = tree({
      'src/a.ts': registry,
      'src/a.test.ts': registry,
      'src/types.d.ts': 'export declare const sessions: Map<string, string>;',
      'node_modules/dep/index.js': registry.replace(/<[^>]+>/g, '').replace(': { headers: Record }', ''),
    });
    const result = await analyze({ paths: [root], cwd: root });
    expect(result.findings.map((f) => f.file)).toEqual(['src/a.ts']);
    const inside = await analyze({ paths: [path.join(root, 'node_modules/dep')], cwd: root });
    expect(inside.summary.files).toBe(1);
  });

  it('resolves Deno import maps: deno.json `imports`, an `importMap` file, scopes and `npm:` specifiers', async () => {
    // The registry is declared in main.ts and filled only in the module reached through the map.
    const main = (spec: string) => `import { track } from '${spec}';
const sessions = new Map();
export function handle(req: { headers: Record<string, string | undefined> }) {
  track(sessions, req);
}
`;
    const lib = `export function track(sessions: Map<string, unknown>, req: { headers: Record<string, string | undefined> }) {
  const sid = req.headers['mcp-session-id'];
  if (sid) sessions.set(sid, { at: Date.now() });
}
`;
    const found = async (files: Record<string, string>) => {
      const root = tree(files);
      const result = await analyze({ paths: [root], cwd: root });
      return result.findings.map((f) => `${f.file}:${f.line} ${f.symbol}`);
    };
    expect(await found({ 'deno.json': JSON.stringify({ imports: { '$/': './src/' } }), 'main.ts': main('$/lib/track.ts'), 'src/lib/track.ts': lib })).toEqual(['main.ts:2 sessions']);
    expect(
      await found({
        'deno.jsonc': '{ // comments and trailing commas, as deno.jsonc allows\n "importMap": "./maps/import_map.json",\n}',
        'maps/import_map.json': JSON.stringify({ imports: { track: '../vendor/other.ts' }, scopes: { '../app/': { track: '../lib/track.ts' } } }),
        'app/main.ts': main('track'),
        'lib/track.ts': lib,
        'vendor/other.ts': 'export function track() {}\n',
      }),
    ).toEqual(['app/main.ts:2 sessions']);
    // Without a Deno configuration the same specifier stays unresolved: nothing crosses the module.
    expect(await found({ 'main.ts': main('$/lib/track.ts'), 'src/lib/track.ts': lib })).toEqual([]);
  });

  it('analyzes the entry points a tsconfig leaves out that import its files (examples), not the rest', async () => {
    const root = tree({
      'tsconfig.json': JSON.stringify({ compilerOptions: { strict: true }, include: ['src/**/*.ts'] }),
      'src/index.ts': 'export function track(sessions: Map<string, unknown>, sid: string) {\n  sessions.set(sid, {});\n}\n',
      'examples/server.ts': `import { track } from '../src';\nconst sessions = new Map();\nexport function handle(req: { headers: Record<string, string | undefined> }) {\n  const sid = req.headers['mcp-session-id'];\n  if (sid) track(sessions, sid);\n}\n`,
      'scripts/unrelated.ts': registry,
    });
    const result = await analyze({ paths: [root], cwd: root });
    expect(result.findings.map((f) => `${f.file}:${f.line} ${f.symbol}`)).toEqual(['examples/server.ts:2 sessions']);
  });

  it('rejects a missing path and a tree without sources with a UsageError', async () => {
    const root = tree({ 'README.md': '# nothing here' });
    await expect(analyze({ paths: [path.join(root, 'nope')], cwd: root })).rejects.toBeInstanceOf(UsageError);
    await expect(analyze({ paths: [root], cwd: root })).rejects.toThrow(/no source files/);
  });
});
