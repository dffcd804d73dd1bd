import { describe, expect, it } from 'vitest';
import { stylish } from '../../src/reporters/stylish.js';
import { bundledResult, ctx, emptyResult, makeResult, shuffled } from './fixture.js';

 
const ANSI = /\u001b\[\d+(;\d+)*m/;

describe('stylish reporter', () => {
  it('has no ANSI escape codes without colour and some with colour', () => {
    expect(stylish(makeResult(), ctx({ color: false }))).not.toMatch(ANSI);
    const coloured = stylish(makeResult(), ctx({ color: true }));
    expect(coloured).toMatch(ANSI);
    // Colour changes styling only, never the text.
     
    expect(coloured.replace(/\u001b\[\d+(;\d+)*m/g, '')).toBe(stylish(makeResult(), ctx({ color: false })));
  });

  it('groups findings under one header per file, files in order', () => {
    const lines = stylish(makeResult(), ctx()).split('\n');
    const server = lines.indexOf('src/server.ts');
    const tools = lines.indexOf('src/tools/ask user.ts');
    expect(server).toBeGreaterThanOrEqual(0);
    expect(tools).toBeGreaterThan(server);
    expect(lines.filter((l) => l === 'src/server.ts')).toHaveLength(1);
    // Both server.ts findings come between its header and the next file's header.
    const between = lines.slice(server + 1, tools).join('\n');
    expect(between).toContain('session-transport-map');
    expect(between).toContain('session-keyed-map');
    expect(between).not.toContain('server-initiated-request');
  });

  it('prints line:col, severity, message and rule id on one line, then the fix', () => {
    const lines = stylish(makeResult(), ctx()).split('\n');
    const i = lines.findIndex((l) => l.includes('session-transport-map'));
    expect(lines[i]).toMatch(/^\s+3:7\s+error\s+`transports` keeps one transport .* replica cannot find it\.\s+session-transport-map$/);
    expect(lines[i + 1]).toMatch(/^\s+fix: rewritable: run `mcp-migrate apply` \(transform `externalize-transport-map`\)$/);
    const note = lines.findIndex((l) => l.includes('server-initiated-request'));
    expect(lines[note]).toMatch(/^\s+40:5\s+note\s+/);
    expect(lines[note + 1]).toContain('fix: manual');
    // Columns line up: the message starts at the same offset on every finding line.
    const starts = lines.filter((l) => /^\s+\d+:\d+\s/.test(l)).map((l) => l.search(/`/));
    expect(new Set(starts).size).toBe(1);
  });

  it('summarises files and findings by severity and category, and ends with the verdict', () => {
    const out = stylish(makeResult(), ctx());
    expect(out).toContain('3 findings in 2 files (1 error, 1 warning, 1 note); 5 files analyzed');
    expect(out).toContain('by category: session-registry 1, session-keyed-state 1, server-initiated-request 1');
    const tail = out.trimEnd().split('\n').slice(-2);
    expect(tail[0]).toBe('Verdict: needs owner routing (`mcp-migrate proxy` with session-owner routing) or a manual rewrite');
    expect(tail[1]).toBe('  Needs owner routing: `elicitInput` waits for a response only this replica can receive.');
  });

  it('does not call a gated run clean: says what the baseline and suppressions left out', () => {
    const clean = emptyResult();
    clean.gate = { suppressed: 1, baselined: 3, staleBaselineEntries: 2 };
    const out = stylish(clean, ctx());
    expect(out).toContain('No new in-process session state (3 known from the baseline, 1 suppressed inline, 4 files analyzed).');
    expect(out).not.toContain('No in-process session state found');
    expect(out).toContain('2 baseline entries no longer occur; rewrite the baseline.');
    const found = makeResult();
    found.gate = { suppressed: 0, baselined: 1, staleBaselineEntries: 0 };
    const withFindings = stylish(found, ctx());
    expect(withFindings).toContain('not reported: 1 known from the baseline');
    expect(withFindings).not.toContain('suppressed inline');
    expect(withFindings).not.toContain('no longer occur');
  });

  it('says so when nothing is found', () => {
    const out = stylish(emptyResult(), ctx());
    expect(out).toContain('No in-process session state found (4 files analyzed).');
    expect(out).not.toContain('fix:');
    expect(out.split('\n').at(-2)).toBe('Verdict: already stateless');
  });

  it('is deterministic whatever the order of the findings', () => {
    expect(stylish(shuffled(makeResult()), ctx())).toBe(stylish(makeResult(), ctx()));
  });

  it('names the bundled dependency a finding is in, with its version when known', () => {
    const out = stylish(bundledResult(), ctx());
    expect(out).toContain('dependency: @acme/mcp-framework@2.1.0 (bundled third-party code; apply leaves it unchanged)');
    expect(out).toContain('dependency: mcp-router (bundled');
    expect(stylish(makeResult(), ctx())).not.toContain('dependency:');
  });
});
