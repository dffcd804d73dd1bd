import { describe, expect, it } from 'vitest';
import { escapeData, escapeProperty, github } from '../../src/reporters/github.js';
import { reporters } from '../../src/reporters/index.js';
import { bundledResult, ctx, emptyResult, makeResult, shuffled } from './fixture.js';

describe('github reporter', () => {
  it('is registered as --format github', () => {
    expect(reporters.github).toBe(github);
  });

  it('escapes %, CR and LF in messages, and also : and , in properties (workflow-command rules)', () => {
    expect(escapeData('100% done\r\nnext: a, b')).toBe('100%25 done%0D%0Anext: a, b');
    expect(escapeProperty('a:b,c%d\ne')).toBe('a%3Ab%2Cc%25d%0Ae');
  });

  it('prints one annotation per finding, sorted, with position, title and the fix; severity picks the command', () => {
    const lines = github(shuffled(makeResult()), ctx()).split('\n');
    expect(lines[0]).toBe(
      '::error file=src/server.ts,line=3,col=7,endLine=3,endColumn=17,title=mcp-migrate session-transport-map::' +
        '`transports` keeps one transport per session in process memory; another replica cannot find it.' +
        '%0AFix: rewritable: run `mcp-migrate apply` (transform `externalize-transport-map`)',
    );
    expect(lines[1]).toMatch(/^::warning file=src\/server\.ts,line=12,col=14,endLine=12,endColumn=22,title=mcp-migrate session-keyed-map::/);
    expect(lines[2]).toMatch(/^::notice file=src\/tools\/ask user\.ts,line=40,col=5,endLine=42,endColumn=6,title=mcp-migrate server-initiated-request::/);
    expect(lines[3]).toBe('::warning file=src/broken.ts,title=mcp-migrate::does not parse; skipped');
    expect(lines[4]).toBe('mcp-migrate: 3 findings in 5 files; verdict: needs owner routing (`mcp-migrate proxy` with session-owner routing) or a manual rewrite');
    expect(lines).toHaveLength(5);
  });

  it('escapes file names and messages, and carries the line of a warning', () => {
    const result = makeResult();
    result.findings = [{ ...result.findings[0]!, file: 'src/a,b:c.ts', message: 'first line\nsecond 50%' }];
    result.warnings = [{ file: 'src/x.ts', line: 4, message: 'unused suppression of r: no such finding on line 5; remove it' }];
    const lines = github(result, ctx()).split('\n');
    expect(lines[0]).toMatch(/^::error file=src\/a%2Cb%3Ac\.ts,line=3,.*::first line%0Asecond 50%25%0AFix: /);
    expect(lines[1]).toBe('::warning file=src/x.ts,line=4,title=mcp-migrate::unused suppression of r: no such finding on line 5; remove it');
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('says what the gate left out, and prints only the summary line for a clean result', () => {
    const result = emptyResult();
    expect(github(result, ctx())).toBe('mcp-migrate: no findings in 4 files; verdict: already stateless');
    result.gate = { suppressed: 1, baselined: 3, staleBaselineEntries: 0 };
    expect(github(result, ctx())).toBe('mcp-migrate: no findings in 4 files (1 suppressed, 3 in the baseline); verdict: already stateless');
  });

  it('says in the annotation which bundled dependency the finding is in', () => {
    const lines = github(bundledResult(), ctx()).split('\n');
    expect(lines.find((l) => l.includes('line=12'))).toContain('%0AIn the bundled dependency `@acme/mcp-framework@2.1.0`, not in the application');
    expect(lines.find((l) => l.includes('line=40'))).not.toContain('bundled dependency');
  });
});
