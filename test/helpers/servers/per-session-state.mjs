// A migrated MCP server (what `mcp-migrate apply` makes of a sessionful SDK server) whose state is per
// session and in process, where neither handshake replay nor a codemod can move it:
//   - a closure: `remember {value}` keeps a value in the session's own closure, `recall` returns it;
//   - a per-session timer: every TICK_MS it counts a tick and, once `watch` was called, sends the
//     session a `notifications/message` naming the replica and the tick on the standalone (GET) stream.
// Each tool result names the replica that ran it (REPLICA) and its process id, so a test sees who
// served the session; `slow {ms}` answers like `recall` after `ms` milliseconds (a request in flight).
// Sessions live in `SessionTransportRegistry` (affinity from AFFINITY, default owner; the env vars of
// docs/runtime.md "Owner affinity" apply). The body is parsed before `prepareNode`, as express.json()
// does (`req.body`), so a forward sends the parsed body.
//
// Listens on 127.0.0.1:$PORT, endpoint /mcp; logs "per-session-state server listening on <url>".
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { SessionTransportRegistry } from '@mcp-migrate/runtime';

const REPLICA = process.env.REPLICA ?? 'replica';
const TICK_MS = Number(process.env.TICK_MS ?? 100);
const transports = new SessionTransportRegistry({ affinity: process.env.AFFINITY === 'replay' ? 'replay' : 'owner' });

const TOOLS = [
  { name: 'remember', description: 'Keep a value in this session', inputSchema: { type: 'object', properties: { value: { type: 'string' } }, required: ['value'] } },
  { name: 'recall', description: 'The value this session kept, the replica and the ticks', inputSchema: { type: 'object', properties: {} } },
  { name: 'watch', description: 'Send a notification on every tick', inputSchema: { type: 'object', properties: {} } },
  { name: 'slow', description: 'recall, after ms milliseconds', inputSchema: { type: 'object', properties: { ms: { type: 'number' } } } },
];

/** One MCP server per session, with the session's own closure state and timer. */
function createServer() {
  let value = '(nothing)';
  let ticks = 0;
  let watching = false;
  const server = new Server({ name: 'per-session-state', version: '1.0.0' }, { capabilities: { tools: {}, logging: {} } });
  const timer = setInterval(() => {
    ticks++;
    if (watching) void server.sendLoggingMessage({ level: 'info', data: `${REPLICA}:${value}:${ticks}` }).catch(() => undefined);
  }, TICK_MS);
  timer.unref();
  server.onclose = () => clearInterval(timer);
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name, arguments: args = {} } = request.params;
    if (name === 'remember') value = String(args.value);
    else if (name === 'watch') watching = true;
    else if (name === 'slow') await new Promise((r) => setTimeout(r, Number(args.ms ?? 1000)));
    else if (name !== 'recall') return { isError: true, content: [{ type: 'text', text: `unknown tool: ${name}` }] };
    return { content: [{ type: 'text', text: JSON.stringify({ replica: REPLICA, pid: process.pid, value, ticks }) }] };
  });
  return server;
}

function jsonError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}

/** Reads a JSON body into `req.body`, as express.json() does. */
async function parseBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  req.body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
}

async function openSession() {
  const created = new StreamableHTTPServerTransport({
    sessionIdGenerator: transports.sessionIdGenerator(() => randomUUID()),
    onsessioninitialized: (id) => void transports.set(id, created),
  });
  created.onclose = () => {
    if (created.sessionId) transports.delete(created.sessionId);
  };
  await createServer().connect(created);
  return created;
}
transports.opener(openSession);

const httpServer = http.createServer(async (req, res) => {
  try {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') return jsonError(res, 404, -32601, 'Not found');
    if (req.method === 'POST') {
      try {
        await parseBody(req);
      } catch {
        return jsonError(res, 400, -32700, 'Parse error');
      }
    }
    if (!(await transports.prepareNode(req, res))) return;
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId !== undefined) return jsonError(res, 404, -32001, 'Session not found');
      if (req.method !== 'POST' || !isInitializeRequest(req.body)) return jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      transport = await openSession();
    }
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    if (!res.headersSent) jsonError(res, 500, -32603, String(err));
  }
});
httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`per-session-state server listening on http://127.0.0.1:${httpServer.address().port}/mcp`);
});
