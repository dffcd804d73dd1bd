/**
 * Every `fixtures/transforms/<id>/<case>/` pair (`input.<ext>`/`expected.<ext>`, or `input/`/`expected/`
 * trees): the transform turns the input into the expected text exactly (cases named `*-no-change`
 * expect the input unchanged), and running it again on the expected text changes nothing
 * (idempotency, no duplicate markers).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planApply } from '../../src/apply/engine.js';
import { transforms } from '../../transforms/index.js';
import { FIXTURES, fixtureCases, readTree, runTransform } from './harness.js';

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
    const input = readTree(c.input, c.ext);
    const expected = readTree(c.expected, c.ext);
    if (c.name.endsWith('no-change')) expect(expected).toEqual(input);
    else expect(expected).not.toEqual(input);
    expect(await runTransform(c.transform, c.input, c.ext, { findings: c.findings })).toEqual(expected);
    // Idempotent: the expected output is a fixed point (synthetic findings are positioned in the input, so
    // only a no-change case, whose expected text is its input, gets them again).
    expect(await runTransform(c.transform, c.expected, c.ext, { findings: c.name.endsWith('no-change') ? c.findings : undefined })).toEqual(expected);
  });

  // One test per case: each runs every transform twice, which is a few seconds of analysis on a loaded machine.
  it.each(cases.map((c) => [`${c.transform}/${c.name}`, c] as const))('the full pipeline is idempotent on %s (all transforms, twice)', async (_, c) => {
    const once = await runAll(readTree(c.expected, c.ext));
    expect(await runAll(once)).toEqual(once);
  });

  it('event-store: a server file gets the same text whether it or the folder around it (with the store class) is analyzed', async () => {
    const tree = path.join(FIXTURES, 'event-store', 'class-shared-across-files', 'input');
    const whole = await runTransform('event-store', tree, '');
    const one = await runTransform('event-store', tree, '', { analyzed: ['server/streamable.js'] });
    expect(one.get('server/streamable.js')).toBe(whole.get('server/streamable.js'));
    expect(one.get('server/streamable.js')).toContain('createEventStore()');
  });
});

/** All transforms (`planApply`) on a tree of files; returns the tree after. */
async function runAll(files: Map<string, string>): Promise<Map<string, string>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-pipeline-'));
  try {
    for (const [rel, text] of files) {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    }
    const r = await planApply({ paths: [dir], cwd: dir, store: 'redis' });
    const out = new Map(files);
    for (const c of r.changes) out.set(path.relative(dir, c.absolute).split(path.sep).join('/'), c.after);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
