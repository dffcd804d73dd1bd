// A stateful MCP server over Streamable HTTP, built on the official SDK the way many real servers are:
// sessions in an in-process Map of transports, and one process-wide variable that tools write and read
// (a shell-like server's working directory). `cd {path}` sets it, `pwd` returns it. Every session of
// this process sees the same value; another process (replica) has its own.
//
// Listens on 127.0.0.1:$PORT, endpoint /mcp; logs "process-state server listening on <url>" when ready.
// Unknown session ids get 404 (spec §Session Management). Started by test/helpers/process-state-server.ts.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

/** The process-wide state: one value per process, shared by every session the process serves. */
let workingDirectory = '/';

const TOOLS = [
  { name: 'cd', description: 'Change the working directory', inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
  { name: 'pwd', description: 'Print the working directory', inputSchema: { type: 'object', properties: {} } },
];

function createServer() {
  const server = new Server({ name: 'process-state', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name, arguments: args = {} } = request.params;
    if (name === 'cd') {
      if (typeof args.path !== 'string' || args.path === '') return { isError: true, content: [{ type: 'text', text: 'cd: path must be a non-empty string' }] };
      workingDirectory = args.path;
      return { content: [{ type: 'text', text: workingDirectory }] };
    }
    if (name === 'pwd') return { content: [{ type: 'text', text: workingDirectory }] };
    return { isError: true, content: [{ type: 'text', text: `unknown tool: ${name}` }] };
  });
  return server;
}

/** Session id → transport: the in-process session registry. */
const transports = new Map();

function jsonError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const httpServer = http.createServer(async (req, res) => {
  try {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') return jsonError(res, 404, -32601, 'Not found');
    let body;
    if (req.method === 'POST') {
      try {
        body = await readJson(req);
      } catch {
        return jsonError(res, 400, -32700, 'Parse error');
      }
    }
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId !== undefined) return jsonError(res, 404, -32001, 'Session not found');
      if (req.method !== 'POST' || !isInitializeRequest(body)) return jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports.set(id, created);
        },
      });
      created.onclose = () => {
        if (created.sessionId) transports.delete(created.sessionId);
      };
      await createServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) jsonError(res, 500, -32603, 'Internal error');
  }
});

const port = Number(process.env.PORT ?? 0);
httpServer.listen(port, '127.0.0.1', () => {
  const address = httpServer.address();
  console.log(`process-state server listening on http://127.0.0.1:${address.port}/mcp`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => httpServer.close(() => process.exit(0)).closeAllConnections());
