/**
 * The analyzer on `@modelcontextprotocol/server-memory@2026.8.31` (pinned in devDependencies), a stdio
 * server. Its tools load the knowledge graph from a file at a path fixed at startup, change it and write
 * it back: the graph lives on the disk of the replica that ran the tool, so a session whose next request
 * reaches another replica finds it empty. Its `resources/subscribe` handler fills a module-level Set,
 * which `mcp-migrate proxy` rebuilds by replaying the subscription into each session's own process.
 * Findings checked by hand against the package's `dist/index.js`.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze, type AnalysisResult } from '../../src/analyzer/index.js';

const dist = path.resolve('node_modules/@modelcontextprotocol/server-memory/dist');
const row = (f: AnalysisResult['findings'][number]) => `${f.file}:${f.line} ${f.ruleId} ${f.symbol} ${f.fix}`;

describe('server-memory (shipped JavaScript, stdio)', async () => {
  const result = await analyze({ paths: [dist], cwd: process.cwd() });

  it('finds the graph file the tools rewrite and the subscriptions the proxy replays', () => {
    expect(result.findings.map(row)).toEqual([
      // saveGraph: fs.rename(tempFilePath, this.memoryFilePath), read back by loadGraph
      'index.js:109 no-global-connection-state KnowledgeGraphManager.memoryFilePath manual',
      // const resourceSubscribers = new Set(), written only by resources/subscribe and unsubscribe
      'index.js:229 no-global-connection-state resourceSubscribers proxy',
    ]);
  });

  it('needs owner routing, decided by the graph file', () => {
    expect(result.verdict.kind).toBe('owner-routing');
    expect(result.verdict.decidingFindings.map((i) => result.findings[i]!.symbol)).toEqual(['KnowledgeGraphManager.memoryFilePath']);
  });

  it('names the tools that write the file and what to do', () => {
    const f = result.findings.find((x) => x.fix === 'manual')!;
    expect(f.message).toMatch(/replica's disk/);
    expect(f.message).toMatch(/shared store|every replica mounts/);
    expect(f.message).toMatch(/--affinity owner/);
  });
});
