/**
 * Helpers for CLI tests: small fixture projects in temporary directories (removed when the test
 * finishes) and a runner for the built CLI (`dist/src/cli/index.js`; `npm test` builds it first).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'vitest';
import { assertCliBuilt, CLI_ENTRY } from '../helpers/proxy.js';

assertCliBuilt();

/**
 * Writes `files` (relative POSIX path → content) into a fresh temporary directory and returns its
 * absolute path. The directory is removed when the test owning `test` (its context) finishes; the
 * context's own `onTestFinished` is used because the CLI tests run concurrently.
 */
export async function makeProject(test: Pick<TestContext, 'onTestFinished'>, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-migrate-cli-'));
  test.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content, 'utf8');
  }
  return dir;
}

export interface CliRun {
  /** Process exit code. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node dist/src/cli/index.js ...args` in `cwd` and resolves with its exit code and output
 * (never rejects on a non-zero exit). Colour-related variables are removed from the environment
 * unless given in `env`, so results do not depend on the developer's shell.
 */
export function runCli(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['NO_COLOR', 'FORCE_COLOR', 'CI']) delete env[key];
  Object.assign(env, options.env);
  return new Promise((done, fail) => {
    execFile(process.execPath, [CLI_ENTRY, ...args], { cwd: options.cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        fail(err);
        return;
      }
      done({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** A Streamable HTTP server in stateless mode: no findings. */
export const STATELESS_SERVER = `import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express from 'express';

const app = express();
app.use(express.json());

app.post('/mcp', async (req, res) => {
  const server = new McpServer({ name: 'stateless', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echo' }, async () => ({ content: [{ type: 'text', text: 'hi' }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => void transport.close());
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.listen(3000);
`;

/** The legacy HTTP+SSE transport and an elicitation: at most warning severity (one warning, one note). */
export const WARNING_SERVER = `import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import express from 'express';

const server = new McpServer({ name: 'legacy-sse', version: '1.0.0' });
server.registerTool('ask', { description: 'Ask the user' }, async () => {
  const answer = await server.server.elicitInput({ message: 'Name?', requestedSchema: { type: 'object', properties: {} } });
  return { content: [{ type: 'text', text: String(answer.action) }] };
});

const app = express();
app.get('/sse', async (_req, res) => {
  const transport = new SSEServerTransport('/messages', res);
  await server.connect(transport);
});
app.listen(3000);
`;

/** The SDK's classic sessionful server: transports in a map keyed by session id (error severity). */
export const ERROR_SERVER = `import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import express from 'express';

const transports: Record<string, StreamableHTTPServerTransport> = {};
const app = express();
app.use(express.json());

app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'] as string | undefined;
  let transport = sessionId ? transports[sessionId] : undefined;
  if (!transport && isInitializeRequest(req.body)) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports[id] = transport!;
      },
    });
    const server = new McpServer({ name: 'stateful', version: '1.0.0' });
    await server.connect(transport);
  }
  if (!transport) {
    res.status(400).end();
    return;
  }
  await transport.handleRequest(req, res, req.body);
});
app.listen(3000);
`;
