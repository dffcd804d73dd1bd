/**
 * Whether the analyzed code itself serves MCP, so that finding nothing can mean "stateless".
 *
 * A package can hand the whole server to a dependency (`require('some-lib').startMcpServer(argv)`):
 * its files then hold no session state because they hold no MCP code at all, and the analysis, which
 * does not read `node_modules`, cannot show that the server keeps nothing per session
 * (`@playwright/mcp`: two files that call into `playwright-core`, whose bundle keeps a browser context
 * per Streamable HTTP session). The code serves MCP when a file:
 * - imports or requires the MCP SDK (`@modelcontextprotocol/*`), or a framework whose sessions the
 *   analyzer models (`src/analyzer/frameworks.ts`: it reports their sessionful modes);
 * - is a file of the SDK, or imports one by a relative path (the SDK's own example servers);
 * - or names an MCP request method as a string (`"initialize"`, `"tools/list"`, …: the method a
 *   JSON-RPC dispatcher answers, and the SDK's schemas in a bundle that holds it).
 */
import path from 'node:path';
import type { ts } from 'ts-morph';
import { isSdkFile } from './sdk-types.js';

/** Module specifiers of the MCP SDK and of the frameworks `frameworks.ts` models (their package roots). */
const MCP_MODULE = /(["'`])(@modelcontextprotocol\/[\w.-]+|fastmcp|mcp-use|fastify-mcp|mcp-framework|agents)(\/[^"'`\s]*)?\1/;
/** MCP request methods a server answers (MCP 2025-06-18 "Lifecycle", "Tools", "Resources", "Prompts"). */
const MCP_METHOD = /(["'`])(initialize|tools\/list|tools\/call|resources\/list|resources\/read|prompts\/list|prompts\/get)\1/;
/** `from 'x'`, `require('x')`, `import('x')`: the module specifier. */
const SPECIFIER = /(?:\bfrom\s*|\brequire\(\s*|\bimport\(\s*)(["'])([^"'\s]+)\1/g;

export interface McpServing {
  /** Some analyzed file holds MCP server code (see the module comment). */
  serves: boolean;
  /** When it does not: the packages its files import (bare specifiers, `node:` and relative ones left out), first five. */
  imports: string[];
}

/** Whether the analyzed files serve MCP themselves, and else what they import. */
export function servesMcp(all: readonly ts.SourceFile[]): McpServing {
  // A declaration file serves nothing (`import type { Server } from '@modelcontextprotocol/sdk/…'` in an `index.d.ts`).
  const files = all.filter((f) => !f.isDeclarationFile);
  if (files.some((f) => MCP_MODULE.test(f.text) || MCP_METHOD.test(f.text) || isSdkFile(f.fileName))) return { serves: true, imports: [] };
  const imports = new Set<string>();
  for (const f of files) {
    for (const m of f.text.matchAll(SPECIFIER)) {
      const spec = m[2]!;
      if (spec.startsWith('.') || spec.startsWith('/')) {
        if (isSdkFile(path.resolve(path.dirname(f.fileName), spec))) return { serves: true, imports: [] };
      } else if (!spec.startsWith('node:')) imports.add(spec);
    }
  }
  return { serves: false, imports: [...imports].slice(0, 5) };
}
