/**
 * Every `fixtures/transforms/<id>/<case>/{input,expected}` pair: the transform turns the input into
 * the expected text exactly (cases named `*-no-change` expect the input unchanged), and running it
 * again on the expected text changes nothing (idempotency, no duplicate markers).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { transforms } from '../../transforms/index.js';
import { fixtureCases, runTransform } from './harness.js';

const cases = fixtureCases();

describe('transform fixtures', () => {
  it('cover every transform, with a no-change case for each rewriting one', () => {
    const ids = new Set(cases.map((c) => c.transform));
    for (const t of transforms) expect(ids.has(t.id), t.id).toBe(true);
    for (const t of transforms.filter((x) => x.id !== 'todo-markers')) {
      expect(cases.some((c) => c.transform === t.id && c.name.endsWith('no-change')), t.id).toBe(true);
    }
  });

  it.each(cases.map((c) => [`${c.transform}/${c.name}`, c] as const))('%s', async (_name, c) => {
    const input = readFileSync(c.input, 'utf8');
    const expected = readFileSync(c.expected, 'utf8');
    if (c.name.endsWith('no-change')) expect(expected).toBe(input);
    else expect(expected).not.toBe(input);
    const { text } = await runTransform(c.transform, c.input, c.ext);
    expect(text).toBe(expected);
    // Idempotent: the expected output is a fixed point.
    const again = await runTransform(c.transform, c.expected, c.ext);
    expect(again.text).toBe(expected);
  });

  it('every transform is idempotent on the full pipeline too (all transforms on every expected output)', async () => {
    for (const c of cases) {
      const all = await runAll(c.expected, c.ext);
      const twice = await runAllText(all, c.ext);
      expect(twice, `${c.transform}/${c.name}`).toBe(all);
    }
  });
});

async function runAll(file: string, ext: string): Promise<string> {
  return await runAllText(readFileSync(file, 'utf8'), ext);
}

async function runAllText(text: string, ext: string): Promise<string> {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { planApply } = await import('../../src/apply/engine.js');
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-pipeline-'));
  try {
    writeFileSync(path.join(dir, `input${ext}`), text);
    const r = await planApply({ paths: [dir], cwd: dir, store: 'redis' });
    return r.changes[0]?.after ?? text;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
