/**
 * The verdict when the analysis finds nothing: `stateless` only for code that serves MCP itself
 * (`src/analyzer/serves-mcp.ts`). Code that hands the whole server to a dependency the analysis does
 * not read (`@playwright/mcp`'s two files, which call into `playwright-core`) gets `owner-routing`
 * with no deciding finding, and `apply` exits 1 on it (test/integration/apply-stacks.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analyzer/index.js';
import { tempTrees } from '../helpers/temp-tree.js';

const tree = tempTrees('mcpm-serves');

const STATELESS_SDK = `import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import http from 'node:http';
http.createServer(async (req, res) => {
  const server = new McpServer({ name: 's', version: '1.0.0' });
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}).listen(3000);
`;

describe('the verdict of an analysis that finds nothing', () => {
  it('is stateless for a server whose own code serves MCP (a stateless SDK server)', async () => {
    const root = tree({ 'server.mjs': STATELESS_SDK });
    const r = await analyze({ paths: [root], cwd: root });
    expect(r.findings).toEqual([]);
    expect(r.verdict.kind).toBe('stateless');
  });

  it('is stateless for a hand-written JSON-RPC dispatcher that answers MCP methods and keeps nothing', async () => {
    const root = tree({ 'server.js': `module.exports = (msg) => msg.method === 'tools/list' ? { tools: [] } : msg.method === 'initialize' ? { protocolVersion: '2025-06-18' } : null;\n` });
    const r = await analyze({ paths: [root], cwd: root });
    expect(r.verdict.kind).toBe('stateless');
  });

  it('is not stateless for code that hands the server to a dependency: owner-routing, no deciding finding, the imports named', async () => {
    const root = tree({
      'cli.js': `const { tools } = require('some-browser-lib/lib/bundle');\nconst { program } = require('some-cli-lib');\ntools.decorateServerCommand(program);\nvoid program.parseAsync(process.argv);\n`,
      'index.d.ts': `import type { Server } from '@modelcontextprotocol/sdk/server/index.js';\nexport declare function createConnection(): Promise<Server>;\n`,
    });
    const r = await analyze({ paths: [root], cwd: root });
    expect(r.findings).toEqual([]);
    expect(r.verdict.kind).toBe('owner-routing');
    expect(r.verdict.decidingFindings).toEqual([]);
    expect(r.verdict.summary).toMatch(/no MCP server code.*`some-browser-lib\/lib\/bundle`, `some-cli-lib`/);
  });
});
