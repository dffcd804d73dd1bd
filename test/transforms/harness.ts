/**
 * Runs one transform (through `planApply`, so the analyzer decides what it touches, as in `apply`) on a
 * fixture copied into a temporary directory, and returns the rewritten text.
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { planApply } from '../../src/apply/engine.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/transforms');

export interface FixtureCase {
  transform: string;
  name: string;
  dir: string;
  /** `input.ts` or `input.js` */
  input: string;
  expected: string;
  ext: string;
}

export function fixtureCases(): FixtureCase[] {
  const out: FixtureCase[] = [];
  for (const transform of readdirSync(FIXTURES).sort()) {
    for (const name of readdirSync(path.join(FIXTURES, transform)).sort()) {
      const dir = path.join(FIXTURES, transform, name);
      const input = readdirSync(dir).find((f) => f.startsWith('input.'));
      if (!input) continue;
      const ext = path.extname(input);
      out.push({ transform, name, dir, input: path.join(dir, input), expected: path.join(dir, `expected${ext}`), ext });
    }
  }
  return out;
}

/** The text `transform` makes of `file` (named `input<ext>` in a fresh directory, like the fixture). */
export async function runTransform(transform: string, file: string, ext: string): Promise<{ text: string; notes: Awaited<ReturnType<typeof planApply>>['notes'] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-transform-'));
  try {
    const target = path.join(dir, `input${ext}`);
    copyFileSync(file, target);
    const result = await planApply({ paths: [dir], cwd: dir, store: 'redis', transforms: [transform] });
    const change = result.changes.find((c) => c.file === `input${ext}`);
    return { text: change ? change.after : (await import('node:fs')).readFileSync(target, 'utf8'), notes: result.notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
