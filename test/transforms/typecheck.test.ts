/**
 * The TypeScript outputs of the transform fixtures compile: `tsc --noEmit --strict` over every
 * `expected.ts` (and every `.ts` of an `expected/` tree), with `@mcp-migrate/runtime` mapped to `packages/runtime/src/index.ts` (as an
 * installed `@mcp-migrate/runtime` resolves it) and the SDK v1/v2 packages from this repository's node_modules.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/everything.js';
import { fixtureCases, readTree } from './harness.js';

it('every expected.ts type-checks against @mcp-migrate/runtime and the SDK', async () => {
  const files = fixtureCases().flatMap((c) =>
    c.ext === '.ts' ? [c.expected] : c.ext === '' ? [...readTree(c.expected, '').keys()].filter((f) => /\.ts$/.test(f)).map((f) => path.join(c.expected, f)) : [],
  );
  expect(files.length).toBeGreaterThanOrEqual(6);
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-typecheck-'));
  try {
    const tsconfig = path.join(dir, 'tsconfig.json');
    writeFileSync(
      tsconfig,
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'DOM'],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
          paths: { '@mcp-migrate/runtime': [path.join(REPO_ROOT, 'packages', 'runtime', 'src', 'index.ts')] },
        },
        files,
      }),
    );
    const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = await promisify(execFile)(process.execPath, [tsc, '-p', tsconfig]).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? 'failed', failed: true }));
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
