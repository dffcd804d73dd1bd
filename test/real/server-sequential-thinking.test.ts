/**
 * The analyzer on `@modelcontextprotocol/server-sequential-thinking@2026.8.31` (pinned in devDependencies),
 * a stdio server: one module-level `SequentialThinkingServer` whose `processThought` (the
 * `sequentialthinking` tool) appends to its `thoughtHistory` and `branches` fields. Behind
 * `mcp-migrate proxy` each session gets its own child process per replica, so that history is the
 * session's and no handshake replay rebuilds it. Findings checked by hand against the package's `dist/`.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze, type AnalysisResult } from '../../src/analyzer/index.js';

const dist = path.resolve('node_modules/@modelcontextprotocol/server-sequential-thinking/dist');
const row = (f: AnalysisResult['findings'][number]) => `${f.file}:${f.line} ${f.ruleId} ${f.symbol} ${f.fix}`;

describe('server-sequential-thinking (shipped JavaScript, stdio)', async () => {
  const result = await analyze({ paths: [dist], cwd: process.cwd() });

  it('finds the thought history the tool writes into the module-level instance', () => {
    expect(result.findings.map(row)).toEqual([
      'index.js:23 no-global-connection-state thinkingServer manual',
      'lib.js:3 no-global-connection-state SequentialThinkingServer.thoughtHistory manual',
      'lib.js:4 no-global-connection-state SequentialThinkingServer.branches manual',
    ]);
  });

  it('needs owner routing, decided by that state', () => {
    expect(result.verdict.kind).toBe('owner-routing');
    const deciding = result.verdict.decidingFindings.map((i) => result.findings[i]!.symbol).sort();
    expect(deciding).toEqual(['SequentialThinkingServer.branches', 'SequentialThinkingServer.thoughtHistory', 'thinkingServer']);
  });

  it('says why a stdio process is the session', () => {
    const f = result.findings.find((x) => x.symbol === 'thinkingServer')!;
    expect(f.message).toMatch(/stdio server the process is the session/);
    expect(f.message).toMatch(/`sequentialthinking`|`registerTool`/);
    expect(f.message).toMatch(/mcp-migrate proxy --affinity owner/);
  });
});
