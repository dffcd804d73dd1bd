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

  it('rejects a missing path and a tree without sources with a UsageError', async () => {
    const root = tree({ 'README.md': '# nothing here' });
    await expect(analyze({ paths: [path.join(root, 'nope')], cwd: root })).rejects.toBeInstanceOf(UsageError);
    await expect(analyze({ paths: [root], cwd: root })).rejects.toThrow(/no source files/);
  });
});
