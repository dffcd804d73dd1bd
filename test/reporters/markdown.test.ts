import { describe, expect, it } from 'vitest';
import { reporters } from '../../src/reporters/index.js';
import { cell, markdown, MAX_ROWS } from '../../src/reporters/markdown.js';
import { bundledResult, ctx, emptyResult, makeResult, shuffled } from './fixture.js';

describe('markdown reporter', () => {
  it('is registered as --format markdown', () => {
    expect(reporters.markdown).toBe(markdown);
  });

  it('renders the verdict headline, counts, a sorted table linking rule docs, the verdict and the warnings', () => {
    const text = markdown(shuffled(makeResult()), ctx());
    const lines = text.split('\n');
    expect(lines[0]).toBe('## ❌ mcp-migrate: needs owner routing (`mcp-migrate proxy` with session-owner routing) or a manual rewrite');
    expect(lines[2]).toBe('**3 findings** (1 error, 1 warning, 1 note) in 2 files · 5 files analyzed');
    expect(lines[4]).toBe('| Severity | Rule | Location | Symbol | Message | Fix |');
    expect(lines[6]).toBe(
      '| 🔴 error | [`session-transport-map`](https://example.test/docs/rules/session-transport-map.md) | `src/server.ts:3:7` | `transports` | ' +
        '`transports` keeps one transport per session in process memory; another replica cannot find it. | ' +
        'rewritable: run `mcp-migrate apply` (transform `externalize-transport-map`) |',
    );
    expect(lines[7]).toMatch(/^\| 🟠 warning \| \[`session-keyed-map`\]/);
    expect(lines[8]).toMatch(/^\| 🔵 note \| .* \| `src\/tools\/ask user\.ts:40:5` \|/);
    expect(text).toContain('**Verdict:** Needs owner routing');
    expect(text).toMatch(/<details><summary>1 warning<\/summary>\n\n- `src\/broken\.ts`: does not parse; skipped\n\n<\/details>$/);
  });

  it('keeps table cells on one line with pipes escaped and HTML inert outside code', () => {
    expect(cell('a | b\nnext <b>x</b> & `Map<K, V>`')).toBe('a \\| b next &lt;b&gt;x&lt;/b&gt; &amp; `Map<K, V>`');
    const result = makeResult();
    result.findings = [{ ...result.findings[0]!, symbol: 'a|b', message: 'x|y' }];
    const row = markdown(result, ctx()).split('\n').find((l) => l.startsWith('| 🔴'))!;
    expect(row).toContain('`a\\|b`');
    expect(row).toContain('x\\|y');
    expect(row.split(/(?<!\\)\|/)).toHaveLength(8);
  });

  it('reports a clean gate run with what was suppressed, baselined and is stale', () => {
    const result = emptyResult();
    result.gate = { suppressed: 2, baselined: 5, staleBaselineEntries: 1 };
    expect(markdown(result, ctx())).toBe(
      [
        '## ✅ mcp-migrate: already stateless',
        '',
        '**No new in-process session state** · 4 files analyzed · 2 suppressed inline · 5 known from the baseline',
        '',
        '> 1 baseline entry no longer occurs; rewrite the baseline.',
        '',
        '**Verdict:** No per-session state is held in process.',
      ].join('\n'),
    );
  });

  it(`lists at most ${MAX_ROWS} rows`, () => {
    const result = makeResult();
    const f = result.findings[0]!;
    result.findings = Array.from({ length: MAX_ROWS + 5 }, (_, i) => ({ ...f, line: i + 1 }));
    const text = markdown(result, ctx());
    expect(text.split('\n').filter((l) => l.startsWith('| 🔴'))).toHaveLength(MAX_ROWS);
    expect(text).toContain('…and 5 more; see the full report.');
  });

  it('says in the message cell which bundled dependency the finding is in', () => {
    const row = markdown(bundledResult(), ctx()).split('\n').find((l) => l.includes('`sessions`'))!;
    expect(row).toContain('In the bundled dependency `@acme/mcp-framework@2.1.0`, not in the application');
  });
});
